"""Stage 1 on files, batch by batch: the fit on a seeded subsample, then every batch assigned.

The in-memory stage (:func:`~xrayclass.stages.clustering.cluster_detections`) holds the
whole table; here the input is read three times in record batches, so that memory is
set by the batch size and the fit subsample, not by N:

1. validate and count every row as the in-memory stage does (names, positions,
   repeats, the features), and collect each log feature's smallest non-zero value
   (the shifts);
2. the range of each rescaled feature, and the features of the rows the mixture is
   fitted on: the same rows :func:`~xrayclass.stages.clustering.fit_rows` picks among
   the complete rows (by their values), in its order, so the mixture is the in-memory one;
3. assign each batch with the fitted model and write it
   (:class:`~xrayclass.io.streaming.BatchWriter`).

Under Dask, the workers do step 3 (:func:`kept_rows`, then :func:`assign_kept` on the
same chunks of rows as in memory).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from xrayclass.constants import CLUSTER, NAME, OBSID
from xrayclass.core.features import complete_rows, describe_dropped, prepare_features
from xrayclass.core.featuresets import PAPER, FeatureSet
from xrayclass.core.sampling import ContentSample
from xrayclass.engine.streaming import StreamedScaler
from xrayclass.exceptions import InputError, input_files
from xrayclass.io.checks import PHYSICAL_RANGES, invalid_positions, position_error
from xrayclass.io.streaming import (
    BATCH_ROWS,
    BatchWriter,
    InputIdentity,
    detection_file_columns,
    iter_batches,
)
from xrayclass.io.tables import NO_ROWS, require_numeric, write_outputs
from xrayclass.stages import clustering as stage1
from xrayclass.stages.clustering import (
    FIT_SAMPLE,
    ClusteringModel,
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
class _FirstBad:
    """How many rows fail a check, and the first of them (global data row)."""

    count: int = 0
    row: int | None = None
    example: tuple = ()

    def add(self, bad: np.ndarray, offset: int, batch: pd.DataFrame, columns: tuple[str, ...]) -> None:
        if bad.any():
            if self.row is None:
                first = int(np.flatnonzero(bad)[0])
                self.row = offset + first
                self.example = tuple(batch[c].iloc[first] for c in columns)
            self.count += int(bad.sum())


@dataclass
class _Census:
    """What pass 1 learns about the whole input."""

    n_total: int = 0
    n_kept: int = 0
    reasons: pd.DataFrame | None = None
    blank_names: _FirstBad = field(default_factory=_FirstBad)
    bad_positions: _FirstBad = field(default_factory=_FirstBad)
    row_hashes: list = field(default_factory=list)
    identity_hashes: list = field(default_factory=list)
    feature_error: InputError | None = None
    replaced: list = field(default_factory=list)


def _hash(frame: pd.DataFrame) -> np.ndarray:
    return pd.util.hash_pandas_object(frame, index=False).to_numpy()


def _duplicate_columns(columns: list[str]) -> list[str]:
    """The columns :func:`~xrayclass.io.checks.duplicated_detections` compares, in its order."""
    from xrayclass.constants import CLASSES

    values = [c for c in columns if c in PHYSICAL_RANGES or c in CLASSES or c == "cluster"]
    return [c for c in dict.fromkeys((NAME, OBSID, "region_id", "ra", "dec", *values)) if c in columns]


def _check_repeats(
    path: str | Path,
    census: _Census,
    columns: list[str],
    name_column: str,
    batch_rows: int,
    source: InputIdentity | None = None,
) -> None:
    """Raise as :func:`~xrayclass.io.checks.handle_duplicates` does on repeated detections.

    Candidates are rows whose hash repeats an earlier one; only they are read again
    and compared value by value, so a hash collision never stops a run.
    """
    hashes = np.concatenate(census.row_hashes) if census.row_hashes else np.empty(0, np.uint64)
    census.row_hashes = []
    values, counts = np.unique(hashes, return_counts=True)
    suspects = values[counts > 1]
    if len(suspects):
        subset = _duplicate_columns([NAME if c == name_column else c for c in columns])
        rows = []
        for batch in iter_batches(path, [name_column if c == NAME else c for c in subset], batch_rows, source):
            batch = _named(batch, name_column)[subset]
            rows.append(batch.loc[np.isin(_hash(batch), suspects)])
        candidates = pd.concat(rows, ignore_index=True)
        repeated = candidates.duplicated(keep="first").to_numpy()
        if repeated.any():
            first = candidates.loc[repeated, [NAME, OBSID]].head(3)
            examples = ", ".join(f"{row[NAME]!s} obsid {row[OBSID]!s}" for _, row in first.iterrows())
            raise InputError(
                f"{path}: {int(repeated.sum()):,} rows repeat an earlier detection (same name, obsid and "
                f"values), e.g. {examples}; remove them or pass --allow-duplicates"
            )
    identities = np.concatenate(census.identity_hashes) if census.identity_hashes else np.empty(0, np.uint64)
    census.identity_hashes = []
    values, counts = np.unique(identities, return_counts=True)
    shared = int(counts[counts > 1].sum())
    if shared:
        log.info(
            "%s: %s detections share their name and obsid with another detection of different values "
            "(the CSC can list several detections of a source in one observation); all are kept",
            path,
            f"{shared:,}",
        )


def _pass1(
    path: str | Path,
    name_column: str,
    columns: list[str],
    feature_set: FeatureSet,
    n_components: int,
    streamed: StreamedScaler,
    batch_rows: int,
    source: InputIdentity | None = None,
) -> _Census:
    census = _Census()
    subset = _duplicate_columns([NAME if c == name_column else c for c in columns])
    replaceable = (CLUSTER, *probability_columns(n_components))
    wanted = [name_column, *subset, *feature_set.raw_columns, *feature_set.features, *replaceable]
    for batch in iter_batches(path, wanted, batch_rows, source):
        batch = _named(batch, name_column)
        offset = census.n_total
        census.n_total += len(batch)
        names = batch[NAME]
        blank = names.isna().to_numpy() | (names.astype(str).str.strip() == "").to_numpy()
        census.blank_names.add(blank, offset, batch, ())
        census.bad_positions.add(invalid_positions(batch), offset, batch, ("ra", "dec"))
        census.row_hashes.append(_hash(batch[subset]))
        census.identity_hashes.append(_hash(batch[[NAME, OBSID]]))
        if census.feature_error is not None or census.blank_names.count or census.bad_positions.count:
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
        streamed.add_shift_values(prepared.loc[complete, list(feature_set.features)].to_numpy(dtype="float64"))
    return census


def _raise_identity_problems(path: str | Path, census: _Census) -> None:
    """The errors of :func:`~xrayclass.io.checks.check_detections`, in its order and words."""
    if census.blank_names.count:
        raise InputError(
            f"{path}: {census.blank_names.count:,} rows have a blank source name ('{NAME}'), "
            f"first in data row {(census.blank_names.row or 0) + 1}"
        )
    if census.bad_positions.count:
        ra, dec = census.bad_positions.example
        raise position_error(path, census.bad_positions.count, census.bad_positions.row or 0, ra, dec)


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
    """Passes 1 and 2: the model :func:`~xrayclass.stages.clustering.cluster_detections` fits on the file.

    Returns the model and the input's source-name column. Problems are
    :class:`InputError` naming ``path``. ``source`` is the input as the run found it
    (recorded here if not given): each pass checks the file is still that one.
    """
    source = source or InputIdentity(path)
    columns, name_column = detection_file_columns(path)

    streamed = StreamedScaler(feature_set.scaler(log_floor=log_floor))
    census = _pass1(path, name_column, columns, feature_set, n_components, streamed, batch_rows, source)
    if census.n_total == 0:  # a CSV header alone reads as one empty chunk
        raise InputError(f"{path}: {NO_ROWS}")
    _raise_identity_problems(path, census)
    _check_repeats(path, census, columns, name_column, batch_rows, source)
    if census.feature_error is not None:
        with input_files(path):
            raise census.feature_error
    log.info("%s detections read", f"{census.n_total:,}")
    if census.replaced:
        log.warning("the input already has %s; they are replaced by this run's clusters", ", ".join(census.replaced))
    if census.reasons is not None:  # None only for a file without rows, refused above
        log.info(describe_dropped(census.reasons, census.n_total - census.n_kept, census.n_total, len(feature_set)))
    if census.n_kept < max(n_components, 2):
        raise InputError(
            f"{path}: only {census.n_kept} detections have all {len(feature_set)} features; "
            f"at least {n_components} are needed for {n_components} clusters"
        )
    zero = streamed.zero_features()
    if zero:
        raise InputError(f"{path}: {zero[0]} is zero for every usable detection; its log scaling is undefined")
    streamed.set_shifts()

    # Pass 2: ranges, and the fit rows (indices among the complete rows, as in memory).
    chosen = ContentSample(fit_sample, random_state)  # the rows fit_rows picks, in its order
    wanted = ["ra", "dec", *feature_set.raw_columns, *feature_set.features]
    for batch in iter_batches(path, wanted, batch_rows, source):
        with input_files(path):
            prepared, complete, _ = _features_of(batch, feature_set, n_components)
        features = prepared.loc[complete, list(feature_set.features)].to_numpy(dtype="float64")
        streamed.add_ranges(features)
        chosen.add(pd.DataFrame(features, copy=False))
    scaler = streamed.fitted()
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
    log.info("cluster sizes: %s", ", ".join(f"{k}: {n:,}" for k, n in enumerate(sizes)))
    small = [k for k, n in enumerate(sizes) if n <= n_features]
    if small:
        log.warning(
            "clusters %s have %d or fewer detections, too few to estimate a %d-feature covariance; "
            "their shape is unreliable (use more detections or fewer --n-components)",
            ", ".join(map(str, small)),
            n_features,
            n_features,
        )
    return writer.rows


def cluster_file(
    path: str | Path,
    output: str | Path,
    model_output: str | Path,
    n_components: int,
    random_state: int,
    fit_sample: int | None = FIT_SAMPLE,
    log_floor: float | None = None,
    feature_set: FeatureSet = PAPER,
    batch_rows: int = BATCH_ROWS,
) -> tuple[ClusteringModel, int]:
    """Stage 1 from file to files in batches: the rows and model cluster_detections gives.

    Writes ``output`` and ``model_output`` (both or neither) and returns ``(model, n_rows_written)``.
    """
    source = InputIdentity(path)
    model, name_column = fit_clustering_file(
        path, n_components, random_state, fit_sample, log_floor, feature_set, batch_rows, source
    )
    model.training["input"] = str(path)

    def kept() -> Iterator[pd.DataFrame]:
        for batch in iter_batches(path, None, batch_rows, source):
            with input_files(path):
                yield kept_rows(batch, model, name_column)

    def assigned() -> Iterator[pd.DataFrame]:
        for chunk in aligned_chunks(kept()):
            yield assign_kept(chunk, model)

    return model, write_clustered(assigned(), output, model, model_output, source)
