"""Stage 3 on files, batch by batch: memory set by the batch size, not by N.

Stage 3 is the in-memory stage's functions over batches of the input:

1. :func:`survey_batch` of every batch (the checks of a detection table, the complete
   rows, the SIMBAD types and roles, the references, the scaler's
   :class:`~xrayclass.core.preprocessing.ScalerState`), merged in order into one
   :class:`Survey`; :func:`fit_survey` checks and logs it as the in-memory stage does and
   fits the model on the references with the scaler of every complete row;
2. :func:`classify_batch` of every batch with that model, the rows sorted by name and
   obsid on disk (:class:`~xrayclass.io.streaming.ExternalSort`; skipped when the input
   already comes in that order) and written as they come.

The Dask engine maps the same two functions over partitions (:mod:`.dask`). Stage 4 is
:mod:`.voting`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from xrayclass.constants import (
    CLASSES,
    CLUSTER,
    MAIN_TYPE,
    NAME,
    NAME_ALIASES,
    OBSID,
    UNCLASSIFIED,
    UNINFORMATIVE_TYPES,
)
from xrayclass.core.checks import require_log_features_usable, require_roles
from xrayclass.core.features import complete_rows, describe_dropped
from xrayclass.core.preprocessing import ScalerState
from xrayclass.core.taxonomy import OTYPE, LabelReport, normalize_types
from xrayclass.engine import EngineConfig
from xrayclass.engine.checks import DetectionChecks
from xrayclass.exceptions import InputError, input_files
from xrayclass.io.streaming import (
    BATCH_ROWS,
    BatchWriter,
    ExternalSort,
    InputIdentity,
    iter_batches,
    name_boundaries,
    table_columns,
)
from xrayclass.io.tables import NO_ROWS, write_outputs
from xrayclass.stages.classification import (
    OUTLIER_COLUMNS,
    REFERENCE,
    REQUIRED_COLUMNS,
    TO_CLASSIFY,
    ClassificationConfig,
    ClassifierModel,
    assemble_classified,
    check_labels,
    checked_input,
    fit_classifier,
    log_census,
    log_classified,
    log_fit,
    log_roles,
    outlier_table,
    reference_census,
    roles_of_canonical,
    weights_needed,
)

__all__ = [
    "NAME_SAMPLE_PER_BATCH",
    "Survey",
    "classify_batch",
    "classify_file",
    "fit_survey",
    "survey_batch",
    "survey_columns",
    "write_classified",
]

log = logging.getLogger(__name__)

#: Names kept per batch to choose the sort buckets' boundaries.
NAME_SAMPLE_PER_BATCH = 1_000


def reference_columns(config: ClassificationConfig) -> list[str]:
    """What the survey keeps of each reference: what the fit reads (names for the calibration's folds)."""
    return [
        *config.feature_set.features,
        MAIN_TYPE,
        CLUSTER,
        *(["ra", "dec"] if config.location else []),
        *([NAME] if config.calibrate else []),
    ]


def _prepare(
    batch: pd.DataFrame, config: ClassificationConfig
) -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame, LabelReport]:
    """A batch checked and prepared as the in-memory stage does the table: (complete rows, roles, reasons, labels)."""
    batch = checked_input(batch, config.feature_set)
    complete, reasons = complete_rows(batch, feature_set=config.feature_set)
    batch = batch.loc[complete].reset_index(drop=True)
    types, labels = normalize_types(batch[MAIN_TYPE], batch[OTYPE] if OTYPE in batch.columns else None)
    batch = batch.assign(**{MAIN_TYPE: types, CLUSTER: batch[CLUSTER].astype(int)})  # type: ignore[arg-type]
    return batch, roles_of_canonical(types, CLASSES, UNINFORMATIVE_TYPES), reasons, labels


def _in_order(first: tuple | None, last: tuple | None) -> bool:
    """Whether the (name, obsid) ``first`` of a part does not come before the ``last`` of the part before."""
    return first is None or last is None or (last[0], last[1]) <= (first[0], first[1])


@dataclass
class Survey:
    """What stage 3 learns of its input before the fit, for a part of the rows; parts merge in order."""

    checks: DetectionChecks
    #: The first problem of a batch's own rows (raised after the checks of every row).
    problem: InputError | None = None
    n_total: int = 0
    reasons: pd.DataFrame | None = None
    scaler: ScalerState = field(default_factory=ScalerState)
    clusters: set = field(default_factory=set)
    references: list = field(default_factory=list)
    #: Rows of each SIMBAD type (the paper's names), in the order the types are first seen.
    types: dict = field(default_factory=dict)
    labels: LabelReport = field(default_factory=LabelReport)
    #: A sample of the names to classify (for the sort's buckets), their first and last (name, obsid).
    names: list = field(default_factory=list)
    n_to_classify: int = 0
    first: tuple | None = None
    last: tuple | None = None
    in_order: bool = True

    @property
    def failed(self) -> bool:
        return self.checks.failed or self.problem is not None

    def merge(self, other: Survey) -> Survey:
        """This part followed by ``other`` (the rows after it)."""
        failed = self.failed
        self.checks = self.checks.merge(other.checks)
        self.problem = self.problem or other.problem
        if failed or self.failed:
            return self  # the table is refused: only the checks still count
        self.n_total += other.n_total
        self.reasons = other.reasons if self.reasons is None else self.reasons + other.reasons
        self.scaler = self.scaler.merge(other.scaler)
        self.clusters |= other.clusters
        self.references += other.references
        for label, count in other.types.items():
            self.types[label] = self.types.get(label, 0) + count
        self.labels.merge(other.labels)
        self.names += other.names
        self.n_to_classify += other.n_to_classify
        self.in_order = self.in_order and other.in_order and _in_order(other.first, self.last)
        self.first = self.first or other.first
        self.last = other.last or self.last
        return self


def survey_columns(path: str | Path, config: ClassificationConfig, checks: DetectionChecks) -> list[str]:
    """The columns of ``path`` the survey reads (the file's names)."""
    present = table_columns(path)
    wanted = [
        *REQUIRED_COLUMNS,
        *NAME_ALIASES,
        MAIN_TYPE,
        OTYPE,
        *config.feature_set.raw_columns,
        *config.feature_set.features,
        *checks.file_names,
    ]
    return [c for c in dict.fromkeys(wanted) if c in present]


def survey_batch(
    batch: pd.DataFrame, checks: DetectionChecks, config: ClassificationConfig, path: str | Path
) -> Survey:
    """The :class:`Survey` of one batch of the input (``checks``: the file's, before any row)."""
    checks = checks.fresh()
    batch = checks.named(batch)
    checks.add(batch)
    survey = Survey(checks)
    if checks.failed:
        return survey
    try:
        with input_files(path):
            prepared, roles, reasons, labels = _prepare(batch, config)
    except InputError as exc:
        survey.problem = exc
        return survey
    fs = config.feature_set
    survey.n_total, survey.reasons, survey.labels = len(batch), reasons, labels
    survey.scaler = fs.scaler(log_floor=config.log_floor).summarize(prepared[list(fs.features)])
    survey.clusters = set(np.unique(prepared[CLUSTER].to_numpy()).tolist())
    # Only the columns the fit reads: the references grow with N.
    survey.references = [prepared.loc[roles == REFERENCE, reference_columns(config)]]
    codes, distinct = pd.factorize(prepared[MAIN_TYPE].to_numpy(dtype=object))
    survey.types = dict(zip(distinct.tolist(), np.bincount(codes, minlength=len(distinct)).tolist(), strict=True))
    chosen = prepared.loc[roles == TO_CLASSIFY, [NAME, OBSID]]
    names, obsids = chosen[NAME].to_numpy(dtype=object), chosen[OBSID].to_numpy(dtype="float64")
    survey.n_to_classify = len(names)
    if len(names):
        survey.names = names[:: max(1, len(names) // NAME_SAMPLE_PER_BATCH)].tolist()
        survey.first, survey.last = (names[0], obsids[0]), (names[-1], obsids[-1])
        order = pd.MultiIndex.from_arrays([names, obsids])
        survey.in_order = bool(order.is_monotonic_increasing)
    return survey


def fit_survey(
    path: str | Path,
    survey: Survey,
    config: ClassificationConfig = ClassificationConfig(),
    batch_rows: int = BATCH_ROWS,
    source: InputIdentity | None = None,
) -> ClassifierModel:
    """The model of stage 3 from the merged survey of its input, checked and logged as in memory."""
    fs = config.feature_set
    survey.checks.raise_problems()
    survey.checks.check_repeats(batch_rows, source)
    if survey.problem is not None:
        raise survey.problem
    if survey.reasons is None:
        raise InputError(f"{path}: {NO_ROWS}")
    log.info("%s detections read", f"{survey.n_total:,}")
    log.info(describe_dropped(survey.reasons, survey.n_total - survey.scaler.n_rows, survey.n_total, len(fs)))
    for level, message in survey.labels.messages():
        getattr(log, level)("%s", message)
    distinct = np.array(list(survey.types), dtype=object)
    roles = roles_of_canonical(distinct, CLASSES, UNINFORMATIVE_TYPES)
    log_roles(distinct, roles, np.array(list(survey.types.values()), dtype=np.int64))
    references = pd.concat(survey.references, ignore_index=True)
    survey.references = []
    census = reference_census(
        references[MAIN_TYPE].to_numpy(dtype=object),
        np.full(len(references), REFERENCE),
        references[CLUSTER].to_numpy(),
        CLASSES,
        survey.labels,
        all_clusters=sorted(survey.clusters),
    )
    log_census(census)
    with input_files(path):
        check_labels(census, survey.labels, config.strict_labels)
        require_roles(roles, REFERENCE, TO_CLASSIFY)
        require_log_features_usable(survey.scaler.smallest_nonzero(), fs.log_features, fs.log_features)
    scaler = fs.scaler(log_floor=config.log_floor).fit_state(survey.scaler)
    model, _ = fit_classifier(
        references,
        CLASSES,
        UNINFORMATIVE_TYPES,
        method=config.method,
        location=config.location,
        score=config.nb_score,
        tune=weights_needed(config.method, config.explain),
        scaler=scaler,
        all_clusters=np.array(sorted(survey.clusters)),
        likelihood=config.likelihood,
        priors=config.priors,
        calibrate=config.calibrate,
        feature_set=fs,
    )
    model.census = census
    log_fit(model, CLASSES, config.likelihood, config.priors)
    return model


def survey_file(
    path: str | Path, config: ClassificationConfig, batch_rows: int, source: InputIdentity
) -> tuple[ClassifierModel, Survey]:
    """Pass 1 of the streamed stage 3: the batches' surveys merged, and the model fitted on them."""
    checks = DetectionChecks.of_file(path, clusters=True)
    survey = Survey(checks.fresh())
    for batch in iter_batches(path, survey_columns(path, config, checks), batch_rows, source):
        survey = survey.merge(survey_batch(batch, checks, config, path))
    return fit_survey(path, survey, config, batch_rows, source), survey


def classify_file(
    path: str | Path,
    output: str | Path,
    model_output: str | Path,
    outliers_output: str | Path,
    config: ClassificationConfig = ClassificationConfig(),
    engine: EngineConfig = EngineConfig(engine="streaming"),
    temporary_dir: str | Path | None = None,
) -> tuple[ClassifierModel, int, int]:
    """Stage 3 from file to files in batches: the in-memory stage's results.

    Returns ``(model, n_classified, n_outliers)``.
    """
    source = InputIdentity(path)
    model, survey = survey_file(path, config, engine.batch_rows, source)

    def classified() -> Iterator[pd.DataFrame | None]:
        for batch in iter_batches(path, None, engine.batch_rows, source):
            with input_files(path):
                yield classify_batch(batch, model, config)

    if survey.in_order:
        log.info("%s: the detections to classify come sorted by name and obsid; no sort needed", path)
        return write_classified(classified(), model, path, output, model_output, outliers_output, config, source)
    n_buckets = max(1, -(-survey.n_to_classify // engine.batch_rows))
    with ExternalSort(name_boundaries(survey.names, n_buckets), temporary_dir) as sorter:
        for frame in classified():
            if frame is not None:
                sorter.add(frame)
        frames = sorter.sorted_batches()
        return write_classified(frames, model, path, output, model_output, outliers_output, config, source)


def classify_batch(batch: pd.DataFrame, model: ClassifierModel, config: ClassificationConfig) -> pd.DataFrame | None:
    """The stage-3 rows of one batch of the input, in input order (maybe none)."""
    prepared, roles, _, _ = _prepare(batch, config)
    chosen = prepared.loc[roles == TO_CLASSIFY].reset_index(drop=True)
    del prepared
    if not len(chosen):
        return None
    result = model.classify(
        chosen,
        chosen[CLUSTER].to_numpy(),
        config.method,
        config.outlier_fraction,
        config.explain,
        config.calibrate,
    )
    return assemble_classified(chosen, result, CLASSES, config.feature_set)


@dataclass
class Tally:
    """What the log and the outlier table need of the classified rows, over parts that merge."""

    rows: int = 0
    unclassified: int = 0
    clusters_hit: set = field(default_factory=set)
    flagged: list = field(default_factory=list)

    def add(self, frame: pd.DataFrame, config: ClassificationConfig) -> Tally:
        unclassified = (frame[MAIN_TYPE] == UNCLASSIFIED).to_numpy()
        self.rows += len(frame)
        self.unclassified += int(unclassified.sum())
        self.clusters_hit.update(np.unique(frame[CLUSTER].to_numpy()[unclassified]).tolist())
        if config.explain:
            # What the outlier table reads of a flagged row, not every column.
            columns = [*OUTLIER_COLUMNS, *config.feature_set.features, "outlier_flag"]
            self.flagged.append(frame.loc[frame["outlier_flag"].astype(bool), columns])
        return self

    def merge(self, other: Tally) -> Tally:
        self.rows += other.rows
        self.unclassified += other.unclassified
        self.clusters_hit |= other.clusters_hit
        self.flagged += other.flagged
        return self

    def finish(self, path: str | Path, model: ClassifierModel, config: ClassificationConfig) -> pd.DataFrame:
        """Log the outcome as the in-memory stage does; the outlier table."""
        if self.rows == 0:
            raise InputError(f"{path}: no detection to classify")
        fs = config.feature_set
        flagged = pd.concat(self.flagged, ignore_index=True) if self.flagged else pd.DataFrame()
        outliers = outlier_table(flagged, fs)
        log_classified(
            self.unclassified,
            sorted(self.clusters_hit),
            len(flagged),
            config.method,
            config.outlier_fraction,
            config.explain,
            fs,
        )
        return outliers


def write_classified(
    frames: Iterable[pd.DataFrame | None],
    model: ClassifierModel,
    path: str | Path,
    output: str | Path,
    model_output: str | Path,
    outliers_output: str | Path,
    config: ClassificationConfig = ClassificationConfig(),
    source: InputIdentity | None = None,
) -> tuple[ClassifierModel, int, int]:
    """Write classified frames (in output order) into ``output``, then the model and outliers: all or none."""
    tally = Tally()
    with BatchWriter(output) as writer:
        for frame in frames:
            if frame is not None and len(frame):
                writer.write(frame)
                tally.add(frame, config)
        outliers = tally.finish(path, model, config)
        if source is not None:  # the rows written all came from the file the model was fitted on
            source.check()
        write_outputs([(model.to_dict(), model_output), (outliers, outliers_output)])
    log.info("%s detections classified", f"{writer.rows:,}")
    return model, writer.rows, len(outliers)
