"""What the four stage runners share: reading a stage's input, the engines' preconditions, the feature set.

The Dask engine (dask, distributed: an optional, heavy dependency) is imported here, on first
use, by :func:`dask_engine`; every other import of the runners is at their heads, and each
stage's runner imports only its own stage's science.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import pandas as pd

from xrayclass.engine import EngineConfig
from xrayclass.exceptions import InputError
from xrayclass.io import paths
from xrayclass.io.tables import (
    read_table,
    remove_stale_folders,
    table_format,
)

log = logging.getLogger("xrayclass")


StrPath = str | Path


#: What stage 1 says when the default input is absent: the ways to get one.
NO_CSC_INPUT_HINT = (
    "get the CSC detections with `fetch_csc.py` (network; README, 'Fetching from the services'), or put "
    f"your own CSC query result there (with the published frozen crossmatch {paths.FROZEN_CROSSMATCH} for "
    "stage 2; README, 'Data files'), or try a SYNTHETIC catalog: `make_mock_catalog.py --n-detections 30000 "
    "--output mock.parquet` then --input mock.parquet (README, 'A mock catalog with known truth'), "
    "which `make run` does by itself when there is no input"
)


NO_STAGE1_HINT = "run clustering.py first or pass --input"


NO_STAGE2_HINT = "run crossmatch.py first or pass --input"


NO_STAGE3_HINT = "run classification.py first or pass --input"


def require_input(path: StrPath, default: StrPath, hint: str) -> None:
    """An error with ``hint`` when ``path`` is the default file and it is missing."""
    if Path(path) == Path(default) and not Path(path).exists():
        raise InputError(f"{path}: file not found; {hint}")


def read_stage_table(path: StrPath, default: StrPath, hint: str, **kwargs: Any) -> pd.DataFrame:
    """The table at ``path``; when it is the (missing) default file, an error with ``hint``."""
    require_input(path, default, hint)
    return read_table(path, **kwargs)


def refuse_memory_only(engine: EngineConfig, options: Sequence[tuple[str, object]], yet: bool = True) -> None:
    """Exit 2 naming the options the chosen engine does not take."""
    used = [option for option, on in options if on]
    if used:
        later = " yet" if yet else ""
        raise InputError(f"{', '.join(used)}: not available with --engine {engine.engine}{later}; use --engine memory")


def require_streamable(path: StrPath, engine: EngineConfig) -> None:
    if table_format(path) not in ("csv", "parquet"):
        raise InputError(
            f"{path}: --engine {engine.engine} reads .csv or .parquet tables; convert it or use --engine memory"
        )


def start_engine(engine: EngineConfig) -> None:
    """Before an engine's work: the work folders of killed runs removed from TMPDIR, Dask there."""
    if engine.engine == "dask":
        dask_engine().require_dask()
    remove_stale_folders()


def dask_engine() -> ModuleType:
    """:mod:`xrayclass.engine.dask`, imported on first use (dask and distributed are optional and slow to import)."""
    return importlib.import_module("xrayclass.engine.dask")
