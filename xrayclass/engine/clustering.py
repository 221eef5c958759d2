"""Stage 1 on files, batch by batch: the fit on a seeded subsample, then every batch assigned.

The in-memory stage (:func:`~xrayclass.stages.clustering.cluster_detections`) holds the
whole table; here the input is read three times in record batches, so that memory is
set by the batch size and the fit subsample, not by N:

1. validate and count every row as the in-memory stage does (names, positions,
   repeats, the features); merge the scaler's state of each batch's complete rows
   (:meth:`~xrayclass.core.preprocessing.LogMinMaxScaler.summarize`) and keep the rows
   the mixture is fitted on: the same rows :func:`~xrayclass.stages.clustering.fit_rows`
   picks among the complete rows (by their values), in its order;
2. assign each batch with the fitted model and write it
   (:class:`~xrayclass.io.streaming.BatchWriter`).

Under Dask, the workers do step 2 (:func:`kept_rows`, then :func:`assign_kept` on the
same chunks of rows as in memory).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from xrayclass.constants import CLUSTER, NAME
from xrayclass.core.checks import require_log_features_usable, require_numeric
from xrayclass.core.features import complete_rows, describe_dropped, prepare_features
from xrayclass.core.featuresets import PAPER, FeatureSet
from xrayclass.core.mixture import ClusteringModel
from xrayclass.core.preprocessing import ScalerState
from xrayclass.core.sampling import ContentSample
from xrayclass.engine import EngineConfig
from xrayclass.engine.checks import DetectionChecks
from xrayclass.exceptions import InputError, input_files
from xrayclass.io.streaming import (
    BATCH_ROWS,
    BatchWriter,
    InputIdentity,
    iter_batches,
)
from xrayclass.io.tables import NO_ROWS, write_outputs
from xrayclass.stages import clustering as stage1
from xrayclass.stages.clustering import (
    FIT_SAMPLE,
    ClusteringConfig,
    probability_columns,
)

__all__ = [
    "aligned_chunks",
    "assign_kept",
    "cluster_file",
    "fit_clustering_file",
    "kept_rows",
    "write_clustered",
]

log = logging.getLogger(__name__)


def _named(batch: pd.DataFrame, name_column: str) -> pd.DataFrame:
    return batch if name_column == NAME else batch.rename(columns={name_column: NAME})


def _features_of(
    batch: pd.DataFrame, feature_set: FeatureSet, n_components: int
) -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame]:
    """A batch as cluster_detections prepares the whole table: (table, complete rows, reasons)."""
    batch = require_numeric(batch, ("ra", "dec"))
    batch = prepare_features(batch, feature_set)
    replaced = [c for c in (CLUSTER, *probability_columns(n_components)) if c in batch.columns]
    if replaced:
        batch = batch.drop(columns=replaced)
    complete, reasons = complete_rows(batch, feature_set=feature_set)
    return batch, complete, reasons


@dataclass
class _Census:
    """What pass 1 learns about the whole input."""

    checks: DetectionChecks
    n_total: int = 0
    n_kept: int = 0
    reasons: pd.DataFrame | None = None
    feature_error: InputError | None = None
    replaced: list = field(default_factory=list)
    scaler: ScalerState = field(default_factory=ScalerState)


def _pass1(
    path: str | Path,
    checks: DetectionChecks,
    feature_set: FeatureSet,
    n_components: int,
    chosen: ContentSample,
    batch_rows: int,
    source: InputIdentity | None = None,
    log_floor: float | None = None,
) -> _Census:
    census = _Census(checks)
    scaler = feature_set.scaler(log_floor=log_floor)
    replaceable = (CLUSTER, *probability_columns(n_components))
    wanted = [*checks.file_names, *feature_set.raw_columns, *feature_set.features, *replaceable]
    for batch in iter_batches(path, wanted, batch_rows, source):
        batch = checks.named(batch)
        census.n_total += len(batch)
        checks.add(batch)
        if census.feature_error is not None or checks.failed:
            continue  # the table is refused: only the identity checks still count
        try:
            prepared, complete, reasons = _features_of(batch, feature_set, n_components)
        except InputError as exc:
            census.feature_error = exc
            continue
        if not census.replaced:
            census.replaced = [c for c in (CLUSTER, *probability_columns(n_components)) if c in batch.columns]
        census.reasons = reasons if census.reasons is None else census.reasons + reasons
        census.n_kept += int(complete.sum())
        features = prepared.loc[complete, list(feature_set.features)]
        census.scaler = census.scaler.merge(scaler.summarize(features))
        chosen.add(features.reset_index(drop=True))
    return census


def fit_clustering_file(
    path: str | Path,
    n_components: int,
    random_state: int,
    fit_sample: int | None = FIT_SAMPLE,
    log_floor: float | None = None,
    feature_set: FeatureSet = PAPER,
    batch_rows: int = BATCH_ROWS,
    source: InputIdentity | None = None,
) -> tuple[ClusteringModel, str]:
    """Pass 1: the model :func:`~xrayclass.stages.clustering.cluster_detections` fits on the file.

    Returns the model and the input's source-name column. Problems are
    :class:`InputError` naming ``path``. ``source`` is the input as the run found it
    (recorded here if not given): each pass checks the file is still that one.
    """
    source = source or InputIdentity(path)
    # check_detections of the in-memory stage, over the batches of pass 1.
    checks = DetectionChecks.of_file(path)
    name_column = checks.name_column

    chosen = ContentSample(fit_sample, random_state)  # the rows fit_rows picks, in its order
    census = _pass1(path, checks, feature_set, n_components, chosen, batch_rows, source, log_floor)
    if census.n_total == 0:  # a CSV header alone reads as one empty chunk
        raise InputError(f"{path}: {NO_ROWS}")
    checks.raise_problems()
    checks.check_repeats(batch_rows, source)
    if census.feature_error is not None:
        with input_files(path):
            raise census.feature_error
    log.info("%s detections read", f"{census.n_total:,}")
    stage1.warn_replaced(census.replaced)
    if census.reasons is not None:  # None only for a file without rows, refused above
        log.info(describe_dropped(census.reasons, census.n_total - census.n_kept, census.n_total, len(feature_set)))
    with input_files(path):
        stage1.require_enough_rows(census.n_kept, n_components, len(feature_set))
    with input_files(path):
        require_log_features_usable(
            census.scaler.smallest_nonzero(), feature_set.log_features, feature_set.log_features
        )
    scaler = feature_set.scaler(log_floor=log_floor).fit_state(census.scaler)
    fitted = chosen.rows()
    assert fitted is not None  # pass 1 found complete rows
    X = scaler.transform(fitted.to_numpy())
    del chosen, fitted
    model = stage1.fit_model(
        X, scaler, n_components, random_state, fit_sample, feature_set, census.n_total, census.n_kept
    )
    return model, name_column


def kept_rows(batch: pd.DataFrame, model: ClusteringModel | dict, name_column: str = NAME) -> pd.DataFrame:
    """The rows of one batch of the input that stage 1 keeps (all features), prepared as in memory.

    ``model`` may be the model's JSON document (what the Dask engine broadcasts).
    """
    fitted = ClusteringModel.from_dict(model) if isinstance(model, dict) else model
    prepared, complete, _ = _features_of(_named(batch, name_column), fitted.feature_set, fitted.mixture.n_components)
    return prepared.loc[complete].reset_index(drop=True)


def assign_kept(kept: pd.DataFrame, model: ClusteringModel | dict) -> pd.DataFrame:
    """``kept`` with ``cluster`` and ``prob_*``, as :meth:`ClusteringModel.assign` gives them."""
    fitted = ClusteringModel.from_dict(model) if isinstance(model, dict) else model
    n_components = fitted.mixture.n_components
    clusters, probabilities = fitted.assign(kept)
    return kept.assign(
        **{CLUSTER: clusters},
        **dict(zip(probability_columns(n_components), probabilities.T, strict=False)),
    )


def aligned_chunks(frames: Iterable[pd.DataFrame], size: int | None = None) -> Iterator[pd.DataFrame]:
    """The rows of ``frames`` again, cut into chunks of exactly ``size`` rows (the last: the rest).

    The in-memory stage scores the kept rows in chunks of ``CHUNK_ROWS`` (the default ``size``) from the first;
    the mixture's matrix products round the last bit of a row's probabilities differently
    depending on where it sits in the array, so the streamed and Dask engines score the
    very same chunks to write the same bytes.
    """
    size = size or stage1.CHUNK_ROWS
    held: list[pd.DataFrame] = []
    n_held = 0
    for frame in frames:
        if not len(frame):
            continue
        held.append(frame)
        n_held += len(frame)
        while n_held >= size:
            joined = pd.concat(held, ignore_index=True) if len(held) > 1 else held[0]
            yield joined.iloc[:size].reset_index(drop=True)
            rest = joined.iloc[size:].reset_index(drop=True)
            held, n_held = ([rest] if len(rest) else []), len(rest)
    if n_held:
        yield pd.concat(held, ignore_index=True) if len(held) > 1 else held[0]


def write_clustered(
    frames: Iterator[pd.DataFrame],
    output: str | Path,
    model: ClusteringModel,
    model_output: str | Path,
    source: InputIdentity | None = None,
) -> int:
    """Write the assigned batches (empty ones skipped) into ``output`` and the model: both or neither.

    With ``source``, the input must still be the file the model was fitted on when the
    last batch has been assigned, or nothing is written.
    """
    n_components, n_features = model.mixture.n_components, len(model.feature_set)
    sizes = np.zeros(n_components, dtype=np.int64)
    with BatchWriter(output) as writer:
        for frame in frames:
            if len(frame):
                writer.write(frame)
                sizes += np.bincount(frame[CLUSTER].to_numpy(), minlength=n_components)
        if source is not None:
            source.check()
        write_outputs([(model.to_dict(), model_output)])
    stage1.log_cluster_sizes(sizes, n_features)
    return writer.rows


def cluster_file(
    path: str | Path,
    output: str | Path,
    model_output: str | Path,
    config: ClusteringConfig = ClusteringConfig(),
    engine: EngineConfig = EngineConfig(engine="streaming"),
) -> tuple[ClusteringModel, int]:
    """Stage 1 from file to files in batches: the rows and model of the in-memory stage.

    Writes ``output`` and ``model_output`` (both or neither) and returns ``(model, n_rows_written)``.
    """
    source = InputIdentity(path)
    model, name_column = fit_clustering_file(
        path,
        config.n_components,
        config.random_state,
        config.fit_sample,
        config.log_floor,
        config.feature_set,
        engine.batch_rows,
        source,
    )
    model.training["input"] = str(path)

    def kept() -> Iterator[pd.DataFrame]:
        for batch in iter_batches(path, None, engine.batch_rows, source):
            with input_files(path):
                yield kept_rows(batch, model, name_column)

    assigned = (assign_kept(chunk, model) for chunk in aligned_chunks(kept()))
    return model, write_clustered(assigned, output, model, model_output, source)
