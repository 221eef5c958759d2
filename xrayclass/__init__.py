"""Unsupervised classification of Chandra Source Catalog X-ray detections.

A reimplementation of the method of Pérez-Díaz et al. 2024 (MNRAS), "Unsupervised
machine learning for the classification of astrophysical X-ray sources":
X-ray features -> log/MinMax preprocessing -> Gaussian mixture clusters -> SIMBAD
labels for a minority of detections -> per-cluster Mahalanobis classification of the
rest -> per-source master classes by hard and soft voting.

The four top-level scripts (``clustering.py``, ``crossmatch.py``,
``classification.py``, ``master_classification.py``) are thin command lines over
this package.
"""

__version__ = "0.1.0"
