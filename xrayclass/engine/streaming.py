"""Stages 3 and 4 on files, batch by batch: memory set by the batch size, not by N.

Stage 3 needs two things from every row before it can classify one: the preprocessing
(a log shift and a range per feature) and the references (the minority of rows with a
SIMBAD class). So it reads the input three times, each time in batches:

1. validate each batch, count, collect the references and the log features' smallest
   non-zero values (the shifts), and a sample of the names to classify;
2. the range of each rescaled feature (needs the shifts), over the feature columns only;
3. classify each batch with the fitted model and sort the rows by name and obsid on
   disk (:class:`~xrayclass.io.streaming.ExternalSort`; skipped when the input already
   comes in that order), writing the output as it goes.

The result is that of :func:`~xrayclass.stages.classification.classify_detections` on
the whole table (a test compares the CSV files byte for byte). Stage 4 streams the
stage-3 output, which is sorted by name, in batches cut at source boundaries.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from xrayclass.constants import (
    CLASSES,
    CLUSTER,
    MAIN_TYPE,
    NAME,
    NAME_ALIASES,
    NO_MATCH,
    OBSID,
    UNCLASSIFIED,
    UNINFORMATIVE_TYPES,
)
from xrayclass.core.checks import canonical_names
from xrayclass.core.features import complete_rows, describe_dropped, prepare_features
from xrayclass.core.featuresets import PAPER, FeatureSet
from xrayclass.core.preprocessing import LogMinMaxScaler
from xrayclass.core.taxonomy import OTYPE, LabelReport, normalize_types
from xrayclass.engine.checks import DetectionChecks
from xrayclass.exceptions import InputError, input_files
from xrayclass.io.streaming import (
    BATCH_ROWS,
    BatchWriter,
    ExternalSort,
    InputIdentity,
    SpillByKey,
    iter_batches,
    name_boundaries,
)
from xrayclass.io.tables import write_outputs
from xrayclass.stages import classification as stage3
from xrayclass.stages.classification import (
    OUTLIER_COLUMNS,
    OUTLIER_FRACTION,
    REFERENCE,
    REQUIRED_COLUMNS,
    TO_CLASSIFY,
    ClassifierModel,
    assemble_classified,
    check_labels,
    checked_input,
    detection_roles,
    fit_classifier,
    log_census,
    outlier_table,
    weights_needed,
)

__all__ = [
    "NAME_SAMPLE_PER_BATCH",
    "Stage3Options",
    "StreamedScaler",
    "classify_batch",
    "classify_file",
    "combine_votes",
    "fit_streamed",
    "master_classification_file",
    "source_batches",
    "spill_votes",
    "write_classified",
]

log = logging.getLogger(__name__)

#: Names kept per batch to choose the sort buckets' boundaries.
NAME_SAMPLE_PER_BATCH = 1_000


@dataclass(frozen=True)
class Stage3Options:
    """The choices of stage 3 that the streamed (and Dask) run honours, as in memory.

    The keywords of :func:`~xrayclass.stages.classification.classify_detections` of the
    same names, with the same defaults (the paper's method).
    """

    classes: tuple[str, ...] = tuple(CLASSES)
    uninformative: tuple[str, ...] = tuple(UNINFORMATIVE_TYPES)
    min_references: Any = "n_features"
    method: str = "mahalanobis"
    location: bool = True
    score: str = "macro_f1"
    outlier_fraction: float = OUTLIER_FRACTION
    explain: bool = True
    strict_labels: bool = False
    likelihood: str = "distance"
    priors: str = "none"
    log_floor: float | None = None
    calibrate: bool = False
    feature_set: FeatureSet = PAPER
    #: Threads classifying a batch (default: every processor available; 1 on Dask
    #: workers, whose parallelism is the workers themselves).
    threads: int | None = None

    @property
    def reference_columns(self) -> list[str]:
        """What pass 1 keeps of each reference: what the fit reads, nothing more."""
        # The names only for the calibration's folds by source; positions for |b|.
        return [
            *self.feature_set.features,
            MAIN_TYPE,
            CLUSTER,
            *(["ra", "dec"] if self.location else []),
            *([NAME] if self.calibrate else []),
        ]


def _prepare(
    batch: pd.DataFrame, options: Stage3Options
) -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame, int, LabelReport]:
    """A batch validated as classify_detections validates the whole table; (complete rows, roles, reasons, n, labels)."""
    batch = checked_input(batch, options.feature_set)
    n = len(batch)
    complete, reasons = complete_rows(batch, feature_set=options.feature_set)
    batch = batch.loc[complete].reset_index(drop=True)
    # Today's SIMBAD labels, codes and stray spellings, under the paper's names (as in memory).
    types, labels = normalize_types(batch[MAIN_TYPE], batch[OTYPE] if OTYPE in batch.columns else None)
    batch = batch.assign(**{MAIN_TYPE: types, CLUSTER: batch[CLUSTER].astype(int)})  # type: ignore[arg-type]
    return batch, detection_roles(types, options.classes, options.uninformative), reasons, n, labels


@dataclass
class _Census:
    """What pass 1 learns about the whole table."""

    n_total: int = 0
    reasons: pd.DataFrame | None = None
    min_nonzero: dict = field(default_factory=dict)
    clusters: set = field(default_factory=set)
    references: list = field(default_factory=list)
    type_counts: dict = field(default_factory=dict)
    names: list = field(default_factory=list)
    n_to_classify: int = 0
    n_unmatched: int = 0
    n_reference: int = 0
    in_order: bool = True
    last: tuple | None = None
    labels: LabelReport = field(default_factory=LabelReport)
    #: The input as pass 1 found it: every later pass, and the commit, check it is unchanged.
    source: InputIdentity | None = None

    def add(
        self,
        batch: pd.DataFrame,
        roles: np.ndarray,
        reasons: pd.DataFrame,
        n: int,
        log_features: Iterable[str],
        reference_columns: list[str],
    ) -> None:
        self.n_total += n
        self.reasons = reasons if self.reasons is None else self.reasons + reasons
        for name in log_features:
            column = batch[name].to_numpy(dtype="float64")
            nonzero = column[column != 0]
            if nonzero.size:
                low = float(nonzero.min())
                self.min_nonzero[name] = min(low, self.min_nonzero.get(name, np.inf))
        self.clusters.update(np.unique(batch[CLUSTER].to_numpy()).tolist())
        is_reference = roles == REFERENCE
        # Only the columns the fit reads: the references grow with N (a third of the
        # mock's detections), so each of their columns counts.
        self.references.append(batch.loc[is_reference, reference_columns])
        self.n_reference += int(is_reference.sum())
        types = batch[MAIN_TYPE].to_numpy(dtype=object)
        chosen = roles == TO_CLASSIFY
        self.n_to_classify += int(chosen.sum())
        self.n_unmatched += int((types[chosen] == NO_MATCH).sum())
        for label, count in pd.Series(types[~chosen & ~is_reference]).value_counts().items():
            self.type_counts[label] = self.type_counts.get(label, 0) + int(count)
        names = batch.loc[chosen, NAME].to_numpy(dtype=object)
        obsids = batch.loc[chosen, OBSID].to_numpy(dtype="float64")
        if len(names):
            step = max(1, len(names) // NAME_SAMPLE_PER_BATCH)
            self.names.extend(names[::step].tolist())
            if self.in_order:
                self.in_order = _non_decreasing(names, obsids, self.last)
            self.last = (names[-1], obsids[-1])


def _non_decreasing(names: np.ndarray, obsids: np.ndarray, previous: tuple | None) -> bool:
    """Whether (name, obsid) pairs never decrease, continuing from ``previous``."""
    if previous is not None:
        names = np.r_[np.array([previous[0]], dtype=object), names]
        obsids = np.r_[previous[1], obsids]
    if len(names) < 2:
        return True
    later, earlier = names[1:], names[:-1]
    greater = later > earlier
    equal = later == earlier
    return bool((greater | (equal & (obsids[1:] >= obsids[:-1]))).all())


class StreamedScaler:
    """A :class:`LogMinMaxScaler` fitted over batches of complete rows, as ``fit`` on them all.

    Two passes, as the scaler needs the log shifts before the ranges: feed every batch's
    features (columns in the scaler's ``features`` order) to :meth:`add_shift_values`,
    then call :meth:`set_shifts`, then feed them again to :meth:`add_ranges`, then take
    :meth:`fitted`. Minima and maxima are exact, so the constants are ``fit``'s.
    """

    def __init__(self, scaler: LogMinMaxScaler):
        self.scaler = scaler
        self.features = list(scaler.features)
        self.min_nonzero: dict[str, float] = {}
        self.low: dict[str, float] = {}
        self.high: dict[str, float] = {}

    def add_shift_values(self, X: np.ndarray) -> None:
        """Pass 1: the smallest non-zero value of each log feature."""
        for name in self.scaler.log_features:
            column = X[:, self.features.index(name)]
            nonzero = column[column != 0]
            if nonzero.size:
                self.min_nonzero[name] = min(float(nonzero.min()), self.min_nonzero.get(name, np.inf))

    def zero_features(self) -> list[str]:
        """Log features zero in every row seen (no shift can be defined for them)."""
        return [name for name in self.scaler.log_features if name not in self.min_nonzero]

    def set_shifts(self) -> None:
        """The log shifts, as :meth:`LogMinMaxScaler.fit` sets them (``log_floor`` included)."""
        floor = self.scaler.log_floor
        self.scaler.shift_ = {
            name: float(self.min_nonzero[name] / 10)
            if floor is None
            else max(float(self.min_nonzero[name] / 10), float(floor))
            for name in self.scaler.log_features
        }

    def add_ranges(self, X: np.ndarray) -> None:
        """Pass 2 (after :meth:`set_shifts`): the range of each rescaled feature."""
        for name in (*self.scaler.log_features, *self.scaler.minmax_features):
            values = self.scaler._pre_scale(X[:, self.features.index(name)], name)
            if values.size:
                self.low[name] = min(float(values.min()), self.low.get(name, np.inf))
                self.high[name] = max(float(values.max()), self.high.get(name, -np.inf))

    def fitted(self) -> LogMinMaxScaler:
        self.scaler.data_min_, self.scaler.data_max_ = dict(self.low), dict(self.high)
        self.scaler.n_features_in_ = len(self.features)
        return self.scaler


def _streamed_scaler(
    path: str | Path,
    columns: list[str],
    min_nonzero: dict[str, float],
    batch_rows: int,
    feature_set: FeatureSet = PAPER,
    log_floor: float | None = None,
    identity: InputIdentity | None = None,
) -> LogMinMaxScaler:
    """The scaler :meth:`LogMinMaxScaler.fit` would give on every complete row (pass 2)."""
    streamed = StreamedScaler(feature_set.scaler(log_floor=log_floor))
    streamed.min_nonzero = dict(min_nonzero)
    for name in streamed.zero_features():
        raise InputError(f"{path}: {name} is zero for every usable detection; its log scaling is undefined")
    streamed.set_shifts()
    for batch in iter_batches(path, columns, batch_rows, identity):
        with input_files(path):
            batch = prepare_features(canonical_names(batch), feature_set)
        complete, _ = complete_rows(batch, feature_set=feature_set)
        streamed.add_ranges(batch.loc[complete, streamed.features].to_numpy(dtype="float64"))
    return streamed.fitted()


def _feature_source_columns(columns: list[str], feature_set: FeatureSet = PAPER) -> list[str]:
    """The columns the features come from: the raw ones when all are there (as prepare_features).

    Otherwise the features, and the raw columns the table has: complete_rows drops a row
    with a raw value out of its range even where the feature itself is given.
    """
    if all(c in columns for c in feature_set.raw_columns):
        return list(feature_set.raw_columns)
    return list(dict.fromkeys([*feature_set.features, *(c for c in feature_set.raw_columns if c in columns)]))


def classify_file(
    path: str | Path,
    output: str | Path,
    model_output: str | Path,
    outliers_output: str | Path,
    batch_rows: int = BATCH_ROWS,
    temporary_dir: str | Path | None = None,
    **options: Any,
) -> tuple[ClassifierModel, int, int]:
    """Stage 3 from file to files in batches; the outputs of classify_detections on the whole table.

    ``options`` are the fields of :class:`Stage3Options` (classify_detections' keywords).
    Returns ``(model, n_classified, n_outliers)``.
    """
    settings = Stage3Options(**options)
    model, census = fit_streamed(path, settings, batch_rows)

    def classified_batches() -> Iterator[pd.DataFrame | None]:
        for batch in iter_batches(path, None, batch_rows, census.source):
            with input_files(path):
                classified = classify_batch(batch, model, settings)
            # Neither held while the next batch is read (each is about a batch's size).
            del batch
            yield classified
            del classified

    return write_classified(
        classified_batches(),
        census,
        model,
        path,
        output,
        model_output,
        outliers_output,
        settings,
        batch_rows,
        temporary_dir,
    )


def classify_batch(batch: pd.DataFrame, model: ClassifierModel, options: Stage3Options) -> pd.DataFrame | None:
    """The stage-3 rows of one batch of the input, in input order (maybe none)."""
    prepared, roles, _, _, _ = _prepare(batch, options)
    chosen = prepared.loc[roles == TO_CLASSIFY].reset_index(drop=True)
    del prepared  # a copy of the batch's complete rows: not kept through the classification
    if not len(chosen):
        return None
    result = model.classify(
        chosen,
        chosen[CLUSTER].to_numpy(),
        options.method,
        options.outlier_fraction,
        options.explain,
        options.calibrate,
    )
    return assemble_classified(chosen, result, options.classes, options.feature_set)


def fit_streamed(
    path: str | Path, options: Stage3Options = Stage3Options(), batch_rows: int = BATCH_ROWS
) -> tuple[ClassifierModel, _Census]:
    """Passes 1 and 2 of the streamed stage 3: the fitted model and what pass 1 counted."""
    from xrayclass.io.streaming import table_columns

    feature_set = options.feature_set
    source = InputIdentity(path)
    columns = table_columns(path)
    # The in-memory stage's checks of every detection table first (check_detections), then its own.
    checks = DetectionChecks.of_file(path, clusters=True)
    feature_columns = _feature_source_columns(columns, feature_set)
    pass1_columns = [
        *REQUIRED_COLUMNS,
        *NAME_ALIASES,
        MAIN_TYPE,
        *([OTYPE] if OTYPE in columns else []),
        *feature_columns,
        *checks.file_names,
    ]

    census = _Census(source=source)
    reference_columns = options.reference_columns
    # The first batch's own problem waits until every batch has been checked as
    # check_detections checks the whole table: memory reports those first.
    problem: InputError | None = None
    for batch in iter_batches(path, pass1_columns, batch_rows, source):
        checks.add(checks.named(batch))
        if checks.failed or problem is not None:
            continue
        try:
            with input_files(path):
                prepared, roles, reasons, n, labels = _prepare(batch, options)
        except InputError as exc:
            problem = exc
            continue
        census.add(prepared, roles, reasons, n, feature_set.log_features, reference_columns)
        census.labels.merge(labels)
    checks.raise_problems()
    checks.check_repeats(batch_rows, source)
    if problem is not None:
        raise problem
    log.info("%s: %s detections read", path, f"{census.n_total:,}")
    references = pd.concat(census.references, ignore_index=True)
    census.references = []
    kept = census.n_reference + census.n_to_classify + sum(census.type_counts.values())
    if census.reasons is not None:  # None only when no batch was read
        log.info(describe_dropped(census.reasons, census.n_total - kept, census.n_total, len(feature_set)))
    log.info(
        "%s references of the %d classes; %s to classify (%s without a SIMBAD match, %s of an "
        "uninformative type); %s of other SIMBAD types left out",
        f"{census.n_reference:,}",
        len(options.classes),
        f"{census.n_to_classify:,}",
        f"{census.n_unmatched:,}",
        f"{census.n_to_classify - census.n_unmatched:,}",
        f"{sum(census.type_counts.values()):,}",
    )
    for level, message in census.labels.messages():
        getattr(log, level)("%s: %s", path, message)
    references_census = stage3.reference_census(
        references[MAIN_TYPE].to_numpy(dtype=object),
        np.full(len(references), REFERENCE),
        references[CLUSTER].to_numpy(),
        options.classes,
        census.labels,
        all_clusters=sorted(census.clusters),
    )
    log_census(references_census)
    with input_files(path):
        check_labels(references_census, census.labels, options.strict_labels)
        from xrayclass.core.checks import require_roles

        # The in-memory check, on one role of each kind seen (the counts are what it reads).
        seen = [role for role, count in ((REFERENCE, census.n_reference), (TO_CLASSIFY, census.n_to_classify)) if count]
        require_roles(np.array(seen, dtype=object), REFERENCE, TO_CLASSIFY)

    name_columns = [c for c in (NAME, *NAME_ALIASES) if c in columns][:1]
    scaler = _streamed_scaler(
        path,
        [*name_columns, *feature_columns],
        census.min_nonzero,
        batch_rows,
        feature_set,
        options.log_floor,
        source,
    )
    model, _ = fit_classifier(
        references,
        options.classes,
        options.uninformative,
        options.min_references,
        options.method,
        options.location,
        options.score,
        tune=weights_needed(options.method, options.explain),
        scaler=scaler,
        all_clusters=np.array(sorted(census.clusters)),
        likelihood=options.likelihood,
        priors=options.priors,
        calibrate=options.calibrate,
        feature_set=feature_set,
    )
    del references
    model.census = references_census
    stage3.log_references(model)
    stage3.log_naive_bayes(model)
    log.info("Mahalanobis scoring: likelihood %s, priors %s", options.likelihood, options.priors)
    return model, census


def write_classified(
    frames: Iterable[pd.DataFrame | None],
    census: _Census,
    model: ClassifierModel,
    path: str | Path,
    output: str | Path,
    model_output: str | Path,
    outliers_output: str | Path,
    options: Stage3Options = Stage3Options(),
    batch_rows: int = BATCH_ROWS,
    temporary_dir: str | Path | None = None,
) -> tuple[ClassifierModel, int, int]:
    """Pass 3's writing: classified frames (in input order) sorted by name/obsid into ``output``."""
    n_buckets = max(1, -(-census.n_to_classify // batch_rows))
    sorter = None if census.in_order else ExternalSort(name_boundaries(census.names, n_buckets), temporary_dir)
    if census.in_order:
        log.info("%s: the detections to classify come sorted by name and obsid; no sort needed", path)
    writer = BatchWriter(output)
    feature_set = options.feature_set
    # What the outlier table reads of a flagged row: a 1% share of N, but not of every column.
    outlier_columns = [*OUTLIER_COLUMNS, *feature_set.features, "outlier_flag"]
    flagged: list[pd.DataFrame] = []
    n_unclassified, n_flagged = 0, 0
    try:

        def emit(frame: pd.DataFrame) -> None:
            nonlocal n_flagged
            writer.write(frame)
            if options.explain:
                hits = frame.loc[frame["outlier_flag"].astype(bool), outlier_columns]
                n_flagged += len(hits)
                flagged.append(hits)

        for frame in frames:
            if frame is not None and len(frame):
                n_unclassified += int((frame[MAIN_TYPE] == UNCLASSIFIED).sum())
                if sorter is None:
                    emit(frame)
                else:
                    sorter.add(frame)
            del frame  # not held while the next one is made
        if sorter is not None:
            for frame in sorter.sorted_batches():
                emit(frame)
        if n_unclassified:
            log.warning(
                "%s detections cannot be classified: their cluster has no class with %d references; "
                "they get main_type '%s' and all-zero probabilities",
                f"{n_unclassified:,}",
                len(feature_set),
                UNCLASSIFIED,
            )
        if writer.rows == 0:
            raise InputError(f"{path}: no detection to classify")
        if options.explain:
            outliers = outlier_table(pd.concat(flagged, ignore_index=True), feature_set)
            log.info(
                "probabilities by %s; %s detections flagged as outliers (top %g%% of the references' outlier measure)",
                options.method,
                f"{n_flagged:,}",
                100 * options.outlier_fraction,
            )
        else:
            outliers = outlier_table(pd.DataFrame(), feature_set)
            log.info("probabilities by %s; outlier measures and tracks skipped", options.method)
        if census.source is not None:  # the rows written all came from the file the model was fitted on
            census.source.check()
        write_outputs([(model.to_dict(), model_output), (outliers, outliers_output)])
        writer.close()
    except BaseException:
        writer.abort()
        raise
    finally:
        if sorter is not None:
            sorter.close()
    log.info("%s detections classified", f"{writer.rows:,}")
    return model, writer.rows, len(outliers)


# -- stage 4 ---------------------------------------------------------------------------


def source_batches(
    path: str | Path,
    columns: Sequence[str] | None,
    batch_rows: int = BATCH_ROWS,
    checks: DetectionChecks | None = None,
) -> Iterator[pd.DataFrame]:
    """Batches of a name-sorted table, cut so that no source spans two batches.

    Raises :class:`InputError` if the names are not sorted (stage 4 then needs the
    table in memory, or a sort). With ``checks`` (whose columns ``columns`` must
    include), every batch is checked as a detection table, and the batches stop at the
    first problem, raised once the whole file has been read.
    """
    carry: pd.DataFrame | None = None
    previous_last = None
    source = InputIdentity(path)
    for batch in iter_batches(path, columns, batch_rows, source):
        with input_files(path):
            batch = canonical_names(batch)
        if checks is not None:
            checks.add(batch)
            if checks.failed:
                continue  # counted to the end, as the in-memory check counts
        names = batch[NAME].to_numpy(dtype=object)
        if len(names) and (
            (previous_last is not None and names[0] < previous_last) or bool((names[1:] < names[:-1]).any())
        ):
            raise InputError(
                f"{path}: not sorted by source name (stage 3 writes it sorted); run stage 4 without --engine streaming"
            )
        if len(names):
            previous_last = names[-1]
        if carry is not None:
            batch = pd.concat([carry, batch], ignore_index=True)
            names = batch[NAME].to_numpy(dtype=object)
        last = names[-1]
        cut = int(np.searchsorted(names, last, side="left")) if len(names) else 0
        carry = batch.iloc[cut:].reset_index(drop=True)
        if cut:
            yield batch.iloc[:cut].reset_index(drop=True)
    if checks is not None:
        checks.raise_problems()
        checks.check_repeats(batch_rows, source)
    if carry is not None and len(carry):
        yield carry


def master_classification_file(
    path: str | Path,
    classes: Sequence[str] = CLASSES,
    batch_rows: int = BATCH_ROWS,
    temporary_dir: str | Path | None = None,
) -> tuple[SpillByKey, SpillByKey, dict[str, Any]]:
    """Stage 4 on a name-sorted stage-3 file, a batch of whole sources at a time.

    Returns what :func:`~xrayclass.stages.master_classification.master_classification`
    returns on the whole table, the two tables kept on disk (in ``temporary_dir``,
    default the system's) as :class:`~xrayclass.io.streaming.SpillByKey`: give them to
    ``write_outputs``, or read them with ``batches()``, then ``close()`` them. Memory
    holds one batch of sources and the votes (three values a source), not the tables.
    """
    from xrayclass.stages.master_classification import STAGE4_COLUMNS, master_classification

    checks = DetectionChecks.of_file(path, positions=False, read=STAGE4_COLUMNS)

    def parts() -> Iterator[tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]]:
        # A batch's own problem waits for the checks of the whole file (memory makes those first).
        problem: InputError | None = None
        for batch in source_batches(path, [*STAGE4_COLUMNS, *checks.file_names], batch_rows, checks):
            if problem is None:
                try:
                    part = master_classification(batch, classes)
                except InputError as exc:
                    problem = exc
                    continue
                yield part
        if problem is not None:
            raise problem

    with input_files(path):
        return spill_votes(parts(), temporary_dir)


#: The parts' summary counts that add up to the whole table's.
SUMMED_COUNTS = ("detections", "detections_unclassified", "sources_unclassified")


def spill_votes(
    parts: Iterable[tuple[pd.DataFrame, pd.DataFrame, Mapping[str, Any]]],
    temporary_dir: str | Path | None = None,
) -> tuple[SpillByKey, SpillByKey, dict[str, Any]]:
    """:func:`combine_votes` of parts that come in source-name order, the tables on disk.

    The tables are ordered by detection count (most first), then name: parts in name
    order, each value's rows kept in the order they come, are in that order already.
    """
    uniquely = SpillByKey("detection_count", temporary_dir)
    ambiguous = SpillByKey("detection_count", temporary_dir)
    try:
        votes: list[pd.DataFrame] = []
        totals = dict.fromkeys(SUMMED_COUNTS, 0)
        for part_uniquely, part_ambiguous, summary in parts:
            uniquely.add(part_uniquely)
            ambiguous.add(part_ambiguous)
            votes.append(_source_votes(part_uniquely, part_ambiguous))
            for key in totals:
                totals[key] += summary[key]
        summary = _summary_of_votes(pd.concat(votes, ignore_index=True) if votes else _NO_VOTES, totals)
    except BaseException:
        uniquely.close()
        ambiguous.close()
        raise
    return uniquely, ambiguous, summary


def combine_votes(
    parts: Iterable[tuple[pd.DataFrame, pd.DataFrame, Mapping[str, Any]]],
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """The stage-4 tables and summary of the whole table from those of parts holding whole sources."""
    uniquely_parts: list[pd.DataFrame] = []
    ambiguous_parts: list[pd.DataFrame] = []
    totals = dict.fromkeys(SUMMED_COUNTS, 0)
    for uniquely, ambiguous, summary in parts:
        uniquely_parts.append(uniquely)
        ambiguous_parts.append(ambiguous)
        for key in totals:
            totals[key] += summary[key]
    order = ["detection_count", NAME]
    uniquely = (
        pd.concat(uniquely_parts, ignore_index=True)
        .sort_values(order, ascending=[False, True], kind="stable")
        .reset_index(drop=True)
    )
    ambiguous = (
        pd.concat(ambiguous_parts, ignore_index=True)
        .sort_values(order, ascending=[False, True], kind="stable")
        .reset_index(drop=True)
    )
    return uniquely, ambiguous, _summary_of_votes(_source_votes(uniquely, ambiguous), totals)


def _source_votes(uniquely: pd.DataFrame, ambiguous: pd.DataFrame) -> pd.DataFrame:
    """Each source's votes and detection count (name, hard, soft, count), in name order."""
    frames = [
        pd.DataFrame(
            {
                NAME: table[NAME],
                "hard": table[hard],
                "soft": table[soft],
                "count": table["detection_count"],
            }
        )
        for table, hard, soft in (
            (uniquely, "master_class", "master_class"),
            (ambiguous, "hard_master_class", "soft_master_class"),
        )
    ]
    return pd.concat(frames).sort_values(NAME, kind="stable")


#: The votes of no source (a table without detections).
_NO_VOTES = pd.DataFrame({NAME: [], "hard": [], "soft": [], "count": []})


def _summary_of_votes(sources: pd.DataFrame, totals: Mapping[str, int]) -> dict[str, Any]:
    """The whole-table summary from every source's votes (:func:`_source_votes`, name order)."""
    from xrayclass.stages.master_classification import Votes, summarize

    # summarize reads the names, counts and votes only: the per-detection fields stay empty.
    unused = np.empty(0)
    votes = Votes(
        sources[NAME].to_numpy(dtype=object),
        sources["count"].to_numpy(),
        unused,
        unused,
        sources["soft"].to_numpy(dtype=object),
        sources["hard"].to_numpy(dtype=object),
        unused,
    )
    summary = summarize(votes, totals["detections"], totals["detections_unclassified"])
    summary["sources_unclassified"] = totals["sources_unclassified"]
    return summary
