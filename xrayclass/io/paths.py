"""Where inputs, outputs and the shared reference data live.

Default paths are relative to the working directory, as in the published pipeline:
run the stage scripts from the top of the repository.
"""

import os
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]

DATA_DIR = Path("data")
OUT_DIR = Path("out_data")

CSC_INPUT = DATA_DIR / "cscresults.vot"
FROZEN_CROSSMATCH = DATA_DIR / "cluster_csc_simbad.csv"
CLUSTERS = OUT_DIR / "cluster_csc.csv"
MODEL = OUT_DIR / "model.json"
CROSSMATCH = OUT_DIR / "cluster_csc_simbad.csv"
DETECTIONS = OUT_DIR / "detection_level_classification.csv"
CLASSIFIER_MODEL = OUT_DIR / "classifier.json"
OUTLIERS = OUT_DIR / "outliers.csv"
UNIQUELY = "uniquely_classified.csv"
AMBIGUOUS = "ambiguous_classification.csv"

#: Environment variable naming the directory of the shared reference data.
REFERENCE_ENV = "XRAYCLASS_REFERENCE"


def reference_dir():
    """The directory of the published reference outputs (``../shared/reference``).

    Set ``XRAYCLASS_REFERENCE`` to use another location. The directory may be absent:
    callers skip what needs it, saying so.
    """
    configured = os.environ.get(REFERENCE_ENV)
    if configured:
        return Path(configured)
    return REPOSITORY.parent / "shared" / "reference"


def reference_file(name):
    """Path of one reference file, or None when it is not there."""
    path = reference_dir() / name
    return path if path.is_file() else None
