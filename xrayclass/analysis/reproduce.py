"""Checks of this pipeline's outputs against the published ones.

Every "obtained" value is computed from the tables of the run being checked; the
"published" values are the paper's numbers (:mod:`xrayclass.analysis.published`) or the
published tables themselves, read from the shared reference directory.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from xrayclass.analysis import published
from xrayclass.constants import CLASSES, FEATURES, NAME
from xrayclass.stages.master_classification import tables_kappa

if TYPE_CHECKING:
    import pandas as pd


__all__ = ["FEATURE_RTOL", "POSITION_TOLERANCE_DEG", "Check", "compare_table", "format_checks", "master_table_checks"]

log = logging.getLogger(__name__)

#: Positions are compared to this tolerance (degrees): the published tables went
#: through more than one text round trip, which changes the last bits.
POSITION_TOLERANCE_DEG = 1e-9
#: Feature values are compared to this relative tolerance, for the same reason.
FEATURE_RTOL = 1e-12


@dataclass
class Check:
    """One published value next to the value obtained, and whether they match."""

    name: str
    published: object
    obtained: object
    passed: bool

    def row(self) -> dict[str, Any]:
        return {
            "check": self.name,
            "published": _text(self.published),
            "obtained": _text(self.obtained),
            "result": "PASS" if self.passed else "FAIL",
        }


def _text(value: object) -> str:
    return f"{value:,}" if isinstance(value, (int, np.integer)) else str(value)


def _count_check(name: str, published_value: object, obtained_value: object) -> Check:
    return Check(name, published_value, obtained_value, published_value == obtained_value)


def _differing(
    joined: pd.DataFrame, columns: Sequence[str], tolerance: float | None = None, relative: bool = False
) -> int:
    """Number of sources (rows of ``joined``) where any of ``columns`` differs."""
    off = np.zeros(len(joined), dtype=bool)
    for column in columns:
        mine: Any = joined[column]
        theirs: Any = joined[f"{column}__published"]
        if tolerance is None:
            off |= (mine.astype(str) != theirs.astype(str)).to_numpy()
            continue
        mine, theirs = mine.to_numpy(dtype="float64"), theirs.to_numpy(dtype="float64")
        limit = tolerance * np.abs(theirs) if relative else tolerance
        off |= ~((np.abs(mine - theirs) <= limit) | (np.isnan(mine) & np.isnan(theirs)))
    return int(off.sum())


def compare_table(
    ours: pd.DataFrame,
    theirs: pd.DataFrame,
    label: str,
    exact: Mapping[str, Sequence[str]],
    close: Sequence[tuple[str, Sequence[str], float | None, bool]] = (),
) -> list[Check]:
    """Compare two per-source tables keyed by source name: rows, names, then each group of columns.

    Row order is not compared: within an equal detection count the published order came
    from an unstable sort.
    """
    checks = [_count_check(f"{label}: sources", len(theirs), len(ours))]
    differing = len(set(ours[NAME]) ^ set(theirs[NAME]))
    checks.append(Check(f"{label}: names in only one of the tables", 0, differing, differing == 0))
    joined = ours.merge(theirs, on=NAME, suffixes=("", "__published"))
    groups: list[tuple[str, Sequence[str], float | None, bool]] = [(d, c, None, False) for d, c in exact.items()]
    groups += list(close)
    for description, columns, tolerance, relative in groups:
        shared = [c for c in columns if c in ours.columns and c in theirs.columns]
        if not shared:
            continue
        count = _differing(joined, shared, tolerance, relative)
        checks.append(Check(f"{label}: sources whose {description} differ", 0, count, count == 0))
    return checks


def master_table_checks(
    uniquely: pd.DataFrame,
    ambiguous: pd.DataFrame,
    summary: Mapping[str, Any],
    published_uniquely: pd.DataFrame,
    published_ambiguous: pd.DataFrame,
) -> list[Check]:
    """Every check of stage 4 against the published tables and numbers."""
    close = [
        ("ra/dec (to 1e-9 deg)", ["ra", "dec"], POSITION_TOLERANCE_DEG, False),
        ("first-detection features", list(FEATURES), FEATURE_RTOL, True),
    ]
    common = {"detection counts": ["detection_count"], "mean±std strings (10 classes)": list(CLASSES)}
    checks = compare_table(
        uniquely,
        published_uniquely,
        "uniquely classified",
        {"master classes": ["master_class", "agg_master_class"], **common},
        close,
    )
    checks += compare_table(
        ambiguous,
        published_ambiguous,
        "ambiguous",
        {"hard/soft classes": ["hard_master_class", "soft_master_class"], **common},
        close,
    )
    checks.append(
        _count_check(
            "uniquely classified sources (paper)", published.UNIQUELY_CLASSIFIED, summary["uniquely_classified"]
        )
    )
    checks.append(_count_check("ambiguous sources (paper)", published.AMBIGUOUS, summary["ambiguous"]))
    kappa = None if summary["cohen_kappa"] is None else round(summary["cohen_kappa"], 3)
    checks.append(
        Check(
            "Cohen's kappa, hard vs soft (paper, 3 decimals)",
            published.COHEN_KAPPA,
            kappa,
            kappa == published.COHEN_KAPPA,
        )
    )
    # Not a number of the paper: the published tables' own kappa over sources with 2+ detections.
    theirs = tables_kappa(published_uniquely, published_ambiguous, min_detections=2)
    mine = summary.get("cohen_kappa_multiple_detections")
    theirs, mine = (None if v is None else round(v, 3) for v in (theirs, mine))
    checks.append(
        Check(
            "Cohen's kappa, sources with 2+ detections (published tables, 3 decimals)",
            theirs,
            mine,
            theirs is not None and mine == theirs,
        )
    )
    for label, count in published.DETECTIONS_PER_SOURCE.items():
        checks.append(
            _count_check(f"sources with {label} detections (paper)", count, summary["detections_per_source"][label])
        )
    return checks


def format_checks(checks: Sequence[Check]) -> str:
    """A plain-text table of the checks and a closing line of totals."""
    rows = [check.row() for check in checks]
    header = {"check": "check", "published": "published", "obtained": "obtained", "result": "result"}
    width = {key: max(len(str(row[key])) for row in [header, *rows]) for key in header}
    lines = [
        f"{row['check']:<{width['check']}}  {row['published']:>{width['published']}}  "
        f"{row['obtained']:>{width['obtained']}}  {row['result']}"
        for row in [header, *rows]
    ]
    passed = sum(check.passed for check in checks)
    lines.append(f"reproduction: {passed} of {len(checks)} checks passed")
    return "\n".join(lines)
