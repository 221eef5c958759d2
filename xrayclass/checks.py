"""Checks at the edges: one place per kind of input, run before any long computation.

Every check here either raises :class:`~xrayclass.io.InputError` with one line naming
the file and the problem, or returns which rows fail (and why) so that the caller can
drop them and count them. The README section "What the pipeline checks" lists them.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from .constants import CLASSES, FEATURES, LOG_FEATURES, MINMAX_FEATURES, NAME, OBSID
from .io import InputError, OUTPUT_FORMATS, remove_stale_temporaries, table_format

log = logging.getLogger(__name__)

# -- physical ranges of the CSC columns ----------------------------------------------------

#: Closed interval each column's values must lie in; a value outside makes its row
#: unusable (dropped and counted, never clipped). Hardness ratios are (H-S)/(H+S) and
#: probabilities are probabilities; light-curve rates, their spreads and a black-body
#: temperature cannot be negative. ``powlaw_gamma`` and ``bb_kt`` have no hard physical
#: bound, but a value far beyond any fitted CSC spectrum (the published sample spans
#: powlaw_gamma -2.97 .. 10 and bb_kt 0.14 .. 129 keV) is a corrupted cell, and a single
#: one would squeeze the whole column into a point under MinMax scaling. The bounds
#: below are generous: twice the widest published value, rounded out.
PHYSICAL_RANGES = {
    "hard_hm": (-1.0, 1.0), "hard_hs": (-1.0, 1.0), "hard_ms": (-1.0, 1.0),
    "powlaw_gamma": (-20.0, 20.0),
    "bb_kt": (0.0, 1000.0),
    "var_prob_b": (0.0, 1.0), "var_prob_h": (0.0, 1.0), "var_prob_s": (0.0, 1.0),
    "var_ratio_b": (0.0, math.inf), "var_ratio_h": (0.0, math.inf), "var_ratio_s": (0.0, math.inf),
    "var_newq_b": (0.0, math.inf),
    # Raw light-curve columns (count rates and their scatter), where the table has them.
    "var_sigma_b": (0.0, math.inf), "var_sigma_h": (0.0, math.inf), "var_sigma_s": (0.0, math.inf),
    "var_mean_b": (0.0, math.inf), "var_mean_h": (0.0, math.inf), "var_mean_s": (0.0, math.inf),
    "var_min_b": (0.0, math.inf), "var_max_b": (0.0, math.inf),
}


def out_of_range(table: pd.DataFrame, columns: Iterable[str]) -> pd.DataFrame:
    """Boolean frame: True where a finite value of ``columns`` lies outside its physical range.

    Missing and non-finite values are not flagged here (they have their own reason).
    Columns absent from ``table`` or without a range are skipped.
    """
    flags = {}
    for column in columns:
        if column not in table.columns or column not in PHYSICAL_RANGES:
            continue
        low, high = PHYSICAL_RANGES[column]
        values = pd.to_numeric(table[column], errors="coerce").to_numpy(dtype="float64")
        with np.errstate(invalid="ignore"):
            flags[column] = np.isfinite(values) & ((values < low) | (values > high))
    return pd.DataFrame(flags, index=table.index)


def describe_range(column: str) -> str:
    low, high = PHYSICAL_RANGES[column]
    return f"[{low:g}, {high:g}]" if math.isfinite(high) else f">= {low:g}"


def require_log_features_usable(features: np.ndarray, path, names: Sequence[str] = FEATURES) -> None:
    """A log feature that is zero for every detection has no shift: say so, in one line."""
    for name in LOG_FEATURES:
        column = features[:, list(names).index(name)]
        if len(column) and not (column != 0).any():
            raise InputError(f"{path}: {name} is zero for every usable detection; its log scaling is undefined")


# -- identity: names, duplicates, positions, clusters --------------------------------------

def require_names(table: pd.DataFrame, path) -> None:
    """Every detection needs a source name: blank or missing names are an error."""
    names = table[NAME]
    blank = names.isna().to_numpy() | (names.astype(str).str.strip() == "").to_numpy()
    if blank.any():
        first = int(np.flatnonzero(blank)[0])
        raise InputError(f"{path}: {int(blank.sum()):,} rows have a blank source name ('{NAME}'), "
                         f"first in data row {first + 1}")


def check_detections(table: pd.DataFrame, path, allow_duplicates: bool = False, positions: bool = True,
                     clusters: bool = False) -> pd.DataFrame:
    """The checks every detection table gets on arrival, before any computation.

    Source names present and not blank; positions valid (``positions``); cluster labels
    integers in range (``clusters``, where the table has a ``cluster`` column); no row
    repeating an earlier detection (an error, or with ``allow_duplicates`` the repeats
    are dropped with a warning). Returns the table with the name column called ``name``.
    """
    from .io import canonical_names, require_columns

    table = canonical_names(table, path)
    require_columns(table, [NAME, OBSID, *(["ra", "dec"] if positions else [])], path)
    require_names(table, path)
    if positions:
        require_positions(table, path)
    if clusters and "cluster" in table.columns:
        require_cluster_labels(table, path)
    value_columns = [c for c in table.columns if c in PHYSICAL_RANGES or c in CLASSES or c == "cluster"]
    table = handle_duplicates(table, path, value_columns, allow=allow_duplicates)
    shared = table.duplicated(subset=[NAME, OBSID], keep=False)
    if shared.any():
        log.info("%s: %s detections share their name and obsid with another detection of different values "
                 "(the CSC can list several detections of a source in one observation); all are kept",
                 path, f"{int(shared.sum()):,}")
    return table


def duplicated_detections(table: pd.DataFrame, value_columns: Sequence[str] = ()) -> np.ndarray:
    """Rows repeating an earlier row's detection: same name, obsid (and region_id) and values.

    The CSC can list several detections of one source in one observation (different
    regions, different measurements); those are not repeats. A repeat has the same
    identity and the same measured values, as when a table was concatenated twice.
    """
    subset = [c for c in (NAME, OBSID, "region_id", "ra", "dec", *value_columns) if c in table.columns]
    return table.duplicated(subset=subset, keep="first").to_numpy()


def handle_duplicates(table: pd.DataFrame, path, value_columns: Sequence[str] = (),
                      allow: bool = False) -> pd.DataFrame:
    """Raise on repeated detections (the default), or drop the repeats with a warning."""
    repeated = duplicated_detections(table, value_columns)
    if not repeated.any():
        return table
    first = table.loc[repeated, [c for c in (NAME, OBSID) if c in table.columns]].head(3)
    examples = ", ".join(f"{row[NAME]!s} obsid {row[OBSID]!s}" for _, row in first.iterrows())
    if not allow:
        raise InputError(f"{path}: {int(repeated.sum()):,} rows repeat an earlier detection (same name, obsid and "
                         f"values), e.g. {examples}; remove them or pass --allow-duplicates")
    log.warning("%s: dropped %s rows repeating an earlier detection (e.g. %s)", path,
                f"{int(repeated.sum()):,}", examples)
    return table.loc[~repeated].reset_index(drop=True)


def invalid_positions(table: pd.DataFrame) -> np.ndarray:
    """True where ``ra``/``dec`` is missing, not finite, or ``|dec| > 90``."""
    ra = pd.to_numeric(table["ra"], errors="coerce").to_numpy(dtype="float64")
    dec = pd.to_numeric(table["dec"], errors="coerce").to_numpy(dtype="float64")
    with np.errstate(invalid="ignore"):
        return ~np.isfinite(ra) | ~np.isfinite(dec) | (np.abs(dec) > 90)


def require_positions(table: pd.DataFrame, path) -> None:
    """Every detection needs a position on the sky (finite ``ra``, ``|dec| <= 90``)."""
    bad = invalid_positions(table)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise InputError(f"{path}: {int(bad.sum()):,} rows have no valid position (ra, dec finite, |dec| <= 90), "
                         f"first in data row {row + 1} (ra {table['ra'].iloc[row]!r}, dec {table['dec'].iloc[row]!r})")


def catalog_positions(catalog: pd.DataFrame, path) -> pd.DataFrame:
    """A crossmatch catalog without the rows lacking a position (logged); impossible ones are an error."""
    ra = pd.to_numeric(catalog["ra"], errors="coerce").to_numpy(dtype="float64")
    dec = pd.to_numeric(catalog["dec"], errors="coerce").to_numpy(dtype="float64")
    missing = np.isnan(ra) | np.isnan(dec)
    with np.errstate(invalid="ignore"):
        impossible = ~missing & (~np.isfinite(ra) | ~np.isfinite(dec) | (np.abs(dec) > 90))
    if impossible.any():
        row = int(np.flatnonzero(impossible)[0])
        raise InputError(f"{path}: {int(impossible.sum()):,} catalog rows have an impossible position "
                         f"(|dec| > 90 or infinite), first in data row {row + 1}")
    if missing.any():
        log.warning("%s: %s of %s catalog rows have no position and cannot be matched; left out", path,
                    f"{int(missing.sum()):,}", f"{len(catalog):,}")
        return catalog.loc[~missing].reset_index(drop=True)
    return catalog


def require_radius(radius: float) -> None:
    if not (isinstance(radius, (int, float)) and math.isfinite(radius) and radius > 0):
        raise InputError(f"--radius must be a positive number of arcsec, got {radius}")


def require_cluster_labels(table: pd.DataFrame, path, column: str = "cluster") -> None:
    """Cluster labels must be integers 0 .. K-1 (K from the prob_* columns when present)."""
    values = pd.to_numeric(table[column], errors="coerce").to_numpy(dtype="float64")
    n_clusters = sum(1 for c in table.columns if c.startswith("prob_") and c[5:].isdigit()) or None
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(values) | (values != np.round(values)) | (values < 0)
        if n_clusters:
            bad |= values >= n_clusters
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        limit = f"0 .. {n_clusters - 1}" if n_clusters else "non-negative integers"
        raise InputError(f"{path}: column '{column}' must hold cluster numbers ({limit}); {int(bad.sum()):,} rows "
                         f"do not, first in data row {row + 1} ({table[column].iloc[row]!r})")


# -- stage 4: class probabilities ---------------------------------------------------------

#: How far a probability may stray from [0, 1], and a row's sum from 1 (rounding only).
PROBABILITY_TOLERANCE = 1e-6


def require_probabilities(probabilities: np.ndarray, path, classes: Sequence[str] = CLASSES) -> None:
    """Each value in [0, 1]; each row sums to 1, or is all zero (Unclassified)."""
    p = np.asarray(probabilities, dtype="float64")
    with np.errstate(invalid="ignore"):
        outside = ~np.isfinite(p) | (p < -PROBABILITY_TOLERANCE) | (p > 1 + PROBABILITY_TOLERANCE)
    if outside.any():
        row, column = (int(i[0]) for i in np.nonzero(outside))
        raise InputError(f"{path}: class probabilities must lie in [0, 1]; {int(outside.any(axis=1).sum()):,} rows "
                         f"do not, first in data row {row + 1} ({classes[column]} = {p[row, column]!r})")
    totals = p.sum(axis=1)
    bad = (np.abs(totals - 1) > PROBABILITY_TOLERANCE) & (totals != 0)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise InputError(f"{path}: the class probabilities of a detection must sum to 1 (or all be 0 for an "
                         f"unclassified one); {int(bad.sum()):,} rows do not, first in data row {row + 1} "
                         f"(sum {totals[row]:.6g})")


# -- outputs --------------------------------------------------------------------------------

def _same_file(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():
        return True
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def check_outputs(outputs: Sequence, inputs: Sequence = (), formats: Sequence | None = None) -> list[Path]:
    """Fail before any work unless every output can be written without harm.

    Each output must be distinct from every input and from the other outputs, not be a
    directory, have a known format (``formats``: one allowed-format tuple per output,
    ``None`` for no format check, default: tables as CSV or Parquet), and sit in a
    directory that is (or can be created as) a writable directory. Temporary files left
    beside an output by a killed run are removed (and said so).
    """
    paths = [Path(p) for p in outputs]
    formats = formats if formats is not None else [OUTPUT_FORMATS] * len(paths)
    for path, allowed in zip(paths, formats):
        if allowed:
            table_format(path, allowed)
    for i, path in enumerate(paths):
        for source in inputs:
            if source is not None and str(source) != "" and _same_file(path, Path(source)):
                raise InputError(f"{path}: the output would overwrite the input {source}; choose another output path")
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
    parent = path.parent
    ancestor = parent
    while not ancestor.exists():
        if ancestor.parent == ancestor:
            break
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise InputError(f"{path}: cannot write there: {ancestor} is not a directory")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise InputError(f"{path}: cannot write there: directory {ancestor} is not writable")
