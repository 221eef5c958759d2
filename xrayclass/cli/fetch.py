"""Command line of ``fetch_csc.py``: the stage-1 input from the CSC TAP service.

Exit status: 0 done, 2 bad arguments or an empty result, 3 the service failed (no
network, time-out, HTTP error, query rejected, truncated result). Nothing is written
unless the whole result arrived.
"""

import argparse
import logging
import time
from collections.abc import Callable, Sequence

from xrayclass.cli.common import command_parser, config_from_args, configure_logging, report_errors
from xrayclass.io import paths
from xrayclass.io.tables import table_format
from xrayclass.services.csc_tap import (
    DEFAULT_MAXREC,
    DEFAULT_RELEASE,
    DEFAULT_RETRIES,
    DEFAULT_TIMEOUT,
    MIN_SIGNIFICANCE,
    OUTPUT_FORMATS,
    PAPER_COLUMNS,
    RELEASES,
    Cone,
    FetchConfig,
    build_query,
    describe,
    fetch_to_file,
)

__all__ = ["add_service_arguments", "build_parser", "fetch", "main"]

log = logging.getLogger(__name__)


def add_service_arguments(parser: argparse.ArgumentParser | argparse._ArgumentGroup, timeout: float) -> None:
    """The options of the CSC TAP service (``fetch_csc.py``, ``classify_source.py``), the time-out's default ``timeout``."""
    parser.add_argument(
        "--release",
        choices=sorted(RELEASES),
        default=DEFAULT_RELEASE,
        help="CSC release (sets the service URL and table schema)",
    )
    parser.add_argument(
        "--service-url",
        help="TAP service base URL (default: the release's, "
        + ", ".join(f"{r.name}: {r.url}" for r in RELEASES.values())
        + ")",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=timeout,
        help="seconds to wait for the answer, or for an asynchronous job to finish",
    )
    parser.add_argument(
        "--retries",
        type=int,
        default=DEFAULT_RETRIES,
        help="retries after transient failures (no connection, time-out, HTTP 5xx/429)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser(
        "fetch_csc.py",
        "Fetch the stage-1 input from the Chandra Source Catalog TAP service: every "
        "per-observation detection with flux_significance_b > 5 and power-law and "
        "black-body fits, joined to its master source (the paper's query). Writes the "
        "result and <output>.provenance.json (query, service, release, UTC time, rows). "
        "Exit status: 0 done, 2 bad arguments or no rows, 3 the service failed; nothing "
        "is written on failure.",
    )
    add_service_arguments(parser, DEFAULT_TIMEOUT)
    parser.add_argument(
        "--output", default=str(paths.CSC_INPUT), help="result file: .vot/.xml (VOTable), .parquet or .csv"
    )
    parser.add_argument(
        "--min-significance",
        type=float,
        default=MIN_SIGNIFICANCE,
        help="keep detections with o.flux_significance_b above this",
    )
    parser.add_argument(
        "--require-powlaw-gamma",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="keep only detections with a power-law photon index",
    )
    parser.add_argument(
        "--require-bb-kt",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="keep only detections with a black-body temperature",
    )
    parser.add_argument(
        "--columns",
        type=lambda text: tuple(c.strip() for c in text.split(",") if c.strip()),
        help=f"comma-separated columns to select instead of the paper's {len(PAPER_COLUMNS)} "
        "(aliases: m master_source, o observation_source)",
    )
    parser.add_argument(
        "--cone",
        nargs=3,
        type=float,
        metavar=("RA", "DEC", "RADIUS_ARCMIN"),
        help="only master sources within RADIUS_ARCMIN of (RA, DEC), ICRS degrees: the "
        "service is asked for the RA/Dec box around the circle (plain ADQL, RA "
        "wrapping at 0/360, no RA limit when the circle contains a pole) and the "
        "exact circle is cut here; runs synchronously",
    )
    parser.add_argument(
        "--schema",
        help="schema qualifying the table names (default: the release's, csc2 or csc21; '' for bare names)",
    )
    parser.add_argument("--sync", action="store_true", help="synchronous query instead of an asynchronous job")
    parser.add_argument(
        "--maxrec",
        type=int,
        default=DEFAULT_MAXREC,
        help="most rows to accept; a result this long is treated as truncated",
    )
    parser.add_argument("--dry-run", action="store_true", help="print the service URL and the ADQL, send nothing")
    return parser


def main(
    argv: Sequence[str] | None = None,
    *,
    sleep: Callable[[float], object] | None = None,
    clock: Callable[[], float] | None = None,
) -> int:
    """Run ``fetch_csc.py``; ``sleep`` and ``clock`` pace the looks at a job (tests pass their own)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging("fetch_csc", args.verbosity)
    # time.sleep looked up at call time, so that a caller (run_pipeline.py's tests) can stub it.
    return report_errors(parser.prog, fetch, args, sleep or time.sleep, clock or time.monotonic)


def fetch(
    args: argparse.Namespace,
    sleep: Callable[[float], object] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Build the query from the command line, then print it (dry run) or fetch it to the output."""
    config = config_from_args(FetchConfig, args, sync=args.sync or args.cone is not None)
    cone = Cone(*args.cone) if args.cone else None
    query = build_query(
        min_significance=args.min_significance,
        require_powlaw_gamma=args.require_powlaw_gamma,
        require_bb_kt=args.require_bb_kt,
        columns=args.columns or PAPER_COLUMNS,
        schema=RELEASES[args.release].schema if args.schema is None else args.schema,
        cone=cone,
    )
    table_format(args.output, OUTPUT_FORMATS)
    if args.dry_run:
        print(describe(query, config, cone))
        return
    output, sidecar = fetch_to_file(query, args.output, config, cone=cone, sleep=sleep, clock=clock)
    log.info("wrote %s and %s", output, sidecar)
