"""Checks the science makes of its own inputs and choices, before any long computation.

Each raises :class:`~xrayclass.exceptions.InputError` with one line naming the problem,
or returns which rows fail so that the caller can drop and count them: columns, physical
ranges, names, repeats, positions, cluster labels, class probabilities and the stored
models' JSON documents (README, "What the pipeline checks"). Checks of files are
:mod:`xrayclass.io.checks`'.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, NoReturn, TypeGuard

import numpy as np
import pandas as pd

from xrayclass.constants import (
    CLASSES,
    FEATURES,
    LIKELIHOODS,
    LOG_FEATURES,
    NAME,
    NAME_ALIASES,
    OBSID,
    OUTLIER_PERCENTILES,
    PRIORS,
)
from xrayclass.core.featuresets import FeatureSet, from_artifact, require_transforms_apply
from xrayclass.exceptions import InputError

if TYPE_CHECKING:
    from xrayclass.core.preprocessing import LogMinMaxScaler

__all__ = [
    "PHYSICAL_RANGES",
    "POSITION_RULE",
    "PROBABILITY_TOLERANCE",
    "SMALLEST_NORMAL",
    "bad_cluster_labels",
    "blank_name_error",
    "blank_names",
    "canonical_names",
    "checked_columns",
    "cluster_count",
    "cluster_label_error",
    "describe_range",
    "duplicated_detections",
    "duplicated_rows",
    "invalid_positions",
    "out_of_range",
    "position_error",
    "preprocessing_differences",
    "repeat_columns",
    "repeat_error",
    "repeat_examples",
    "repeat_value_columns",
    "require_choice",
    "require_cluster_labels",
    "require_columns",
    "require_log_features_usable",
    "require_names",
    "require_numeric",
    "require_positions",
    "require_possible_positions",
    "require_probabilities",
    "require_radius",
    "require_roles",
    "sharing_name_and_obsid",
    "subnormal",
    "subnormal_columns",
    "validate_classifier_document",
    "validate_model_document",
]

log = logging.getLogger(__name__)


# -- choices and columns ------------------------------------------------------------------


def require_choice(name: str, value: object, choices: Sequence[object]) -> None:
    """Raise :class:`InputError` unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise InputError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")


def canonical_names(table: pd.DataFrame) -> pd.DataFrame:
    """Return ``table`` with its source-name column called ``name``.

    TOPCAT's crossmatch renames ``name`` to ``name_1``; either spelling is accepted.
    """
    if NAME in table.columns:
        return table
    for alias in NAME_ALIASES:
        if alias in table.columns:
            log.info("using column %r as the source name", alias)
            return table.rename(columns={alias: NAME})
    raise InputError(f"missing required columns: {NAME} (or {', '.join(NAME_ALIASES)})")


def require_columns(table: pd.DataFrame, columns: Iterable[str]) -> None:
    """Raise :class:`InputError` listing every column of ``columns`` not in ``table``."""
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise InputError(f"missing required columns: {', '.join(missing)}")


def require_numeric(table: pd.DataFrame, columns: Iterable[str]) -> pd.DataFrame:
    """Return ``table`` with text ``columns`` made numeric (blank cells NaN), or say which value is not a number."""
    converted = {}
    for column in columns:
        values = table[column]
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            continue
        blank = values.isna() | (values.astype(str).str.strip() == "")
        numbers = pd.to_numeric(values.where(~blank), errors="coerce")
        bad = numbers.isna() & ~blank
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise InputError(
                f"column {column!r} has non-numeric values "
                f"({int(bad.sum())} rows), e.g. {values.iloc[row]!r} in data row {row + 1}"
            )
        converted[column] = numbers
    return table.assign(**converted) if converted else table


# -- physical ranges of the CSC columns ----------------------------------------------------

#: Closed interval each column's values must lie in; a row with a value outside is
#: dropped and counted, never clipped. ``powlaw_gamma`` and ``bb_kt`` have no hard bound,
#: but a value far beyond any fitted CSC spectrum (published: -2.97 .. 10 and 0.14 .. 129
#: keV) is a corrupted cell that would squeeze the column to a point under MinMax: the
#: bounds are twice the widest published value, rounded out.
PHYSICAL_RANGES = {
    "hard_hm": (-1.0, 1.0),
    "hard_hs": (-1.0, 1.0),
    "hard_ms": (-1.0, 1.0),
    "powlaw_gamma": (-20.0, 20.0),
    "bb_kt": (0.0, 1000.0),
    "var_prob_b": (0.0, 1.0),
    "var_prob_h": (0.0, 1.0),
    "var_prob_s": (0.0, 1.0),
    # A light curve's std over its mean is at most sqrt(N - 1) for N non-negative bins, its
    # mid-range over its mean N / 2; a Chandra observation has N < 62,500 (published: 34, 637).
    "var_ratio_b": (0.0, 1e3),
    "var_ratio_h": (0.0, 1e3),
    "var_ratio_s": (0.0, 1e3),
    "var_newq_b": (0.0, 1e5),
    # Raw light-curve columns (count rates and their scatter), where the table has them.
    "var_sigma_b": (0.0, math.inf),
    "var_sigma_h": (0.0, math.inf),
    "var_sigma_s": (0.0, math.inf),
    "var_mean_b": (0.0, math.inf),
    "var_mean_h": (0.0, math.inf),
    "var_mean_s": (0.0, math.inf),
    "var_min_b": (0.0, math.inf),
    "var_max_b": (0.0, math.inf),
}


#: The smallest positive normal float; one tenth of a subnormal (the paper's log shift) is 0.
SMALLEST_NORMAL = float(np.finfo("float64").tiny)


def subnormal_columns(feature_set: FeatureSet) -> tuple[str, ...]:
    """The columns of ``feature_set`` where a subnormal value makes a row unusable.

    Those the pipeline takes a log of (the shift underflows to 0) or divides by (the raw
    columns of the derived features). Elsewhere a subnormal can be real (published
    variability probabilities reach 3e-234).
    """
    return (*feature_set.log_features, *(c for f in feature_set.derived_features for c in feature_set.derived[f]))


def subnormal(values: np.ndarray) -> np.ndarray:
    """True where a value is non-zero but closer to zero than :data:`SMALLEST_NORMAL`."""
    with np.errstate(invalid="ignore"):
        return (values != 0) & (np.abs(values) < SMALLEST_NORMAL)


def out_of_range(table: pd.DataFrame, columns: Iterable[str]) -> pd.DataFrame:
    """Boolean frame: True where a finite value of ``columns`` (those present, with a range) lies outside it."""
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


def require_log_features_usable(
    features: np.ndarray | pd.DataFrame, names: Sequence[str] = FEATURES, log_features: Sequence[str] = LOG_FEATURES
) -> None:
    """A log feature zero for every detection has no shift: say so. ``features``: a table, or an array of ``names``."""
    for name in log_features:
        if isinstance(features, pd.DataFrame):
            column = features[name].to_numpy()
        else:
            column = features[:, list(names).index(name)]
        if len(column) and not (column != 0).any():
            raise InputError(f"{name} is zero for every usable detection; its log scaling is undefined")


# -- identity: names, duplicates, positions, clusters --------------------------------------


def blank_names(table: pd.DataFrame) -> np.ndarray:
    """True where a detection's source name is missing or only white space."""
    names = table[NAME]
    return names.isna().to_numpy() | (names.astype(str).str.strip() == "").to_numpy()


def blank_name_error(n_bad: int, row: int) -> InputError:
    """The error for ``n_bad`` rows without a source name, the first at 0-based ``row``."""
    return InputError(f"{n_bad:,} rows have a blank source name ('{NAME}'), first in data row {row + 1}")


def require_names(table: pd.DataFrame) -> None:
    """Every detection needs a source name: blank or missing names are an error."""
    blank = blank_names(table)
    if blank.any():
        raise blank_name_error(int(blank.sum()), int(np.flatnonzero(blank)[0]))


def repeat_value_columns(columns: Iterable[str]) -> list[str]:
    """The measured values of ``columns`` that tell a repeated detection from another one."""
    return [c for c in columns if c in PHYSICAL_RANGES or c in CLASSES or c == "cluster"]


def repeat_columns(columns: Iterable[str]) -> list[str]:
    """The columns :func:`duplicated_detections` compares, of ``columns``, in its order."""
    columns = list(columns)
    return [
        c
        for c in dict.fromkeys((NAME, OBSID, "region_id", "ra", "dec", *repeat_value_columns(columns)))
        if c in columns
    ]


def checked_columns() -> tuple[str, ...]:
    """The columns the detection checks read, where a table has them."""
    return (NAME, *NAME_ALIASES, OBSID, "region_id", "ra", "dec", "cluster", *PHYSICAL_RANGES, *CLASSES)


def sharing_name_and_obsid(table: pd.DataFrame) -> np.ndarray:
    """Rows whose name and obsid another row has (``keep=False``: every one of them)."""
    return table.duplicated([NAME, OBSID], keep=False).to_numpy()


def duplicated_detections(
    table: pd.DataFrame, value_columns: Sequence[str] = (), shared: np.ndarray | None = None
) -> np.ndarray:
    """Rows repeating an earlier row's detection: same name, obsid (and region_id) and values.

    The CSC lists several detections of a source in one observation (other regions and
    values): those are not repeats. Only the rows ``shared`` (:func:`sharing_name_and_obsid`) are compared.
    """
    subset = [c for c in dict.fromkeys((NAME, OBSID, "region_id", "ra", "dec", *value_columns)) if c in table.columns]
    if shared is None:
        if not {NAME, OBSID} <= set(table.columns):
            return duplicated_rows(table, subset, keep="first")
        shared = sharing_name_and_obsid(table)
    if len(shared) != len(table):
        raise ValueError(f"shared has {len(shared)} rows, the table {len(table)}")
    repeated = np.zeros(len(table), dtype=bool)
    if shared.any():
        repeated[shared] = table.loc[shared, subset].duplicated(keep="first").to_numpy()
    return repeated


#: Float columns hashed to find the candidate repeats (see :func:`duplicated_rows`).
HASHED_FLOATS = 6


def duplicated_rows(table: pd.DataFrame, subset: Sequence[str], keep: Literal["first", False] = "first") -> np.ndarray:
    """``table.duplicated(subset, keep)`` as a boolean array, hashing the rows first.

    A row whose hash over the first ``HASHED_FLOATS`` float columns is unique cannot repeat
    another: only rows sharing a hash are compared exactly. Floats are made canonical first
    (one NaN, +0.0), as pandas treats all NaNs, and 0.0 and -0.0, as equal.
    """
    floats = [c for c in subset if pd.api.types.is_float_dtype(table[c].dtype)][:HASHED_FLOATS]
    if not floats:
        return table.duplicated(list(subset), keep=keep).to_numpy()
    columns = {}
    for column in floats:
        array = table[column].to_numpy(dtype="float64", na_value=np.nan)
        columns[column] = pd.Series(np.where(np.isnan(array), np.nan, array + 0.0), copy=False)
    hashes = pd.util.hash_pandas_object(pd.DataFrame(columns, copy=False), index=False)
    candidates = hashes.duplicated(keep=False).to_numpy()
    result = np.zeros(len(table), dtype=bool)
    if candidates.any():
        result[candidates] = table.loc[candidates, list(subset)].duplicated(keep=keep).to_numpy()
    return result


def repeat_examples(repeats: pd.DataFrame) -> str:
    first = repeats[[c for c in (NAME, OBSID) if c in repeats.columns]].head(3)
    return ", ".join(f"{row[NAME]!s} obsid {row[OBSID]!s}" for _, row in first.iterrows())


def repeat_error(n_repeated: int, repeats: pd.DataFrame) -> InputError:
    """The error for ``n_repeated`` rows repeating an earlier detection; ``repeats`` holds the first of them."""
    return InputError(
        f"{n_repeated:,} rows repeat an earlier detection (same name, obsid and "
        f"values), e.g. {repeat_examples(repeats)}; remove them or pass --allow-duplicates"
    )


#: What a position on the sky is: ra in [0, 360) and dec in [-90, 90] degrees.
POSITION_RULE = "ra in [0, 360), dec in [-90, 90] degrees, both finite"


def invalid_positions(table: pd.DataFrame) -> np.ndarray:
    """True where ``ra``/``dec`` is missing, not finite, or outside :data:`POSITION_RULE`."""
    ra = pd.to_numeric(table["ra"], errors="coerce").to_numpy(dtype="float64")
    dec = pd.to_numeric(table["dec"], errors="coerce").to_numpy(dtype="float64")
    with np.errstate(invalid="ignore"):
        # NaN compares false: a missing coordinate fails as well.
        return ~((ra >= 0) & (ra < 360) & (dec >= -90) & (dec <= 90))


def _plain(value: object) -> str:
    """A cell as a user reads it: ``nan``, ``1e+308``, ``123.0``, ``'abc'`` (no ``np.float64(...)``)."""
    if isinstance(value, (bool, np.bool_)) or value is None:
        return repr(value)
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    return repr(str(value))


def position_error(n_bad: int, row: int, ra: object, dec: object, what: str = "rows") -> InputError:
    """The error for ``n_bad`` rows without a valid position, the first at 0-based ``row`` with ``ra``, ``dec``."""
    return InputError(
        f"{n_bad:,} {what} have no valid position ({POSITION_RULE}), first in data row "
        f"{row + 1} (ra {_plain(ra)}, dec {_plain(dec)})"
    )


def _position_error(table: pd.DataFrame, bad: np.ndarray, what: str = "rows") -> InputError:
    row = int(np.flatnonzero(bad)[0])
    return position_error(int(bad.sum()), row, table["ra"].iloc[row], table["dec"].iloc[row], what)


def require_positions(table: pd.DataFrame) -> None:
    """Every detection needs a position on the sky (:data:`POSITION_RULE`)."""
    bad = invalid_positions(table)
    if bad.any():
        raise _position_error(table, bad)


def require_possible_positions(table: pd.DataFrame, what: str = "rows") -> np.ndarray:
    """Positions may be missing (both or either coordinate null), never impossible; returns which are missing."""
    ra = pd.to_numeric(table["ra"], errors="coerce").to_numpy(dtype="float64")
    dec = pd.to_numeric(table["dec"], errors="coerce").to_numpy(dtype="float64")
    missing = np.isnan(ra) | np.isnan(dec)
    impossible = ~missing & invalid_positions(table)
    if impossible.any():
        raise _position_error(table, impossible, what)
    return missing


def require_roles(roles: np.ndarray, reference: object, to_classify: object) -> None:
    """Stage 3 needs references to learn from and detections to classify."""
    if not (roles == reference).any():
        raise InputError(
            f"no detection has one of the {len(CLASSES)} classes as its SIMBAD type, so there "
            "is no reference to learn from (is 'main_type' the SIMBAD class?)"
        )
    if not (roles == to_classify).any():
        raise InputError(
            "nothing to classify: every usable detection is a reference or of another "
            "SIMBAD type (none is unmatched, 'NaN', or of an uninformative type)"
        )


def require_radius(radius: float) -> None:
    if not (isinstance(radius, (int, float)) and math.isfinite(radius) and radius > 0):
        raise InputError(f"--radius must be a positive number of arcsec, got {radius}")


def cluster_count(columns: Iterable[str]) -> int | None:
    """K, the number of clusters, from a table's ``prob_0 .. prob_{K-1}`` columns (None without them)."""
    return sum(1 for c in columns if c.startswith("prob_") and c[5:].isdigit()) or None


def bad_cluster_labels(table: pd.DataFrame, column: str = "cluster") -> np.ndarray:
    """True where a cluster label is not an integer 0 .. K-1 (K from :func:`cluster_count`)."""
    values = pd.to_numeric(table[column], errors="coerce").to_numpy(dtype="float64")
    n_clusters = cluster_count(table.columns)
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(values) | (values != np.round(values)) | (values < 0)
        if n_clusters:
            bad |= values >= n_clusters
    return bad


def cluster_label_error(
    n_clusters: int | None, n_bad: int, row: int, value: object, column: str = "cluster"
) -> InputError:
    """The error for ``n_bad`` rows whose cluster label is not one of ``n_clusters``, the first at ``row``."""
    limit = f"0 .. {n_clusters - 1}" if n_clusters else "non-negative integers"
    return InputError(
        f"column '{column}' must hold cluster numbers ({limit}); {n_bad:,} rows "
        f"do not, first in data row {row + 1} ({_plain(value)})"
    )


def require_cluster_labels(table: pd.DataFrame, column: str = "cluster", every_cluster_used: bool = False) -> None:
    """Cluster labels must be integers 0 .. K-1 (K from the prob_* columns when present).

    With ``every_cluster_used`` (frozen clusters replacing this run's) a table without
    ``prob_*`` must use every number up to its largest: no mixture component can
    describe a gap, such as a 99 among clusters 0 .. 5.
    """
    bad = bad_cluster_labels(table, column)
    n_clusters = cluster_count(table.columns)
    values = pd.to_numeric(table[column], errors="coerce").to_numpy(dtype="float64")
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise cluster_label_error(n_clusters, int(bad.sum()), row, table[column].iloc[row], column)
    if every_cluster_used and not n_clusters and len(values):
        # Sorted distinct labels: without gaps, the k-th is k (no array of size K, which may be 1e15).
        labels = np.unique(values)
        gaps = labels != np.arange(len(labels))
        if gaps.any():
            largest = labels[-1]
            row = int(np.flatnonzero(values == largest)[0])
            raise InputError(
                f"column '{column}' must number the clusters 0 .. K-1 without gaps; it reaches "
                f"{_plain(table[column].iloc[row])} (data row {row + 1}), but cluster {int(np.flatnonzero(gaps)[0])} "
                f"and {int(largest) + 1 - len(labels) - 1:,} more below it have no detection"
            )


# -- stage 4: class probabilities ---------------------------------------------------------

#: How far a probability may stray from [0, 1], and a row's sum from 1 (rounding only).
PROBABILITY_TOLERANCE = 1e-6


def require_probabilities(probabilities: np.ndarray, classes: Sequence[str] = CLASSES) -> None:
    """Each value in [0, 1]; each row sums to 1, or is all zero (Unclassified)."""
    p = np.asarray(probabilities, dtype="float64")
    with np.errstate(invalid="ignore"):
        outside = ~np.isfinite(p) | (p < -PROBABILITY_TOLERANCE) | (p > 1 + PROBABILITY_TOLERANCE)
    if outside.any():
        row, column = (int(i[0]) for i in np.nonzero(outside))
        raise InputError(
            f"class probabilities must lie in [0, 1]; {int(outside.any(axis=1).sum()):,} rows "
            f"do not, first in data row {row + 1} ({classes[column]} = {_plain(p[row, column])})"
        )
    totals = p.sum(axis=1)
    bad = (np.abs(totals - 1) > PROBABILITY_TOLERANCE) & (totals != 0)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise InputError(
            f"the class probabilities of a detection must sum to 1 (or all be 0 for an "
            f"unclassified one); {int(bad.sum()):,} rows do not, first in data row {row + 1} "
            f"(sum {totals[row]:.6g})"
        )


# -- artifacts: model.json and classifier.json ---------------------------------------------


class _Schema:
    """Small helpers that read a field of a JSON artifact or raise naming it."""

    def fail(self, field: str, problem: str) -> NoReturn:
        raise InputError(f"field '{field}' {problem}")

    def choice(self, field: str, value: object, choices: Sequence[str]) -> None:
        if value not in choices:
            self.fail(field, f"must be one of {', '.join(choices)}, got {value!r}")

    def get(self, document: Mapping[str, Any], field: str, kind: type | tuple[type, ...] | None = None) -> Any:
        value = document
        for key in field.split("."):
            if not isinstance(value, dict) or key not in value:
                self.fail(field, "is missing")
            value = value[key]
        if (kind is not None and not isinstance(value, kind)) or (kind in (int, float) and isinstance(value, bool)):
            self.fail(field, f"should be {getattr(kind, '__name__', kind)}, got {type(value).__name__}")
        return value

    def array(
        self, document: Mapping[str, Any], field: str, shape: tuple[int | None, ...], finite: bool = True
    ) -> np.ndarray:
        value = self.get(document, field)
        try:
            array = np.asarray(value, dtype="float64")
        except (TypeError, ValueError):
            self.fail(field, "is not an array of numbers")
        if array.shape != tuple(shape):
            self.fail(field, f"has shape {array.shape}, expected {tuple(shape)}")
        if finite and not np.isfinite(array).all():
            self.fail(field, "has non-finite values")
        return array

    def names(self, document: Mapping[str, Any], field: str, expected: Sequence[str]) -> list[str]:
        value = self.get(document, field, list)
        if list(value) != list(expected):
            self.fail(field, f"should be {list(expected)}, got {value if len(str(value)) < 120 else '...'}")
        return value


def _check_preprocessing(schema: _Schema, document: dict, feature_set: FeatureSet) -> None:
    prefix = "preprocessing"
    log_features, minmax_features = feature_set.log_features, feature_set.minmax_features
    schema.names(document, f"{prefix}.features", feature_set.features)
    schema.names(document, f"{prefix}.log_features", log_features)
    schema.names(document, f"{prefix}.minmax_features", minmax_features)
    for name in log_features:
        shift = schema.get(document, f"{prefix}.log_shift.{name}", (int, float))
        if not (math.isfinite(shift) and shift > 0):
            schema.fail(f"{prefix}.log_shift.{name}", f"must be a positive number, got {shift!r}")
    for name in (*log_features, *minmax_features):
        low = schema.get(document, f"{prefix}.data_min.{name}", (int, float))
        high = schema.get(document, f"{prefix}.data_max.{name}", (int, float))
        if not (math.isfinite(low) and math.isfinite(high) and low <= high):
            schema.fail(f"{prefix}.data_max.{name}", f"must be a finite number >= data_min, got {low!r} .. {high!r}")


def _check_format(schema: _Schema, document: dict, expected_format: str, version: int) -> FeatureSet:
    """Check the format fields and the features; return the artifact's feature set (the paper's if unrecorded)."""
    if not isinstance(document, dict):
        raise InputError("not a JSON object")
    found = document.get("format")
    if found != expected_format:
        what = expected_format.split(".")[-1].replace("-", " ")
        raise InputError(f"not a {what} (field 'format' is {found!r}, expected {expected_format!r})")
    if document.get("format_version") != version:
        schema.fail(
            "format_version", f"{document.get('format_version')!r} is not supported (this is version {version})"
        )
    feature_set = from_artifact(document)
    schema.names(document, "features", feature_set.features)
    # The rule a feature-set file is held to when read; an artifact edited by hand too.
    require_transforms_apply(feature_set, PHYSICAL_RANGES, "feature_set")
    return feature_set


def validate_model_document(document: dict, expected_format: str, version: int) -> None:
    """Check a clustering ``model.json`` before use: keys, shapes, finite values, a proper mixture.

    Weights summing to 1, symmetric positive-definite covariances, upper-triangular
    precision Cholesky factors with a positive diagonal that invert their covariance.
    """
    schema = _Schema()
    feature_set = _check_format(schema, document, expected_format, version)
    _check_preprocessing(schema, document, feature_set)
    k = schema.get(document, "mixture.n_components", int)
    if k < 1:
        schema.fail("mixture.n_components", f"must be positive, got {k}")
    if schema.get(document, "mixture", dict).get("covariance_type", "full") != "full":
        schema.fail("mixture.covariance_type", "must be 'full'")
    mixture = document["mixture"]
    # Fit diagnostics and settings are read too: a damaged one must be named, not crash the load.
    for key, kinds in (
        ("n_iter", int),
        ("max_iter", int),
        ("n_init", int),
        ("random_state", (int, type(None))),
        ("converged", bool),
        ("tol", (int, float)),
        ("reg_covar", (int, float)),
        ("lower_bound", (int, float, type(None))),
    ):
        if key in mixture:
            value = mixture[key]
            if (
                not isinstance(value, kinds)
                or (isinstance(value, bool) and kinds is not bool)
                or (isinstance(value, float) and not math.isfinite(value))
            ):
                schema.fail(f"mixture.{key}", f"has an unusable value {value!r}")
    d = len(feature_set)
    weights = schema.array(document, "mixture.weights", (k,))
    if (weights < 0).any() or abs(weights.sum() - 1) > 1e-6:
        schema.fail("mixture.weights", f"must be non-negative and sum to 1 (sum {weights.sum():.6g})")
    schema.array(document, "mixture.means", (k, d))
    covariances = schema.array(document, "mixture.covariances", (k, d, d))
    cholesky = schema.array(document, "mixture.precisions_cholesky", (k, d, d))
    for j in range(k):
        covariance = covariances[j]
        if not np.allclose(covariance, covariance.T, rtol=1e-8, atol=1e-12):
            schema.fail("mixture.covariances", f"component {j} is not symmetric")
        try:
            np.linalg.cholesky(covariance)
        except np.linalg.LinAlgError:
            schema.fail("mixture.covariances", f"component {j} is not positive-definite")
        factor = cholesky[j]
        if np.abs(np.tril(factor, -1)).max() > 0 or (np.diag(factor) <= 0).any():
            schema.fail(
                "mixture.precisions_cholesky", f"component {j} is not upper-triangular with a positive diagonal"
            )
        # precision = U U^T must invert the covariance (an edited entry breaks this).
        with np.errstate(over="ignore", invalid="ignore"):
            product = factor @ factor.T @ covariance
        if not (np.isfinite(product).all() and np.allclose(product, np.eye(d), atol=1e-4)):
            schema.fail("mixture.precisions_cholesky", f"component {j} does not match its covariance")
    _check_cluster_provenance(schema, document, k)


def _check_cluster_provenance(schema: _Schema, document: dict, k: int) -> None:
    """``clusters``: whose clusters the mixture describes (absent in older models)."""
    if "clusters" not in document:
        return
    provenance = schema.get(document, "clusters", dict)
    source = provenance.get("source")
    if source not in ("stage 1", "frozen"):
        schema.fail("clusters.source", f"must be 'stage 1' or 'frozen', got {source!r}")
    agreement = provenance.get("agreement")
    if agreement is not None and not (_finite(agreement) and 0 <= agreement <= 1):
        schema.fail("clusters.agreement", f"must be a share from 0 to 1, got {agreement!r}")
    n_detections = provenance.get("n_detections", 0)
    if not (_integer(n_detections) and n_detections >= 0):
        schema.fail("clusters.n_detections", f"must be a count, got {n_detections!r}")
    comparison = provenance.get("published_comparison")
    if comparison is not None and not isinstance(comparison, dict):
        schema.fail("clusters.published_comparison", "must be a table of numbers")
    if comparison:
        for key in ("max_weight_difference", "max_mean_distance", "median_separation"):
            value = comparison.get(key)
            if not _finite(value):
                schema.fail(f"clusters.published_comparison.{key}", f"must be a finite number, got {value!r}")
        if not isinstance(comparison.get("caveat", ""), str):
            schema.fail("clusters.published_comparison.caveat", "must be text")


def validate_classifier_document(document: dict, expected_format: str, version: int, methods: Sequence[str]) -> None:
    """Check a ``classifier.json`` before use: keys, method, classes, shapes and finite values."""
    schema = _Schema()
    feature_set = _check_format(schema, document, expected_format, version)
    schema.choice("method", schema.get(document, "method", str), methods)
    schema.get(document, "location", bool)
    types = schema.get(document, "uninformative_types", list)
    if not all(isinstance(t, str) for t in types):
        schema.fail("uninformative_types", "must be a list of strings")
    _check_preprocessing(schema, document, feature_set)
    d = len(feature_set)
    classes = schema.get(document, "references.classes", list)
    if not classes or not all(isinstance(c, str) for c in classes) or len(set(classes)) != len(classes):
        schema.fail("references.classes", "must be a list of distinct class names")
    n_features = schema.get(document, "references.n_features")
    if n_features is not None and n_features != d:
        schema.fail("references.n_features", f"should be {d}, got {n_features!r}")
    minimum = schema.get(document, "references.min_references")
    if minimum != "n_features" and not (_integer(minimum) and minimum >= 2):
        schema.fail("references.min_references", f"must be 'n_features' or an integer >= 2, got {minimum!r}")
    # The scoring options (absent from older artifacts: the paper's).
    references = document["references"]
    likelihood = references.get("likelihood", "distance")
    schema.choice("references.likelihood", likelihood, LIKELIHOODS)
    schema.choice("references.priors", references.get("priors", "none"), PRIORS)
    calibration = document.get("calibration")
    if calibration is not None:
        temperature = calibration.get("temperature") if isinstance(calibration, dict) else None
        if not (_finite(temperature) and temperature > 0):
            schema.fail("calibration.temperature", f"must be a positive number, got {temperature!r}")
    clusters = schema.get(document, "references.clusters", dict)
    for cluster, _per_class in clusters.items():
        try:
            number = float(cluster)
        except ValueError:
            number = -1.0
        if not (number >= 0 and number == int(number)):
            schema.fail(f"references.clusters.{cluster}", "is not a cluster number")
        for label in classes:
            field = f"references.clusters.{cluster}.{label}"
            count = schema.get(document, f"{field}.n_references", int)
            scored = schema.get(document, f"{field}.scored", bool)
            if count < 0:
                schema.fail(f"{field}.n_references", "is negative")
            if scored:
                schema.array(document, f"{field}.mean", (d,))
                inverse = schema.array(document, f"{field}.inverse_covariance", (d, d))
                if not np.allclose(inverse, inverse.T, rtol=1e-6, atol=1e-8):
                    schema.fail(f"{field}.inverse_covariance", "is not symmetric")
                eigenvalues = np.linalg.eigvalsh(inverse)
                if eigenvalues.min() < -1e-8 * max(1.0, abs(eigenvalues).max()):
                    schema.fail(f"{field}.inverse_covariance", "is not positive semi-definite")
                if likelihood == "gaussian":
                    entry = references["clusters"][cluster][label]
                    value = entry.get("log_pseudo_determinant")
                    if not _finite(value):
                        schema.fail(f"{field}.log_pseudo_determinant", f"must be a finite number, got {value!r}")
                    rank = entry.get("rank")
                    if not (_integer(rank) and 0 <= rank <= d):
                        schema.fail(f"{field}.rank", f"must be an integer from 0 to {d}, got {rank!r}")
    location = document["location"]
    n_nb = d + (1 if location else 0)
    schema.names(document, "naive_bayes.classes", classes)
    categories = schema.get(document, "naive_bayes.categories", dict)
    indices = sorted(i for columns in categories.values() for i in (columns if isinstance(columns, list) else [None]))  # type: ignore[type-var]
    if indices != list(range(n_nb)):
        schema.fail("naive_bayes.categories", f"must split the {n_nb} feature columns between the categories")
    bins = schema.get(document, "naive_bayes.bins", int)
    if bins < 1:
        schema.fail("naive_bayes.bins", "must be positive")
    edges = schema.array(document, "naive_bayes.edges", (n_nb, bins + 1))
    if (np.diff(edges, axis=1) < 0).any():
        schema.fail("naive_bayes.edges", "must increase along each row")
    likelihood = schema.array(document, "naive_bayes.log_likelihood", (len(classes), n_nb, bins + 1), finite=False)
    if np.isnan(likelihood).any() or np.isposinf(likelihood).any():
        schema.fail("naive_bayes.log_likelihood", "must be log densities (no NaN, no +inf)")
    prior = schema.get(document, "naive_bayes.class_log_prior", list)
    if len(prior) != len(classes) or not all(v is None or (_finite(v) and v <= 1e-9) for v in prior):
        schema.fail("naive_bayes.class_log_prior", f"must be {len(classes)} log probabilities (or null)")
    alpha = schema.get(document, "naive_bayes.alpha", dict)
    if set(alpha) != set(categories) or not all(_finite(v) and v >= 0 for v in alpha.values()):
        schema.fail("naive_bayes.alpha", "must give each category a finite non-negative weight")
    quantiles = schema.array(document, "outlier_quantiles", (len(OUTLIER_PERCENTILES),))
    if (np.diff(quantiles) < 0).any():
        schema.fail("outlier_quantiles", "must be a non-decreasing list of numbers")


def _finite(value: object) -> TypeGuard[float]:
    """A finite JSON number (``true`` is not one, though Python counts it as 1)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _integer(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def preprocessing_differences(first: LogMinMaxScaler, second: LogMinMaxScaler) -> list[str]:
    """Constants of two fitted scalers that differ, as ``'data_max of bb_kt'`` strings."""
    a, b = first.to_dict(), second.to_dict()
    differences = []
    for key in a.keys() | b.keys():
        left, right = a.get(key), b.get(key)
        if isinstance(left, dict) and isinstance(right, dict):
            differences += [f"{key} of {k}" for k in sorted(left.keys() | right.keys()) if left.get(k) != right.get(k)]
        elif left != right:
            differences.append(key)
    return sorted(differences)
