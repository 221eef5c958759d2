"""Stage 3's shortcuts change no result (SYNTHETIC mock data)."""

import numpy as np
import pandas as pd
import pytest

from xrayclass.analysis.mock import generate
from xrayclass.constants import CLASSES
from xrayclass.core.naive_bayes import NaiveBayesClassifier, score_codes
from xrayclass.stages.classification import classify_detections, weights_needed
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
    codes = pd.Index(model.classes_).get_indexer(y)
    for train, held_out in StratifiedKFold(3, shuffle=True, random_state=0).split(X, y):
        model.log_likelihood_ = model._histograms(model._bin_index(X[train]), codes[train])
        out_of_fold[held_out] = model._category_log_likelihoods(X[held_out])
    model.log_likelihood_ = fitted
    for alpha, score in model.tuning_:
        predicted = np.argmax(model._combine(out_of_fold, alpha), axis=1)
        assert score == score_codes(codes, predicted, 3, "macro_f1")
    assert len(model.tuning_) == 5**3 - 1


def test_threads_and_chunks_change_no_classification(stage2, monkeypatch):
    from xrayclass.stages import classification as stage3

    classified, model = classify_detections(stage2)
    chosen = classified[["name", "obsid", "cluster", "ra", "dec", *model.feature_set.features]]
    clusters = chosen["cluster"].to_numpy()
    one = model.classify(chosen, clusters, threads=1)
    monkeypatch.setattr(stage3, "CHUNK_ROWS", 700)  # several chunks, shared by the threads
    for threads in (2, 3):
        pd.testing.assert_frame_equal(model.classify(chosen, clusters, threads=threads), one)


def test_map_chunks_keeps_the_chunk_order_on_any_number_of_threads():
    import threading
    import time

    from xrayclass.core.progress import map_chunks

    seen = set()

    def work(rows):
        seen.add(threading.get_ident())
        time.sleep(0.02 * (30 - rows.start) / 10)  # the first chunk finishes last
        return (rows.start, rows.stop)

    expected = [(0, 10), (10, 20), (20, 25)]
    assert map_chunks(work, 25, 10, "test", threads=1) == expected
    assert map_chunks(work, 25, 10, "test", threads=3) == expected
    assert len(seen) > 1
    assert map_chunks(work, 0, 10, "test", threads=2) == []


def test_stage3_output_puts_the_other_input_columns_last_in_input_order(stage2):
    table = stage2.assign(extra_first=1.5, otype=None)
    table = table[["extra_first", *stage2.columns, "otype"]]
    classified, _ = classify_detections(table)
    rest = [c for c in table.columns if c in classified.columns[-len(table.columns) :]]
    tail = list(classified.columns[-3:])
    assert "extra_first" in classified.columns and "otype" in classified.columns
    assert rest.index("extra_first") < rest.index("otype")
    assert tail[-1] == "otype"
    # Each row's pass-through values are its own (the gather follows the sort).
    merged = classified.merge(table[["name", "obsid", "region_id", "theta"]], on=["name", "obsid", "region_id"])
    np.testing.assert_array_equal(merged["theta_x"].to_numpy(), merged["theta_y"].to_numpy())


def test_sources_counted_as_runs_of_sorted_names():
    from xrayclass.stages.classification import _count_runs

    names = pd.Series(sorted(["b", "a", "b", "c", "c", "c", "a b", "A"]), dtype="str")
    assert _count_runs(names) == names.nunique() == 5
    assert _count_runs(names.iloc[:1]) == 1 and _count_runs(names.iloc[:0]) == 0
