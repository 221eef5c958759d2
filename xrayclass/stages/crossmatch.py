"""Stage 2: SIMBAD classes for the clustered detections.

A crossmatch gives each detection the SIMBAD object within 1 arcsec (best match only)
and its ``main_type``; detections without a match keep their row with
``main_type = 'NaN'``. SIMBAD changes, so the published run's August-2022 crossmatch
is the one that reproduces the paper: :func:`swap_in_frozen` takes such a frozen
table (TOPCAT's output, or the published ``cluster_csc_simbad.csv``) and checks it
against this run's stage-1 table. Every way of crossmatching ends in
:func:`attach_matches`, which joins the matched columns row by row.
"""

import logging
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from xrayclass.constants import CLUSTER, MAIN_TYPE, NAME, NO_MATCH, OBSID
from xrayclass.core.checks import require_choice
from xrayclass.exceptions import tables_named
from xrayclass.io.checks import require_cluster_labels
from xrayclass.io.tables import InputError, canonical_names, require_columns, require_numeric

__all__ = [
    "CLUSTER_SOURCES",
    "CrossmatchConfig",
    "attach_matches",
    "check_same_detections",
    "cluster_agreement",
    "join_matches",
    "run_crossmatch",
    "swap_in_frozen",
]

log = logging.getLogger(__name__)

CLUSTER_SOURCES = ("frozen", "ours")


@dataclass(frozen=True)
class CrossmatchConfig:
    """Stage 2's choices; the defaults are the paper's.

    Parameters
    ----------
    source : {"frozen", "catalog", "online"}
        Where the SIMBAD classes come from: an existing crossmatch of the same
        detections (the published one reproduces the paper), a local catalog matched by
        position, or CDS X-Match now.
    radius : float
        Match radius in arcsec (catalog and online).
    clusters : {"frozen", "ours"}
        With a frozen crossmatch: keep its clusters (the paper's) or this run's.
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
    """Raise :class:`InputError` unless both tables list the same detections in order.

    The error is about ``other`` (its ``table`` is ``"frozen"``).

    Compared row by row: the number of rows, then the source name and obsid of each.
    """
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
    """Share of detections in the same cluster, after the best relabeling of ``theirs``.

    Cluster numbers of two mixture fits are arbitrary, so the labels are first paired
    up by the assignment that maximizes the overlap.
    """
    # Imported here: only the frozen comparison needs them, and they cost stage 2 a
    # second of imports on every run.
    from scipy.optimize import linear_sum_assignment
    from sklearn.metrics.cluster import contingency_matrix

    ours = np.asarray(ours)
    overlap = contingency_matrix(ours, np.asarray(theirs))
    rows, columns = linear_sum_assignment(overlap, maximize=True)
    return overlap[rows, columns].sum() / len(ours)


def swap_in_frozen(stage1: pd.DataFrame, frozen: pd.DataFrame, clusters: str = "frozen") -> pd.DataFrame:
    """The SIMBAD columns (and optionally clusters) of a frozen crossmatch, checked.

    Parameters
    ----------
    stage1 : pandas.DataFrame
        This run's stage-1 table.
    frozen : pandas.DataFrame
        An existing crossmatch of the same detections (e.g. the published August-2022
        ``cluster_csc_simbad.csv``), with ``name`` or ``name_1``, ``obsid`` and
        ``main_type``, in the stage-1 row order.
    clusters : {"frozen", "ours"}
        Whose ``cluster`` (and ``prob_*``) columns the result keeps: the frozen file's
        (default; those reproduce the paper) or this run's.

    Returns
    -------
    pandas.DataFrame
        The stage-2 table: see :func:`attach_matches`.

    Raises
    ------
    InputError
        With ``table`` ``"stage1"`` or ``"frozen"``: the input the problem is in.
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
            # A 99 among clusters 0 .. 5 passed when no prob_* column gave K and no model
            # was there to be re-estimated, and stage 3 then met a cluster of one.
            require_cluster_labels(frozen, None, every_cluster_used=True)
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
    """Join matched SIMBAD columns to the stage-1 rows, row by row.

    Columns of ``matches`` already in ``stage1`` are not duplicated (the stage-1 values
    are kept), except the cluster columns, which ``matches`` then provides. A missing
    ``main_type`` becomes the string ``'NaN'``, as in the published pipeline.
    """
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
    """:func:`attach_matches` without its log lines (the streamed stage logs the totals once).

    Returns the joined table and which of its rows have no SIMBAD class.
    """
    new_columns = [c for c in matches.columns if c not in stage1.columns]
    combined = pd.concat([stage1.reset_index(drop=True), matches[new_columns].reset_index(drop=True)], axis=1)
    types = combined[MAIN_TYPE]
    unmatched = types.isna() | (types.astype(str).str.strip() == "")
    combined[MAIN_TYPE] = types.astype(object).where(~unmatched, NO_MATCH).astype(str)
    return combined, unmatched


def run_crossmatch(
    clustered: pd.DataFrame,
    config: CrossmatchConfig = CrossmatchConfig(),
    *,
    frozen: pd.DataFrame | None = None,
    catalog: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Stage 2 on in-memory tables: give each clustered detection its SIMBAD class.

    Exactly one of ``frozen`` (an existing crossmatch of the same detections, in the
    stage-1 row order: :func:`swap_in_frozen`, which reproduces the paper) or
    ``catalog`` (a local catalog with ``ra``, ``dec`` and ``main_type``: the best match
    within ``config.radius`` arcsec) must be given. The remote X-Match crossmatch is a service
    (:mod:`xrayclass.services.xmatch`).

    Raises
    ------
    InputError
        With ``table`` ``"stage1"``, ``"frozen"`` or ``"catalog"``: the input the
        problem is in.
    """
    if frozen is not None and catalog is None:
        return swap_in_frozen(clustered, frozen, clusters=config.clusters)
    if catalog is not None and frozen is None:
        from xrayclass.core.positional import crossmatch_local

        return crossmatch_local(clustered, catalog, config.radius)
    raise ValueError("give exactly one of frozen= or catalog=")
