"""Stage 3's shortcuts change no result (SYNTHETIC mock data)."""

import numpy as np
import pandas as pd
import pytest

from xrayclass.analysis.mock import generate
from xrayclass.constants import CLASSES
from xrayclass.core.naive_bayes import NaiveBayesClassifier, score_codes
from xrayclass.stages.classification import ClassificationConfig, run_classification, weights_needed
from xrayclass.stages.clustering import cluster_detections
from xrayclass.stages.crossmatch import crossmatch_local


@pytest.fixture(scope="module")
def stage2():
    detections, simbad = (pd.concat(parts, ignore_index=True) for parts in zip(*generate(6_000, 23), strict=False))
    stage1, _ = cluster_detections(detections)
    return crossmatch_local(stage1, simbad, 1.0)


def test_weights_are_tuned_only_where_used():
    assert weights_needed("naive-bayes", explain=False)
    assert weights_needed("mahalanobis", explain=True)
    assert not weights_needed("mahalanobis", explain=False)


def test_untuned_mahalanobis_run_gives_the_same_probabilities(stage2):
    explained, explained_model = run_classification(stage2)
    plain, plain_model = run_classification(stage2, ClassificationConfig(explain=False))
    assert explained_model.naive_bayes.tuning_ and not plain_model.naive_bayes.tuning_
    assert set(plain_model.naive_bayes.alpha_.values()) == {1.0}
    pd.testing.assert_frame_equal(
        plain[["name", "obsid", "main_type", *CLASSES]], explained[["name", "obsid", "main_type", *CLASSES]]
    )


def test_deduplicated_grid_scores_every_weighting_as_a_full_search_would():
    rng = np.random.default_rng(3)
    X = rng.random((3_000, 4))
    y = np.where(X[:, 0] + 0.3 * rng.standard_normal(3_000) > 0.5, "a", "b")
    y[X[:, 3] > 0.9] = "c"
    model = NaiveBayesClassifier(categories={"one": [0, 1], "two": [2], "three": [3]}).fit(X, y)
    # The full search by hand: every weighting of the grid scored on its own.
    out_of_fold = np.empty((len(X), 3, 3))
    from sklearn.model_selection import StratifiedKFold

    fitted = model.log_likelihood_
    codes = pd.Index(model.classes_).get_indexer(y)
    for train, held_out in StratifiedKFold(3, shuffle=True, random_state=0).split(X, y):
        model.log_likelihood_ = model._histograms(model._bin_index(X[train]), codes[train])
        out_of_fold[held_out] = model._category_log_likelihoods(X[held_out])
    model.log_likelihood_ = fitted
    for alpha, score in model.tuning_:
        predicted = np.argmax(model._combine(out_of_fold, alpha), axis=1)
        assert score == score_codes(codes, predicted, 3, "macro_f1")
    assert len(model.tuning_) == 5**3 - 1


def test_classifying_in_parts_changes_no_row(stage2):
    classified, model = run_classification(stage2)
    chosen = classified[["name", "obsid", "cluster", "ra", "dec", *model.feature_set.features]]
    clusters = chosen["cluster"].to_numpy()
    whole = model.classify(chosen, clusters)
    for size in (700, 2_500):
        parts = [
            model.classify(chosen.iloc[start : start + size], clusters[start : start + size])
            for start in range(0, len(chosen), size)
        ]
        pd.testing.assert_frame_equal(pd.concat(parts, ignore_index=True), whole)


def test_chunks_cover_the_rows_in_order():
    from xrayclass.core.progress import chunks

    assert list(chunks(25, 10, "test")) == [slice(0, 10), slice(10, 20), slice(20, 25)]
    assert list(chunks(0, 10, "test")) == []


def test_stage3_output_puts_the_other_input_columns_last_in_input_order(stage2):
    table = stage2.assign(extra_first=1.5, otype=None)
    table = table[["extra_first", *stage2.columns, "otype"]]
    classified, _ = run_classification(table)
    rest = [c for c in table.columns if c in classified.columns[-len(table.columns) :]]
    tail = list(classified.columns[-3:])
    assert "extra_first" in classified.columns and "otype" in classified.columns
    assert rest.index("extra_first") < rest.index("otype")
    assert tail[-1] == "otype"
    # Each row's pass-through values are its own (the gather follows the sort).
    merged = classified.merge(table[["name", "obsid", "region_id", "theta"]], on=["name", "obsid", "region_id"])
    np.testing.assert_array_equal(merged["theta_x"].to_numpy(), merged["theta_y"].to_numpy())


def test_sources_are_counted_in_the_log(stage2, caplog):
    with caplog.at_level("INFO", logger="xrayclass.stages.classification"):
        classified, _ = run_classification(stage2, ClassificationConfig(explain=False))
    assert f"{len(classified):,} detections of {classified['name'].nunique():,} sources classified" in caplog.text
