"""The pipeline's four stages, one module each, plus classifying new sources.

1. :mod:`.clustering`: features, preprocessing and Gaussian-mixture clusters.
2. :mod:`.crossmatch`: SIMBAD classes for the clustered detections.
3. :mod:`.classification`: per-cluster class probabilities of unlabeled detections.
4. :mod:`.master_classification`: a master class per source by hard and soft voting.
"""
