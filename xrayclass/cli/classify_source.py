"""Command line of ``classify_source.py``: classify new detections with a run's artifacts.

Exit status: 0 done, 2 a problem with the input or the artifacts (nothing written),
3 the CSC TAP service failed when fetching a source by name.
"""

import argparse
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd

from xrayclass.cli.common import command_parser, config_from_args, configure_logging, report_errors
from xrayclass.cli.fetch import add_service_arguments
from xrayclass.exceptions import InputError, input_files
from xrayclass.io import paths
from xrayclass.io.artifacts import load_artifacts, sources_path
from xrayclass.io.checks import check_outputs
from xrayclass.io.runs import find_run
from xrayclass.io.tables import read_table, write_outputs
from xrayclass.services.csc_tap import SOURCE_MAXREC, FetchConfig, fetch_source
from xrayclass.stages.new_sources import classify, csc_source_name, format_report, output_tables
from xrayclass.text import plural

__all__ = ["FETCH_TIMEOUT", "build_parser", "main", "read_or_fetch_detections", "run"]

log = logging.getLogger(__name__)

#: Seconds to wait for the CSC's answer about one source (the query is synchronous).
FETCH_TIMEOUT = 120.0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (the stages' conventions: -v/-q, defaults in --help)."""
    parser = command_parser(
        "classify_source.py",
        "Classify new CSC detections with the artifacts of a pipeline run, without refitting: "
        "the stage-1 model gives each detection's cluster, the stage-3 classifier its ten class "
        "probabilities, and the detections of each source vote (hard and soft) for a master "
        "class. Detections lacking a feature are skipped and what they lack is named; values "
        "outside the training range are flagged, not clipped. Exit status: 0 done, 2 bad input "
        "or artifacts (nothing written), 3 the CSC service failed.",
    )
    parser.add_argument(
        "input",
        metavar="INPUT",
        help="table of per-observation detections with the raw CSC columns (.vot/.xml, "
        ".csv, .parquet, .fits), or a CSC source name such as '2CXO J004307.5-092302' "
        "whose detections are then fetched from the CSC TAP service",
    )
    parser.add_argument(
        "--model",
        default=None,
        help="stage-1 model written by clustering.py (preprocessing and Gaussian mixture); "
        f"default: {paths.MODEL.name} of the run (see --run-dir)",
    )
    parser.add_argument(
        "--classifier",
        default=None,
        help="stage-3 classifier written by classification.py --model-output; default: "
        f"{paths.CLASSIFIER_MODEL.name} of the run (see --run-dir)",
    )
    parser.add_argument(
        "--run-dir",
        default=None,
        help="the run whose artifacts are used where --model or --classifier is not given; "
        f"default: {paths.OUT_DIR}/ if it holds them, else the most recent run below it, "
        f"such as the {paths.OUT_DIR}/mock/ of `make run` without input",
    )
    parser.add_argument(
        "--output",
        metavar="PATH",
        help="per-detection table (.csv or .parquet); the per-source table is written "
        "beside it as <stem>_sources.<ext>. Without it, only print the summary",
    )
    parser.add_argument(
        "--method",
        choices=("mahalanobis", "naive-bayes"),
        default=None,
        help="classifier giving the probabilities (default: the one stage 3 used); either "
        "way the naive Bayes model gives the outlier measure and the probability track",
    )
    parser.add_argument(
        "--calibrate",
        action="store_true",
        help="apply the temperature calibration stored by classification.py --calibrate",
    )
    add_service_arguments(parser.add_argument_group("fetching a source by name"), FETCH_TIMEOUT)
    return parser


def main(
    argv: Sequence[str] | None = None,
    *,
    sleep: Callable[[float], object] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    """Run ``classify_source.py``; ``sleep`` and ``clock`` are there so that tests need not wait."""
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging("classify_source", args.verbosity)
    return report_errors(parser.prog, lambda: run(args, sleep=sleep, clock=clock))


def run(
    args: argparse.Namespace,
    *,
    sleep: Callable[[float], object] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Check the outputs, load the artifacts, read or fetch the input, classify, write, print."""
    _default_artifacts(args)
    outputs = None
    if args.output:
        outputs = check_outputs(
            [args.output, sources_path(args.output)],
            [args.input if Path(args.input).exists() else None, args.model, args.classifier],
        )
    clustering, classifier = load_artifacts(args.model, args.classifier)
    config = config_from_args(FetchConfig, args, maxrec=SOURCE_MAXREC, sync=True)
    table, origin = read_or_fetch_detections(args.input, config, sleep=sleep, clock=clock)
    log.info("%s: %s read", origin, plural(len(table), "detection"))
    with input_files(origin):
        result = classify(table, clustering, classifier, method=args.method, calibrate=args.calibrate)
    result.input_name = origin
    if outputs:
        detections, sources = output_tables(result)
        write_outputs([(detections, outputs[0]), (sources, outputs[1])])
        log.info(
            "wrote %s (%s) and %s (%s)",
            outputs[0],
            plural(len(detections), "detection"),
            outputs[1],
            plural(len(sources), "source"),
        )
    print(format_report(result))


def _default_artifacts(args: argparse.Namespace) -> None:
    """Fill in --model and --classifier from --run-dir or the run :func:`find_run` picks."""
    if args.model is not None and args.classifier is not None:
        return
    run_dir = args.run_dir
    if run_dir is None:
        run_dir = find_run((paths.MODEL.name, paths.CLASSIFIER_MODEL.name), option="--run-dir")
    if args.model is None:
        args.model = str(Path(run_dir) / paths.MODEL.name)
    if args.classifier is None:
        args.classifier = str(Path(run_dir) / paths.CLASSIFIER_MODEL.name)


def read_or_fetch_detections(
    text: str,
    fetch_config: FetchConfig,
    *,
    sleep: Callable[[float], object] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> tuple[pd.DataFrame, str]:
    """The detections ``text`` names, and how messages name them (the file, or ``'CSC 2.0 source 2CXO J...'``).

    ``text`` is a table file (VOTable, CSV, Parquet, FITS) or, when no such file exists, a
    CSC source name whose per-observation detections are fetched from the CSC TAP service
    (``sleep`` and ``clock`` pace it; tests pass their own).

    Raises
    ------
    InputError
        No such file and not a CSC name, an unreadable file, or an unknown source.
    ServiceError
        The CSC TAP service failed (the message says to pass a local file instead).
    """
    path = Path(text)
    if path.exists():
        return read_table(path), str(path)
    name = csc_source_name(text)
    if name is None:
        if path.suffix:
            return read_table(path), str(path)  # says "file not found" or names the format
        raise InputError(f"{text}: no such file, and not a CSC source name such as '2CXO J004307.5-092302'")
    table, _ = fetch_source(name, fetch_config, sleep=sleep, clock=clock)
    return table.to_pandas(), f"CSC {fetch_config.release} source {name}"
