"""Stage 4's runner: read the classified detections, vote the master classes (in memory or an engine), write."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from xrayclass.engine import EngineConfig
from xrayclass.engine.voting import master_classification_file
from xrayclass.exceptions import InputError, input_files
from xrayclass.io import paths
from xrayclass.io.checks import check_detections, check_outputs
from xrayclass.io.tables import (
    OUTPUT_FORMATS,
    BatchedTable,
    write_outputs,
)
from xrayclass.stages.master_classification import (
    STAGE4_COLUMNS,
    MasterClassificationConfig,
    format_summary,
    run_master_classification,
)
from xrayclass.workflow.runner import (
    NO_STAGE3_HINT,
    StrPath,
    dask_engine,
    read_stage_table,
    require_input,
    start_engine,
)

log = logging.getLogger("xrayclass")


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
    start_engine(engine)
    if engine.engine == "streaming":
        # The two tables stay on disk until they are written, a batch at a time.
        spilled, spilled_ambiguous, summary = master_classification_file(input, config, engine)
        with spilled, spilled_ambiguous:
            _write_stage4(spilled, spilled_ambiguous, summary, run.summary, uniquely_path, ambiguous_path)
        return
    uniquely, ambiguous, summary = dask_engine().master_classification_dataset(input, config, engine)
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
