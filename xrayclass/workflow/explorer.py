"""The explorer page of a run: its tables read from the run directory, the page written.

The page itself (its data and HTML) is made from tables by
:mod:`xrayclass.analysis.explore`; this module knows the run's files.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd

from xrayclass.analysis.explore import MAX_SOURCES, RunTables, build_payload, render
from xrayclass.analysis.mock import mock_names
from xrayclass.constants import CLASSES, NAME, OBSID
from xrayclass.io import paths
from xrayclass.io.tables import read_table, write_atomic

__all__ = ["read_run", "run_is_synthetic", "write_explorer"]

log = logging.getLogger("xrayclass")


def run_is_synthetic(run_dir: Path | None, names: pd.Series) -> bool:
    """True for mock runs: mock source names, or a mock provenance file in the run."""
    if mock_names(names).any():
        return True
    if run_dir is not None and Path(run_dir).is_dir():
        for provenance in Path(run_dir).glob("*.provenance.json"):
            try:
                if "SYNTHETIC" in provenance.read_text(encoding="utf-8"):
                    return True
            except OSError:
                continue
    return False


def read_run(
    run_dir: Path,
    uniquely: Path | None = None,
    ambiguous: Path | None = None,
    detections: Path | None = None,
    synthetic: bool | None = None,
) -> RunTables:
    """The tables of a run directory (any of them can be given as another file).

    The stage-4 uniquely classified table is required; the ambiguous table, the stage-3
    detection table and ``model.json`` (for preprocessed features) are used when present.
    """
    run_dir = Path(run_dir)
    uniquely = Path(uniquely) if uniquely else run_dir / paths.UNIQUELY
    ambiguous = Path(ambiguous) if ambiguous else run_dir / paths.AMBIGUOUS
    detections = Path(detections) if detections else run_dir / paths.DETECTIONS.name
    unique_table = read_table(uniquely)
    ambiguous_table = read_table(ambiguous, allow_empty=True) if ambiguous.exists() else None
    detection_table = None
    if detections.exists():
        wanted = [
            NAME,
            "name_1",
            OBSID,
            "cluster",
            "main_type",
            *CLASSES,
            "outlier_percentile",
            "driven_by",
            "simbad_main_type",
            "track_prior",
            "track_spectrum",
            "track_variability",
            "track_location",
        ]
        detection_table = read_table(detections, columns=wanted)
    preprocessing = None
    model = run_dir / paths.MODEL.name
    if model.exists():
        preprocessing = json.loads(model.read_text(encoding="utf-8")).get("preprocessing")
    if synthetic is None:
        synthetic = run_is_synthetic(run_dir, unique_table[NAME] if NAME in unique_table else pd.Series([], dtype=str))
    title = f"{'SYNTHETIC ' if synthetic else ''}xrayclass results: {uniquely.parent.resolve().name}/"
    log.info(
        "explorer: %s uniquely classified, %s ambiguous sources, %s",
        f"{len(unique_table):,}",
        f"{0 if ambiguous_table is None else len(ambiguous_table):,}",
        f"{len(detection_table):,} detections" if detection_table is not None else "no detection table",
    )
    return RunTables(unique_table, ambiguous_table, detection_table, preprocessing, synthetic, title)


def write_explorer(tables: RunTables, output: Path, max_sources: int = MAX_SOURCES, seed: int = 0) -> dict:
    """Write the explorer page atomically; returns the page's metadata (counts)."""
    payload = build_payload(tables, max_sources=max_sources, seed=seed)
    page = render(payload)
    write_atomic(output, lambda tmp: Path(tmp).write_text(page, encoding="utf-8"))
    return payload["meta"]
