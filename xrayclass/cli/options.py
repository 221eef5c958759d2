"""The options the four stage command lines share: engines, feature sets, duplicates, log floor."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import get_args, get_type_hints

from xrayclass.cli.argtypes import positive_float, positive_int
from xrayclass.cli.common import config_from_args
from xrayclass.engine import ENGINES, EngineConfig
from xrayclass.io.streaming import BATCH_ROWS


def choices_of(config: type, field: str) -> tuple[str, ...]:
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


def add_allow_duplicates(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--allow-duplicates",
        action="store_true",
        help="drop rows repeating an earlier detection (same name, obsid and values) with a "
        "warning, instead of stopping",
    )


def add_features(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--features",
        default=None,
        metavar="FILE",
        help="feature set (TOML: the features, their scaling, the raw columns they derive from and "
        "the naive-Bayes categories; see xrayclass/featuresets/) " + what,
    )


def add_log_floor(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--log-floor",
        type=positive_float,
        default=None,
        metavar="VALUE",
        help="lower bound on the shift of the log features: log(x + max(VALUE, smallest "
        "non-zero / 10)) (default: no bound, the paper's rule)",
    )


def engine_config(args: argparse.Namespace) -> EngineConfig:
    return config_from_args(EngineConfig, args)
