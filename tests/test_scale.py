"""The chunked and subsampled paths agree with the in-memory path (SYNTHETIC mock data)."""

import numpy as np
import pandas as pd
import pytest

import xrayclass.stages.clustering as clustering
from xrayclass.analysis.mock import generate
from xrayclass.constants import CLASSES, FEATURES
from xrayclass.core import classifier, naive_bayes
from xrayclass.core.features import complete_rows, prepare_features
from xrayclass.core.mixture import ClusteringModel, fit_mixture
from xrayclass.core.preprocessing import LogMinMaxScaler
from xrayclass.engine.partitions import classify_partition, source_partition, vote_partition
from xrayclass.stages.classification import TO_CLASSIFY, detection_roles, run_classification
from xrayclass.stages.clustering import cluster_detections, fit_rows, probability_columns
from xrayclass.stages.crossmatch import crossmatch_local
from xrayclass.stages.master_classification import master_classification


@pytest.fixture(scope="module")
def mock():
    detections, simbad = (pd.concat(parts, ignore_index=True) for parts in zip(*generate(12_000, 17), strict=False))
    return detections, simbad


def test_chunked_assignment_equals_one_pass(mock, monkeypatch):
    detections, _ = mock
    whole, _ = cluster_detections(detections)
    monkeypatch.setattr(clustering, "CHUNK_ROWS", 997)
    chunked, _ = cluster_detections(detections)
    pd.testing.assert_frame_equal(whole, chunked)


def test_fit_sample_at_or_above_the_size_is_the_paper_path(mock):
    detections, _ = mock
    default, _ = cluster_detections(detections, fit_sample=None)
    large, _ = cluster_detections(detections, fit_sample=10**9)
    pd.testing.assert_frame_equal(default, large)


def test_subsampled_fit_equals_a_fit_on_that_subsample(mock):
    """The subsampled path is the same computation on the chosen rows, then assignment of all."""
    detections, _ = mock
    subsampled, model = cluster_detections(detections, fit_sample=3000, random_state=5)
    assert model.training["n_fitted"] == 3000
    table = prepare_features(detections)
    complete, _ = complete_rows(table)
    features = table.loc[complete, list(FEATURES)].to_numpy(dtype="float64")
    scaler = LogMinMaxScaler().fit(features)
    rows = fit_rows(features, 3000, 5)
    mixture = fit_mixture(scaler.transform(features[rows]), random_state=5)
    clusters, probabilities = ClusteringModel(scaler, mixture).assign(pd.DataFrame(features, columns=FEATURES))
    np.testing.assert_array_equal(subsampled["cluster"], clusters)
    np.testing.assert_array_equal(subsampled[probability_columns(6)].to_numpy(), probabilities)


@pytest.fixture(scope="module")
def stage2(mock):
    detections, simbad = mock
    stage1, _ = cluster_detections(detections)
    return crossmatch_local(stage1, simbad, 1.0)


def test_chunked_classification_equals_one_pass(stage2, monkeypatch):
    whole, _ = run_classification(stage2)
    monkeypatch.setattr(classifier, "CHUNK_ROWS", 613)
    monkeypatch.setattr(naive_bayes, "CHUNK_ROWS", 613)
    chunked, _ = run_classification(stage2)
    numbers = [*CLASSES, "outlier_measure", "outlier_percentile", "track_prior", "track_location"]
    np.testing.assert_allclose(chunked[numbers].to_numpy(), whole[numbers].to_numpy(), rtol=1e-12, atol=1e-300)
    for column in ("name", "obsid", "main_type", "driven_by", "outlier_flag"):
        np.testing.assert_array_equal(chunked[column], whole[column])
    # And so the master classes too.
    first, second = master_classification(whole), master_classification(chunked)
    pd.testing.assert_frame_equal(first[0], second[0])
    pd.testing.assert_frame_equal(first[1], second[1])


def test_partition_by_partition_equals_the_whole_table(stage2):
    whole, model = run_classification(stage2)
    table = prepare_features(stage2)
    table = table.loc[complete_rows(table)[0]].reset_index(drop=True)
    table["main_type"] = table["main_type"].astype(str)
    to_classify = table[detection_roles(table["main_type"].to_numpy(dtype=object)) == TO_CLASSIFY]
    # Stage 3 in arbitrary row partitions with the broadcast model ...
    parts = np.array_split(np.arange(len(to_classify)), 5)
    classified = (
        pd.concat([classify_partition(to_classify.iloc[rows], model) for rows in parts], ignore_index=True)
        .sort_values(["name", "obsid"], kind="stable")
        .reset_index(drop=True)
    )
    np.testing.assert_allclose(classified[list(CLASSES)].to_numpy(), whole[list(CLASSES)].to_numpy(), rtol=1e-12)
    np.testing.assert_array_equal(classified["main_type"], whole["main_type"])
    # ... and stage 4 in partitions by source name.
    partition = source_partition(whole["name"], 4)
    assert len(np.unique(partition)) == 4
    votes = [vote_partition(whole[partition == p]) for p in range(4)]
    uniquely = (
        pd.concat([v[0] for v in votes])
        .sort_values(["detection_count", "name"], ascending=[False, True], kind="stable")
        .reset_index(drop=True)
    )
    expected, _, _ = master_classification(whole)
    pd.testing.assert_frame_equal(uniquely, expected)
