"""``clustering.py``: stage 1's command line (options -> :class:`~xrayclass.stages.clustering.ClusteringConfig` -> the runner)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from xrayclass.cli.argtypes import positive_int, seed
from xrayclass.cli.common import command_parser, config_from_args, run_command
from xrayclass.cli.options import (
    add_allow_duplicates,
    add_engine_arguments,
    add_features,
    add_log_floor,
    engine_config,
)
from xrayclass.constants import N_COMPONENTS, RANDOM_STATE
from xrayclass.io import paths
from xrayclass.stages.clustering import FIT_SAMPLE, ClusteringConfig
from xrayclass.workflow.clustering import chosen_feature_set, run_clustering_stage


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
    add_log_floor(parser)
    add_features(parser, "(default: the paper's 12); recorded in the model")
    add_engine_arguments(parser)
    add_allow_duplicates(parser)

    def body(args: argparse.Namespace) -> None:
        config = config_from_args(ClusteringConfig, args, feature_set=chosen_feature_set(args.features))
        run_clustering_stage(
            args.input,
            args.output,
            config,
            engine_config(args),
            model=args.model,
            allow_duplicates=args.allow_duplicates,
        )

    return run_command("clustering", parser, body, argv)
