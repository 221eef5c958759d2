"""``crossmatch.py``: stage 2's command line (options -> :class:`~xrayclass.stages.crossmatch.CrossmatchConfig` -> the runner)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from xrayclass.cli.common import command_parser, config_from_args, run_command
from xrayclass.cli.online import add_online_arguments, online_config
from xrayclass.cli.options import (
    add_engine_arguments,
    choices_of,
    engine_config,
)
from xrayclass.io import paths
from xrayclass.services.xmatch import DEFAULT_RADIUS
from xrayclass.stages.crossmatch import CrossmatchConfig
from xrayclass.workflow.crossmatch import run_crossmatch_stage


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
        choices=choices_of(CrossmatchConfig, "clusters"),
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
            engine_config(args),
            model=args.model,
            frozen=args.frozen,
            catalog=args.catalog,
            xmatch=xmatch,
            dry_run=getattr(args, "dry_run", False),
        )

    return run_command("crossmatch", parser, body, argv)
