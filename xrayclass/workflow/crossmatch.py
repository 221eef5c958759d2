"""Stage 2's runner: the clusters crossmatched with SIMBAD (frozen, a local catalog or online), written with the stage-1 model stage 3 will use."""

from __future__ import annotations

import logging
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
from xrayclass.engine import EngineConfig
from xrayclass.engine.crossmatch import crossmatch_file
from xrayclass.exceptions import InputError, input_files
from xrayclass.io import paths
from xrayclass.io.artifacts import read_clustering_model
from xrayclass.io.checks import check_catalog, check_detections, check_outputs
from xrayclass.io.paths import beside
from xrayclass.io.tables import (
    OUTPUT_FORMATS,
    read_json,
    read_table,
    write_outputs,
)
from xrayclass.services import provenance_path
from xrayclass.services.xmatch import XMatchConfig, crossmatch_simbad, describe_upload
from xrayclass.stages.clustering import (
    check_model_fits_table,
    compare_with_published,
    describe_frozen_clusters,
    stage1_model,
)
from xrayclass.stages.crossmatch import CrossmatchConfig, attach_matches, run_crossmatch
from xrayclass.workflow.runner import (
    NO_STAGE1_HINT,
    StrPath,
    read_stage_table,
    refuse_memory_only,
    require_input,
    require_streamable,
)

log = logging.getLogger("xrayclass")


#: The published mixture in the shared reference directory, compared with a model of the
#: published crossmatch's clusters when both are there.
PUBLISHED_MIXTURE = "paper_gmm.json"


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
        refuse_memory_only(
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
    require_streamable(input, engine)
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
