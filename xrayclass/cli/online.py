"""The command line of ``crossmatch.py --online``: its options, and the stage-2 table and provenance it writes.

The X-Match client (:mod:`xrayclass.services.xmatch`) takes and returns tables; this
module adds what only the command line knows: the options and the files.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

import pandas as pd

from xrayclass.core.checks import canonical_names
from xrayclass.exceptions import InputError, input_files
from xrayclass.io.tables import write_outputs
from xrayclass.services import provenance_path
from xrayclass.services.xmatch import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_RADIUS,
    MAX_RADIUS,
    XMatchConfig,
    crossmatch_simbad,
    describe_upload,
)
from xrayclass.stages.crossmatch import attach_matches

__all__ = ["add_online_arguments", "crossmatch_online", "online_config", "run_online", "write_online_stage2"]

log = logging.getLogger(__name__)

_ONLINE_OPTIONS = ("radius", "chunk_size", "dry_run")


def add_online_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``crossmatch.py --online``."""
    parser.add_argument(
        "--radius",
        type=float,
        default=argparse.SUPPRESS,
        help=f"with --online or --catalog: match radius in arcsec, at most {MAX_RADIUS:g} "
        f"(default: {DEFAULT_RADIUS:g})",
    )
    parser.add_argument(
        "--chunk-size",
        type=int,
        default=argparse.SUPPRESS,
        help=f"with --online: rows uploaded per request, sent one after another (default: {DEFAULT_CHUNK_SIZE:,})",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        default=argparse.SUPPRESS,
        help="with --online: describe the upload (rows, chunks, radius, service) and send nothing",
    )


def online_config(args: argparse.Namespace) -> XMatchConfig | None:
    """The :class:`XMatchConfig` of the command line; refuses online options without --online."""
    given = [name for name in _ONLINE_OPTIONS if hasattr(args, name)]
    if not args.online:
        # A local catalog match (--catalog) takes a radius too.
        refused = [name for name in given if not (name == "radius" and getattr(args, "catalog", None))]
        if refused:
            options = ", ".join("--" + name.replace("_", "-") for name in refused)
            raise InputError(f"{options}: only with --online")
        return None
    return XMatchConfig(
        radius=getattr(args, "radius", DEFAULT_RADIUS), chunk_size=getattr(args, "chunk_size", DEFAULT_CHUNK_SIZE)
    )


def write_online_stage2(
    stage2: pd.DataFrame, provenance: dict[str, Any], input_path: str | Path, output: str | Path
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


def crossmatch_online(stage1: pd.DataFrame, config: XMatchConfig) -> tuple[pd.DataFrame, dict[str, object]]:
    """The stage-2 table from an online crossmatch, and its provenance.

    The service's best matches joined to the stage-1 rows by
    :func:`~xrayclass.stages.crossmatch.attach_matches`, so that detections without a
    SIMBAD object get ``main_type = 'NaN'``. This run's clusters are kept.
    """
    stage1 = canonical_names(stage1)
    matches, provenance = crossmatch_simbad(stage1, config)
    return attach_matches(stage1, matches), provenance


def run_online(
    stage1: pd.DataFrame,
    config: XMatchConfig,
    *,
    input_path: str | Path,
    output: str | Path,
    dry_run: bool = False,
) -> pd.DataFrame | None:
    """``crossmatch.py --online``: describe the upload (``dry_run``), or crossmatch and write.

    ``input_path`` is the file ``stage1`` was read from: it names the file in messages and
    in the provenance. Returns the stage-2 table, or None for a dry run.
    """
    if dry_run:
        with input_files(input_path):
            print(describe_upload(canonical_names(stage1), config))
        return None
    with input_files(input_path):
        stage2, provenance = crossmatch_online(stage1, config)
    write_online_stage2(stage2, provenance, input_path, output)
    return stage2
