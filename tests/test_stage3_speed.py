"""Stage 3's shortcuts change no result (SYNTHETIC mock data)."""

import numpy as np
import pandas as pd
import pytest

from xrayclass.analysis.mock import generate
from xrayclass.constants import CLASSES
from xrayclass.core.naive_bayes import NaiveBayesClassifier, score_codes
from xrayclass.core.positional import crossmatch_local
from xrayclass.stages.classification import classify_detections, weights_needed
from xrayclass.stages.clustering import cluster_detections


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
    explained, explained_model = classify_detections(stage2)
    plain, plain_model = classify_detections(stage2, explain=False)
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
    for train, held_out in StratifiedKFold(3, shuffle=True, random_state=0).split(X, y):
        model.log_likelihood_ = model._histograms(X[train], y[train])
        out_of_fold[held_out] = model._category_log_likelihoods(X[held_out])
    model.log_likelihood_ = fitted
    codes = pd.Index(model.classes_).get_indexer(y)
    for alpha, score in model.tuning_:
        predicted = np.argmax(model._combine(out_of_fold, alpha), axis=1)
        assert score == score_codes(codes, predicted, 3, "macro_f1")
    assert len(model.tuning_) == 5**3 - 1
