"""The options of ``crossmatch.py --online`` and the X-Match config they make.

The X-Match client (:mod:`xrayclass.services.xmatch`) takes and returns tables; the
stage-2 runner (:mod:`xrayclass.workflow.stages`) reads and writes the files.
"""

from __future__ import annotations

import argparse

from xrayclass.exceptions import InputError
from xrayclass.services.xmatch import DEFAULT_CHUNK_SIZE, DEFAULT_RADIUS, MAX_RADIUS, XMatchConfig

__all__ = ["add_online_arguments", "online_config"]

_ONLINE_OPTIONS = ("radius", "chunk_size", "dry_run")


def add_online_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``crossmatch.py --online``."""
    parser.add_argument(
        "--radius",
        type=float,
        default=argparse.SUPPRESS,
        help=f"with --online or --catalog: match radius in arcsec, at most {MAX_RADIUS:g} "
        f"(default: {DEFAULT_RADIUS:g})",
    )
    parser.add_argument(
        "--chunk-size",
        type=int,
        default=argparse.SUPPRESS,
        help=f"with --online: rows uploaded per request, sent one after another (default: {DEFAULT_CHUNK_SIZE:,})",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        default=argparse.SUPPRESS,
        help="with --online: describe the upload (rows, chunks, radius, service) and send nothing",
    )


def online_config(args: argparse.Namespace) -> XMatchConfig | None:
    """The :class:`XMatchConfig` of the command line; refuses online options without --online."""
    given = [name for name in _ONLINE_OPTIONS if hasattr(args, name)]
    if not args.online:
        # A local catalog match (--catalog) takes a radius too.
        refused = [name for name in given if not (name == "radius" and getattr(args, "catalog", None))]
        if refused:
            options = ", ".join("--" + name.replace("_", "-") for name in refused)
            raise InputError(f"{options}: only with --online")
        return None
    return XMatchConfig(
        radius=getattr(args, "radius", DEFAULT_RADIUS), chunk_size=getattr(args, "chunk_size", DEFAULT_CHUNK_SIZE)
    )
