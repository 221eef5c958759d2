"""Command line of ``make_mock_catalog.py``."""

import argparse
import os
from collections.abc import Sequence
from pathlib import Path

from xrayclass.analysis.mock import SYNTHETIC_NOTE, MockSettings
from xrayclass.cli.argtypes import positive_int
from xrayclass.cli.common import command_parser, log, run_command
from xrayclass.io.tables import InputError, table_format
from xrayclass.workflow.mock import write_mock

__all__ = ["default_simbad_path", "main"]


def default_simbad_path(output: str | os.PathLike[str]) -> Path:
    output = Path(output)
    return output.with_name(f"{output.stem}_simbad{output.suffix}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = command_parser(
        "make_mock_catalog.py",
        "Write a SYNTHETIC CSC-like detection table with known truth (column true_class), "
        "shaped like the paper's CSC query so that every stage runs on it, and beside it a "
        "mock SIMBAD catalog for the crossmatch stage (crossmatch.py --catalog). Source "
        "names start with 'MOCK J'. Memory stays bounded at any size with .parquet or .csv.",
    )
    parser.add_argument("--n-detections", type=positive_int, required=True, help="number of detections (rows)")
    parser.add_argument("--seed", type=int, default=0, help="seed of everything random")
    parser.add_argument("--output", required=True, help="the catalog: .parquet, .csv or .vot")
    parser.add_argument(
        "--simbad-output", default=None, help="the mock SIMBAD catalog (default: <output stem>_simbad<ext>)"
    )
    parser.add_argument(
        "--separation",
        type=float,
        default=MockSettings.separation,
        help="how far apart the classes are relative to their scatter (0: indistinguishable)",
    )
    parser.add_argument(
        "--labeled-share",
        type=float,
        default=MockSettings.labeled_share,
        help="share of sources whose SIMBAD counterpart has their true class",
    )

    def body(args: argparse.Namespace) -> None:
        simbad_output = args.simbad_output or default_simbad_path(args.output)
        for path in (args.output, simbad_output):
            table_format(path, ("csv", "parquet", "votable"))
        settings = MockSettings(separation=args.separation, labeled_share=args.labeled_share)
        try:
            settings.validate()
            counts = write_mock(args.n_detections, args.seed, args.output, simbad_output, settings)
        except ValueError as exc:
            raise InputError(str(exc)) from None
        log.info("%s", SYNTHETIC_NOTE)
        log.info(
            "wrote %s (%s detections of %s sources), %s (%s mock SIMBAD objects) and %s",
            args.output,
            f"{counts['detections']:,}",
            f"{counts['sources']:,}",
            simbad_output,
            f"{counts['simbad_objects']:,}",
            f"{args.output}.provenance.json",
        )

    return run_command("mock", parser, body, argv)
