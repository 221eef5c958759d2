"""Comparison of the uniquely classified sources with another catalog (the paper's Table 4).

The uniquely classified sources (stage 4) are matched with a reference catalog, and
for each *comparison class* (a group of our classes paired with a group of the
reference's labels) three shares are computed over the matched sources.

Matching
--------
A source of ours matches a reference row when their CSC names are equal or, failing
that, when the nearest reference position lies within ``radius`` (1 arcsec, as in the
paper; astropy ``SkyCoord.match_to_catalog_sky``). Name matching takes precedence:
a source matched by name keeps that row even if another row lies nearer. Names are
compared after removing whitespace and ignoring case (``2CXO J0000...`` equals
``2cxoj0000...``). Each of our sources matches at most one reference row, so every
number below counts *our* sources; a reference row may be matched by more than one
of ours (reported as a warning). Reference rows without a label are left out before
matching, and duplicate reference names keep their first row.

Metrics
-------
For a comparison class C with our classes ``ours(C)`` and reference labels
``theirs(C)``, among the matched sources:

* ``matches``: our sources of class C that matched (the paper's "#matches");
* ``precision`` = ``#(ours C and reference in theirs(C)) / matches``, over every
  reference label ("when all labels in the reference catalog are included");
* ``r_precision``: the same numerator over only the matches whose reference label is
  *shared*, i.e. belongs to ``theirs`` of any comparison class of the mapping ("only
  reference catalog labels that are in both catalogs"). For MUWCLASS with the default
  mapping the shared labels are AGN, HMXB, LMXB and YSO; CV, NS, HM-STAR and LM-STAR
  are not shared. So R-precision depends on the whole mapping, not on C alone;
* ``recall`` = ``#(ours C and reference in theirs(C)) / #(reference in theirs(C))``,
  the reference's C *among the matched sources* (our catalog holds only previously
  unlabeled sources, so the reference's C outside the matches cannot be recovered
  and is not counted).

A share whose denominator is zero (e.g. a class with no matches) is undefined: it is
NaN, printed and written as ``NaN``, never 0 and never an error.

Reproduction of the paper (Table 4, MUWCLASS training set)
----------------------------------------------------------
On the published ``paper_uniquely_classified.csv`` against ``muwclass_td.csv``, using
MUWCLASS's predicted ``Class`` column (not ``True_Class``), this gives 116 matches
(all by name; every one is also within 1 arcsec) and, for AGN+Seyfert / XB / YSO:
matches 31 / 29 / 56, precision 10/31 = 0.32, 5/29 = 0.17, 10/56 = 0.18, R-precision
10/18 = 0.56, 5/8 = 0.62 (0.625, rounded half to even), 10/14 = 0.71, recall
10/12 = 0.83, 5/16 = 0.31, 10/12 = 0.83. Every published number is reproduced except
the YSO R-precision, printed 0.74 in the paper. No count reaches 0.74: the YSO
numerator is pinned to 10 by both the precision (10/56 = 0.18; 9 or 11 would give
0.16 or 0.20) and the recall (10/12 = 0.83), and 10/d lies in [0.735, 0.745) for no
integer d (10/13 = 0.77, 10/14 = 0.71). With ``True_Class`` the precisions are
13/31, 3/29 and 8/56 (0.42, 0.10, 0.14), which do not match the paper, so the
published row used ``Class``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from xrayclass.constants import AGGREGATE_CLASS, AGGREGATE_CLASSES, CLASSES, NAME
from xrayclass.core.checks import canonical_names, require_columns, require_numeric
from xrayclass.core.positional import nearest_within
from xrayclass.exceptions import tables_named
from xrayclass.io.tables import InputError

__all__ = [
    "DEFAULT_MAPPING",
    "MASTER_CLASS",
    "MATCH_MODES",
    "MATCH_RADIUS_ARCSEC",
    "RESULT_COLUMNS",
    "CatalogColumns",
    "ClassPair",
    "Comparison",
    "class_metrics",
    "class_pair",
    "compare_catalog",
    "confusion_counts",
    "format_comparison",
    "match_by_name",
    "match_sources",
    "match_summary",
    "normalized_names",
    "our_classes",
    "parse_class_pair",
    "parse_mapping",
    "prepare_catalog",
    "prepare_sources",
    "require_catalog_columns",
    "required_catalog_columns",
    "share",
    "shared_labels",
]

log = logging.getLogger(__name__)

#: Matching radius of the paper, in arcseconds.
MATCH_RADIUS_ARCSEC = 1.0

#: Columns of the output table, in order.
RESULT_COLUMNS = ("class", "matches", "precision", "r_precision", "recall")

#: Our source table's columns: the fine master class, and the position in degrees.
MASTER_CLASS = "master_class"
RA, DEC = "ra", "dec"

#: How sources may be matched: by name or position (the paper), or only one of them.
MATCH_MODES = ("both", "name", "position")

#: How a source was matched, in the per-source match table.
BY_NAME, BY_POSITION = "name", "position"


@dataclass(frozen=True)
class CatalogColumns:
    """Column names of a reference catalog; ``None`` where the catalog has none.

    The defaults are those of the MUWCLASS training set (Yang et al. 2022).
    """

    name: str = "CSCv2_name"
    ra: str = "CSCv2_RA"
    dec: str = "CSCv2_DEC"
    label: str = "Class"


@dataclass(frozen=True)
class ClassPair:
    """One comparison class: a group of our classes and the reference labels it means."""

    name: str
    ours: tuple
    theirs: tuple


def our_classes(token: str) -> tuple[str, ...]:
    """The fine classes meant by ``token``: an aggregated class or a fine class.

    The aggregated names win where a name is both (``AGN`` means QSO and AGN, ``XB``
    means HMXB, LMXB and XB), as in the paper's comparison.
    """
    if token in AGGREGATE_CLASSES:
        return tuple(c for c in CLASSES if AGGREGATE_CLASS[c] == token)
    if token in CLASSES:
        return (token,)
    raise InputError(
        f"unknown class {token!r} of ours in the class mapping; use aggregated classes "
        f"({', '.join(AGGREGATE_CLASSES)}) or fine classes ({', '.join(CLASSES)}), joined with '+'"
    )


def class_pair(name: str, theirs: Iterable[str]) -> ClassPair:
    """A :class:`ClassPair` named ``name``: our classes ``name`` split on ``+``."""
    tokens = [t.strip() for t in name.split("+")]
    ours = tuple(dict.fromkeys(c for t in tokens for c in our_classes(t)))
    return ClassPair(name, ours, tuple(theirs))


#: The paper's comparison classes for MUWCLASS-style labels (Table 4): our AGN and
#: Seyfert against their AGN, our three XB types against their HMXB and LMXB (XRB),
#: our three YSO types against their YSO.
DEFAULT_MAPPING = (class_pair("AGN+Seyfert", ("AGN",)), class_pair("XB", ("HMXB", "LMXB")), class_pair("YSO", ("YSO",)))


def parse_class_pair(text: str) -> ClassPair:
    """Parse ``"OURS=THEIRS"``, e.g. ``"AGN+Seyfert=AGN"`` or ``"XB=HMXB,LMXB"``.

    ``OURS`` is one or more of our classes joined with ``+`` (aggregated or fine) and
    is the row's name; ``THEIRS`` is a comma-separated list of reference labels.
    """
    ours, sep, theirs = text.partition("=")
    labels = [label.strip() for label in theirs.split(",") if label.strip()]
    if not sep or not ours.strip() or not labels or any(not t.strip() for t in ours.split("+")):
        raise InputError(f"bad class mapping {text!r}; expected OURS=THEIRS, e.g. 'AGN+Seyfert=AGN' or 'XB=HMXB,LMXB'")
    return class_pair(ours.strip(), labels)


def parse_mapping(texts: Sequence[str] | None) -> tuple[ClassPair, ...]:
    """The comparison classes from ``--map`` texts, or :data:`DEFAULT_MAPPING` if none."""
    if not texts:
        return DEFAULT_MAPPING
    mapping = tuple(parse_class_pair(text) for text in texts)
    names = [pair.name for pair in mapping]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise InputError(f"class mapping: {', '.join(repeated)} given more than once")
    return mapping


def shared_labels(mapping: Iterable[ClassPair]) -> tuple[str, ...]:
    """The reference labels that both catalogs share: those of any comparison class."""
    return tuple(dict.fromkeys(label for pair in mapping for label in pair.theirs))


def normalized_names(names: pd.Series) -> pd.Series:
    """Source names for comparison: no whitespace, upper case; missing stays missing."""
    names = pd.Series(names, dtype=object)
    text = names.astype(str).str.replace(r"\s+", "", regex=True).str.upper()
    return text.where(names.notna() & (text != ""), None)


# -- inputs ------------------------------------------------------------------------------


def required_catalog_columns(columns: CatalogColumns, match: str) -> list[str]:
    """The reference columns ``match`` needs, label first."""
    needed = [columns.label]
    if match in ("both", "name"):
        needed.append(columns.name)
    if match in ("both", "position"):
        needed += [columns.ra, columns.dec]
    if any(c is None or c == "" for c in needed):
        raise InputError(f"matching by {match!r} needs a name{'' if match == 'name' else ' and RA/Dec'} column")
    return needed


def require_catalog_columns(catalog: pd.DataFrame, columns: CatalogColumns, match: str) -> None:
    """Raise :class:`InputError` naming each missing column with its role and the columns there are."""
    needed = required_catalog_columns(columns, match)
    roles = {columns.label: "label", columns.name: "name", columns.ra: "RA", columns.dec: "Dec"}
    missing = [c for c in needed if c not in catalog.columns]
    if missing:
        available = ", ".join(map(str, catalog.columns[:12])) + (", ..." if len(catalog.columns) > 12 else "")
        raise InputError(
            f"missing required columns: {', '.join(f'{c} ({roles[c]})' for c in missing)}; the catalog has: {available}"
        )


def prepare_catalog(
    catalog: pd.DataFrame, columns: CatalogColumns = CatalogColumns(), match: str = "both"
) -> pd.DataFrame:
    """The reference catalog as ``name, ra, dec, label`` (normalized names, degrees).

    Rows without a label are dropped; a repeated name keeps its first row. Columns
    the matching mode does not use are filled with missing values.
    """
    require_catalog_columns(catalog, columns, match)
    uses_position = match in ("both", "position")
    if uses_position:
        catalog = require_numeric(catalog, (columns.ra, columns.dec))
    labels = catalog[columns.label]
    labels = labels.where(labels.notna(), "").astype(str).str.strip()
    prepared = pd.DataFrame(
        {
            "name": normalized_names(catalog[columns.name]).to_numpy() if match != "position" else None,
            "ra": catalog[columns.ra].to_numpy(dtype="float64") if uses_position else np.nan,
            "dec": catalog[columns.dec].to_numpy(dtype="float64") if uses_position else np.nan,
            "label": labels.to_numpy(dtype=object),
        }
    )
    unlabeled = (prepared["label"] == "") | (prepared["label"].str.lower() == "nan")
    if unlabeled.any():
        log.info("%s catalog rows without a label in %r are left out", f"{int(unlabeled.sum()):,}", columns.label)
        prepared = prepared.loc[~unlabeled]
    if match != "position":
        repeated = prepared["name"].notna() & prepared["name"].duplicated()
        if repeated.any():
            log.warning(
                "%s repeated source names in the catalog; the first row of each is used", f"{int(repeated.sum()):,}"
            )
            prepared = prepared.loc[~repeated]
    if prepared.empty:
        raise InputError(f"no row has a label in column {columns.label!r}")
    return prepared.reset_index(drop=True)


def prepare_sources(sources: pd.DataFrame, match: str = "both") -> pd.DataFrame:
    """Our uniquely classified sources as ``name, ra, dec, master_class``."""
    sources = canonical_names(sources)
    uses_position = match in ("both", "position")
    require_columns(sources, (MASTER_CLASS, *((RA, DEC) if uses_position else ())))
    if uses_position:
        sources = require_numeric(sources, (RA, DEC))
    return pd.DataFrame(
        {
            "name": normalized_names(sources[NAME]).to_numpy(),
            "ra": sources[RA].to_numpy(dtype="float64") if uses_position else np.nan,
            "dec": sources[DEC].to_numpy(dtype="float64") if uses_position else np.nan,
            MASTER_CLASS: sources[MASTER_CLASS].astype(str).to_numpy(dtype=object),
        }
    )


# -- matching ----------------------------------------------------------------------------


def match_by_name(source_names: np.ndarray, catalog_names: np.ndarray) -> np.ndarray:
    """Row of ``catalog_names`` with each source's name, or -1 (names already normalized)."""
    rows = pd.Series(np.arange(len(catalog_names)), index=pd.Index(catalog_names, dtype=object))
    rows = rows[rows.index.notna()]
    found = pd.Series(source_names, dtype=object).map(rows)
    return found.fillna(-1).to_numpy(dtype=np.int64, copy=True)


def match_sources(
    sources: pd.DataFrame, catalog: pd.DataFrame, radius_arcsec: float = MATCH_RADIUS_ARCSEC, match: str = "both"
) -> pd.DataFrame:
    """Match each source to at most one catalog row: by name first, then by position."""
    n = len(sources)
    rows = np.full(n, -1, dtype=np.int64)
    matched_by = np.full(n, None, dtype=object)
    separations = np.full(n, np.nan)
    if match in ("both", "name"):
        rows = match_by_name(sources["name"].to_numpy(dtype=object), catalog["name"].to_numpy(dtype=object))
        matched_by[rows >= 0] = BY_NAME
    if match in ("both", "position"):
        left = rows < 0
        found, distance = nearest_within(
            sources["ra"].to_numpy()[left],
            sources["dec"].to_numpy()[left],
            catalog["ra"].to_numpy(),
            catalog["dec"].to_numpy(),
            radius_arcsec,
        )
        index = np.flatnonzero(left)[found >= 0]
        rows[index] = found[found >= 0]
        matched_by[index] = BY_POSITION
        separations[index] = distance[found >= 0]
    return pd.DataFrame({"catalog_row": rows, "matched_by": matched_by, "separation_arcsec": separations})


def match_summary(matches: pd.DataFrame) -> dict[str, Any]:
    """Counts of sources matched by name, by position only, and unmatched."""
    by = matches["matched_by"]
    matched_rows = matches.loc[matches["catalog_row"] >= 0, "catalog_row"]
    return {
        "sources": len(matches),
        "by_name": int((by == BY_NAME).sum()),
        "by_position_only": int((by == BY_POSITION).sum()),
        "unmatched": int(by.isna().sum()),
        "catalog_rows_matched_twice": int((matched_rows.value_counts() > 1).sum()),
    }


# -- metrics -----------------------------------------------------------------------------


def share(numerator: float, denominator: float) -> float:
    """``numerator / denominator``, NaN when the denominator is zero (undefined)."""
    return numerator / denominator if denominator else float("nan")


def class_metrics(
    our_classes_of_matches: ArrayLike, reference_labels: ArrayLike, mapping: Sequence[ClassPair] = DEFAULT_MAPPING
) -> pd.DataFrame:
    """Matches, precision, R-precision and recall of each comparison class."""
    ours = np.asarray(our_classes_of_matches, dtype=object)
    theirs = np.asarray(reference_labels, dtype=object)
    if ours.shape != theirs.shape:
        raise ValueError("our classes and reference labels must have the same length")
    is_shared = np.isin(theirs, np.asarray(shared_labels(mapping), dtype=object))
    rows = []
    for pair in mapping:
        ours_c = np.isin(ours, np.asarray(pair.ours, dtype=object))
        theirs_c = np.isin(theirs, np.asarray(pair.theirs, dtype=object))
        agree = int((ours_c & theirs_c).sum())
        rows.append(
            {
                "class": pair.name,
                "matches": int(ours_c.sum()),
                "precision": share(agree, int(ours_c.sum())),
                "r_precision": share(agree, int((ours_c & is_shared).sum())),
                "recall": share(agree, int(theirs_c.sum())),
            }
        )
    table = pd.DataFrame(rows, columns=list(RESULT_COLUMNS))
    return table.astype({"matches": "int64", "precision": "float64", "r_precision": "float64", "recall": "float64"})


def confusion_counts(
    our_classes_of_matches: ArrayLike, reference_labels: ArrayLike, mapping: Sequence[ClassPair] = DEFAULT_MAPPING
) -> pd.DataFrame:
    """Matched sources by comparison class of ours (rows) and reference label (columns).

    Our sources in no comparison class are counted under ``"other"``.
    """
    ours = pd.Series(our_classes_of_matches, dtype=object)
    group = pd.Series("other", index=ours.index, dtype=object)
    for pair in reversed(mapping):
        group[ours.isin(pair.ours)] = pair.name
    return pd.crosstab(group.rename("ours"), pd.Series(reference_labels, dtype=object, name="reference"))


# -- the whole comparison ----------------------------------------------------------------


@dataclass
class Comparison:
    """Result of :func:`compare_catalog`."""

    metrics: pd.DataFrame
    summary: dict
    confusion: pd.DataFrame
    matched: pd.DataFrame  # one row per matched source: name, master_class, label, matched_by


def compare_catalog(
    sources: pd.DataFrame,
    catalog: pd.DataFrame,
    columns: CatalogColumns = CatalogColumns(),
    mapping: Sequence[ClassPair] = DEFAULT_MAPPING,
    radius_arcsec: float = MATCH_RADIUS_ARCSEC,
    match: str = "both",
) -> Comparison:
    """Match our uniquely classified sources with a reference catalog and score each class."""
    if match not in MATCH_MODES:
        raise InputError(f"unknown matching mode {match!r}; use one of {', '.join(MATCH_MODES)}")
    with tables_named("catalog"):
        catalog = prepare_catalog(catalog, columns, match)
    with tables_named("sources"):
        sources = prepare_sources(sources, match)
    absent = [label for label in shared_labels(mapping) if label not in set(catalog["label"])]
    if absent:
        log.warning(
            "labels of the class mapping never used in the catalog's column %r: %s", columns.label, ", ".join(absent)
        )
    matches = match_sources(sources, catalog, radius_arcsec, match)
    summary = match_summary(matches)
    # "catalog" (its file) is filled in by the caller that read it.
    summary.update(catalog=None, label_column=columns.label, radius_arcsec=radius_arcsec, catalog_rows=len(catalog))
    if summary["catalog_rows_matched_twice"]:
        log.warning(
            "%s catalog rows are matched by more than one of our sources; each source counts",
            f"{summary['catalog_rows_matched_twice']:,}",
        )
    found = matches["catalog_row"].to_numpy() >= 0
    if not found.any():
        log.warning(
            "none of the %s sources matches the catalog (by %s, within %g arcsec): every "
            "share below is NaN; check the name and position columns (--name-column, --ra-column, "
            "--dec-column) and that both catalogs cover the same sky",
            f"{len(sources):,}",
            match,
            radius_arcsec,
        )
    matched = pd.DataFrame(
        {
            "name": sources["name"].to_numpy()[found],
            MASTER_CLASS: sources[MASTER_CLASS].to_numpy()[found],
            "label": catalog["label"].to_numpy()[matches["catalog_row"].to_numpy()[found]],
            "matched_by": matches["matched_by"].to_numpy()[found],
        }
    )
    metrics = class_metrics(matched[MASTER_CLASS], matched["label"], mapping)
    confusion = confusion_counts(matched[MASTER_CLASS], matched["label"], mapping)
    return Comparison(metrics, summary, confusion, matched)


def format_comparison(comparison: Comparison, decimals: int = 2) -> str:
    """The printed report: match counts, then the table with shares to ``decimals``."""
    s = comparison.summary
    matched = s["by_name"] + s["by_position_only"]
    lines = [
        f"{s['catalog']} (labels: {s['label_column']}): {matched:,} of {s['sources']:,} uniquely classified "
        f"sources matched, {s['by_name']:,} by name, {s['by_position_only']:,} by position only "
        f"(<= {s['radius_arcsec']:g} arcsec); {s['unmatched']:,} unmatched",
        comparison.metrics.to_string(index=False, na_rep="NaN", float_format=lambda v: f"{v:.{decimals}f}"),
    ]
    return "\n".join(lines)
