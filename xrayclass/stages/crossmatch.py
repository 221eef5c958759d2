"""Stage 2: SIMBAD classes for the clustered detections.

Each detection gets the SIMBAD object within 1 arcsec (best match) and its
``main_type``; one without a match keeps its row with ``main_type = 'NaN'``. SIMBAD
changes, so the published August-2022 crossmatch reproduces the paper:
:func:`swap_in_frozen` checks such a frozen table against this run's stage-1 table.
Every way of crossmatching ends in :func:`attach_matches`.
"""

import logging
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from xrayclass.constants import CLUSTER, MAIN_TYPE, NAME, NO_MATCH, OBSID
from xrayclass.core.checks import (
    canonical_names,
    require_choice,
    require_cluster_labels,
    require_columns,
    require_numeric,
)
from xrayclass.core.positional import catalog_matches
from xrayclass.exceptions import InputError, tables_named

__all__ = [
    "CLUSTER_SOURCES",
    "CrossmatchConfig",
    "attach_matches",
    "check_same_detections",
    "cluster_agreement",
    "crossmatch_local",
    "join_matches",
    "run_crossmatch",
    "swap_in_frozen",
]

log = logging.getLogger(__name__)

CLUSTER_SOURCES = ("frozen", "ours")


@dataclass(frozen=True)
class CrossmatchConfig:
    """Stage 2's choices; the defaults are the paper's.

    ``source``: an existing crossmatch of the same detections, a local catalog, or CDS
    X-Match now; ``radius`` in arcsec; ``clusters``: with a frozen crossmatch, keep its
    clusters (the paper's) or this run's.
    """

    source: Literal["frozen", "catalog", "online"] = "frozen"
    radius: float = 1.0
    clusters: Literal["frozen", "ours"] = "frozen"

    def __post_init__(self) -> None:
        require_choice("source", self.source, ("frozen", "catalog", "online"))
        require_choice("clusters", self.clusters, CLUSTER_SOURCES)
        if not self.radius > 0:
            raise InputError(f"radius must be positive, got {self.radius}")


_UNNAMED = ("col1",)  # TOPCAT's name for the unnamed index column of a CSV it read


def _cluster_columns(table: pd.DataFrame) -> list[str]:
    return [c for c in table.columns if c == CLUSTER or (c.startswith("prob_") and c[5:].isdigit())]


def check_same_detections(stage1: pd.DataFrame, other: pd.DataFrame) -> None:
    """Raise :class:`InputError` about ``other`` (``"frozen"``) unless both list the same names and obsids in order."""
    if len(stage1) != len(other):
        raise InputError(
            f"has {len(other):,} rows but the stage-1 table has "
            f"{len(stage1):,}; a crossmatch must keep every stage-1 row",
            table="frozen",
        )
    names_here = stage1[NAME].astype(str).str.strip().to_numpy()
    names_there = other[NAME].astype(str).str.strip().to_numpy()
    obsids_here = stage1[OBSID].to_numpy(dtype="float64")
    obsids_there = other[OBSID].to_numpy(dtype="float64")
    differs = (names_here != names_there) | (obsids_here != obsids_there)
    if differs.any():
        row = int(np.flatnonzero(differs)[0])
        same_set = sorted(zip(names_here, obsids_here, strict=False)) == sorted(
            zip(names_there, obsids_there, strict=False)
        )
        hint = " (the same detections, in another order: keep the stage-1 row order)" if same_set else ""
        raise InputError(
            f"does not match the stage-1 table: {int(differs.sum()):,} rows "
            f"differ, first at data row {row + 1} ({names_there[row]!r}, obsid {obsids_there[row]:.0f} "
            f"instead of {names_here[row]!r}, obsid {obsids_here[row]:.0f}){hint}",
            table="frozen",
        )


def cluster_agreement(ours: ArrayLike, theirs: ArrayLike) -> float:
    """Share of detections in the same cluster, after the relabeling of ``theirs`` that maximizes it."""
    # Imported here: stage 2 otherwise does without loading scikit-learn.
    from scipy.optimize import linear_sum_assignment
    from sklearn.metrics.cluster import contingency_matrix

    ours = np.asarray(ours)
    overlap = contingency_matrix(ours, np.asarray(theirs))
    rows, columns = linear_sum_assignment(overlap, maximize=True)
    return overlap[rows, columns].sum() / len(ours)


def swap_in_frozen(stage1: pd.DataFrame, frozen: pd.DataFrame, clusters: str = "frozen") -> pd.DataFrame:
    """The stage-2 table: the SIMBAD columns (and ``clusters``' clusters) of a frozen crossmatch, checked.

    ``frozen`` is an existing crossmatch of the same detections in the stage-1 row order
    (e.g. the published ``cluster_csc_simbad.csv``), with ``name`` or ``name_1``, ``obsid``
    and ``main_type``. An :class:`InputError` names its input in ``table``.
    """
    if clusters not in CLUSTER_SOURCES:
        raise ValueError(f"clusters must be one of {CLUSTER_SOURCES}, got {clusters!r}")
    with tables_named("stage1"):
        stage1 = canonical_names(stage1)
        require_columns(stage1, (NAME, OBSID))
        stage1 = require_numeric(stage1, (OBSID,))
    with tables_named("frozen"):
        frozen = canonical_names(frozen)
        require_columns(frozen, (NAME, OBSID, MAIN_TYPE))
        frozen = require_numeric(frozen, (OBSID,))
    check_same_detections(stage1, frozen)

    frozen_clusters = _cluster_columns(frozen)
    if clusters == "frozen":
        if CLUSTER not in frozen.columns:
            raise InputError("has no 'cluster' column; use --clusters ours", table="frozen")
        with tables_named("frozen"):
            frozen = require_numeric(frozen, (CLUSTER,))
            require_cluster_labels(frozen, every_cluster_used=True)
        if CLUSTER in stage1.columns:
            agreement = cluster_agreement(stage1[CLUSTER], frozen[CLUSTER])
            log.info(
                "keeping the frozen file's clusters; this run's clusters agree with them on "
                "%.1f%% of detections after the best relabeling",
                100 * agreement,
            )
        else:
            log.info("keeping the frozen file's clusters")
        stage1 = stage1.drop(columns=_cluster_columns(stage1))
    else:
        with tables_named("stage1"):
            require_columns(stage1, (CLUSTER,))
        log.info(
            "keeping this run's clusters; the frozen file's %s are left out", ", ".join(frozen_clusters) or "(none)"
        )
        frozen = frozen.drop(columns=frozen_clusters)
    matched = frozen.drop(columns=[NAME, OBSID, *[c for c in _UNNAMED if c in frozen.columns]])
    return attach_matches(stage1, matched)


def attach_matches(stage1: pd.DataFrame, matches: pd.DataFrame) -> pd.DataFrame:
    """Join matched SIMBAD columns to the stage-1 rows, row by row (:func:`join_matches`), and log the counts."""
    new_columns = [c for c in matches.columns if c not in stage1.columns]
    skipped = [c for c in matches.columns if c in stage1.columns]
    if skipped:
        log.debug("matched columns already in the stage-1 table, kept from stage 1: %s", ", ".join(skipped))
    combined, unmatched = join_matches(stage1, matches)
    log_matches(len(new_columns), stage1.shape[1], len(combined), int(unmatched.sum()))
    return combined


def log_matches(n_new_columns: int, n_stage1_columns: int, n_total: int, n_unmatched: int) -> None:
    """Log what stage 2 added: the matched columns, and how many detections have a SIMBAD class."""
    log.info("%d matched columns added to the %d stage-1 columns", n_new_columns, n_stage1_columns)
    log.info(
        "%s of %s detections have a SIMBAD class, %s have none (main_type '%s')",
        f"{n_total - n_unmatched:,}",
        f"{n_total:,}",
        f"{n_unmatched:,}",
        NO_MATCH,
    )


def join_matches(stage1: pd.DataFrame, matches: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """The joined table and which of its rows have no SIMBAD class (``main_type`` 'NaN', as published).

    Columns of ``matches`` already in ``stage1`` keep their stage-1 values.
    """
    new_columns = [c for c in matches.columns if c not in stage1.columns]
    combined = pd.concat([stage1.reset_index(drop=True), matches[new_columns].reset_index(drop=True)], axis=1)
    types = combined[MAIN_TYPE]
    unmatched = types.isna() | (types.astype(str).str.strip() == "")
    combined[MAIN_TYPE] = types.astype(object).where(~unmatched, NO_MATCH).astype(str)
    return combined, unmatched


def crossmatch_local(stage1: pd.DataFrame, catalog: pd.DataFrame, radius_arcsec: float) -> pd.DataFrame:
    """Stage 2 against a local catalog: best match within the radius, every row kept; errors name their ``table``."""
    with tables_named("stage1"):
        stage1 = canonical_names(stage1)
        require_columns(stage1, ("ra", "dec"))
        stage1 = require_numeric(stage1, ("ra", "dec"))
    with tables_named("catalog"):
        matches = catalog_matches(stage1, catalog, radius_arcsec)
    return attach_matches(stage1, matches)


def run_crossmatch(
    clustered: pd.DataFrame,
    config: CrossmatchConfig = CrossmatchConfig(),
    *,
    frozen: pd.DataFrame | None = None,
    catalog: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Stage 2 on in-memory tables: exactly one of ``frozen`` (:func:`swap_in_frozen`) or ``catalog``.

    The remote X-Match crossmatch is a service (:mod:`xrayclass.services.xmatch`). An
    :class:`InputError` names its input (``"stage1"``, ``"frozen"``, ``"catalog"``) in ``table``.
    """
    if frozen is not None and catalog is None:
        return swap_in_frozen(clustered, frozen, clusters=config.clusters)
    if catalog is not None and frozen is None:
        return crossmatch_local(clustered, catalog, config.radius)
    raise ValueError("give exactly one of frozen= or catalog=")
