"""Command lines of the four stages; the top-level scripts call these ``main`` functions.

Each stage reads the previous stage's table and writes its own; with no arguments
they chain through the published file names. Problems with the input end the stage
with a one-line message naming the file, exit status 2, and no output written.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from xrayclass.cli.argtypes import fraction as _fraction
from xrayclass.cli.argtypes import positive_float as _positive_float
from xrayclass.cli.argtypes import positive_int as _positive_int
from xrayclass.cli.argtypes import seed as _seed
from xrayclass.cli.common import PUBLISHED_MIXTURE
from xrayclass.cli.common import LazyStage1 as _LazyStage1
from xrayclass.cli.common import chosen_feature_set as _chosen_feature_set
from xrayclass.cli.common import import_while_reading as _import_while_reading
from xrayclass.cli.common import model_for_stage3 as _model_for_stage3
from xrayclass.cli.common import one_line as _one_line
from xrayclass.cli.common import read_input as _read_input
from xrayclass.cli.common import stage3_feature_set as _stage3_feature_set
from xrayclass.cli.common import write_stage2 as _write_stage2
from xrayclass.cli.common import write_stage4 as _write_stage4
from xrayclass.constants import N_COMPONENTS, RANDOM_STATE
from xrayclass.core.featuresets import FeatureSet
from xrayclass.exceptions import EXIT_INPUT_ERROR, input_files
from xrayclass.io import paths
from xrayclass.io.paths import beside
from xrayclass.io.streaming import table_columns as _table_columns
from xrayclass.io.tables import (
    OUTPUT_FORMATS,
    InputError,
    JoinedRows,
    read_table,
    table_format,
    write_outputs,
)

if TYPE_CHECKING:
    import pandas as pd

    from xrayclass.stages.classification import ClassifiedDetections

__all__ = [
    "EXIT_BUG",
    "NO_CSC_INPUT_HINT",
    "PUBLISHED_MIXTURE",
    "DefaultsFormatter",
    "Terminated",
    "add_engine_arguments",
    "classification_main",
    "clustering_main",
    "configure_logging",
    "crossmatch_main",
    "master_classification_main",
    "report_errors",
    "verbosity_options",
]

log = logging.getLogger("xrayclass")

#: Exit status of an unexpected error (a bug): Python's own for an uncaught exception.
EXIT_BUG = 1


class _StageFormatter(logging.Formatter):
    def __init__(self, stage: str) -> None:
        super().__init__("%(message)s")
        self.stage = stage

    def format(self, record: logging.LogRecord) -> str:
        message = super().format(record)
        level = f"{record.levelname.lower()}: " if record.levelno >= logging.WARNING else ""
        return f"[{self.stage}] {level}{message}"


def configure_logging(stage: str, verbosity: int = 0) -> None:
    """Log lines ``[stage] message`` to stderr; -v adds detail, -q keeps warnings only."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_StageFormatter(stage))
    root = logging.getLogger("xrayclass")
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbosity > 0 else logging.WARNING if verbosity < 0 else logging.INFO)
    root.propagate = False


class DefaultsFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Show defaults in ``--help``, except where there is none to show."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.required or action.nargs == 0:  # flags say nothing
            return action.help
        return super()._get_help_string(action)


def verbosity_options() -> argparse.ArgumentParser:
    """The -v / -q options every command takes, as an argparse parent parser."""
    options = argparse.ArgumentParser(add_help=False)
    group = options.add_mutually_exclusive_group()
    group.add_argument(
        "-v",
        "--verbose",
        action="store_const",
        const=1,
        dest="verbosity",
        default=argparse.SUPPRESS,
        help="log more detail",
    )
    group.add_argument(
        "-q",
        "--quiet",
        action="store_const",
        const=-1,
        dest="verbosity",
        default=argparse.SUPPRESS,
        help="log warnings and errors only",
    )
    return options


def _parser(prog: str, description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description=description, formatter_class=DefaultsFormatter, parents=[verbosity_options()]
    )
    parser.set_defaults(verbosity=0)
    return parser


class Terminated(BaseException):
    """SIGTERM (or SIGHUP) arrived: unwind, so that every temporary file is removed."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise Terminated(signum)


def _install_signal_handlers() -> dict[int, Any]:
    """Turn SIGTERM/SIGHUP into an exception (SIGINT already is one); return the old handlers."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return {}
    previous: dict[int, Any] = {}
    for name in ("SIGTERM", "SIGHUP"):
        number = getattr(signal, name, None)
        if number is not None:
            previous[number] = signal.signal(number, _raise_terminated)
    return previous


def _restore_signal_handlers(previous: dict[int, Any]) -> None:
    import signal

    for number, handler in previous.items():
        signal.signal(number, handler)


def report_errors(prog: str, body: Callable[..., object], *args: Any) -> int:
    """Call ``body(*args)``; a bad input ends it with exit 2, a failed service with 3.

    Either way the user sees one line, ``PROG: error: ...``, and no traceback. An
    interruption (Ctrl-C, SIGTERM) ends it with 128 + the signal number, after the
    temporary files are removed. Anything else is a bug: one line saying so, exit 1,
    and the traceback under -v.
    """
    from xrayclass.exceptions import EXIT_SERVICE_ERROR, ServiceError

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
        print(
            f"{prog}: internal error (a bug in xrayclass, please report it with the command line): "
            f"{type(exc).__name__}: {_one_line(exc)}"
            + ("" if log.isEnabledFor(logging.DEBUG) else "; run with -v for the traceback"),
            file=sys.stderr,
        )
        return EXIT_BUG
    finally:
        _restore_signal_handlers(previous)
    return 0


def _run(
    stage: str,
    parser: argparse.ArgumentParser,
    body: Callable[[argparse.Namespace], None],
    argv: Sequence[str] | None,
) -> int:
    args = parser.parse_args(argv)
    configure_logging(stage, args.verbosity)
    return report_errors(parser.prog, body, args)


# -- stage 1 ---------------------------------------------------------------------------

#: What stage 1 says when the default input is absent: the ways to get one.
NO_CSC_INPUT_HINT = (
    "get the CSC detections with `fetch_csc.py` (network; README, 'Fetching from the services'), or put "
    f"your own CSC query result there (with the published frozen crossmatch {paths.FROZEN_CROSSMATCH} for "
    "stage 2; README, 'Data files'), or try a SYNTHETIC catalog: `make_mock_catalog.py --n-detections 30000 "
    "--output mock.parquet` then --input mock.parquet (README, 'A mock catalog with known truth'), "
    "which `make run` does by itself when there is no input"
)


def _add_features(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--features",
        default=None,
        metavar="FILE",
        help="feature set (TOML: the features, their scaling, the raw columns they derive from and "
        "the naive-Bayes categories; see xrayclass/featuresets/) " + what,
    )


def clustering_main(argv: Sequence[str] | None = None) -> int:
    from xrayclass.stages.clustering import FIT_SAMPLE

    parser = _parser(
        "clustering.py",
        "Stage 1: derive the 12 X-ray features of each CSC detection, drop detections "
        "missing any of them, apply the log/MinMax preprocessing and fit the "
        "full-covariance Gaussian mixture. Writes every input column plus the derived "
        "features, 'cluster' and the membership probabilities prob_0..prob_{K-1}, and "
        "the fitted model as JSON.",
    )
    parser.add_argument(
        "--input", default=str(paths.CSC_INPUT), help="CSC detections: .vot/.xml (VOTable), .fits, .csv or .parquet"
    )
    parser.add_argument("--output", default=str(paths.CLUSTERS), help="clustered detections (.csv or .parquet)")
    parser.add_argument(
        "--model",
        default=None,
        help=f"where to write the fitted preprocessing and mixture (JSON; default: {paths.MODEL.name} beside --output)",
    )
    parser.add_argument(
        "--n-components", type=_positive_int, default=N_COMPONENTS, help="number of Gaussian components (clusters)"
    )
    parser.add_argument(
        "--seed",
        type=_seed,
        default=RANDOM_STATE,
        help="random seed of the mixture's initialisation (and of the fit subsample)",
    )
    parser.add_argument(
        "--fit-sample",
        type=_positive_int,
        default=FIT_SAMPLE,
        help="fit the mixture on at most this many detections (a seeded subsample), then "
        "assign every detection; at or below it, all are used, as in the paper",
    )
    parser.add_argument(
        "--log-floor",
        type=_positive_float,
        default=None,
        metavar="VALUE",
        help="lower bound on the shift of the log features: log(x + max(VALUE, smallest "
        "non-zero / 10)) (default: no bound, the paper's rule)",
    )
    _add_features(parser, "(default: the paper's 12); recorded in the model")
    add_engine_arguments(parser, ("memory", "streaming", "dask"))
    _add_allow_duplicates(parser)

    def body(args: argparse.Namespace) -> None:
        from xrayclass.io.checks import check_detections, check_outputs
        from xrayclass.stages.clustering import cluster_detections

        feature_set = _chosen_feature_set(args.features)

        if args.fit_sample < args.n_components:
            raise InputError(
                f"--fit-sample {args.fit_sample} is fewer detections than the "
                f"{args.n_components} clusters (--n-components) need"
            )
        if args.model is None:
            args.model = str(beside(args.output, paths.MODEL))
        check_outputs([args.output, args.model], [args.input], formats=[OUTPUT_FORMATS, None])
        if args.engine != "memory":
            _clustering_out_of_core(args, feature_set)
            return
        detections = _read_input(args.input, paths.CSC_INPUT, NO_CSC_INPUT_HINT, allowed=None)
        detections = check_detections(detections, args.input, allow_duplicates=args.allow_duplicates)
        with input_files(args.input):
            clustered, model = cluster_detections(
                detections,
                args.n_components,
                args.seed,
                args.fit_sample,
                log_floor=args.log_floor,
                feature_set=feature_set,
            )
        model.training["input"] = str(args.input)
        write_outputs([(clustered, args.output), (model.to_dict(), args.model)])
        log.info("wrote %s (%s rows) and %s", args.output, f"{len(clustered):,}", args.model)

    return _run("clustering", parser, body, argv)


def _clustering_out_of_core(args: argparse.Namespace, feature_set: FeatureSet) -> None:
    """Stage 1 with --engine streaming or dask: the same files as in memory, in bounded memory."""
    from xrayclass.io.tables import table_format

    _refuse_memory_only(args, [("--allow-duplicates", args.allow_duplicates)])
    if Path(args.input) == Path(paths.CSC_INPUT) and not Path(args.input).exists():
        raise InputError(f"{args.input}: file not found; {NO_CSC_INPUT_HINT}")
    _streamable(args.input, args.engine, table_format)
    _start_engine(args.engine)
    from xrayclass.engine import EngineConfig
    from xrayclass.engine.clustering import cluster_file
    from xrayclass.engine.dask import cluster_dataset
    from xrayclass.stages.clustering import ClusteringConfig

    config = ClusteringConfig(args.n_components, args.seed, args.fit_sample, args.log_floor, feature_set)
    engine = EngineConfig(args.engine, args.batch_rows, args.scheduler, args.workers)
    run = cluster_file if args.engine == "streaming" else cluster_dataset
    _, n_rows = run(args.input, args.output, args.model, config, engine)
    log.info("wrote %s (%s rows) and %s", args.output, f"{n_rows:,}", args.model)


def _start_engine(engine: str) -> None:
    """Before an engine's work: the work folders of killed runs removed from TMPDIR, Dask there."""
    from xrayclass.io.tables import remove_stale_folders

    if engine == "dask":
        from xrayclass.engine.dask import require_dask

        require_dask()
    remove_stale_folders()


def _refuse_memory_only(args: argparse.Namespace, options: Sequence[tuple[str, object]]) -> None:
    """Exit 2 naming the options the chosen engine does not take."""
    used = [option for option, on in options if on]
    if used:
        raise InputError(f"{', '.join(used)}: not available with --engine {args.engine} yet; use --engine memory")


def _streamable(path: str, engine: str, table_format: Callable[[str], str]) -> None:
    if table_format(path) not in ("csv", "parquet"):
        raise InputError(f"{path}: --engine {engine} reads .csv or .parquet tables; convert it or use --engine memory")


# -- stage 2 ---------------------------------------------------------------------------


def crossmatch_main(argv: Sequence[str] | None = None) -> int:
    from xrayclass.cli.online import add_online_arguments, online_config, run_online
    from xrayclass.stages.crossmatch import CLUSTER_SOURCES

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
    source.add_argument(
        "--frozen",
        default=str(paths.FROZEN_CROSSMATCH),
        help="existing crossmatch of the same detections, in the stage-1 row order "
        "(the source name may be 'name' or 'name_1')",
    )
    source.add_argument(
        "--online",
        action="store_true",
        help="crossmatch now with CDS X-Match against SIMBAD (keeps this run's clusters; "
        "writes <output>.provenance.json)",
    )
    source.add_argument(
        "--catalog",
        metavar="PATH",
        help="crossmatch by position against a local catalog with ra, dec (deg) and main_type, "
        "e.g. a SIMBAD extract or the mock SIMBAD of make_mock_catalog.py (best match "
        "within --radius; keeps this run's clusters)",
    )
    add_online_arguments(parser)
    parser.add_argument(
        "--clusters",
        choices=CLUSTER_SOURCES,
        default="frozen",
        help="with --frozen: keep the frozen file's clusters (these reproduce the paper) or this run's",
    )
    parser.add_argument("--output", default=str(paths.CROSSMATCH), help="stage-2 table (.csv or .parquet)")
    parser.add_argument(
        "--model",
        default=None,
        help=f"the stage-1 model written by clustering.py (default: {paths.MODEL.name} beside --input). It is updated "
        "in place to describe the clusters stage 3 will use: with the frozen file's "
        "clusters, a mixture estimated from them (the stage-1 fit is kept inside it); "
        "otherwise the stage-1 fit",
    )
    add_engine_arguments(parser, ("memory", "streaming"))

    def body(args: argparse.Namespace) -> None:
        from xrayclass.io.checks import (
            check_catalog,
            check_detections,
            check_outputs,
            require_cluster_labels,
            require_names,
            require_positions,
            require_radius,
        )
        from xrayclass.io.tables import canonical_names
        from xrayclass.stages.crossmatch import swap_in_frozen

        online = online_config(args)
        model_path = Path(args.model) if args.model is not None else beside(args.input, paths.MODEL)
        if args.engine != "memory":
            _refuse_memory_only(
                args,
                [("--online", online is not None), ("--frozen", not args.catalog and online is None)],
            )
        if online is not None:
            check_outputs([args.output, model_path], [args.input], formats=[OUTPUT_FORMATS, None])
            stage1 = _read_input(args.input, paths.CLUSTERS, "run clustering.py first or pass --input")
            if {"ra", "dec"} <= set(stage1.columns):
                require_positions(stage1, args.input)
            dry_run = getattr(args, "dry_run", False)
            if run_online(stage1, online, input_path=args.input, output=args.output, dry_run=dry_run) is not None:
                update = _model_for_stage3(model_path, args.model is not None, stage1, args.input)
                if update is not None:
                    write_outputs([(update, model_path)])
                    log.info("wrote %s", model_path)
            return
        if args.catalog:
            from xrayclass.core.positional import crossmatch_local
            from xrayclass.services.xmatch import DEFAULT_RADIUS

            radius = getattr(args, "radius", DEFAULT_RADIUS)
            require_radius(radius)
            check_outputs([args.output, model_path], [args.input, args.catalog], formats=[OUTPUT_FORMATS, None])
            if args.engine == "streaming":
                _crossmatch_streamed(args, radius, model_path)
                return
            stage1 = _read_input(args.input, paths.CLUSTERS, "run clustering.py first or pass --input")
            stage1 = check_detections(stage1, args.input, clusters=True)
            catalog = check_catalog(read_table(args.catalog), args.catalog)
            with input_files(args.input, stage1=args.input, catalog=args.catalog):
                crossmatched = crossmatch_local(stage1, catalog, radius)
            update = _model_for_stage3(model_path, args.model is not None, stage1, args.input)
            _write_stage2(crossmatched, args.output, update, model_path)
            return
        check_outputs([args.output, model_path], [args.input, args.frozen], formats=[OUTPUT_FORMATS, None])
        stage1 = _read_input(args.input, paths.CLUSTERS, "run clustering.py first or pass --input")
        frozen = _read_input(
            args.frozen,
            paths.FROZEN_CROSSMATCH,
            "put the published cluster_csc_simbad.csv there, or pass --frozen PATH",
        )
        for table, path in ((stage1, args.input), (frozen, args.frozen)):
            require_names(canonical_names(table, path), path)
        if args.clusters == "frozen" and "cluster" in frozen.columns:
            require_cluster_labels(frozen, args.frozen)
        with input_files(args.input, stage1=args.input, frozen=args.frozen):
            crossmatched = swap_in_frozen(stage1, frozen, clusters=args.clusters)
        frozen_clusters = (crossmatched, args.frozen, len(frozen)) if args.clusters == "frozen" else None
        update = _model_for_stage3(model_path, args.model is not None, stage1, args.input, frozen_clusters)
        _write_stage2(crossmatched, args.output, update, model_path)

    return _run("crossmatch", parser, body, argv)


def _crossmatch_streamed(args: argparse.Namespace, radius: float, model_path: Path) -> None:
    """Stage 2 with --catalog and --engine streaming: the detections in batches, the catalog in memory."""
    from xrayclass.engine.crossmatch import crossmatch_file
    from xrayclass.io.checks import check_catalog
    from xrayclass.io.tables import table_format

    if Path(args.input) == Path(paths.CLUSTERS) and not Path(args.input).exists():
        raise InputError(f"{args.input}: file not found; run clustering.py first or pass --input")
    _streamable(args.input, args.engine, table_format)
    catalog = check_catalog(read_table(args.catalog), args.catalog)
    update = _model_for_stage3(model_path, args.model is not None, _LazyStage1(args.input), args.input)
    with input_files(args.input, stage1=args.input, catalog=args.catalog):
        from xrayclass.engine import EngineConfig
        from xrayclass.stages.crossmatch import CrossmatchConfig

        n_rows = crossmatch_file(
            args.input,
            catalog,
            args.output,
            CrossmatchConfig(source="catalog", radius=radius),
            EngineConfig("streaming", args.batch_rows),
            (update, model_path) if update is not None else None,
        )
    log.info("wrote %s (%s rows)%s", args.output, f"{n_rows:,}", f" and updated {model_path}" if update else "")


# -- stage 3 ---------------------------------------------------------------------------


def _stage3_unread_columns(path: str, feature_set: FeatureSet) -> list[str]:
    """The columns of a Parquet input that stage 3 only passes through (none for other formats)."""
    from xrayclass.io.checks import checked_columns, cluster_count
    from xrayclass.stages.classification_input import input_columns

    if table_format(path, allowed=None) != "parquet" or not Path(path).is_file():
        return []
    read = {*input_columns(feature_set), *checked_columns()}
    # The prob_* columns too: they give K, the clusters the labels are checked against.
    return [c for c in _table_columns(path) if c not in read and cluster_count([c]) is None]


def _stage3_output(
    parts: ClassifiedDetections, path: str, unread: list[str], n_read: int, feature_set: FeatureSet
) -> pd.DataFrame | JoinedRows:
    """Stage 3's output table: ``parts`` joined to the columns ``unread`` of the input at ``path``.

    Those are read when the table is written, in the memory the classification used.
    """
    if not unread:
        return parts.table()
    import pandas as pd

    from xrayclass.io.tables import canonical_names
    from xrayclass.stages.classification_input import passthrough_columns

    # The order classify_detections gives the whole table: the input's other columns
    # after the computed ones, in the input's order (one named like a computed column
    # is left out, as there).
    computed = set(parts.computed.columns)
    input_order = canonical_names(pd.DataFrame(columns=_table_columns(path))).columns
    rest = [c for c in passthrough_columns(list(input_order), feature_set) if c not in computed]
    wanted = [c for c in unread if c in rest]
    if not wanted:
        return parts.table()

    def read_unread() -> pd.DataFrame:
        others = read_table(path, columns=wanted)
        if len(others) != n_read:
            raise InputError(
                f"{path}: {len(others):,} rows now, {n_read:,} when stage 3 read it: the file changed meanwhile"
            )
        return others

    return JoinedRows(parts.table(), read_unread, parts.rows, [*parts.computed.columns, *rest])


def classification_main(argv: Sequence[str] | None = None) -> int:
    from xrayclass.constants import CLASSIFIER_METHODS as METHODS
    from xrayclass.constants import LIKELIHOODS, NB_SCORES, OUTLIER_FRACTION, PRIORS

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
    parser.add_argument(
        "--input", default=str(paths.CROSSMATCH), help="crossmatched detections with 'cluster' and 'main_type'"
    )
    parser.add_argument(
        "--output", default=str(paths.DETECTIONS), help="detection-level classification (.csv or .parquet)"
    )
    parser.add_argument(
        "--model-output",
        default=None,
        help="where to write the classifier artifact (JSON): preprocessing, per-cluster class "
        f"references, naive Bayes model and outlier distribution (default: {paths.CLASSIFIER_MODEL.name} "
        "beside --output)",
    )
    parser.add_argument(
        "--method",
        choices=METHODS,
        default="mahalanobis",
        help="classifier giving the probabilities: the paper's per-cluster Mahalanobis, or the optimized naive Bayes",
    )
    parser.add_argument(
        "--likelihood",
        choices=LIKELIHOODS,
        default="distance",
        help="Mahalanobis scoring: softmin of squared distances (the paper's) or the class-conditional "
        "Gaussian log-density (with the log pseudo-determinant)",
    )
    parser.add_argument(
        "--priors",
        choices=PRIORS,
        default="none",
        help="class priors of the Mahalanobis scoring: none (the paper's) or each class's share of "
        "its cluster's references",
    )
    parser.add_argument(
        "--log-floor",
        type=_positive_float,
        default=None,
        metavar="VALUE",
        help="lower bound on the shift of the log features: log(x + max(VALUE, smallest "
        "non-zero / 10)) (default: no bound, the paper's rule)",
    )
    parser.add_argument(
        "--calibrate",
        action="store_true",
        help="fit a temperature to the probabilities out of fold on the references (3 folds by "
        "source), store it in the classifier artifact and apply it",
    )
    parser.add_argument(
        "--no-location",
        dest="location",
        action="store_false",
        help="naive Bayes without the location category (|galactic latitude|); the paper uses no positions",
    )
    parser.add_argument(
        "--nb-score",
        choices=NB_SCORES,
        default="macro_f1",
        help="what the naive Bayes category weights are tuned to maximize",
    )
    parser.add_argument(
        "--outlier-fraction",
        type=_fraction,
        default=OUTLIER_FRACTION,
        help="flag detections whose outlier measure is above this top share of the references'",
    )
    parser.add_argument(
        "--outliers-output",
        default=None,
        help=f"table of the flagged outliers, most outlying first, with their features (default: {paths.OUTLIERS.name} "
        "beside --output)",
    )
    parser.add_argument(
        "--no-outliers",
        dest="explain",
        action="store_false",
        help="skip the outlier measures and probability tracks (about 4x faster on "
        "large catalogs; the probabilities are the same)",
    )
    parser.add_argument(
        "--strict-labels",
        action="store_true",
        help="stop (exit status 2, nothing written) instead of warning when a class has no "
        "reference in any cluster or more than 5%% of the matched detections carry a SIMBAD "
        "type the package does not know",
    )
    parser.add_argument(
        "--labels",
        action="append",
        default=None,
        metavar="LABELS_CSV",
        help="your own labels (name, class, comment, labeler, time; as the explorer of "
        "'analysis.py explore' exports them), repeatable: a label of one of the ten classes "
        "makes the source's detections references of that class, overriding SIMBAD; "
        "'other' leaves them out",
    )
    _add_features(
        parser,
        "(default: the one the stage-1 model records, else the paper's 12); must be the "
        "stage-1 model's; recorded in the classifier artifact",
    )
    parser.add_argument(
        "--model",
        default=None,
        help=f"the stage-1 model whose feature set stage 3 checks against (default: {paths.MODEL.name} beside "
        "--input, when it exists)",
    )
    add_engine_arguments(parser, ("memory", "streaming", "dask"))
    _add_allow_duplicates(parser)

    def body(args: argparse.Namespace) -> None:
        from xrayclass.io.checks import check_detections, check_outputs

        feature_set = _stage3_feature_set(
            args.features,
            args.model if args.model is not None else beside(args.input, paths.MODEL),
            args.model is not None,
        )
        # A run's files stay together: the classifier and the outliers go beside the table.
        if args.model_output is None:
            args.model_output = str(beside(args.output, paths.CLASSIFIER_MODEL))
        if args.outliers_output is None:
            args.outliers_output = str(beside(args.output, paths.OUTLIERS))

        check_outputs(
            [args.output, args.model_output, args.outliers_output],
            [args.input, *(args.labels or [])],
            formats=[OUTPUT_FORMATS, None, OUTPUT_FORMATS],
        )
        # The classifier's choices, the same for every engine.
        stage3_options: dict[str, Any] = dict(
            method=args.method,
            location=args.location,
            score=args.nb_score,
            outlier_fraction=args.outlier_fraction,
            explain=args.explain,
            strict_labels=args.strict_labels,
            likelihood=args.likelihood,
            priors=args.priors,
            log_floor=args.log_floor,
            calibrate=args.calibrate,
            feature_set=feature_set,
        )
        if args.engine != "memory":
            # Own labels relabel whole sources and duplicates are found over the whole table:
            # both need every row at once.
            memory_only = [
                option
                for option, used in (
                    ("--labels", bool(args.labels)),
                    ("--allow-duplicates", args.allow_duplicates),
                )
                if used
            ]
            if memory_only:
                raise InputError(
                    f"{', '.join(memory_only)}: not available with --engine {args.engine}; use --engine memory"
                )
            from xrayclass.engine import EngineConfig
            from xrayclass.stages.classification import ClassificationConfig

            config = ClassificationConfig(
                **{("nb_score" if key == "score" else key): value for key, value in stage3_options.items()}
            )
            engine = EngineConfig(args.engine, args.batch_rows, args.scheduler, args.workers)
            if not Path(args.input).exists() and Path(args.input) == Path(paths.CROSSMATCH):
                raise InputError(f"{args.input}: file not found; run crossmatch.py first or pass --input")
            _start_engine(args.engine)
            if args.engine == "streaming":
                from xrayclass.engine.streaming import classify_file

                _, n_rows, n_outliers = classify_file(
                    args.input, args.output, args.model_output, args.outliers_output, config, engine
                )
            else:
                from xrayclass.engine.dask import classify_dataset

                _, n_rows, n_outliers = classify_dataset(
                    args.input, args.output, args.model_output, args.outliers_output, config, engine
                )
            log.info(
                "wrote %s (%s rows), %s and %s (%s outliers)",
                args.output,
                f"{n_rows:,}",
                args.model_output,
                args.outliers_output,
                f"{n_outliers:,}",
            )
            return
        label_summary = None
        if args.labels:
            from xrayclass.core.labels import apply_labels, log_summary
            from xrayclass.io.labels import read_labels

            labels, label_files = read_labels(args.labels)
        # A Parquet input's pass-through columns stay in the file until the output is
        # written (not with --allow-duplicates: the repeats dropped would shift the rows).
        unread = _stage3_unread_columns(args.input, feature_set) if not args.allow_duplicates else []
        from xrayclass.stages.classification_input import PREPARATION_OPTIONS, prepare_detections

        # Started once this thread has imported all it needs until the model: two threads
        # importing the same library can each hold a part of a circular import.
        imported = _import_while_reading("xrayclass.stages.classification")
        table = _read_input(
            args.input,
            paths.CROSSMATCH,
            "run crossmatch.py first or pass --input",
            columns=[c for c in _table_columns(args.input) if c not in unread] if unread else None,
        )
        n_read = len(table)
        table = check_detections(table, args.input, allow_duplicates=args.allow_duplicates, clusters=True)
        if args.labels:
            table, label_summary = apply_labels(table, labels)
            label_summary.files = label_files
            log_summary(label_summary)
        # Prepared while scikit-learn and SciPy go on loading; the model waits for them.
        with input_files(args.input):
            prepared = prepare_detections(
                table, **{key: value for key, value in stage3_options.items() if key in PREPARATION_OPTIONS}
            )
        del table  # the outputs are written in the memory it held
        imported()
        from xrayclass.stages.classification import classify_prepared, outlier_table

        with input_files(args.input):
            parts = classify_prepared(
                prepared, **{key: value for key, value in stage3_options.items() if key not in PREPARATION_OPTIONS}
            )
        del prepared
        model = parts.model
        outliers = outlier_table(parts.computed, feature_set)
        classified = _stage3_output(parts, args.input, unread, n_read, feature_set)
        document = model.to_dict()
        if label_summary is not None:
            document["own_labels"] = label_summary.to_dict()
        write_outputs([(classified, args.output), (document, args.model_output), (outliers, args.outliers_output)])
        log.info(
            "wrote %s (%s rows), %s and %s (%s outliers)",
            args.output,
            f"{len(classified):,}",
            args.model_output,
            args.outliers_output,
            f"{len(outliers):,}",
        )

    return _run("classification", parser, body, argv)


# -- stage 4 ---------------------------------------------------------------------------


def master_classification_main(argv: Sequence[str] | None = None) -> int:
    from xrayclass.stages.master_classification import STAGE4_COLUMNS

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
    add_engine_arguments(parser, ("memory", "streaming", "dask"))
    _add_allow_duplicates(parser)

    def body(args: argparse.Namespace) -> None:
        from xrayclass.io.checks import check_detections, check_outputs
        from xrayclass.stages.master_classification import master_classification

        out_dir = Path(args.out_dir)
        if out_dir.exists() and not out_dir.is_dir():
            raise InputError(f"{out_dir}: --out-dir is not a directory")
        run = paths.RunLayout(out_dir)
        uniquely_path, ambiguous_path = run.stage4_tables(args.format)
        check_outputs(
            [uniquely_path, ambiguous_path, run.summary], [args.input], formats=[OUTPUT_FORMATS, OUTPUT_FORMATS, None]
        )
        if args.engine != "memory" and not Path(args.input).exists() and Path(args.input) == Path(paths.DETECTIONS):
            raise InputError(f"{args.input}: file not found; run classification.py first or pass --input")
        if args.engine != "memory":
            _start_engine(args.engine)
        if args.engine == "streaming":
            # The two tables stay on disk until they are written, a batch at a time.
            from xrayclass.engine import EngineConfig
            from xrayclass.engine.streaming import master_classification_file

            spilled, spilled_ambiguous, summary = master_classification_file(
                args.input, engine=EngineConfig("streaming", args.batch_rows)
            )
            with spilled, spilled_ambiguous:
                _write_stage4(spilled, spilled_ambiguous, summary, run, uniquely_path, ambiguous_path)
            return
        if args.engine == "dask":
            from xrayclass.engine import EngineConfig
            from xrayclass.engine.dask import master_classification_dataset

            uniquely, ambiguous, summary = master_classification_dataset(
                args.input, engine=EngineConfig(args.engine, args.batch_rows, args.scheduler, args.workers)
            )
        else:
            # Only the columns the votes and tables use: the detection table may be wide.
            detections = _read_input(
                args.input, paths.DETECTIONS, "run classification.py first or pass --input", columns=STAGE4_COLUMNS
            )
            detections = check_detections(
                detections, args.input, allow_duplicates=args.allow_duplicates, positions=False
            )
            with input_files(args.input):
                uniquely, ambiguous, summary = master_classification(detections)
        _write_stage4(uniquely, ambiguous, summary, run, uniquely_path, ambiguous_path)

    return _run("master_classification", parser, body, argv)


def add_engine_arguments(parser: argparse.ArgumentParser, engines: Sequence[str]) -> None:
    """``--engine``, ``--batch-rows``, ``--scheduler`` and ``--workers``: how a stage runs at scale."""
    from xrayclass.io.streaming import BATCH_ROWS

    parser.add_argument(
        "--engine",
        choices=engines,
        default="memory",
        help="memory: the whole table at once; streaming: Parquet/CSV in batches of --batch-rows "
        "(memory bounded by the batch size; same output); dask: partitions on a Dask cluster "
        "(--scheduler, or a local one with --workers)",
    )
    parser.add_argument(
        "--batch-rows",
        type=_positive_int,
        default=BATCH_ROWS,
        help="rows per batch (streaming) or per partition (dask)",
    )
    parser.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="with --engine dask: address of a running Dask scheduler (e.g. tcp://host:8786); "
        "default: a local cluster of --workers processes",
    )
    parser.add_argument(
        "--workers",
        type=_positive_int,
        default=2,
        help="with --engine dask and no --scheduler: workers of the local cluster",
    )


def _add_allow_duplicates(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--allow-duplicates",
        action="store_true",
        help="drop rows repeating an earlier detection (same name, obsid and values) with a "
        "warning, instead of stopping",
    )
