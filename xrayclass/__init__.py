"""Unsupervised classification of Chandra Source Catalog X-ray detections.

A reimplementation of the method of Pérez-Díaz et al. 2024 (MNRAS), "Unsupervised
machine learning for the classification of astrophysical X-ray sources":
X-ray features -> log/MinMax preprocessing -> Gaussian mixture clusters -> SIMBAD
labels for a minority of detections -> per-cluster Mahalanobis classification of the
rest -> per-source master classes by hard and soft voting.

The four top-level scripts (``clustering.py``, ``crossmatch.py``,
``classification.py``, ``master_classification.py``) are thin command lines over
this package. As a library, each stage is one function on in-memory tables::

    from xrayclass import run_clustering, run_crossmatch, run_classification, run_master_classification
"""

from importlib import import_module
from typing import TYPE_CHECKING

from xrayclass.constants import VERSION as __version__
from xrayclass.exceptions import ArtifactError, InputError, ServiceError, XrayclassError

if TYPE_CHECKING:
    from xrayclass.stages.classification import run_classification
    from xrayclass.stages.clustering import run_clustering
    from xrayclass.stages.crossmatch import run_crossmatch
    from xrayclass.stages.master_classification import run_master_classification

#: The stage functions, imported on first use (PEP 562): each command loads only the
#: science it runs (stage 4 does without scikit-learn and SciPy, 2-3 s of imports).
_STAGE_FUNCTIONS = {
    "run_classification": "xrayclass.stages.classification",
    "run_clustering": "xrayclass.stages.clustering",
    "run_crossmatch": "xrayclass.stages.crossmatch",
    "run_master_classification": "xrayclass.stages.master_classification",
}


def __getattr__(name: str) -> object:
    if name in _STAGE_FUNCTIONS:
        return getattr(import_module(_STAGE_FUNCTIONS[name]), name)
    raise AttributeError(f"module 'xrayclass' has no attribute {name!r}")


__all__ = [
    "ArtifactError",
    "InputError",
    "ServiceError",
    "XrayclassError",
    "__version__",
    "run_classification",
    "run_clustering",
    "run_crossmatch",
    "run_master_classification",
]
