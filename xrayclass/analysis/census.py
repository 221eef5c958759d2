"""Per-cluster census of SIMBAD types and galactic latitude (the paper's Table 3)."""

import numpy as np
import pandas as pd
from astropy import units as u
from astropy.coordinates import SkyCoord

from xrayclass.constants import CLUSTER, MAIN_TYPE
from xrayclass.core.taxonomy import OTYPE, normalize_types

__all__ = ["LOW_LATITUDE_DEG", "format_type_census", "latitude_census", "type_census"]

#: Galactic latitude (deg) below which a detection counts as in the plane.
LOW_LATITUDE_DEG = 5.0


def type_census(crossmatched: pd.DataFrame, top: int = 10) -> pd.DataFrame:
    """The ``top`` most common ``main_type`` values of each cluster, with counts.

    Types are counted under the paper's names (today's SIMBAD labels read as the 2022
    ones), so the census can be read beside the published Table 3.
    Returns a long table with columns ``cluster, rank, main_type, detections``.
    """
    types, _ = normalize_types(crossmatched[MAIN_TYPE], crossmatched[OTYPE] if OTYPE in crossmatched.columns else None)
    counts = (
        pd.DataFrame({CLUSTER: crossmatched[CLUSTER].to_numpy(), MAIN_TYPE: types})
        .value_counts()
        .rename("detections")
        .reset_index()
    )
    counts = counts.sort_values([CLUSTER, "detections", MAIN_TYPE], ascending=[True, False, True], kind="stable")
    counts["rank"] = counts.groupby(CLUSTER).cumcount() + 1
    return counts[counts["rank"] <= top][[CLUSTER, "rank", MAIN_TYPE, "detections"]].reset_index(drop=True)


def latitude_census(detections: pd.DataFrame, limit_deg: float = LOW_LATITUDE_DEG) -> pd.DataFrame:
    """Share of each cluster's detections at galactic |b| < ``limit_deg``.

    Returns columns ``cluster, detections, low_latitude, share_low_latitude``.
    """
    coordinates = SkyCoord(detections["ra"].to_numpy() * u.deg, detections["dec"].to_numpy() * u.deg)
    low = np.abs(coordinates.galactic.b.deg) < limit_deg
    frame = pd.DataFrame({CLUSTER: detections[CLUSTER].to_numpy(), "low_latitude": low})
    table = frame.groupby(CLUSTER).agg(detections=("low_latitude", "size"), low_latitude=("low_latitude", "sum"))
    table["share_low_latitude"] = table["low_latitude"] / table["detections"]
    return table.reset_index()


def format_type_census(census: pd.DataFrame) -> str:
    """One line per cluster, as in the paper's Table 3: 'type count, type count, ...'."""
    lines = []
    for cluster, rows in census.groupby(CLUSTER):
        lines.append(
            f"{cluster}: " + ", ".join(f"{t} {n:,}" for t, n in zip(rows[MAIN_TYPE], rows["detections"], strict=False))
        )
    return "\n".join(lines)
