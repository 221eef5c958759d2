"""Command lines of the four stages; the top-level scripts call these ``main`` functions.

Each stage reads the previous stage's table and writes its own; with no arguments
they chain through the published file names. Problems with the input end the stage
with a one-line message naming the file, exit status 2, and no output written.
"""

import argparse
import logging
import sys
from pathlib import Path

from . import paths
from .constants import N_COMPONENTS, RANDOM_STATE
from .io import OUTPUT_FORMATS, InputError, check_output_path, read_table, write_outputs

log = logging.getLogger("xrayclass")

EXIT_INPUT_ERROR = 2
#: Exit status of an unexpected error (a bug): Python's own for an uncaught exception.
EXIT_BUG = 1


class _StageFormatter(logging.Formatter):
    def __init__(self, stage):
        super().__init__("%(message)s")
        self.stage = stage

    def format(self, record):
        message = super().format(record)
        level = f"{record.levelname.lower()}: " if record.levelno >= logging.WARNING else ""
        return f"[{self.stage}] {level}{message}"


def configure_logging(stage, verbosity=0):
    """Log lines ``[stage] message`` to stderr; -v adds detail, -q keeps warnings only."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_StageFormatter(stage))
    root = logging.getLogger("xrayclass")
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbosity > 0 else logging.WARNING if verbosity < 0 else logging.INFO)
    root.propagate = False


class DefaultsFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Show defaults in ``--help``, except where there is none to show."""

    def _get_help_string(self, action):
        if action.default is None or action.required or action.nargs == 0:  # flags say nothing
            return action.help
        return super()._get_help_string(action)


def _parser(prog, description):
    parser = argparse.ArgumentParser(prog=prog, description=description, formatter_class=DefaultsFormatter)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("-v", "--verbose", action="store_const", const=1, dest="verbosity",
                       default=argparse.SUPPRESS, help="log more detail")
    group.add_argument("-q", "--quiet", action="store_const", const=-1, dest="verbosity",
                       default=argparse.SUPPRESS, help="log warnings and errors only")
    parser.set_defaults(verbosity=0)
    return parser


class Terminated(BaseException):
    """SIGTERM (or SIGHUP) arrived: unwind, so that every temporary file is removed."""

    def __init__(self, signum):
        super().__init__(signum)
        self.signum = signum


def _raise_terminated(signum, frame):
    raise Terminated(signum)


def _install_signal_handlers():
    """Turn SIGTERM/SIGHUP into an exception (SIGINT already is one); return the old handlers."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return {}
    previous = {}
    for name in ("SIGTERM", "SIGHUP"):
        number = getattr(signal, name, None)
        if number is not None:
            previous[number] = signal.signal(number, _raise_terminated)
    return previous


def _restore_signal_handlers(previous):
    import signal

    for number, handler in previous.items():
        signal.signal(number, handler)


def report_errors(prog, body, *args):
    """Call ``body(*args)``; a bad input ends it with exit 2, a failed service with 3.

    Either way the user sees one line, ``PROG: error: ...``, and no traceback. An
    interruption (Ctrl-C, SIGTERM) ends it with 128 + the signal number, after the
    temporary files are removed. Anything else is a bug: one line saying so, exit 1,
    and the traceback under -v.
    """
    from .services import EXIT_SERVICE_ERROR, ServiceError

    previous = _install_signal_handlers()
    try:
        body(*args)
    except InputError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return EXIT_INPUT_ERROR
    except ServiceError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return EXIT_SERVICE_ERROR
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; nothing written", file=sys.stderr)
        return 130
    except Terminated as exc:
        print(f"{prog}: terminated by signal {exc.signum}; nothing written", file=sys.stderr)
        return 128 + exc.signum
    except MemoryError:
        print(f"{prog}: error: out of memory; nothing written", file=sys.stderr)
        return EXIT_INPUT_ERROR
    except Exception as exc:  # noqa: BLE001 - the last line of defence: say it is ours
        if log.isEnabledFor(logging.DEBUG):
            import traceback

            traceback.print_exc(file=sys.stderr)
        print(f"{prog}: internal error (a bug in xrayclass, please report it with the command line): "
              f"{type(exc).__name__}: {_one_line(exc)}" + ("" if log.isEnabledFor(logging.DEBUG)
                                                           else "; run with -v for the traceback"),
              file=sys.stderr)
        return EXIT_BUG
    finally:
        _restore_signal_handlers(previous)
    return 0


def _one_line(exc):
    text = " ".join(str(exc).split())
    return text if len(text) < 200 else text[:197] + "..."


def _run(stage, parser, body, argv):
    args = parser.parse_args(argv)
    configure_logging(stage, args.verbosity)
    return report_errors(parser.prog, body, args)


def _distinct(output, *inputs):
    for source in inputs:
        if source is not None and Path(output).resolve() == Path(source).resolve():
            raise InputError(f"{output}: the output would overwrite an input; choose another --output")


def _read_input(path, default, hint, **kwargs):
    if Path(path) == Path(default) and not Path(path).exists():
        raise InputError(f"{path}: file not found; {hint}")
    return read_table(path, **kwargs)


# -- stage 1 ---------------------------------------------------------------------------

def clustering_main(argv=None):
    from .clustering import FIT_SAMPLE

    parser = _parser(
        "clustering.py",
        "Stage 1: derive the 12 X-ray features of each CSC detection, drop detections "
        "missing any of them, apply the log/MinMax preprocessing and fit the "
        "full-covariance Gaussian mixture. Writes every input column plus the derived "
        "features, 'cluster' and the membership probabilities prob_0..prob_{K-1}, and "
        "the fitted model as JSON.",
    )
    parser.add_argument("--input", default=str(paths.CSC_INPUT),
                        help="CSC detections: .vot/.xml (VOTable), .fits, .csv or .parquet")
    parser.add_argument("--output", default=str(paths.CLUSTERS), help="clustered detections (.csv or .parquet)")
    parser.add_argument("--model", default=str(paths.MODEL),
                        help="where to write the fitted preprocessing and mixture (JSON)")
    parser.add_argument("--n-components", type=_positive_int, default=N_COMPONENTS,
                        help="number of Gaussian components (clusters)")
    parser.add_argument("--seed", type=_seed, default=RANDOM_STATE,
                        help="random seed of the mixture's initialisation (and of the fit subsample)")
    parser.add_argument("--fit-sample", type=_positive_int, default=FIT_SAMPLE,
                        help="fit the mixture on at most this many detections (a seeded subsample), then "
                             "assign every detection; at or below it, all are used, as in the paper")
    _add_allow_duplicates(parser)

    def body(args):
        from .checks import check_detections, check_outputs
        from .clustering import cluster_detections

        if args.fit_sample < args.n_components:
            raise InputError(f"--fit-sample {args.fit_sample} is fewer detections than the "
                             f"{args.n_components} clusters (--n-components) need")
        check_outputs([args.output, args.model], [args.input], formats=[OUTPUT_FORMATS, None])
        detections = _read_input(
            args.input, paths.CSC_INPUT,
            "put the CSC query result there (see README, 'Data') or pass --input", allowed=None,
        )
        detections = check_detections(detections, args.input, allow_duplicates=args.allow_duplicates)
        clustered, model = cluster_detections(detections, args.input, args.n_components, args.seed,
                                              args.fit_sample)
        write_outputs([(clustered, args.output), (model.to_dict(), args.model)])
        log.info("wrote %s (%s rows) and %s", args.output, f"{len(clustered):,}", args.model)

    return _run("clustering", parser, body, argv)


# -- stage 2 ---------------------------------------------------------------------------

def crossmatch_main(argv=None):
    from .crossmatch import CLUSTER_SOURCES
    from .services.xmatch import add_online_arguments, online_config, run_online

    parser = _parser(
        "crossmatch.py",
        "Stage 2: give each clustered detection its SIMBAD class (main_type; 'NaN' where "
        "SIMBAD has no object within 1 arcsec). By default the crossmatch is swapped in from "
        "a frozen table, such as the published August-2022 cluster_csc_simbad.csv made "
        "with TOPCAT's CDS X-Match (best match, all rows kept); it is checked row by row "
        "against the stage-1 table. With --online it is made now with CDS X-Match (exit "
        "status 3 if the service fails).",
    )
    parser.add_argument("--input", default=str(paths.CLUSTERS), help="stage-1 table (clustered detections)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--frozen", default=str(paths.FROZEN_CROSSMATCH),
                        help="existing crossmatch of the same detections, in the stage-1 row order "
                             "(the source name may be 'name' or 'name_1')")
    source.add_argument("--online", action="store_true",
                        help="crossmatch now with CDS X-Match against SIMBAD (keeps this run's clusters; "
                             "writes <output>.provenance.json)")
    source.add_argument("--catalog", metavar="PATH",
                        help="crossmatch by position against a local catalog with ra, dec (deg) and main_type, "
                             "e.g. a SIMBAD extract or the mock SIMBAD of make_mock_catalog.py (best match "
                             "within --radius; keeps this run's clusters)")
    add_online_arguments(parser)
    parser.add_argument("--clusters", choices=CLUSTER_SOURCES, default="frozen",
                        help="with --frozen: keep the frozen file's clusters (these reproduce the paper) or this run's")
    parser.add_argument("--output", default=str(paths.CROSSMATCH), help="stage-2 table (.csv or .parquet)")

    def body(args):
        from .crossmatch import swap_in_frozen

        from .checks import (check_catalog, check_detections, check_outputs, require_cluster_labels, require_names,
                             require_positions, require_radius)
        from .io import canonical_names

        online = online_config(args)
        check_output_path(args.output)
        if online is not None:
            check_outputs([args.output], [args.input])
            stage1 = _read_input(args.input, paths.CLUSTERS, "run clustering.py first or pass --input")
            if {"ra", "dec"} <= set(stage1.columns):
                require_positions(stage1, args.input)
            run_online(args, online, stage1)
            return
        if args.catalog:
            from .positional import crossmatch_local
            from .services.xmatch import DEFAULT_RADIUS

            radius = getattr(args, "radius", DEFAULT_RADIUS)
            require_radius(radius)
            check_outputs([args.output], [args.input, args.catalog])
            stage1 = _read_input(args.input, paths.CLUSTERS, "run clustering.py first or pass --input")
            stage1 = check_detections(stage1, args.input, clusters=True)
            catalog = check_catalog(read_table(args.catalog), args.catalog)
            crossmatched = crossmatch_local(stage1, args.input, catalog, args.catalog, radius)
            write_outputs([(crossmatched, args.output)])
            log.info("wrote %s (%s rows)", args.output, f"{len(crossmatched):,}")
            return
        check_outputs([args.output], [args.input, args.frozen])
        stage1 = _read_input(args.input, paths.CLUSTERS, "run clustering.py first or pass --input")
        frozen = _read_input(
            args.frozen, paths.FROZEN_CROSSMATCH,
            "put the published cluster_csc_simbad.csv there, or pass --frozen PATH",
        )
        for table, path in ((stage1, args.input), (frozen, args.frozen)):
            require_names(canonical_names(table, path), path)
        if args.clusters == "frozen" and "cluster" in frozen.columns:
            require_cluster_labels(frozen, args.frozen)
        crossmatched = swap_in_frozen(stage1, args.input, frozen, args.frozen, clusters=args.clusters)
        write_outputs([(crossmatched, args.output)])
        log.info("wrote %s (%s rows)", args.output, f"{len(crossmatched):,}")

    return _run("crossmatch", parser, body, argv)


# -- stage 3 ---------------------------------------------------------------------------

def classification_main(argv=None):
    from .classification import METHODS, OUTLIER_FRACTION
    from .naive_bayes import SCORES

    parser = _parser(
        "classification.py",
        "Stage 3: inside each cluster, give every detection without a SIMBAD match (or with "
        "an uninformative type) probabilities over the ten classes, by softmin of its squared "
        "Mahalanobis distance to each class's labeled detections (or, with --method naive-bayes, "
        "by an optimized naive Bayes). Each classified detection also gets an outlier measure, its "
        "percentile among the labeled detections, a flag for the top share, and a probability track "
        "saying which feature category drove its class. Accepts the stage-2 table or a frozen "
        "crossmatch file such as the published cluster_csc_simbad.csv.",
    )
    parser.add_argument("--input", default=str(paths.CROSSMATCH),
                        help="crossmatched detections with 'cluster' and 'main_type'")
    parser.add_argument("--output", default=str(paths.DETECTIONS),
                        help="detection-level classification (.csv or .parquet)")
    parser.add_argument("--model-output", default=str(paths.CLASSIFIER_MODEL),
                        help="where to write the classifier artifact (JSON): preprocessing, per-cluster class "
                             "references, naive Bayes model and outlier distribution")
    parser.add_argument("--method", choices=METHODS, default="mahalanobis",
                        help="classifier giving the probabilities: the paper's per-cluster Mahalanobis, or "
                             "the optimized naive Bayes")
    parser.add_argument("--no-location", dest="location", action="store_false",
                        help="naive Bayes without the location category (|galactic latitude|); the paper uses "
                             "no positions")
    parser.add_argument("--nb-score", choices=SCORES, default="macro_f1",
                        help="what the naive Bayes category weights are tuned to maximize")
    parser.add_argument("--outlier-fraction", type=_fraction, default=OUTLIER_FRACTION,
                        help="flag detections whose outlier measure is above this top share of the references'")
    parser.add_argument("--outliers-output", default=str(paths.OUTLIERS),
                        help="table of the flagged outliers, most outlying first, with their features")
    parser.add_argument("--no-outliers", dest="explain", action="store_false",
                        help="skip the outlier measures and probability tracks (about 4x faster on "
                             "large catalogs; the probabilities are the same)")
    _add_allow_duplicates(parser)

    def body(args):
        from .checks import check_detections, check_outputs
        from .classification import classify_detections, outlier_table

        check_outputs([args.output, args.model_output, args.outliers_output], [args.input],
                      formats=[OUTPUT_FORMATS, None, OUTPUT_FORMATS])
        table = _read_input(args.input, paths.CROSSMATCH, "run crossmatch.py first or pass --input")
        table = check_detections(table, args.input, allow_duplicates=args.allow_duplicates, clusters=True)
        classified, model = classify_detections(table, args.input, method=args.method, location=args.location,
                                                score=args.nb_score, outlier_fraction=args.outlier_fraction,
                                                explain=args.explain)
        outliers = outlier_table(classified)
        write_outputs([(classified, args.output), (model.to_dict(), args.model_output),
                       (outliers, args.outliers_output)])
        log.info("wrote %s (%s rows), %s and %s (%s outliers)", args.output, f"{len(classified):,}",
                 args.model_output, args.outliers_output, f"{len(outliers):,}")

    return _run("classification", parser, body, argv)


# -- stage 4 ---------------------------------------------------------------------------

def master_classification_main(argv=None):
    from .voting import STAGE4_COLUMNS

    parser = _parser(
        "master_classification.py",
        "Stage 4: a master class for each source by hard (majority) and soft (mean "
        "probability) voting over its detections. Writes the uniquely classified sources "
        "(votes agree) and the ambiguous ones, with each class's probability as 'mean±std', "
        "and prints a summary.",
    )
    parser.add_argument("--input", default=str(paths.DETECTIONS), help="detection-level classification")
    parser.add_argument("--out-dir", default=str(paths.OUT_DIR), help="directory for the two tables")
    parser.add_argument("--format", choices=("csv", "parquet"), default="csv", help="format of the two tables")
    _add_allow_duplicates(parser)

    def body(args):
        from .checks import check_detections, check_outputs
        from .voting import format_summary, master_classification

        out_dir = Path(args.out_dir)
        if out_dir.exists() and not out_dir.is_dir():
            raise InputError(f"{out_dir}: --out-dir is not a directory")
        uniquely_path = out_dir / Path(paths.UNIQUELY).with_suffix(f".{args.format}")
        ambiguous_path = out_dir / Path(paths.AMBIGUOUS).with_suffix(f".{args.format}")
        check_outputs([uniquely_path, ambiguous_path, out_dir / "master_summary.json"], [args.input],
                      formats=[OUTPUT_FORMATS, OUTPUT_FORMATS, None])
        # Only the columns the votes and tables use: the detection table may be wide.
        detections = _read_input(args.input, paths.DETECTIONS, "run classification.py first or pass --input",
                                 columns=STAGE4_COLUMNS)
        detections = check_detections(detections, args.input, allow_duplicates=args.allow_duplicates,
                                      positions=False)
        uniquely, ambiguous, summary = master_classification(detections, args.input)
        write_outputs([(uniquely, uniquely_path), (ambiguous, ambiguous_path),
                       (summary, out_dir / "master_summary.json")])
        log.info("wrote %s (%s sources), %s (%s sources) and %s", uniquely_path, f"{len(uniquely):,}",
                 ambiguous_path, f"{len(ambiguous):,}", out_dir / "master_summary.json")
        print(format_summary(summary))

    return _run("master_classification", parser, body, argv)


def _fraction(text):
    value = float(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def _seed(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {text}") from None
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"must be an integer from 0 to 2**32 - 1, got {text}")
    return value


def _add_allow_duplicates(parser):
    parser.add_argument("--allow-duplicates", action="store_true",
                        help="drop rows repeating an earlier detection (same name, obsid and values) with a "
                             "warning, instead of stopping")


def _positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value
