"""Stage 1's runner: read the detections, check them, cluster them (in memory or an engine), write."""

from __future__ import annotations

import logging

from xrayclass.core.featuresets import PAPER, FeatureSet
from xrayclass.engine import EngineConfig
from xrayclass.engine.clustering import cluster_file
from xrayclass.exceptions import input_files
from xrayclass.io import paths
from xrayclass.io.artifacts import read_feature_set
from xrayclass.io.checks import check_detections, check_outputs
from xrayclass.io.paths import beside
from xrayclass.io.tables import (
    OUTPUT_FORMATS,
    write_outputs,
)
from xrayclass.stages.clustering import (
    ClusteringConfig,
    run_clustering,
)
from xrayclass.workflow.runner import (
    NO_CSC_INPUT_HINT,
    StrPath,
    dask_engine,
    read_stage_table,
    refuse_memory_only,
    require_input,
    require_streamable,
    start_engine,
)

log = logging.getLogger("xrayclass")


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
        refuse_memory_only(engine, [("--allow-duplicates", allow_duplicates)])
        require_input(input, paths.CSC_INPUT, NO_CSC_INPUT_HINT)
        require_streamable(input, engine)
        start_engine(engine)
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
    run = cluster_file if engine.engine == "streaming" else dask_engine().cluster_dataset
    _, n_rows = run(input, output, model, config, engine)
    return int(n_rows)


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
