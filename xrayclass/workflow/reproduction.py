"""The reproduction of the published stage-4 tables: read, recomputed, written, checked.

The checks themselves compare tables (:mod:`xrayclass.analysis.reproduce`); this module
knows the files of the shared reference directory and of the run.
"""

from __future__ import annotations

import os
from pathlib import Path

from xrayclass.analysis import published
from xrayclass.analysis.reproduce import Check, master_table_checks
from xrayclass.exceptions import input_files
from xrayclass.io.paths import RunLayout
from xrayclass.io.tables import read_table, write_outputs
from xrayclass.stages.master_classification import master_classification

__all__ = ["reproduce_master_tables"]


def reproduce_master_tables(reference_dir: str | os.PathLike[str], out_dir: str | os.PathLike[str]) -> list[Check]:
    """Stage 4 on the published stage-3 output, checked against the published tables.

    Writes this run's two tables to ``out_dir`` and returns the list of checks.
    """
    reference_dir = Path(reference_dir)
    detections_path = reference_dir / published.DETECTION_LEVEL_FILE
    detections = read_table(detections_path)
    with input_files(detections_path):
        uniquely, ambiguous, summary = master_classification(detections)
    run = RunLayout(Path(out_dir))
    write_outputs([(uniquely, run.uniquely), (ambiguous, run.ambiguous), (summary, run.summary)])
    published_uniquely = read_table(reference_dir / published.UNIQUELY_FILE)
    published_ambiguous = read_table(reference_dir / published.AMBIGUOUS_FILE)
    return master_table_checks(uniquely, ambiguous, summary, published_uniquely, published_ambiguous)
