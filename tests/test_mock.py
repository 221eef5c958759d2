"""The SYNTHETIC mock catalog: shape, determinism, truth, and recoverability."""

import numpy as np
import pandas as pd
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord

import xrayclass.analysis.mock as mock
from xrayclass.analysis.mock import CSC_COLUMNS, MockSettings, generate, mock_accuracy, source_names
from xrayclass.constants import AGGREGATE_CLASS, CLASSES
from xrayclass.core.features import derive_features
from xrayclass.core.positional import catalog_matches
from xrayclass.io.tables import read_table
from xrayclass.stages.classification import run_classification
from xrayclass.stages.clustering import cluster_detections
from xrayclass.stages.crossmatch import crossmatch_local
from xrayclass.workflow.mock import write_mock


def whole(n, seed, settings=None):
    detections, simbad = zip(*generate(n, seed, settings), strict=False)
    return pd.concat(detections, ignore_index=True), pd.concat(simbad, ignore_index=True)


@pytest.fixture(scope="module")
def catalog():
    return whole(20_000, seed=3)


def test_shape_names_and_truth(catalog):
    detections, simbad = catalog
    assert len(detections) == 20_000
    assert list(detections.columns) == [*CSC_COLUMNS, "true_class"]
    assert detections["name"].str.startswith("MOCK J").all()
    assert set(detections["true_class"]) == set(CLASSES)
    # One true class and one position per source.
    per_source = detections.groupby("name").agg(classes=("true_class", "nunique"), ras=("ra", "nunique"))
    assert (per_source == 1).all().all()
    assert simbad["main_id"].str.startswith("MOCK SIMBAD").all()


def test_same_seed_same_catalog_other_seed_other_catalog():
    first, second, other = whole(3000, 5), whole(3000, 5), whole(3000, 6)
    pd.testing.assert_frame_equal(first[0], second[0])
    pd.testing.assert_frame_equal(first[1], second[1])
    assert not first[0]["ra"].equals(other[0]["ra"])


def test_chunks_give_distinct_sources_and_the_exact_size(monkeypatch):
    monkeypatch.setattr(mock, "SOURCES_PER_CHUNK", 400)
    chunks = list(generate(5000, 1))
    assert len(chunks) > 3
    detections = pd.concat([c[0] for c in chunks], ignore_index=True)
    assert len(detections) == 5000
    names_per_chunk = [set(c[0]["name"]) for c in chunks]
    assert sum(map(len, names_per_chunk)) == len(set().union(*names_per_chunk))


def test_multiplicity_most_single_with_a_tail(catalog):
    counts = catalog[0].groupby("name").size()
    assert 0.6 < (counts == 1).mean() < 0.9
    assert counts.max() > 10


def test_variability_columns_are_consistent(catalog):
    detections = derive_features(catalog[0])
    b = detections
    assert (b["var_min_b"] <= b["var_mean_b"] * (1 + 1e-12)).all()
    assert (b["var_max_b"] >= b["var_mean_b"] * (1 - 1e-12)).all()
    assert (b["var_newq_b"] >= 1 - 1e-12).all()
    # Flat light curves: newq exactly 1 for a good share, ratio exactly 0 for a few.
    assert (b["var_newq_b"] == 1).mean() > 0.3
    assert 0 < (b["var_ratio_b"] == 0).mean() < 0.05
    assert b[["hard_hm", "hard_hs", "hard_ms"]].abs().max().max() < 1
    assert b["var_prob_b"].between(0, 1).all()
    # Some detections lack hard- or soft-band variability, as in the real query.
    assert 0.1 < b["var_prob_h"].isna().mean() < 0.25


def test_galactic_classes_lie_near_the_plane(catalog):
    sources = catalog[0].drop_duplicates("name")
    latitude = np.abs(SkyCoord(sources["ra"].to_numpy() * u.deg, sources["dec"].to_numpy() * u.deg).galactic.b.deg)
    family = sources["true_class"].map(AGGREGATE_CLASS).to_numpy()
    assert np.mean(latitude[family == "YSO"] < 10) > 0.7
    assert np.mean(latitude[family == "AGN"] < 10) < 0.3


def test_names_truncate_like_the_csc():
    assert source_names(np.array([10.6297]), np.array([41.27266])).tolist() == ["MOCK J004231.1+411621"]
    assert source_names(np.array([0.0418]), np.array([-50.2574])).tolist() == ["MOCK J000010.0-501526"]


def test_mock_simbad_crossmatch_finds_counterparts_not_decoys(catalog):
    detections, simbad = catalog
    sources = detections.drop_duplicates("name").reset_index(drop=True)
    matches = catalog_matches(sources, simbad, 1.0)
    assert (matches["angDist"].dropna() <= 1.0).all()
    matched = matches["main_type"].notna()
    # About the shares set: labeled + uninformative + other types of the sources.
    settings = MockSettings()
    expected = settings.labeled_share + settings.uninformative_share + settings.other_type_share
    assert abs(matched.mean() - expected) < 0.03
    labeled = matches["main_type"].isin(CLASSES)
    # SIMBAD classes are right except for the configured within-family noise.
    agree = (matches.loc[labeled, "main_type"] == sources.loc[labeled, "true_class"]).mean()
    assert 0.9 < agree < 1.0
    # Decoys sit beyond 1 arcsec: a 5-arcsec match finds more objects.
    wide = catalog_matches(sources, simbad, 5.0)["main_type"].notna().sum()
    assert wide > matched.sum()


def test_crossmatch_local_keeps_every_row(catalog):
    detections, simbad = catalog
    stage2 = crossmatch_local(detections.head(500), simbad, 1.0)
    assert len(stage2) == 500 and "angDist" in stage2 and "ra_x" in stage2
    assert stage2["main_type"].notna().all()
    assert ((stage2["main_type"] == "NaN") == stage2["angDist"].isna()).all()


def test_writers_agree_and_label_the_data_synthetic(tmp_path):
    provenance = write_mock(3000, 2, tmp_path / "m.parquet", tmp_path / "s.parquet")
    write_mock(3000, 2, tmp_path / "m.csv", tmp_path / "s.csv")
    write_mock(3000, 2, tmp_path / "m.vot", tmp_path / "s.vot")
    parquet, csv, vot = (read_table(tmp_path / f"m.{ext}") for ext in ("parquet", "csv", "vot"))
    pd.testing.assert_frame_equal(parquet, csv, check_dtype=False)
    assert vot["name"].tolist() == parquet["name"].tolist()
    assert provenance["detections"] == 3000 and "SYNTHETIC" in provenance["note"]
    import pyarrow.parquet as pq

    assert b"SYNTHETIC" in pq.read_schema(tmp_path / "m.parquet").metadata[b"xrayclass.note"]
    assert "SYNTHETIC" in (tmp_path / "m.parquet.provenance.json").read_text()


def recovered(separation, n=12_000, seed=4):
    detections, simbad = whole(n, seed, MockSettings(separation=separation))
    stage1, _ = cluster_detections(detections)
    stage2 = crossmatch_local(stage1, simbad, 1.0)
    stage3, _ = run_classification(stage2)
    return mock_accuracy(stage3)


def test_separation_tunes_recoverability():
    apart, together = recovered(2.0), recovered(0.0)
    assert apart["aggregated_accuracy"] > together["aggregated_accuracy"] + 0.3
    assert apart["aggregated_accuracy"] > 0.8
    # With identical classes the classifier cannot beat always guessing the commonest.
    assert together["aggregated_accuracy"] < together["aggregated_chance"] + 0.05


def test_mock_names_are_recognized_by_their_prefix():
    from xrayclass.analysis.mock import mock_names

    names = pd.Series(["MOCK J000001.0+000000", "2CXO J000010.0-501526", "MOCK ANOMALY 3", None])
    assert mock_names(names).tolist() == [True, False, True, False]
    assert mock_names([]).tolist() == []
