"""``master_classification.py``: stage 4's command line (options -> the runner)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from xrayclass.cli.common import command_parser, config_from_args, run_command
from xrayclass.cli.options import (
    add_allow_duplicates,
    add_engine_arguments,
    engine_config,
)
from xrayclass.io import paths
from xrayclass.stages.master_classification import MasterClassificationConfig
from xrayclass.workflow.master_classification import run_master_classification_stage


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
    add_allow_duplicates(parser)

    def body(args: argparse.Namespace) -> None:
        run_master_classification_stage(
            args.input,
            args.out_dir,
            config_from_args(MasterClassificationConfig, args),
            engine_config(args),
            format=args.format,
            allow_duplicates=args.allow_duplicates,
        )

    return run_command("master_classification", parser, body, argv)
