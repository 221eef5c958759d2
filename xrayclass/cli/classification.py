"""``classification.py``: stage 3's command line (options -> :class:`~xrayclass.stages.classification.ClassificationConfig` -> the runner)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from xrayclass.cli.argtypes import fraction
from xrayclass.cli.common import command_parser, config_from_args, run_command
from xrayclass.cli.options import (
    add_allow_duplicates,
    add_engine_arguments,
    add_features,
    add_log_floor,
    choices_of,
    engine_config,
)
from xrayclass.constants import OUTLIER_FRACTION
from xrayclass.io import paths
from xrayclass.io.paths import beside
from xrayclass.stages.classification import ClassificationConfig
from xrayclass.workflow.classification import run_classification_stage, stage3_feature_set


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
        choices=choices_of(ClassificationConfig, "method"),
        default=defaults.method,
        help="classifier giving the probabilities: the paper's per-cluster Mahalanobis, or the optimized naive Bayes",
    )
    parser.add_argument(
        "--likelihood",
        choices=choices_of(ClassificationConfig, "likelihood"),
        default=defaults.likelihood,
        help="Mahalanobis scoring: softmin of squared distances (the paper's) or the class-conditional "
        "Gaussian log-density (with the log pseudo-determinant)",
    )
    parser.add_argument(
        "--priors",
        choices=choices_of(ClassificationConfig, "priors"),
        default=defaults.priors,
        help="class priors of the Mahalanobis scoring: none (the paper's) or each class's share of "
        "its cluster's references",
    )
    add_log_floor(parser)
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
        choices=choices_of(ClassificationConfig, "nb_score"),
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
    add_features(
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
    add_allow_duplicates(parser)

    def body(args: argparse.Namespace) -> None:
        model = args.model if args.model is not None else beside(args.input, paths.MODEL)
        feature_set = stage3_feature_set(args.features, model, args.model is not None)
        run_classification_stage(
            args.input,
            args.output,
            config_from_args(ClassificationConfig, args, feature_set=feature_set),
            engine_config(args),
            model_output=args.model_output,
            outliers_output=args.outliers_output,
            labels=args.labels or (),
            allow_duplicates=args.allow_duplicates,
        )

    return run_command("classification", parser, body, argv)
