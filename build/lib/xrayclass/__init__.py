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

__version__ = "0.1.0"

from xrayclass.exceptions import ArtifactError, InputError, ServiceError, XrayclassError
from xrayclass.stages.classification import run_classification
from xrayclass.stages.clustering import run_clustering
from xrayclass.stages.crossmatch import run_crossmatch
from xrayclass.stages.master_classification import run_master_classification

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
