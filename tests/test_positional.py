"""The local best-match crossmatch: positions shared by detections are matched once."""

import numpy as np
import pandas as pd

from xrayclass.core.positional import catalog_matches, nearest_within


def _sky(rng, n):
    return rng.uniform(0, 360, n), np.degrees(np.arcsin(rng.uniform(-1, 1, n)))


def test_best_matches_equal_matching_every_row():
    rng = np.random.default_rng(3)
    # A small patch, so that many detections have objects within a few arcsec.
    objects = pd.DataFrame({"ra": rng.uniform(10, 10.05, 3000), "dec": rng.uniform(-0.05, 0, 3000)})
    objects["main_type"] = np.where(rng.uniform(size=3000) < 0.5, "QSO", "YSO")
    objects["ref_id"] = np.arange(3000)
    sources_ra, sources_dec = rng.uniform(10, 10.05, 800), rng.uniform(-0.05, 0, 800)
    # Several detections per source at its position, shuffled, plus detections without one.
    pick = rng.integers(0, 800, 2500)
    ra, dec = sources_ra[pick], sources_dec[pick]
    ra[:5], dec[5:9] = np.nan, np.nan
    dec[9] = -0.0
    detections = pd.DataFrame({"ra": ra, "dec": dec})

    matches = catalog_matches(detections, objects, 2.0)
    rows, separations = nearest_within(ra, dec, objects["ra"], objects["dec"], 2.0)
    assert len(matches) == len(detections)
    np.testing.assert_array_equal(matches["ref_id"].fillna(-1).to_numpy(dtype=np.int64), rows)
    np.testing.assert_array_equal(matches["angDist"].to_numpy(), separations)
    assert matches["ref_id"].iloc[:9].isna().all()  # a NaN coordinate matches nothing
    assert 0 < matches["ref_id"].notna().mean() < 1


def test_best_matches_pick_the_nearest_object():
    ra, dec = _sky(np.random.default_rng(4), 1)
    objects = pd.DataFrame(
        {"ra": [ra[0], ra[0]], "dec": [dec[0] + 0.8 / 3600, dec[0] - 0.3 / 3600], "main_type": ["Star", "QSO"]}
    )
    matches = catalog_matches(pd.DataFrame({"ra": [ra[0]] * 3, "dec": [dec[0]] * 3}), objects, 1.0)
    assert matches["main_type"].tolist() == ["QSO"] * 3
    np.testing.assert_allclose(matches["angDist"], 0.3, rtol=1e-6)
