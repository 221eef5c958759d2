"""Stages 3 and 4 partition by partition, for catalogs beyond one machine's memory.

The fitted classifier artifact (``classifier.json``) is small and is broadcast to every
worker; each partition of the detections to classify is then classified on its own
(stage 3 has no dependence between rows). The votes of stage 4 need all detections of
a source together: partition by a hash of the source name first. Concatenating the
per-partition results gives exactly the whole-table results (a test checks it), so a
framework such as Dask only has to map these functions over its partitions::

    import dask.dataframe as dd
    model = read_classifier_model("out_data/classifier.json")          # broadcast
    parts = dd.read_parquet("to_classify/*.parquet")
    classified = parts.map_partitions(classify_partition, model)
    by_source = classified.shuffle(on="name")                          # a source per partition
    uniquely = by_source.map_partitions(vote_partition)

(Dask is not a dependency of this project, and that snippet is not run by the tests;
the functions below are, on pandas partitions.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from xrayclass.constants import CLUSTER, NAME, OBSID
from xrayclass.stages.master_classification import master_classification

if TYPE_CHECKING:
    from xrayclass.core.classifier import ClassifierModel


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


def vote_partition(detections: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Stage 4 on a partition holding every detection of its sources: (uniquely, ambiguous)."""
    uniquely, ambiguous, _ = master_classification(detections)
    return uniquely, ambiguous
