"""Best-match positional crossmatch against a local catalog with positions and ``main_type`` (astropy).

Each detection gets the nearest catalog object within the radius, as CDS X-Match's "best match" does.
"""

import logging

import numpy as np
import pandas as pd
from astropy import units as u
from astropy.coordinates import SkyCoord, match_coordinates_sky
from numpy.typing import ArrayLike

from xrayclass.constants import MAIN_TYPE
from xrayclass.core.checks import require_columns, require_numeric

__all__ = ["CATALOG_SUFFIX", "catalog_matches", "nearest_within"]

log = logging.getLogger(__name__)

#: Suffix given to catalog columns whose names the detection table already uses.
CATALOG_SUFFIX = "_x"


def nearest_within(
    ra: ArrayLike, dec: ArrayLike, catalog_ra: ArrayLike, catalog_dec: ArrayLike, radius_arcsec: float
) -> tuple[np.ndarray, np.ndarray]:
    """The catalog row nearest each position within ``radius_arcsec`` (-1: none) and its separation (arcsec).

    astropy's ``match_coordinates_sky``: a k-d tree on the unit sphere, right across RA 0 and the poles.
    """
    ra, dec = np.asarray(ra, dtype="float64"), np.asarray(dec, dtype="float64")
    catalog_ra, catalog_dec = np.asarray(catalog_ra, dtype="float64"), np.asarray(catalog_dec, dtype="float64")
    rows = np.full(len(ra), -1, dtype=np.int64)
    separations = np.full(len(ra), np.nan)
    known = np.flatnonzero(np.isfinite(ra) & np.isfinite(dec))
    candidates = np.flatnonzero(np.isfinite(catalog_ra) & np.isfinite(catalog_dec))
    if len(known) == 0 or len(candidates) == 0:
        return rows, separations
    here = SkyCoord(ra[known] * u.deg, dec[known] * u.deg)
    there = SkyCoord(catalog_ra[candidates] * u.deg, catalog_dec[candidates] * u.deg)
    if len(candidates) == 1:  # match_coordinates_sky wants a catalog of two or more
        nearest, distance = np.zeros(len(known), dtype=np.int64), here.separation(there[0])
    else:
        nearest, distance, _ = match_coordinates_sky(here, there)
    distance = distance.to_value(u.arcsec)
    inside = distance <= radius_arcsec
    rows[known[inside]] = candidates[nearest[inside]]
    separations[known[inside]] = distance[inside]
    return rows, separations


def catalog_matches(detections: pd.DataFrame, catalog: pd.DataFrame, radius_arcsec: float) -> pd.DataFrame:
    """The nearest ``catalog`` object within ``radius_arcsec`` of each detection (``ra``, ``dec``: degrees, ICRS).

    One row per detection: the catalog's columns (``ra``/``dec`` as ``ra_x``/``dec_x``) and
    ``angDist`` in arcsec, empty where nothing lies within the radius.
    """
    if not radius_arcsec > 0:
        raise ValueError(f"the match radius must be positive, got {radius_arcsec}")
    require_columns(catalog, ("ra", "dec", MAIN_TYPE))
    catalog = require_numeric(catalog, ("ra", "dec")).reset_index(drop=True)
    catalog = catalog.dropna(subset=["ra", "dec"]).reset_index(drop=True)

    # Detections of one source share its position: match each position once (as one
    # complex number, which pandas factorizes in one hashing pass).
    position = np.empty(len(detections), dtype="complex128")
    position.real = detections["ra"].to_numpy(dtype="float64", na_value=np.nan)
    position.imag = detections["dec"].to_numpy(dtype="float64", na_value=np.nan)
    codes, positions = pd.factorize(position, use_na_sentinel=False)
    nearest, separation = nearest_within(positions.real, positions.imag, catalog["ra"], catalog["dec"], radius_arcsec)
    within = nearest >= 0

    renamed = catalog.rename(columns={"ra": f"ra{CATALOG_SUFFIX}", "dec": f"dec{CATALOG_SUFFIX}"})
    matches = renamed.reindex(nearest[codes]).reset_index(drop=True)  # -1 -> all empty
    matches["angDist"] = separation[codes]
    log.info(
        "%s of %s distinct positions have an object within %g arcsec",
        f"{int(within.sum()):,}",
        f"{len(within):,}",
        radius_arcsec,
    )
    return matches
