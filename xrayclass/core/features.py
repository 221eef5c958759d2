"""The X-ray features of a detection (the paper's 12, or a configured set): derivation and completeness."""

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd

from xrayclass.constants import FEATURES, VARIABILITY_RATIO_BANDS
from xrayclass.core.checks import (
    PHYSICAL_RANGES,
    SMALLEST_NORMAL,
    describe_range,
    out_of_range,
    require_columns,
    require_numeric,
    subnormal,
    subnormal_columns,
)
from xrayclass.core.featuresets import PAPER, FeatureSet

__all__ = ["DERIVED_FEATURES", "complete_rows", "derive_features", "describe_dropped", "prepare_features"]

log = logging.getLogger(__name__)

DERIVED_FEATURES = tuple(f"var_ratio_{band}" for band in VARIABILITY_RATIO_BANDS) + ("var_newq_b",)


def derive_features(detections: pd.DataFrame, feature_set: FeatureSet = PAPER) -> pd.DataFrame:
    """A copy of ``detections`` with ``feature_set``'s derived variability features (re)computed.

    ``var_ratio_X = var_sigma_X / var_mean_X`` for X in b, h, s (the light curve's relative
    scatter) and ``var_newq_b = ((var_max_b + var_min_b) / 2) / var_mean_b`` (mid-range over
    mean). A zero ``var_mean`` gives a non-finite value, which :func:`complete_rows` treats as missing.
    """
    wanted = feature_set.derived_features
    derived = {}
    with np.errstate(divide="ignore", invalid="ignore"):
        for band in VARIABILITY_RATIO_BANDS:
            if f"var_ratio_{band}" in wanted:
                derived[f"var_ratio_{band}"] = detections[f"var_sigma_{band}"] / detections[f"var_mean_{band}"]
        if "var_newq_b" in wanted:
            derived["var_newq_b"] = ((detections["var_max_b"] + detections["var_min_b"]) / 2) / detections["var_mean_b"]
    return detections.assign(**derived)


def prepare_features(detections: pd.DataFrame, feature_set: FeatureSet = PAPER) -> pd.DataFrame:
    """Check the feature columns of ``detections`` and derive ``feature_set``'s from the raw ones when present.

    A table without the raw columns (e.g. a published stage output) must carry the
    features themselves; an :class:`InputError` names the missing or non-numeric columns.
    """
    raw_columns = feature_set.raw_columns
    raw_present = all(c in detections.columns for c in raw_columns)
    if raw_present:
        detections = require_numeric(detections, raw_columns)
        return derive_features(detections, feature_set)
    if all(c in detections.columns for c in feature_set.features):
        return require_numeric(detections, feature_set.features)
    # Name what is missing in terms of the raw columns, which is what a user can fetch.
    require_columns(detections, raw_columns)
    return detections  # not reached


def complete_rows(
    detections: pd.DataFrame, features: Sequence[str] | None = None, feature_set: FeatureSet = PAPER
) -> tuple[np.ndarray, pd.DataFrame]:
    """Which rows have every feature (of ``feature_set`` unless ``features`` is given), and why the others do not.

    A value counts if it is finite, in its physical range and, where the pipeline takes
    a log of it or divides by it, not subnormal; the raw light-curve columns, where
    present, pass the last two tests too. Values are never clipped. ``reasons``: per
    column, the rows missing, not finite, out of range and subnormal.
    """
    features = list(feature_set.features if features is None else features)
    # Only the raw columns this set reads: a row is not lost for a column it does not use.
    raw = [c for c in feature_set.raw_columns if c not in features and c in detections.columns]
    tiny_unusable = set(subnormal_columns(feature_set))
    # A column at a time: no copy of the features as one 2-D array, nor of the flags.
    complete = np.ones(len(detections), dtype=bool)
    missing, infinite, outside, tiny = [], [], [], []
    largest = np.finfo("float64").max
    for column in features:
        values = detections[column].to_numpy(dtype="float64")
        low, high = PHYSICAL_RANGES.get(column, (-np.inf, np.inf))
        # One test for all three reasons (NaN compares false, finite bounds fail infinities);
        # the reasons are counted on the rows that fail.
        with np.errstate(invalid="ignore"):
            usable = (values >= max(low, -largest)) & (values <= min(high, largest))
        failed = values[~usable]
        missing_here, infinite_here = int(np.isnan(failed).sum()), int(np.isinf(failed).sum())
        missing.append(missing_here)
        infinite.append(infinite_here)
        outside.append(len(failed) - missing_here - infinite_here if column in PHYSICAL_RANGES else 0)
        # Counted only where the row has no other reason in this column: one reason each.
        tiny_here = subnormal(values) & usable if column in tiny_unusable else np.zeros(0, dtype=bool)
        tiny.append(int(tiny_here.sum()))
        complete &= usable
        if tiny[-1]:
            complete &= ~tiny_here
    for column in raw:
        # A raw column counts only where it has a value outside its range, or subnormal.
        missing.append(0)
        infinite.append(0)
        flags = out_of_range(detections, [column])
        outside_here = flags[column].to_numpy(dtype=bool) if column in flags.columns else np.zeros(0, dtype=bool)
        outside.append(int(outside_here.sum()))
        if outside[-1]:
            complete &= ~outside_here
        tiny_here = np.zeros(0, dtype=bool)
        if column in tiny_unusable:
            tiny_here = subnormal(pd.to_numeric(detections[column], errors="coerce").to_numpy(dtype="float64"))
            if outside[-1]:
                tiny_here &= ~outside_here
        tiny.append(int(tiny_here.sum()))
        if tiny[-1]:
            complete &= ~tiny_here
    reasons = pd.DataFrame(
        {"missing": missing, "not_finite": infinite, "out_of_range": outside, "subnormal": tiny},
        index=pd.Index([*features, *raw], name="feature"),
    )
    return complete, reasons


def describe_dropped(reasons: pd.DataFrame, n_dropped: int, n_total: int, n_features: int | None = None) -> str:
    """One log line saying how many rows were dropped and for which features."""
    n_features = len(FEATURES) if n_features is None else n_features
    parts = []
    for feature, row in reasons.iterrows():
        if row["missing"]:
            parts.append(f"{feature} missing in {row['missing']:,}")
        if row["not_finite"]:
            parts.append(f"{feature} not finite in {row['not_finite']:,}")
        if row.get("out_of_range", 0):
            parts.append(f"{feature} outside {describe_range(str(feature))} in {row['out_of_range']:,}")
        if row.get("subnormal", 0):
            parts.append(f"{feature} subnormal (non-zero, below {SMALLEST_NORMAL:.3g}) in {row['subnormal']:,}")
    why = "; ".join(parts) if parts else "none"
    return (
        f"dropped {n_dropped:,} of {n_total:,} detections without all {n_features} features "
        f"(a detection can lack several: {why})"
    )
