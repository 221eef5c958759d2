"""Best-match positional crossmatch against a local catalog (astropy, no network).

For a local copy of SIMBAD (or any catalog with positions and a ``main_type``), and
for the mock catalog's mock SIMBAD: each detection gets the nearest catalog object
within the radius, if any, as CDS X-Match's "best match" does.
"""

import logging

import numpy as np
import pandas as pd
from astropy import units as u
from astropy.coordinates import SkyCoord

from xrayclass.constants import MAIN_TYPE
from xrayclass.exceptions import tables_named
from xrayclass.io.tables import require_columns, require_numeric

log = logging.getLogger(__name__)

#: Suffix given to catalog columns whose names the detection table already uses.
CATALOG_SUFFIX = "_x"


def best_matches(detections, catalog, radius_arcsec):
    """The nearest catalog object within ``radius_arcsec`` of each detection.

    Parameters
    ----------
    detections : pandas.DataFrame
        With ``ra`` and ``dec`` in degrees (ICRS).
    catalog : pandas.DataFrame
        With ``ra``, ``dec`` (degrees, ICRS) and ``main_type``.
    radius_arcsec : float

    Returns
    -------
    pandas.DataFrame
        One row per detection, in order: the catalog's columns (``ra``/``dec`` renamed
        ``ra_x``/``dec_x``) and ``angDist`` in arcsec, all empty where nothing lies
        within the radius.
    """
    if not radius_arcsec > 0:
        raise ValueError(f"the match radius must be positive, got {radius_arcsec}")
    require_columns(catalog, ("ra", "dec", MAIN_TYPE))
    catalog = require_numeric(catalog, ("ra", "dec")).reset_index(drop=True)
    catalog = catalog.dropna(subset=["ra", "dec"]).reset_index(drop=True)

    # Detections of one source share its position: match each position once.
    codes, positions = pd.factorize(pd.MultiIndex.from_arrays([detections["ra"], detections["dec"]]))
    here = SkyCoord(positions.get_level_values(0).to_numpy() * u.deg, positions.get_level_values(1).to_numpy() * u.deg)
    there = SkyCoord(catalog["ra"].to_numpy() * u.deg, catalog["dec"].to_numpy() * u.deg)
    nearest, separation, _ = here.match_to_catalog_sky(there)
    within = separation.arcsec <= radius_arcsec

    renamed = catalog.rename(columns={"ra": f"ra{CATALOG_SUFFIX}", "dec": f"dec{CATALOG_SUFFIX}"})
    matched_rows = np.where(within, nearest, -1)[codes]
    matches = renamed.reindex(matched_rows).reset_index(drop=True)  # -1 -> all empty
    matches["angDist"] = np.where(within, separation.arcsec, np.nan)[codes]
    log.info("%s of %s distinct positions have a catalog object within %g arcsec",
             f"{int(within.sum()):,}", f"{len(within):,}", radius_arcsec)
    return matches


def crossmatch_local(stage1, catalog, radius_arcsec):
    """Stage 2 against a local catalog: best match within the radius, every row kept.

    An :class:`~xrayclass.exceptions.InputError` says which input is wrong in its
    ``table`` (``"stage1"`` or ``"catalog"``).
    """
    from xrayclass.stages.crossmatch import attach_matches
    from xrayclass.io.tables import canonical_names

    with tables_named("stage1"):
        stage1 = canonical_names(stage1)
        require_columns(stage1, ("ra", "dec"))
        stage1 = require_numeric(stage1, ("ra", "dec"))
    with tables_named("catalog"):
        matches = best_matches(stage1, catalog, radius_arcsec)
    return attach_matches(stage1, matches)
