"""Command lines of the four stages; the top-level scripts call these ``main`` functions.

Each parses its options, builds the stage's config from them (an option's ``dest`` is the
name of the config field it sets: :func:`~xrayclass.cli.common.config_from_args`) and
calls the stage's runner (:mod:`xrayclass.workflow.stages`). With no arguments they chain
through the published file names. Problems with the input end the stage with a one-line
message naming the file, exit status 2, and no output written.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import get_args, get_type_hints

from xrayclass.cli.argtypes import fraction, positive_float, positive_int, seed
from xrayclass.cli.common import command_parser, config_from_args, run_command
from xrayclass.cli.online import add_online_arguments, online_config
from xrayclass.constants import N_COMPONENTS, OUTLIER_FRACTION, RANDOM_STATE
from xrayclass.engine import ENGINES, EngineConfig
from xrayclass.io import paths
from xrayclass.io.paths import beside
from xrayclass.io.streaming import BATCH_ROWS
from xrayclass.services.xmatch import DEFAULT_RADIUS
from xrayclass.stages.classification import ClassificationConfig
from xrayclass.stages.clustering import FIT_SAMPLE, ClusteringConfig
from xrayclass.stages.crossmatch import CrossmatchConfig
from xrayclass.stages.master_classification import MasterClassificationConfig
from xrayclass.workflow.stages import (
    chosen_feature_set,
    run_classification_stage,
    run_clustering_stage,
    run_crossmatch_stage,
    run_master_classification_stage,
    stage3_feature_set,
)

__all__ = [
    "add_engine_arguments",
    "classification_main",
    "clustering_main",
    "crossmatch_main",
    "master_classification_main",
]


def _choices(config: type, field: str) -> tuple[str, ...]:
    """The values a ``Literal`` field of a stage's config takes: the option's choices."""
    return get_args(get_type_hints(config)[field])


def add_engine_arguments(parser: argparse.ArgumentParser, engines: Sequence[str] = ENGINES) -> None:
    """``--engine``, ``--batch-rows``, ``--scheduler`` and ``--workers``: how a stage runs at scale."""
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
        type=positive_int,
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
        type=positive_int,
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


def _add_features(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--features",
        default=None,
        metavar="FILE",
        help="feature set (TOML: the features, their scaling, the raw columns they derive from and "
        "the naive-Bayes categories; see xrayclass/featuresets/) " + what,
    )


def _add_log_floor(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--log-floor",
        type=positive_float,
        default=None,
        metavar="VALUE",
        help="lower bound on the shift of the log features: log(x + max(VALUE, smallest "
        "non-zero / 10)) (default: no bound, the paper's rule)",
    )


def _engine_config(args: argparse.Namespace) -> EngineConfig:
    return config_from_args(EngineConfig, args)


# -- stage 1 ---------------------------------------------------------------------------


def clustering_main(argv: Sequence[str] | None = None) -> int:
    parser = command_parser(
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
        "--n-components", type=positive_int, default=N_COMPONENTS, help="number of Gaussian components (clusters)"
    )
    parser.add_argument(
        "--seed",
        dest="random_state",
        metavar="SEED",
        type=seed,
        default=RANDOM_STATE,
        help="random seed of the mixture's initialisation (and of the fit subsample)",
    )
    parser.add_argument(
        "--fit-sample",
        type=positive_int,
        default=FIT_SAMPLE,
        help="fit the mixture on at most this many detections (a seeded subsample), then "
        "assign every detection; at or below it, all are used, as in the paper",
    )
    _add_log_floor(parser)
    _add_features(parser, "(default: the paper's 12); recorded in the model")
    add_engine_arguments(parser)
    _add_allow_duplicates(parser)

    def body(args: argparse.Namespace) -> None:
        config = config_from_args(ClusteringConfig, args, feature_set=chosen_feature_set(args.features))
        run_clustering_stage(
            args.input,
            args.output,
            config,
            _engine_config(args),
            model=args.model,
            allow_duplicates=args.allow_duplicates,
        )

    return run_command("clustering", parser, body, argv)


# -- stage 2 ---------------------------------------------------------------------------


def crossmatch_main(argv: Sequence[str] | None = None) -> int:
    parser = command_parser(
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
        choices=_choices(CrossmatchConfig, "clusters"),
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
        xmatch = online_config(args)
        source = "online" if xmatch is not None else "catalog" if args.catalog else "frozen"
        config = config_from_args(CrossmatchConfig, args, source=source, radius=getattr(args, "radius", DEFAULT_RADIUS))
        run_crossmatch_stage(
            args.input,
            args.output,
            config,
            _engine_config(args),
            model=args.model,
            frozen=args.frozen,
            catalog=args.catalog,
            xmatch=xmatch,
            dry_run=getattr(args, "dry_run", False),
        )

    return run_command("crossmatch", parser, body, argv)


# -- stage 3 ---------------------------------------------------------------------------


def classification_main(argv: Sequence[str] | None = None) -> int:
    parser = command_parser(
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
    # The classifier's choices: each dest is a field of ClassificationConfig, whose
    # defaults (the paper's) they show.
    defaults = ClassificationConfig()
    parser.add_argument(
        "--method",
        choices=_choices(ClassificationConfig, "method"),
        default=defaults.method,
        help="classifier giving the probabilities: the paper's per-cluster Mahalanobis, or the optimized naive Bayes",
    )
    parser.add_argument(
        "--likelihood",
        choices=_choices(ClassificationConfig, "likelihood"),
        default=defaults.likelihood,
        help="Mahalanobis scoring: softmin of squared distances (the paper's) or the class-conditional "
        "Gaussian log-density (with the log pseudo-determinant)",
    )
    parser.add_argument(
        "--priors",
        choices=_choices(ClassificationConfig, "priors"),
        default=defaults.priors,
        help="class priors of the Mahalanobis scoring: none (the paper's) or each class's share of "
        "its cluster's references",
    )
    _add_log_floor(parser)
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
        choices=_choices(ClassificationConfig, "nb_score"),
        default=defaults.nb_score,
        help="what the naive Bayes category weights are tuned to maximize",
    )
    parser.add_argument(
        "--outlier-fraction",
        type=fraction,
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
    add_engine_arguments(parser)
    _add_allow_duplicates(parser)

    def body(args: argparse.Namespace) -> None:
        model = args.model if args.model is not None else beside(args.input, paths.MODEL)
        feature_set = stage3_feature_set(args.features, model, args.model is not None)
        run_classification_stage(
            args.input,
            args.output,
            config_from_args(ClassificationConfig, args, feature_set=feature_set),
            _engine_config(args),
            model_output=args.model_output,
            outliers_output=args.outliers_output,
            labels=args.labels or (),
            allow_duplicates=args.allow_duplicates,
        )

    return run_command("classification", parser, body, argv)


# -- stage 4 ---------------------------------------------------------------------------


def master_classification_main(argv: Sequence[str] | None = None) -> int:
    parser = command_parser(
        "master_classification.py",
        "Stage 4: a master class for each source by hard (majority) and soft (mean "
        "probability) voting over its detections. Writes the uniquely classified sources "
        "(votes agree) and the ambiguous ones, with each class's probability as 'mean±std', "
        "and prints a summary.",
    )
    parser.add_argument("--input", default=str(paths.DETECTIONS), help="detection-level classification")
    parser.add_argument("--out-dir", default=str(paths.OUT_DIR), help="directory for the two tables")
    parser.add_argument("--format", choices=("csv", "parquet"), default="csv", help="format of the two tables")
    add_engine_arguments(parser)
    _add_allow_duplicates(parser)

    def body(args: argparse.Namespace) -> None:
        run_master_classification_stage(
            args.input,
            args.out_dir,
            config_from_args(MasterClassificationConfig, args),
            _engine_config(args),
            format=args.format,
            allow_duplicates=args.allow_duplicates,
        )

    return run_command("master_classification", parser, body, argv)
