"""Stage 3's runner: read the crossmatch, check it, classify (in memory or an engine), write the three outputs."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from xrayclass.core.featuresets import PAPER, FeatureSet, from_artifact
from xrayclass.core.labels import apply_labels, log_summary
from xrayclass.engine import EngineConfig
from xrayclass.engine.streaming import classify_file
from xrayclass.exceptions import InputError, input_files
from xrayclass.io import paths
from xrayclass.io.checks import check_detections, check_outputs
from xrayclass.io.labels import read_labels
from xrayclass.io.paths import beside
from xrayclass.io.tables import (
    OUTPUT_FORMATS,
    read_json,
    write_outputs,
)
from xrayclass.stages.classification import (
    ClassificationConfig,
    outlier_table,
    run_classification,
)
from xrayclass.text import one_line
from xrayclass.workflow.clustering import chosen_feature_set
from xrayclass.workflow.runner import (
    NO_STAGE2_HINT,
    StrPath,
    dask_engine,
    read_stage_table,
    refuse_memory_only,
    require_input,
    start_engine,
)

log = logging.getLogger("xrayclass")


def stage3_feature_set(features_path: StrPath | None, model_path: StrPath, explicit_model: bool) -> FeatureSet:
    """The feature set stage 3 uses: ``--features``, else the stage-1 model's; they must agree."""
    chosen = chosen_feature_set(features_path) if features_path is not None else None
    model_set = None
    if Path(model_path).exists():
        try:
            model_set = from_artifact(read_json(model_path), str(model_path))
        except (InputError, AttributeError, TypeError) as exc:
            if explicit_model:
                raise InputError(f"{model_path}: cannot read its feature set ({one_line(exc, 200)})") from None
            log.warning(
                "%s: its feature set cannot be read (%s); it is not checked against stage 3's",
                model_path,
                one_line(exc, 200),
            )
    elif explicit_model:
        raise InputError(f"{model_path}: file not found; pass the model that clustering.py wrote (--model)")
    if chosen is not None and model_set is not None and not chosen.same_as(model_set):
        raise InputError(
            f"{features_path}: feature set {chosen.name!r} ({len(chosen)} features) differs from "
            f"{model_set.name!r} ({len(model_set)} features) of the stage-1 model {model_path}; "
            "pass the same --features to clustering.py and classification.py"
        )
    if chosen is None and model_set is not None and not model_set.same_as(PAPER):
        log.info(
            "feature set %s of the stage-1 model %s: %d features, %s",
            model_set.name,
            model_path,
            len(model_set),
            ", ".join(model_set.features),
        )
    return chosen or model_set or PAPER


def run_classification_stage(
    input: StrPath = paths.CROSSMATCH,
    output: StrPath = paths.DETECTIONS,
    config: ClassificationConfig | None = None,
    engine: EngineConfig | None = None,
    *,
    model_output: StrPath | None = None,
    outliers_output: StrPath | None = None,
    labels: Sequence[StrPath] = (),
    allow_duplicates: bool = False,
) -> None:
    """Stage 3: the detections at ``input`` classified into ``output``.

    The classifier artifact goes to ``model_output`` and the flagged outliers to
    ``outliers_output`` (default: beside ``output``, so that a run's files stay
    together). ``labels`` are the user's own labels CSV files; they and
    ``allow_duplicates`` need the whole table (in memory only). ``config.feature_set``
    should be the stage-1 model's (:func:`stage3_feature_set`).
    """
    config = ClassificationConfig() if config is None else config
    engine = EngineConfig() if engine is None else engine
    model_output = beside(output, paths.CLASSIFIER_MODEL) if model_output is None else model_output
    outliers_output = beside(output, paths.OUTLIERS) if outliers_output is None else outliers_output
    check_outputs(
        [output, model_output, outliers_output],
        [input, *labels],
        formats=[OUTPUT_FORMATS, None, OUTPUT_FORMATS],
    )
    if engine.engine != "memory":
        # Own labels relabel whole sources and duplicates are found over the whole table:
        # both need every row at once.
        refuse_memory_only(engine, [("--labels", bool(labels)), ("--allow-duplicates", allow_duplicates)], yet=False)
        require_input(input, paths.CROSSMATCH, NO_STAGE2_HINT)
        start_engine(engine)
        n_rows, n_outliers = _classify_out_of_core(input, output, model_output, outliers_output, config, engine)
    else:
        n_rows, n_outliers = _classify_in_memory(
            input, output, model_output, outliers_output, config, labels, allow_duplicates
        )
    log.info(
        "wrote %s (%s rows), %s and %s (%s outliers)",
        output,
        f"{n_rows:,}",
        model_output,
        outliers_output,
        f"{n_outliers:,}",
    )


def _classify_out_of_core(
    input: StrPath,
    output: StrPath,
    model_output: StrPath,
    outliers_output: StrPath,
    config: ClassificationConfig,
    engine: EngineConfig,
) -> tuple[int, int]:
    """Stage 3 with the streaming or Dask engine; returns the rows and outliers written."""
    run = classify_file if engine.engine == "streaming" else dask_engine().classify_dataset
    _, n_rows, n_outliers = run(input, output, model_output, outliers_output, config, engine)
    return int(n_rows), int(n_outliers)


def _classify_in_memory(
    input: StrPath,
    output: StrPath,
    model_output: StrPath,
    outliers_output: StrPath,
    config: ClassificationConfig,
    labels: Sequence[StrPath],
    allow_duplicates: bool,
) -> tuple[int, int]:
    label_summary = None
    if labels:
        own_labels, label_files = read_labels(list(labels))
    table = read_stage_table(input, paths.CROSSMATCH, NO_STAGE2_HINT)
    table = check_detections(table, input, allow_duplicates=allow_duplicates, clusters=True)
    if labels:
        table, label_summary = apply_labels(table, own_labels)
        label_summary.files = label_files
        log_summary(label_summary)
    with input_files(input):
        classified, model = run_classification(table, config)
    del table  # the outputs are written in the memory it held
    outliers = outlier_table(classified, config.feature_set)
    document = model.to_dict()
    if label_summary is not None:
        document["own_labels"] = label_summary.to_dict()
    write_outputs([(classified, output), (document, model_output), (outliers, outliers_output)])
    return len(classified), len(outliers)
