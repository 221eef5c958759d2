"""The published numbers a reproduction is checked against.

Pérez-Díaz et al. 2024, MNRAS, "Unsupervised machine learning for the classification
of astrophysical X-ray sources" (arXiv 2401.12203): Section 4 and Table A1. These are
the paper's values, quoted for comparison; every number a run reports next to them is
computed by that run.
"""

__all__ = [
    "AMBIGUOUS",
    "AMBIGUOUS_FILE",
    "CHOSEN_K",
    "CLASSIFIED_DETECTIONS",
    "CLASSIFIED_SOURCES",
    "COHEN_KAPPA",
    "COHEN_KAPPA_MULTIPLE_DETECTIONS",
    "COMPLETE_DETECTIONS",
    "DETECTIONS_PER_SOURCE",
    "DETECTION_LEVEL_FILE",
    "INPUT_DETECTIONS",
    "LOW_LATITUDE_SHARE",
    "MUWCLASS_TD_FILE",
    "TABLE4_MUWCLASS_TD",
    "TYPE_CENSUS",
    "UNIQUELY_CLASSIFIED",
    "UNIQUELY_FILE",
    "VALIDATION_AGGREGATED",
    "VALIDATION_DIAGONAL",
]

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
#: Not stated in the paper: Cohen's kappa of the published tables' hard and soft votes
#: over the 1,954 sources with two or more detections (issue 13; a source with one
#: detection agrees with itself). tests/test_reproduction.py recomputes it from the tables.
COHEN_KAPPA_MULTIPLE_DETECTIONS = 0.711
DETECTIONS_PER_SOURCE = {"1": 6_802, "2": 1_000, "3-10": 882, ">10": 72}

#: Reference files of the published outputs, in the shared reference directory.
DETECTION_LEVEL_FILE = "paper_detection_level_classification.csv"
UNIQUELY_FILE = "paper_uniquely_classified.csv"
AMBIGUOUS_FILE = "paper_ambiguous_classification.csv"

#: Stage 1: the number of mixture components chosen from the BIC.
CHOSEN_K = 6

#: Share of each cluster's detections at galactic |b| < 5 deg, where the paper gives it.
LOW_LATITUDE_SHARE = {3: 0.343, 4: 0.288, 2: 0.126, 1: 0.098}

#: Validation (Fig. 4): diagonal of the row-normalized confusion matrix, ten classes.
VALIDATION_DIAGONAL = {
    "QSO": 0.37,
    "AGN": 0.16,
    "Seyfert_1": 0.38,
    "Seyfert_2": 0.22,
    "HMXB": 0.51,
    "LMXB": 0.18,
    "XB": 0.26,
    "YSO": 0.51,
    "TTau*": 0.30,
    "Orion_V*": 0.39,
}

#: Validation (Fig. 5): the aggregated confusion matrix, rows true, columns predicted.
VALIDATION_AGGREGATED = {
    "AGN": {"AGN": 0.49, "Seyfert": 0.29, "XB": 0.17, "YSO": 0.051},
    "Seyfert": {"AGN": 0.28, "Seyfert": 0.43, "XB": 0.21, "YSO": 0.085},
    "XB": {"AGN": 0.13, "Seyfert": 0.068, "XB": 0.66, "YSO": 0.15},
    "YSO": {"AGN": 0.021, "Seyfert": 0.014, "XB": 0.10, "YSO": 0.87},
}

#: Table 3: the ten most common SIMBAD types per cluster (detections).
TYPE_CENSUS = {
    0: [
        ("NaN", 884),
        ("Star", 310),
        ("Orion_V*", 310),
        ("YSO", 264),
        ("QSO", 185),
        ("TTau*", 165),
        ("X", 144),
        ("PartofG", 105),
        ("Seyfert_1", 52),
        ("SB*", 47),
    ],
    1: [
        ("NaN", 2869),
        ("QSO", 931),
        ("X", 887),
        ("Orion_V*", 304),
        ("YSO", 304),
        ("Star", 277),
        ("AGN", 236),
        ("HMXB", 210),
        ("Seyfert_1", 172),
        ("LMXB", 141),
    ],
    2: [
        ("NaN", 3211),
        ("X", 1093),
        ("QSO", 1081),
        ("Star", 398),
        ("HMXB", 272),
        ("GlCl", 255),
        ("Seyfert_1", 252),
        ("XB*_Candidate", 238),
        ("AGN", 232),
        ("XB", 222),
    ],
    3: [
        ("NaN", 821),
        ("X", 307),
        ("HMXB", 165),
        ("YSO", 154),
        ("Star", 135),
        ("Seyfert_2", 120),
        ("QSO", 115),
        ("Orion_V*", 91),
        ("Seyfert_1", 79),
        ("Pulsar", 73),
    ],
    4: [
        ("Orion_V*", 688),
        ("YSO", 562),
        ("NaN", 429),
        ("Star", 312),
        ("TTau*", 159),
        ("X", 78),
        ("HMXB", 63),
        ("YSO_Candidate", 62),
        ("BYDra", 62),
        ("Em*", 26),
    ],
    5: [
        ("NaN", 1131),
        ("YSO", 563),
        ("Orion_V*", 530),
        ("Star", 332),
        ("X", 313),
        ("TTau*", 196),
        ("QSO", 187),
        ("HMXB", 161),
        ("AGN", 86),
        ("Seyfert_1", 71),
    ],
}

#: Table 4, MUWCLASS training set (Yang et al. 2022) row: per comparison class,
#: matches, precision, R-precision, recall.
MUWCLASS_TD_FILE = "muwclass_td.csv"
TABLE4_MUWCLASS_TD = {
    "AGN+Seyfert": (31, 0.32, 0.56, 0.83),
    "XB": (29, 0.17, 0.62, 0.31),
    "YSO": (56, 0.18, 0.74, 0.83),
}
