"""The published numbers a reproduction is checked against.

Pérez-Díaz et al. 2024, MNRAS, "Unsupervised machine learning for the classification
of astrophysical X-ray sources" (arXiv 2401.12203): Section 4 and Table A1. These are
the paper's values, quoted for comparison; every number a run reports next to them is
computed by that run.
"""

#: CSC 2.0 detections returned by the paper's query, and those with all 12 features.
INPUT_DETECTIONS = 37_878
COMPLETE_DETECTIONS = 29_655

#: Stage 3: detections classified and their sources.
CLASSIFIED_DETECTIONS = 14_507
CLASSIFIED_SOURCES = 8_756

#: Stage 4.
UNIQUELY_CLASSIFIED = 8_271
AMBIGUOUS = 485
COHEN_KAPPA = 0.936
DETECTIONS_PER_SOURCE = {"1": 6_802, "2": 1_000, "3-10": 882, ">10": 72}

#: Reference files of the published outputs, in the shared reference directory.
DETECTION_LEVEL_FILE = "paper_detection_level_classification.csv"
UNIQUELY_FILE = "paper_uniquely_classified.csv"
AMBIGUOUS_FILE = "paper_ambiguous_classification.csv"
