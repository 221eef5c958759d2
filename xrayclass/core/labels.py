"""An astronomer's own labels as references (``classification.py --labels labels.csv``).

The explorer (``analysis.py explore``) exports ``labels.csv`` (``name, class, comment,
labeler, time``). A label overrides SIMBAD's type for every detection of its source: one
of the ten classes makes them references of that class; ``other`` leaves them out.

The latest ``time`` wins (equal times: the file given last). Times are ISO 8601 instants
(``2026-05-12T10:20:30.123Z``; no zone means UTC, a date alone its midnight); anything
else (``yesterday``, ``05/12/2026``, ``2026-1-1``, an empty cell) is an error naming the line.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from xrayclass.constants import CLASSES, MAIN_TYPE, NAME, NAME_ALIASES
from xrayclass.exceptions import InputError

__all__ = [
    "LABEL_COLUMNS",
    "OTHER",
    "OTHER_TYPE",
    "LabelSummary",
    "apply_labels",
    "checked_labels",
    "label_times",
    "latest_labels",
    "log_summary",
]

log = logging.getLogger("xrayclass")

LABEL_COLUMNS = ("name", "class", "comment", "labeler", "time")
OTHER = "other"
#: ``main_type`` given to detections labeled ``other``: outside the ten classes and not
#: uninformative, so stage 3 leaves them out.
OTHER_TYPE = "other (own label)"


@dataclass
class LabelSummary:
    """What the labels did, for the log and ``classifier.json``."""

    files: list = field(default_factory=list)
    labels: int = 0
    sources_matched: int = 0
    sources_unmatched: int = 0
    detections_relabeled: int = 0
    new_references: int = 0
    changed_references: int = 0
    removed_references: int = 0
    confirmed_references: int = 0

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def checked_labels(table: pd.DataFrame) -> pd.DataFrame:
    """One ``labels.csv`` (as strings) checked and trimmed, ``time`` as UTC instants (:func:`label_times`).

    :class:`InputError` names the line (the header is line 1) of a missing column, an
    empty name, an unknown class or a time that is not one.
    """
    missing = [c for c in LABEL_COLUMNS if c not in table]
    if missing:
        raise InputError(
            f"missing label columns: {', '.join(missing)} "
            f"(expected {', '.join(LABEL_COLUMNS)}, as the explorer exports)"
        )
    table = table[list(LABEL_COLUMNS)].copy()
    table["name"] = table["name"].str.strip()
    table["class"] = table["class"].str.strip()
    if (table["name"] == "").any():
        row = int(np.flatnonzero(table["name"] == "")[0]) + 2
        raise InputError(f"line {row}: empty source name")
    unknown = ~table["class"].isin([*CLASSES, OTHER])
    if unknown.any():
        row = int(np.flatnonzero(unknown)[0])
        raise InputError(
            f"line {row + 2}: unknown class {table['class'].iloc[row]!r} (one of {', '.join(CLASSES)} or {OTHER})"
        )
    table["time"] = label_times(table["time"])
    return table.reset_index(drop=True)


#: The shape of an ISO 8601 date, alone or with a time and zone, extended
#: (``2026-05-12T10:20:30Z``) or basic (``20260512T102030Z``); pandas reads the values.
ISO_8601_SHAPE = (
    r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}(?::\d{2}(?::\d{2}(?:[.,]\d+)?)?)?(?:Z|[+-]\d{2}(?::?\d{2})?)?)?"
    r"|\d{8}(?:T\d{2}(?:\d{2}(?:\d{2}(?:[.,]\d+)?)?)?(?:Z|[+-]\d{2}(?:\d{2})?)?)?"
)


def label_times(texts: pd.Series) -> pd.Series:
    """The UTC instants of a labels table's ``time`` texts; :class:`InputError` naming the first line that is not one."""
    texts = texts.astype(str).str.strip()
    times = pd.to_datetime(texts, format="ISO8601", utc=True, errors="coerce")
    # pandas' ISO 8601 mode also reads 'now' and 'today' (each as the moment it reads it),
    # '2026-1-1', '2026' and '05:0': the text must have the standard's shape as well.
    bad = times.isna().to_numpy() | ~texts.str.fullmatch(ISO_8601_SHAPE).to_numpy(dtype=bool)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise InputError(
            f"line {row + 2}: time {texts.iloc[row]!r} is not an ISO 8601 date and time "
            "(such as 2026-05-12T10:20:30Z, which the explorer writes, or 2026-05-12T12:20:30+02:00)"
        )
    return times


def latest_labels(tables: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """One row per source from several checked labels tables, sorted by name: the latest, then the last given."""
    if not tables:
        empty = {column: pd.Series(dtype=object) for column in LABEL_COLUMNS}
        return pd.DataFrame({**empty, "time": pd.Series(dtype="datetime64[ns, UTC]")})
    labels = pd.concat(
        [table.assign(_order=order, _row=np.arange(len(table))) for order, table in enumerate(tables)],
        ignore_index=True,
    )
    labels = labels.sort_values(["time", "_order", "_row"], kind="stable").drop_duplicates("name", keep="last")
    return labels.drop(columns=["_order", "_row"]).sort_values("name").reset_index(drop=True)


def apply_labels(
    table: pd.DataFrame, labels: pd.DataFrame, classes: Sequence[str] = CLASSES
) -> tuple[pd.DataFrame, LabelSummary]:
    """``table`` with ``main_type`` replaced by the labels for the labeled sources' detections."""
    name_column = NAME if NAME in table else next((a for a in NAME_ALIASES if a in table), NAME)
    summary = LabelSummary(labels=len(labels))
    if name_column not in table or MAIN_TYPE not in table:
        return table, summary
    lookup = pd.Series(labels["class"].to_numpy(), index=labels["name"].to_numpy())
    names = table[name_column].astype(str)
    new_types = names.map(lookup)
    hit = new_types.notna().to_numpy()
    matched = set(names[hit])
    summary.sources_matched = len(matched)
    summary.sources_unmatched = int(len(labels) - len(matched))
    old = table[MAIN_TYPE].astype(object).where(table[MAIN_TYPE].notna(), "NaN").astype(str).to_numpy()
    new = np.where(new_types.to_numpy(dtype=object) == OTHER, OTHER_TYPE, new_types.to_numpy(dtype=object))
    was_reference = np.isin(old, list(classes))
    is_reference = np.isin(new, list(classes))
    summary.detections_relabeled = int(hit.sum())
    summary.new_references = int((hit & ~was_reference & is_reference).sum())
    summary.changed_references = int((hit & was_reference & is_reference & (old != new)).sum())
    summary.confirmed_references = int((hit & was_reference & (old == new)).sum())
    summary.removed_references = int((hit & was_reference & ~is_reference).sum())
    types = np.where(hit, new, table[MAIN_TYPE].astype(object).to_numpy())
    return table.assign(**{MAIN_TYPE: types}), summary


def log_summary(summary: LabelSummary) -> None:
    log.info(
        "own labels: %s sources labeled in %s; %s of them found (%s detections relabeled): "
        "%s new references, %s references changed class, %s confirmed, %s removed (labeled 'other')",
        f"{summary.labels:,}",
        ", ".join(f["file"] for f in summary.files),
        f"{summary.sources_matched:,}",
        f"{summary.detections_relabeled:,}",
        f"{summary.new_references:,}",
        f"{summary.changed_references:,}",
        f"{summary.confirmed_references:,}",
        f"{summary.removed_references:,}",
    )
    if summary.sources_unmatched:
        log.warning("%s labeled sources are not in the input and change nothing", f"{summary.sources_unmatched:,}")
