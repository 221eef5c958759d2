"""Stages 3 and 4 partition by partition: what the Dask engine maps over its partitions.

The fitted classifier is broadcast to every worker; each partition of the detections
to classify is classified on its own (stage 3 has no dependence between rows). The
votes of stage 4 need all detections of a source together: partitions by source name
(a hash, :func:`source_partition`, or Dask's shuffle on the name). The concatenated
results of the partitions are the whole table's (tests).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from xrayclass.constants import CLASSES, CLUSTER, NAME, OBSID
from xrayclass.core.classifier import ClassifierModel
from xrayclass.stages.master_classification import master_classification

__all__ = [
    "classify_partition",
    "source_partition",
    "vote_partition",
]


def source_partition(names: ArrayLike, n_partitions: int) -> np.ndarray:
    """Partition number of each detection: a stable hash of its source name."""
    return (pd.util.hash_array(np.asarray(names, dtype=object)) % np.uint64(n_partitions)).astype(int)


def classify_partition(
    detections: pd.DataFrame, model: ClassifierModel, method: str | None = None, explain: bool = True
) -> pd.DataFrame:
    """Stage-3 columns for one partition of detections to classify (features complete).

    Returns the partition's identity columns followed by :meth:`ClassifierModel.classify`'s.
    """
    result = model.classify(detections, detections[CLUSTER].to_numpy(), method=method, explain=explain)
    identity = detections[[NAME, OBSID, CLUSTER, "ra", "dec"]].reset_index(drop=True)
    return pd.concat([identity, result], axis=1)


def vote_partition(
    detections: pd.DataFrame, classes: Sequence[str] = CLASSES
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]] | None:
    """Stage 4 on a partition holding every detection of its sources: (uniquely, ambiguous, summary); None if empty."""
    if not len(detections):
        return None
    return master_classification(detections, classes)
