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
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from xrayclass.constants import (
    CLASSES,
    CLUSTER,
    FEATURES,
    MAIN_TYPE,
    NAME,
    NAME_ALIASES,
    NO_MATCH,
    OBSID,
    RAW_FEATURE_COLUMNS,
    UNCLASSIFIED,
    UNINFORMATIVE_TYPES,
)
from xrayclass.core.features import complete_rows, describe_dropped, prepare_features
from xrayclass.core.preprocessing import LogMinMaxScaler
from xrayclass.core.taxonomy import OTYPE, LabelReport, normalize_types
from xrayclass.exceptions import InputError, input_files
from xrayclass.io.streaming import BATCH_ROWS, BatchWriter, ExternalSort, iter_batches, name_boundaries
from xrayclass.io.tables import canonical_names, require_columns, require_numeric, write_outputs
from xrayclass.stages import classification as stage3
from xrayclass.stages.classification import (
    OUTLIER_FRACTION,
    REFERENCE,
    REQUIRED_COLUMNS,
    TO_CLASSIFY,
    assemble_classified,
    detection_roles,
    fit_classifier,
    outlier_table,
    weights_needed,
)

__all__ = [
    "NAME_SAMPLE_PER_BATCH",
    "StreamedScaler",
    "classify_batch",
    "classify_file",
    "combine_votes",
    "fit_streamed",
    "master_classification_file",
    "source_batches",
    "write_classified",
]

log = logging.getLogger(__name__)

#: Names kept per batch to choose the sort buckets' boundaries.
NAME_SAMPLE_PER_BATCH = 1_000


def _prepare(batch: pd.DataFrame, classes, uninformative):
    """A batch validated as classify_detections validates the whole table; (complete rows, roles, reasons, n)."""
    batch = canonical_names(batch)
    require_columns(batch, REQUIRED_COLUMNS)
    if MAIN_TYPE not in batch.columns:
        raise InputError(f"missing required columns: {MAIN_TYPE} (run the crossmatch stage first)")
    batch = require_numeric(batch, (OBSID, CLUSTER, "ra", "dec"))
    if batch[CLUSTER].isna().any():
        raise InputError(f"column 'cluster' is empty in {int(batch[CLUSTER].isna().sum()):,} rows")
    batch = prepare_features(batch)
    n = len(batch)
    complete, reasons = complete_rows(batch)
    batch = batch.loc[complete].reset_index(drop=True)
    # Today's SIMBAD labels, codes and stray spellings, under the paper's names (as in memory).
    types, labels = normalize_types(batch[MAIN_TYPE], batch[OTYPE] if OTYPE in batch.columns else None)
    batch = batch.assign(**{MAIN_TYPE: types, CLUSTER: batch[CLUSTER].astype(int)})  # type: ignore[arg-type]
    return batch, detection_roles(types, classes, uninformative), reasons, n, labels


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

    def add(self, batch, roles, reasons, n, log_features):
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
        self.references.append(batch.loc[is_reference, [*FEATURES, MAIN_TYPE, CLUSTER, "ra", "dec"]])
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


def _non_decreasing(names, obsids, previous) -> bool:
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


def _streamed_scaler(path, columns, min_nonzero, batch_rows, classes, uninformative) -> LogMinMaxScaler:
    """The scaler :meth:`LogMinMaxScaler.fit` would give on every complete row (pass 2)."""
    streamed = StreamedScaler(LogMinMaxScaler())
    streamed.min_nonzero = dict(min_nonzero)
    for name in streamed.zero_features():
        raise InputError(f"{path}: log feature {name!r} is zero in every detection; no shift can be defined")
    streamed.set_shifts()
    for batch in iter_batches(path, columns, batch_rows):
        with input_files(path):
            batch = prepare_features(canonical_names(batch, path))
        complete, _ = complete_rows(batch)
        streamed.add_ranges(batch.loc[complete, streamed.features].to_numpy(dtype="float64"))
    return streamed.fitted()


def _feature_source_columns(columns):
    if all(c in columns for c in RAW_FEATURE_COLUMNS):
        return list(RAW_FEATURE_COLUMNS)
    return list(FEATURES)


def classify_file(
    path,
    output,
    model_output,
    outliers_output,
    classes=CLASSES,
    uninformative=UNINFORMATIVE_TYPES,
    min_references="n_features",
    method="mahalanobis",
    location=True,
    score="macro_f1",
    outlier_fraction=OUTLIER_FRACTION,
    explain=True,
    batch_rows=BATCH_ROWS,
    temporary_dir=None,
):
    """Stage 3 from file to files in batches; the outputs of classify_detections on the whole table.

    Returns ``(model, n_classified, n_outliers)``.
    """
    model, census = fit_streamed(
        path, classes, uninformative, min_references, method, location, score, explain, batch_rows
    )

    def classified_batches():
        for batch in iter_batches(path, None, batch_rows):
            with input_files(path):
                yield classify_batch(batch, model, classes, uninformative, method, outlier_fraction, explain)

    return write_classified(
        classified_batches(),
        census,
        model,
        path,
        output,
        model_output,
        outliers_output,
        method,
        outlier_fraction,
        explain,
        batch_rows,
        temporary_dir,
    )


def classify_batch(
    batch,
    model,
    classes=CLASSES,
    uninformative=UNINFORMATIVE_TYPES,
    method="mahalanobis",
    outlier_fraction=OUTLIER_FRACTION,
    explain=True,
):
    """The stage-3 rows of one batch of the input, in input order (maybe none)."""
    prepared, roles, _, _, _ = _prepare(batch, classes, uninformative)
    chosen = prepared.loc[roles == TO_CLASSIFY].reset_index(drop=True)
    if not len(chosen):
        return None
    result = model.classify(chosen, chosen[CLUSTER].to_numpy(), method, outlier_fraction, explain)
    return assemble_classified(chosen, result, classes)


def fit_streamed(
    path,
    classes=CLASSES,
    uninformative=UNINFORMATIVE_TYPES,
    min_references="n_features",
    method="mahalanobis",
    location=True,
    score="macro_f1",
    explain=True,
    batch_rows=BATCH_ROWS,
):
    """Passes 1 and 2 of the streamed stage 3: the fitted model and what pass 1 counted."""
    from xrayclass.io.streaming import table_columns

    columns = table_columns(path)
    feature_columns = _feature_source_columns(columns)
    pass1_columns = [
        *REQUIRED_COLUMNS,
        *NAME_ALIASES,
        MAIN_TYPE,
        *([OTYPE] if OTYPE in columns else []),
        *feature_columns,
    ]

    census = _Census()
    scaler_template = LogMinMaxScaler()
    for batch in iter_batches(path, pass1_columns, batch_rows):
        with input_files(path):
            prepared, roles, reasons, n, labels = _prepare(batch, classes, uninformative)
        census.add(prepared, roles, reasons, n, scaler_template.log_features)
        census.labels.merge(labels)
    log.info("%s: %s detections read", path, f"{census.n_total:,}")
    references = pd.concat(census.references, ignore_index=True)
    census.references = []
    kept = census.n_reference + census.n_to_classify + sum(census.type_counts.values())
    log.info(describe_dropped(census.reasons, census.n_total - kept, census.n_total))
    log.info(
        "%s references of the %d classes; %s to classify (%s without a SIMBAD match, %s of an "
        "uninformative type); %s of other SIMBAD types left out",
        f"{census.n_reference:,}",
        len(classes),
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
        classes,
        census.labels,
        all_clusters=sorted(census.clusters),
    )
    stage3._log_census(references_census)
    stage3._check_labels(references_census, census.labels, False)

    name_columns = [c for c in (NAME, *NAME_ALIASES) if c in columns][:1]
    scaler = _streamed_scaler(
        path, [*name_columns, *feature_columns], census.min_nonzero, batch_rows, classes, uninformative
    )
    model, _ = fit_classifier(
        references,
        classes,
        uninformative,
        min_references,
        method,
        location,
        score,
        tune=weights_needed(method, explain),
        scaler=scaler,
        all_clusters=np.array(sorted(census.clusters)),
    )
    model.census = references_census
    stage3._log_references(model, classes)
    stage3._log_naive_bayes(model)
    return model, census


def write_classified(
    frames,
    census,
    model,
    path,
    output,
    model_output,
    outliers_output,
    method="mahalanobis",
    outlier_fraction=OUTLIER_FRACTION,
    explain=True,
    batch_rows=BATCH_ROWS,
    temporary_dir=None,
):
    """Pass 3's writing: classified frames (in input order) sorted by name/obsid into ``output``."""
    n_buckets = max(1, -(-census.n_to_classify // batch_rows))
    sorter = None if census.in_order else ExternalSort(name_boundaries(census.names, n_buckets), temporary_dir)
    if census.in_order:
        log.info("%s: the detections to classify come sorted by name and obsid; no sort needed", path)
    writer = BatchWriter(output)
    flagged, n_unclassified, n_flagged = [], 0, 0
    try:

        def emit(frame):
            nonlocal n_flagged
            writer.write(frame)
            if explain:
                hits = frame[frame["outlier_flag"].astype(bool)]
                n_flagged += len(hits)
                flagged.append(hits)

        for frame in frames:
            if frame is None or not len(frame):
                continue
            n_unclassified += int((frame[MAIN_TYPE] == UNCLASSIFIED).sum())
            if sorter is None:
                emit(frame)
            else:
                sorter.add(frame)
        if sorter is not None:
            for frame in sorter.sorted_batches():
                emit(frame)
        if n_unclassified:
            log.warning(
                "%s detections cannot be classified: their cluster has no class with %d references; "
                "they get main_type '%s' and all-zero probabilities",
                f"{n_unclassified:,}",
                len(FEATURES),
                UNCLASSIFIED,
            )
        if writer.rows == 0:
            raise InputError(f"{path}: no detection to classify")
        if explain:
            outliers = outlier_table(pd.concat(flagged, ignore_index=True))
            log.info(
                "probabilities by %s; %s detections flagged as outliers (top %g%% of the references' outlier measure)",
                method,
                f"{n_flagged:,}",
                100 * outlier_fraction,
            )
        else:
            outliers = outlier_table(pd.DataFrame())
            log.info("probabilities by %s; outlier measures and tracks skipped", method)
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


def source_batches(path, columns, batch_rows=BATCH_ROWS):
    """Batches of a name-sorted table, cut so that no source spans two batches.

    Raises :class:`InputError` if the names are not sorted (stage 4 then needs the
    table in memory, or a sort).
    """
    carry = None
    previous_last = None
    for batch in iter_batches(path, columns, batch_rows):
        batch = canonical_names(batch, path)
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
    if carry is not None and len(carry):
        yield carry


def master_classification_file(path, classes=CLASSES, batch_rows=BATCH_ROWS):
    """Stage 4 on a name-sorted stage-3 file, a batch of whole sources at a time.

    Returns what :func:`~xrayclass.stages.master_classification.master_classification`
    returns on the whole table.
    """
    from xrayclass.stages.master_classification import STAGE4_COLUMNS, master_classification

    with input_files(path):
        return combine_votes(
            master_classification(batch, classes) for batch in source_batches(path, STAGE4_COLUMNS, batch_rows)
        )


def combine_votes(parts):
    """The stage-4 tables and summary of the whole table from those of parts holding whole sources."""
    from xrayclass.stages.master_classification import Votes, summarize

    uniquely_parts, ambiguous_parts = [], []
    totals = {"detections": 0, "detections_unclassified": 0, "sources_unclassified": 0}
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
    # The votes of every source, in name order, as the whole-table summary counts them.
    sources = pd.concat(
        [
            pd.DataFrame(
                {
                    NAME: uniquely[NAME],
                    "hard": uniquely["master_class"],
                    "soft": uniquely["master_class"],
                    "count": uniquely["detection_count"],
                }
            ),
            pd.DataFrame(
                {
                    NAME: ambiguous[NAME],
                    "hard": ambiguous["hard_master_class"],
                    "soft": ambiguous["soft_master_class"],
                    "count": ambiguous["detection_count"],
                }
            ),
        ]
    ).sort_values(NAME, kind="stable")
    votes = Votes(
        sources[NAME].to_numpy(dtype=object),
        sources["count"].to_numpy(),
        None,
        None,
        sources["soft"].to_numpy(dtype=object),
        sources["hard"].to_numpy(dtype=object),
        None,
    )
    summary = summarize(votes, totals["detections"], totals["detections_unclassified"])
    summary["sources_unclassified"] = totals["sources_unclassified"]
    return uniquely, ambiguous, summary
