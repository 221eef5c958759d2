"""One runner per stage: read, check, run the science (or an engine), write.

The command lines (:mod:`xrayclass.cli.stages`), ``make run`` (:mod:`xrayclass.cli.run`)
and the library call these. Each takes the stage's files, its config (the science's
choices: :class:`~xrayclass.stages.clustering.ClusteringConfig`,
:class:`~xrayclass.stages.crossmatch.CrossmatchConfig`,
:class:`~xrayclass.stages.classification.ClassificationConfig`,
:class:`~xrayclass.stages.master_classification.MasterClassificationConfig`) and an
:class:`~xrayclass.engine.EngineConfig`, and hands the config to the science or the engine
as it is. A problem with an input raises :class:`~xrayclass.exceptions.InputError` naming
the file, and nothing is written; the outputs are written together (all or none).

The engines are called in one place per stage and engine (``_cluster_out_of_core`` and
the like), so that their signatures are adapted there only.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from xrayclass.analysis.published import COMPLETE_DETECTIONS as PUBLISHED_DETECTIONS
from xrayclass.constants import FEATURES, NAME_ALIASES
from xrayclass.core.checks import (
    canonical_names,
    require_cluster_labels,
    require_names,
    require_positions,
    require_radius,
)
from xrayclass.core.featuresets import PAPER, FeatureSet, from_artifact
from xrayclass.core.labels import apply_labels, log_summary
from xrayclass.engine import EngineConfig
from xrayclass.engine import dask as dask_engine
from xrayclass.engine.clustering import cluster_file
from xrayclass.engine.crossmatch import crossmatch_file
from xrayclass.engine.streaming import classify_file, master_classification_file
from xrayclass.exceptions import InputError, input_files
from xrayclass.io import paths
from xrayclass.io.artifacts import read_clustering_model, read_feature_set
from xrayclass.io.checks import check_catalog, check_detections, check_outputs
from xrayclass.io.labels import read_labels
from xrayclass.io.paths import beside
from xrayclass.io.tables import (
    OUTPUT_FORMATS,
    BatchedTable,
    read_json,
    read_table,
    remove_stale_folders,
    table_format,
    write_outputs,
)
from xrayclass.services import provenance_path
from xrayclass.services.xmatch import XMatchConfig, crossmatch_simbad, describe_upload
from xrayclass.stages.classification import (
    ClassificationConfig,
    outlier_table,
    run_classification,
)
from xrayclass.stages.clustering import (
    ClusteringConfig,
    check_model_fits_table,
    compare_with_published,
    describe_frozen_clusters,
    run_clustering,
    stage1_model,
)
from xrayclass.stages.crossmatch import CrossmatchConfig, attach_matches, run_crossmatch
from xrayclass.stages.master_classification import (
    STAGE4_COLUMNS,
    MasterClassificationConfig,
    format_summary,
    run_master_classification,
)
from xrayclass.text import one_line

__all__ = [
    "NO_CSC_INPUT_HINT",
    "PUBLISHED_MIXTURE",
    "LazyStage1",
    "chosen_feature_set",
    "crossmatch_online",
    "model_for_stage3",
    "read_stage_table",
    "run_classification_stage",
    "run_clustering_stage",
    "run_crossmatch_stage",
    "run_master_classification_stage",
    "stage3_feature_set",
]

log = logging.getLogger("xrayclass")

StrPath = str | Path

#: The published mixture in the shared reference directory, compared with a model of the
#: published crossmatch's clusters when both are there.
PUBLISHED_MIXTURE = "paper_gmm.json"

#: What stage 1 says when the default input is absent: the ways to get one.
NO_CSC_INPUT_HINT = (
    "get the CSC detections with `fetch_csc.py` (network; README, 'Fetching from the services'), or put "
    f"your own CSC query result there (with the published frozen crossmatch {paths.FROZEN_CROSSMATCH} for "
    "stage 2; README, 'Data files'), or try a SYNTHETIC catalog: `make_mock_catalog.py --n-detections 30000 "
    "--output mock.parquet` then --input mock.parquet (README, 'A mock catalog with known truth'), "
    "which `make run` does by itself when there is no input"
)
NO_STAGE1_HINT = "run clustering.py first or pass --input"
NO_STAGE2_HINT = "run crossmatch.py first or pass --input"
NO_STAGE3_HINT = "run classification.py first or pass --input"


# -- reading, and the engines' preconditions ---------------------------------------------


def require_input(path: StrPath, default: StrPath, hint: str) -> None:
    """An error with ``hint`` when ``path`` is the default file and it is missing."""
    if Path(path) == Path(default) and not Path(path).exists():
        raise InputError(f"{path}: file not found; {hint}")


def read_stage_table(path: StrPath, default: StrPath, hint: str, **kwargs: Any) -> pd.DataFrame:
    """The table at ``path``; when it is the (missing) default file, an error with ``hint``."""
    require_input(path, default, hint)
    return read_table(path, **kwargs)


def _refuse_memory_only(engine: EngineConfig, options: Sequence[tuple[str, object]], yet: bool = True) -> None:
    """Exit 2 naming the options the chosen engine does not take."""
    used = [option for option, on in options if on]
    if used:
        later = " yet" if yet else ""
        raise InputError(f"{', '.join(used)}: not available with --engine {engine.engine}{later}; use --engine memory")


def _streamable(path: StrPath, engine: EngineConfig) -> None:
    if table_format(path) not in ("csv", "parquet"):
        raise InputError(
            f"{path}: --engine {engine.engine} reads .csv or .parquet tables; convert it or use --engine memory"
        )


def _start_engine(engine: EngineConfig) -> None:
    """Before an engine's work: the work folders of killed runs removed from TMPDIR, Dask there."""
    if engine.engine == "dask":
        dask_engine.require_dask()
    remove_stale_folders()


# -- feature sets and the stage-1 model --------------------------------------------------


def chosen_feature_set(path: StrPath | None) -> FeatureSet:
    """The feature set of ``--features`` (a TOML file), or the paper's."""
    if path is None:
        return PAPER
    feature_set = read_feature_set(path)
    log.info(
        "feature set %s (%s): %d features, %s",
        feature_set.name,
        path,
        len(feature_set),
        ", ".join(feature_set.features),
    )
    return feature_set


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


class LazyStage1:
    """The stage-1 table's name and feature columns, read only if the model check needs them."""

    def __init__(self, path: StrPath) -> None:
        self.path = path

    def table(self) -> pd.DataFrame:
        return read_table(self.path, columns=["name", *NAME_ALIASES, *FEATURES])


def model_for_stage3(
    model_path: StrPath,
    explicit: bool,
    stage1: pd.DataFrame | LazyStage1,
    stage1_path: StrPath,
    frozen: tuple[pd.DataFrame, StrPath, int] | None = None,
) -> dict[str, Any] | None:
    """The model document that describes the clusters stage 3 will use, or None to leave it as it is.

    ``frozen`` is ``(stage-2 table, frozen file, its row count)`` when stage 3 uses the
    frozen file's clusters: the mixture is then estimated from them. Otherwise the
    stage-1 fit is restored where an earlier stage 2 had replaced it. A model that is
    missing or belongs to another stage-1 table is an error when ``--model`` was given,
    and a warning (the file left as it is) at the default path.
    """
    if not Path(model_path).exists():
        if explicit:
            raise InputError(f"{model_path}: file not found; pass the model that clustering.py wrote (--model)")
        if frozen is not None:
            log.warning(
                "no stage-1 model at %s: no model of the frozen clusters is written, so classify_source.py "
                "cannot place new detections in them; pass --model",
                model_path,
            )
        return None
    try:
        try:
            model = read_clustering_model(model_path)
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
            raise InputError(f"{model_path}: not a usable clustering model ({type(exc).__name__}: {exc})") from None
        if frozen is None and model.stage1_mixture is None:
            return None  # already stage 1's own fit: nothing to change
        if isinstance(stage1, LazyStage1):  # streamed: only the columns the check reads
            stage1 = stage1.table()
        with input_files(stage1_path, stage1=stage1_path, model=model_path):
            check_model_fits_table(model, canonical_names(stage1))
    except InputError as exc:
        if explicit:
            raise
        log.warning("%s. It is left as it is: it does not describe the clusters stage 3 will use; pass --model", exc)
        return None
    if frozen is None:
        log.info(
            "%s described the clusters of %s; its stage-1 fit is restored, since stage 3 will use this run's clusters",
            model_path,
            model.clusters.get("file", "another file"),
        )
        document: dict[str, Any] = stage1_model(model).to_dict()
        return document
    table, frozen_path, n_frozen = frozen
    with input_files(frozen_path):
        estimated = describe_frozen_clusters(model, table)
    estimated.clusters["file"] = str(frozen_path)
    published = paths.reference_file(PUBLISHED_MIXTURE)
    if n_frozen == PUBLISHED_DETECTIONS and published is not None:
        log.info(
            "%s has the published run's %s detections: taking it for the published crossmatch",
            frozen_path,
            f"{PUBLISHED_DETECTIONS:,}",
        )
        comparison = compare_with_published(estimated, read_json(published))
        estimated.clusters["published_comparison"] = {"file": str(published), **comparison}
    document = estimated.to_dict()
    return document


# -- stage 1 ---------------------------------------------------------------------------


def run_clustering_stage(
    input: StrPath = paths.CSC_INPUT,
    output: StrPath = paths.CLUSTERS,
    config: ClusteringConfig | None = None,
    engine: EngineConfig | None = None,
    *,
    model: StrPath | None = None,
    allow_duplicates: bool = False,
) -> None:
    """Stage 1: the CSC detections at ``input`` clustered into ``output``, the model into ``model``.

    ``model`` defaults to ``model.json`` beside ``output``; ``allow_duplicates`` drops
    repeated detections with a warning instead of stopping (in memory only).
    """
    config = ClusteringConfig() if config is None else config
    engine = EngineConfig() if engine is None else engine
    model = beside(output, paths.MODEL) if model is None else model
    check_outputs([output, model], [input], formats=[OUTPUT_FORMATS, None])
    if engine.engine != "memory":
        _refuse_memory_only(engine, [("--allow-duplicates", allow_duplicates)])
        require_input(input, paths.CSC_INPUT, NO_CSC_INPUT_HINT)
        _streamable(input, engine)
        _start_engine(engine)
        n_rows = _cluster_out_of_core(input, output, model, config, engine)
    else:
        detections = read_stage_table(input, paths.CSC_INPUT, NO_CSC_INPUT_HINT, allowed=None)
        detections = check_detections(detections, input, allow_duplicates=allow_duplicates)
        with input_files(input):
            clustered, fitted = run_clustering(detections, config)
        fitted.training["input"] = str(input)
        write_outputs([(clustered, output), (fitted.to_dict(), model)])
        n_rows = len(clustered)
    log.info("wrote %s (%s rows) and %s", output, f"{n_rows:,}", model)


def _cluster_out_of_core(
    input: StrPath, output: StrPath, model: StrPath, config: ClusteringConfig, engine: EngineConfig
) -> int:
    """Stage 1 with the streaming or Dask engine; returns the rows written."""
    run = cluster_file if engine.engine == "streaming" else dask_engine.cluster_dataset
    _, n_rows = run(input, output, model, config, engine)
    return int(n_rows)


# -- stage 2 ---------------------------------------------------------------------------


def run_crossmatch_stage(
    input: StrPath = paths.CLUSTERS,
    output: StrPath = paths.CROSSMATCH,
    config: CrossmatchConfig | None = None,
    engine: EngineConfig | None = None,
    *,
    model: StrPath | None = None,
    frozen: StrPath = paths.FROZEN_CROSSMATCH,
    catalog: StrPath | None = None,
    xmatch: XMatchConfig | None = None,
    dry_run: bool = False,
) -> None:
    """Stage 2: the SIMBAD class of each clustered detection at ``input``, into ``output``.

    ``config.source`` says where the classes come from: the ``frozen`` crossmatch file,
    a local ``catalog`` (by position within ``config.radius``) or CDS X-Match
    (``xmatch``, default ``XMatchConfig(radius=config.radius)``; ``dry_run`` only
    describes the upload). The stage-1 ``model`` (default: beside ``input``) is updated
    to describe the clusters stage 3 will use; when it was given it must fit.
    """
    config = CrossmatchConfig() if config is None else config
    engine = EngineConfig() if engine is None else engine
    explicit = model is not None
    model_path = Path(model) if model is not None else beside(input, paths.MODEL)
    if engine.engine != "memory":
        _refuse_memory_only(
            engine,
            [
                ("--online", config.source == "online"),
                ("--frozen", config.source == "frozen"),
                ("--catalog", config.source == "catalog" and engine.engine == "dask"),
            ],
        )
    if config.source == "online":
        check_outputs([output, model_path], [input], formats=[OUTPUT_FORMATS, None])
        stage1 = read_stage_table(input, paths.CLUSTERS, NO_STAGE1_HINT)
        if {"ra", "dec"} <= set(stage1.columns):
            with input_files(input):
                require_positions(stage1)
        xmatch = XMatchConfig(radius=config.radius) if xmatch is None else xmatch
        if dry_run:
            with input_files(input):
                print(describe_upload(canonical_names(stage1), xmatch))
            return
        with input_files(input):
            stage2, provenance = crossmatch_online(stage1, xmatch)
        _write_online_stage2(stage2, provenance, input, output)
        update = model_for_stage3(model_path, explicit, stage1, input)
        if update is not None:
            write_outputs([(update, model_path)])
            log.info("wrote %s", model_path)
        return
    if config.source == "catalog":
        if catalog is None:
            raise ValueError("source 'catalog' needs catalog=")
        require_radius(config.radius)
        check_outputs([output, model_path], [input, catalog], formats=[OUTPUT_FORMATS, None])
        if engine.engine == "streaming":
            _crossmatch_streamed(input, output, model_path, explicit, catalog, config, engine)
            return
        stage1 = check_detections(read_stage_table(input, paths.CLUSTERS, NO_STAGE1_HINT), input, clusters=True)
        catalog_table = check_catalog(read_table(catalog), catalog)
        with input_files(input, stage1=input, catalog=catalog):
            crossmatched = run_crossmatch(stage1, config, catalog=catalog_table)
        update = model_for_stage3(model_path, explicit, stage1, input)
        _write_stage2(crossmatched, output, update, model_path)
        return
    check_outputs([output, model_path], [input, frozen], formats=[OUTPUT_FORMATS, None])
    stage1 = read_stage_table(input, paths.CLUSTERS, NO_STAGE1_HINT)
    frozen_table = read_stage_table(
        frozen, paths.FROZEN_CROSSMATCH, "put the published cluster_csc_simbad.csv there, or pass --frozen PATH"
    )
    for table, path in ((stage1, input), (frozen_table, frozen)):
        with input_files(path):
            require_names(canonical_names(table))
    if config.clusters == "frozen" and "cluster" in frozen_table.columns:
        with input_files(frozen):
            require_cluster_labels(frozen_table)
    with input_files(input, stage1=input, frozen=frozen):
        crossmatched = run_crossmatch(stage1, config, frozen=frozen_table)
    frozen_clusters = (crossmatched, frozen, len(frozen_table)) if config.clusters == "frozen" else None
    update = model_for_stage3(model_path, explicit, stage1, input, frozen_clusters)
    _write_stage2(crossmatched, output, update, model_path)


def _crossmatch_streamed(
    input: StrPath,
    output: StrPath,
    model_path: Path,
    explicit: bool,
    catalog: StrPath,
    config: CrossmatchConfig,
    engine: EngineConfig,
) -> None:
    """Stage 2 with a local catalog and the streaming engine: the detections in batches, the catalog in memory."""
    require_input(input, paths.CLUSTERS, NO_STAGE1_HINT)
    _streamable(input, engine)
    catalog_table = check_catalog(read_table(catalog), catalog)
    update = model_for_stage3(model_path, explicit, LazyStage1(input), input)
    with input_files(input, stage1=input, catalog=catalog):
        n_rows = crossmatch_file(
            input, catalog_table, output, config, engine, (update, model_path) if update is not None else None
        )
    log.info("wrote %s (%s rows)%s", output, f"{n_rows:,}", f" and updated {model_path}" if update else "")


def _write_stage2(
    crossmatched: pd.DataFrame, output: StrPath, model: dict[str, Any] | None, model_path: StrPath
) -> None:
    """The stage-2 table and, when there is one, the updated model: both or neither."""
    write_outputs([(crossmatched, output), *([(model, model_path)] if model is not None else [])])
    log.info(
        "wrote %s (%s rows)%s",
        output,
        f"{len(crossmatched):,}",
        f" and updated {model_path}" if model is not None else "",
    )


def crossmatch_online(stage1: pd.DataFrame, config: XMatchConfig) -> tuple[pd.DataFrame, dict[str, object]]:
    """The stage-2 table from an online crossmatch, and its provenance.

    The service's best matches joined to the stage-1 rows by
    :func:`~xrayclass.stages.crossmatch.attach_matches`, so that detections without a
    SIMBAD object get ``main_type = 'NaN'``. This run's clusters are kept.
    """
    stage1 = canonical_names(stage1)
    matches, provenance = crossmatch_simbad(stage1, config)
    return attach_matches(stage1, matches), provenance


def _write_online_stage2(
    stage2: pd.DataFrame, provenance: dict[str, Any], input_path: StrPath, output: StrPath
) -> None:
    """The stage-2 table and its provenance beside it (:func:`~xrayclass.services.provenance_path`), both or neither.

    The provenance names ``input_path`` after the service's fields: the file is the
    caller's to know.
    """
    provenance = {**provenance, "input": str(input_path)}
    sidecar = provenance_path(output)
    write_outputs([(stage2, output), (provenance, sidecar)])
    log.info(
        "wrote %s (%s rows; %s with a SIMBAD match) and %s",
        output,
        f"{len(stage2):,}",
        f"{provenance['rows_matched']:,}",
        sidecar,
    )


# -- stage 3 ---------------------------------------------------------------------------


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
        _refuse_memory_only(engine, [("--labels", bool(labels)), ("--allow-duplicates", allow_duplicates)], yet=False)
        require_input(input, paths.CROSSMATCH, NO_STAGE2_HINT)
        _start_engine(engine)
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
    run = classify_file if engine.engine == "streaming" else dask_engine.classify_dataset
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


# -- stage 4 ---------------------------------------------------------------------------


def run_master_classification_stage(
    input: StrPath = paths.DETECTIONS,
    out_dir: StrPath = paths.OUT_DIR,
    config: MasterClassificationConfig | None = None,
    engine: EngineConfig | None = None,
    *,
    format: str = "csv",
    allow_duplicates: bool = False,
) -> None:
    """Stage 4: the master classes of the sources of the detections at ``input``, into ``out_dir``.

    The uniquely classified and the ambiguous sources, in ``format`` (csv or parquet),
    and the run's summary, which is also printed.
    """
    config = MasterClassificationConfig() if config is None else config
    engine = EngineConfig() if engine is None else engine
    directory = Path(out_dir)
    if directory.exists() and not directory.is_dir():
        raise InputError(f"{directory}: --out-dir is not a directory")
    run = paths.RunLayout(directory)
    uniquely_path, ambiguous_path = run.stage4_tables(format)
    check_outputs([uniquely_path, ambiguous_path, run.summary], [input], formats=[OUTPUT_FORMATS, OUTPUT_FORMATS, None])
    if engine.engine == "memory":
        # Only the columns the votes and tables use: the detection table may be wide.
        detections = read_stage_table(input, paths.DETECTIONS, NO_STAGE3_HINT, columns=STAGE4_COLUMNS)
        detections = check_detections(detections, input, allow_duplicates=allow_duplicates, positions=False)
        with input_files(input):
            uniquely, ambiguous, summary = run_master_classification(detections, config)
        _write_stage4(uniquely, ambiguous, summary, run.summary, uniquely_path, ambiguous_path)
        return
    require_input(input, paths.DETECTIONS, NO_STAGE3_HINT)
    _start_engine(engine)
    if engine.engine == "streaming":
        # The two tables stay on disk until they are written, a batch at a time.
        spilled, spilled_ambiguous, summary = master_classification_file(input, config, engine)
        with spilled, spilled_ambiguous:
            _write_stage4(spilled, spilled_ambiguous, summary, run.summary, uniquely_path, ambiguous_path)
        return
    uniquely, ambiguous, summary = dask_engine.master_classification_dataset(input, config, engine)
    _write_stage4(uniquely, ambiguous, summary, run.summary, uniquely_path, ambiguous_path)


def _write_stage4(
    uniquely: pd.DataFrame | BatchedTable,
    ambiguous: pd.DataFrame | BatchedTable,
    summary: Mapping[str, Any],
    summary_path: StrPath,
    uniquely_path: StrPath,
    ambiguous_path: StrPath,
) -> None:
    """The two stage-4 tables and the run's summary (all or none), then the summary printed."""
    write_outputs([(uniquely, uniquely_path), (ambiguous, ambiguous_path), (summary, summary_path)])
    log.info(
        "wrote %s (%s sources), %s (%s sources) and %s",
        uniquely_path,
        f"{len(uniquely):,}",
        ambiguous_path,
        f"{len(ambiguous):,}",
        summary_path,
    )
    print(format_summary(summary))
