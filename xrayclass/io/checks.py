"""Checks at the edges: the tables a stage reads as they arrive, and the files it writes.

Run before any long computation; each raises a one-line :class:`~xrayclass.exceptions.InputError`
naming the file. The checks of a table's contents are the science's own
(:mod:`xrayclass.core.checks`); here they run on a file's table, and what is dropped or
noticed is logged with the file's name.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from xrayclass.constants import MAIN_TYPE, NAME, OBSID
from xrayclass.core.checks import (
    canonical_names,
    duplicated_detections,
    repeat_error,
    repeat_examples,
    repeat_value_columns,
    require_cluster_labels,
    require_columns,
    require_names,
    require_numeric,
    require_positions,
    require_possible_positions,
    sharing_name_and_obsid,
)
from xrayclass.exceptions import InputError, input_files
from xrayclass.io.tables import OUTPUT_FORMATS, remove_stale_temporaries, table_format

__all__ = ["check_catalog", "check_detections", "check_outputs", "handle_duplicates"]

log = logging.getLogger(__name__)

#: A file's name, or None for a table that came from no file.
Origin = str | os.PathLike[str] | None


def check_detections(
    table: pd.DataFrame,
    path: Origin,
    allow_duplicates: bool = False,
    positions: bool = True,
    clusters: bool = False,
) -> pd.DataFrame:
    """The checks every detection table gets on arrival, before any computation.

    Source names present and not blank; positions valid (``positions``); cluster labels
    integers in range (``clusters``, where the table has a ``cluster`` column); no row
    repeating an earlier detection (an error, or with ``allow_duplicates`` the repeats
    are dropped with a warning). Returns the table with the name column called ``name``.
    """
    with input_files(path):
        table = canonical_names(table)
        require_columns(table, [NAME, OBSID, *(["ra", "dec"] if positions else [])])
        require_names(table)
        if positions:
            require_positions(table)
        if clusters and "cluster" in table.columns:
            require_cluster_labels(table)
    value_columns = repeat_value_columns(table.columns)
    # A repeat has its name and obsid: the rows sharing those two are found once, and both
    # the repeats and the detections reported below are looked for among them.
    shared = sharing_name_and_obsid(table)
    kept = handle_duplicates(table, path, value_columns, allow=allow_duplicates, shared=shared)
    if len(kept) < len(table):
        shared = sharing_name_and_obsid(kept)
    if shared.any():
        log.info(
            "%s: %s detections share their name and obsid with another detection of different values "
            "(the CSC can list several detections of a source in one observation); all are kept",
            path,
            f"{int(shared.sum()):,}",
        )
    return kept


def handle_duplicates(
    table: pd.DataFrame,
    path: Origin,
    value_columns: Sequence[str] = (),
    allow: bool = False,
    shared: np.ndarray | None = None,
) -> pd.DataFrame:
    """Raise on repeated detections, or with ``allow`` drop them with a warning (``shared``: see
    :func:`~xrayclass.core.checks.duplicated_detections`)."""
    repeated = duplicated_detections(table, value_columns, shared)
    if not repeated.any():
        return table
    if not allow:
        with input_files(path):
            raise repeat_error(int(repeated.sum()), table.loc[repeated])
    log.warning(
        "%s: dropped %s rows repeating an earlier detection (e.g. %s)",
        path,
        f"{int(repeated.sum()):,}",
        repeat_examples(table.loc[repeated]),
    )
    return table.loc[~repeated].reset_index(drop=True)


def check_catalog(catalog: pd.DataFrame, path: Origin) -> pd.DataFrame:
    """A local crossmatch catalog: ``ra``, ``dec`` numeric and possible, ``main_type`` present;
    the rows without a position are left out (and logged)."""
    with input_files(path):
        require_columns(catalog, ("ra", "dec", MAIN_TYPE))
        catalog = require_numeric(catalog, ("ra", "dec"))
        missing = require_possible_positions(catalog, "catalog rows")
    if missing.any():
        log.warning(
            "%s: %s of %s catalog rows have no position and cannot be matched; left out",
            path,
            f"{int(missing.sum()):,}",
            f"{len(catalog):,}",
        )
        catalog = catalog.loc[~missing].reset_index(drop=True)
    if len(catalog) == 0:
        raise InputError(f"{path}: no catalog row has a position")
    return catalog


def _same_file(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():
        return True
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def check_outputs(outputs: Sequence, inputs: Sequence = (), formats: Sequence | None = None) -> list[Path]:
    """Fail before any work unless every output can be written without harm; return them as paths.

    Each output must differ from every input and from the other outputs, not be a
    directory, have a known format (``formats``: one tuple of allowed formats per output,
    None for no check; default: CSV or Parquet tables), and sit in a writable directory
    (or one that can be created). Temporaries a killed run left beside it are removed.
    """
    paths = [Path(p) for p in outputs]
    formats = formats if formats is not None else [OUTPUT_FORMATS] * len(paths)
    for path, allowed in zip(paths, formats, strict=False):
        if allowed:
            table_format(path, allowed)
    for i, path in enumerate(paths):
        for source in inputs:
            if source is not None and str(source) != "" and _same_file(path, Path(source)):
                raise InputError(f"{path}: the output would overwrite an input ({source}); choose another output path")
        for other in paths[:i]:
            if _same_file(path, other):
                raise InputError(f"{path}: given for two different outputs; choose distinct output paths")
        if path.is_dir():
            raise InputError(f"{path}: is a directory; give a file name for the output")
        _check_directory(path)
    for path in paths:
        remove_stale_temporaries(path)
    return paths


def _check_directory(path: Path) -> None:
    ancestor = path.parent
    while not ancestor.exists():
        if ancestor.parent == ancestor:
            break
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise InputError(f"{path}: cannot write there: {ancestor} is not a directory")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise InputError(f"{path}: cannot write there: directory {ancestor} is not writable")
