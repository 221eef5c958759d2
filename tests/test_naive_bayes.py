"""The optimized naive Bayes: posterior, weight tuning, outliers and tracks."""

import json

import numpy as np
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from xrayclass.analysis.validation import labeled_detections, split
from xrayclass.constants import CLASSES, FEATURES, LOCATION_FEATURE, MAIN_TYPE
from xrayclass.core.naive_bayes import NaiveBayesClassifier, score_predictions
from xrayclass.stages.classification import ClassificationConfig, naive_bayes_categories, run_classification


@parametrize_with_checks([NaiveBayesClassifier(tune=False)])
def test_scikit_learn_estimator_contract(estimator, check):
    check(estimator)


def two_class_model():
    """Two features in two categories, two bins each, no smoothing: likelihoods by hand."""
    X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 1.0], [1.0, 1.0], [0.0, 1.0], [1.0, 0.0]])
    y = np.array(["A", "A", "A", "B", "B", "B"])
    model = NaiveBayesClassifier(
        categories={"s": [0], "v": [1]}, bins=2, smoothing=0, floor=0.0, alpha={"s": 1.0, "v": 3.0}
    ).fit(X, y)
    return model


def test_posterior_against_a_hand_computed_two_class_case():
    model = two_class_model()
    # Bins are [0, 0.5) and [0.5, 1] of width 0.5; densities are counts / n / width.
    # Class A (3 rows): feature 0 bins (2, 1), feature 1 bins (1, 2); class B: (1, 2) and (1, 2).
    L = {
        "A": {0: [2 / 3 / 0.5, 1 / 3 / 0.5], 1: [1 / 3 / 0.5, 2 / 3 / 0.5]},
        "B": {0: [1 / 3 / 0.5, 2 / 3 / 0.5], 1: [1 / 3 / 0.5, 2 / 3 / 0.5]},
    }
    x = np.array([[0.1, 0.9]])  # bin 0 of feature 0, bin 1 of feature 1
    weight_s, weight_v = 1 / 4, 3 / 4  # alpha / sum alpha
    joint = {c: 0.5 * L[c][0][0] ** weight_s * L[c][1][1] ** weight_v for c in "AB"}
    expected = joint["A"] / (joint["A"] + joint["B"])
    assert model.predict_proba(x)[0, 0] == pytest.approx(expected, rel=1e-12)
    explained = model.explain(x)
    assert explained["outlier_measure"][0] == pytest.approx(-np.log(joint["A"]), rel=1e-12)
    # Track: prior 0.5, then with the spectrum factor only, then the full posterior.
    with_s = 0.5 * L["A"][0][0] ** weight_s / (0.5 * L["A"][0][0] ** weight_s + 0.5 * L["B"][0][0] ** weight_s)
    np.testing.assert_allclose(explained["track"][0], [0.5, with_s, expected], rtol=1e-12)
    # Only the spectrum category tells A from B here (feature 1 is the same in both).
    assert explained["driven_by"][0] == "s"


def test_dict_round_trip_is_exact():
    model = two_class_model()
    again = NaiveBayesClassifier.from_dict(json.loads(json.dumps(model.to_dict())))
    X = np.random.default_rng(0).uniform(size=(20, 2))
    np.testing.assert_array_equal(again.predict_proba(X), model.predict_proba(X))
    np.testing.assert_array_equal(again.explain(X)["track"], model.explain(X)["track"])


def test_bounded_features_keep_their_mass_at_the_edges():
    """Reflection at the range's edges: a pile-up at 0 stays a pile-up at 0."""
    rng = np.random.default_rng(1)
    X = np.concatenate([np.zeros(500), rng.uniform(0, 1, 500)])[:, None]
    model = NaiveBayesClassifier(bins=20, smoothing=1.5, tune=False).fit(X, np.zeros(1000, dtype=int))
    density = np.exp(model.log_likelihood_[0, 0, :20])
    assert density[0] > 3 * density[10]
    assert np.sum(density * np.diff(model.edges_[0])) == pytest.approx(1.0)


@pytest.fixture(scope="module")
def mock_labeled(mock_crossmatched):
    return mock_crossmatched, labeled_detections(mock_crossmatched)


def test_tuned_weights_beat_equal_weights_on_held_out_mock_detections(mock_labeled):
    """An uninformative category (shuffled |b|) at equal weight dilutes the evidence;
    tuning finds a better weighting, and it holds on detections it never saw."""
    _, labeled = mock_labeled
    rng = np.random.default_rng(0)
    X = np.column_stack([labeled.X, rng.permutation(labeled.latitude)])
    names = [*FEATURES, LOCATION_FEATURE]
    train, test = split(labeled, seed=1)
    common = dict(categories=naive_bayes_categories(True), feature_names=names, classes=CLASSES, scoring="macro_f1")
    tuned = NaiveBayesClassifier(**common).fit(X[train], labeled.labels[train])
    equal = NaiveBayesClassifier(**common, tune=False).fit(X[train], labeled.labels[train])
    assert tuned.alpha_ != dict.fromkeys(tuned.alpha_, 1.0)
    assert tuned.tuning_[0][1] > tuned.equal_weight_score_  # out of fold, on the training split
    tuned_score = score_predictions(labeled.labels[test], tuned.predict(X[test]), CLASSES, "macro_f1")
    equal_score = score_predictions(labeled.labels[test], equal.predict(X[test]), CLASSES, "macro_f1")
    print(f"held-out macro F1: tuned {tuned_score:.3f} ({tuned.alpha_}), equal weights {equal_score:.3f}")
    assert tuned_score > equal_score + 0.005


def test_injected_anomalies_rank_in_the_top_outlier_percentile(mock_labeled):
    stage2, _ = mock_labeled
    table = stage2.copy()
    # SYNTHETIC anomalies: unlabeled detections with a spectrum no class has (very hard,
    # very steep and very hot at once) and maximal variability.
    anomalies = table.index[(table[MAIN_TYPE] == "NaN")][:20]
    table.loc[anomalies, ["hard_hm", "hard_hs", "hard_ms"]] = [0.99, -0.99, 0.99]
    table.loc[anomalies, "powlaw_gamma"] = 9.0
    table.loc[anomalies, "bb_kt"] = 40.0
    table.loc[anomalies, ["var_prob_b", "var_prob_h", "var_prob_s"]] = 1.0
    table.loc[anomalies, "name"] = [f"MOCK ANOMALY {k}" for k in range(len(anomalies))]
    classified, _ = run_classification(table)
    injected = classified["name"].str.startswith("MOCK ANOMALY")
    assert injected.sum() == 20
    assert (classified.loc[injected, "outlier_percentile"] >= 99).all()
    assert classified.loc[injected, "outlier_flag"].all()
    # They are among the most outlying of all.
    top = classified.nlargest(40, "outlier_measure")
    assert top["name"].str.startswith("MOCK ANOMALY").sum() >= 15
    # About 1% of ordinary detections are flagged, as configured.
    assert classified.loc[~injected, "outlier_flag"].mean() < 0.03


def test_stage3_outputs_tracks_and_naive_bayes_method(mock_labeled):
    stage2, _ = mock_labeled
    by_mahalanobis, model = run_classification(stage2)
    by_bayes, _ = run_classification(stage2, ClassificationConfig(method="naive-bayes"))
    assert by_mahalanobis["name"].tolist() == by_bayes["name"].tolist()
    for table in (by_mahalanobis, by_bayes):
        np.testing.assert_allclose(table[list(CLASSES)].sum(axis=1), 1.0)
        assert set(table["driven_by"]) <= {"spectrum", "variability", "location"}
        tracks = table[["track_prior", "track_spectrum", "track_variability", "track_location"]]
        assert tracks.notna().all().all()
    # With naive Bayes the track ends at the class's own probability.
    own = by_bayes[list(CLASSES)].max(axis=1)
    np.testing.assert_allclose(by_bayes["track_location"], own, rtol=1e-9)
    # The artifact carries everything: a reloaded model classifies identically.
    document = json.loads(json.dumps(model.to_dict()))
    from xrayclass.core.classifier import ClassifierModel

    reloaded = ClassifierModel.from_dict(document)
    again = reloaded.classify(by_mahalanobis, by_mahalanobis["cluster"].to_numpy())
    np.testing.assert_array_equal(again[list(CLASSES)].to_numpy(), by_mahalanobis[list(CLASSES)].to_numpy())
    np.testing.assert_array_equal(again["outlier_measure"].to_numpy(), by_mahalanobis["outlier_measure"].to_numpy())


def test_fast_scores_equal_scikit_learn():
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(3)
    true = rng.choice(list("ABCD"), size=500, p=[0.5, 0.3, 0.15, 0.05])
    predicted = rng.choice(list("ABCDE"), size=500)
    macro = f1_score(true, predicted, labels=list("ABCD"), average="macro", zero_division=0)
    assert score_predictions(true, predicted, "ABCD", "macro_f1") == pytest.approx(macro, rel=1e-12)
    rarest = f1_score(true, predicted, labels=["D"], average="macro", zero_division=0)
    assert score_predictions(true, predicted, "ABCD", "rarest_f1") == pytest.approx(rarest, rel=1e-12)


def test_an_out_of_range_value_does_not_change_the_ranking_of_classes_by_itself():
    # SYNTHETIC: a common class and a rare one (20x fewer rows), overlapping in both features.
    rng = np.random.default_rng(7)
    X = np.vstack([rng.uniform(0, 1, size=(2000, 2)), rng.uniform(0.2, 0.8, size=(100, 2))])
    y = np.array(["common"] * 2000 + ["rare"] * 100)
    model = NaiveBayesClassifier(categories={"s": [0], "v": [1]}, alpha={"s": 1.0, "v": 1.0}).fit(X, y)
    inside = rng.uniform(0.2, 0.8, size=(50, 2))
    beyond = inside.copy()
    beyond[:, 1] = 5.0  # far outside the training range of feature 1
    # Both features beyond the range: nothing but the prior ranks the classes.
    np.testing.assert_allclose(model.predict_proba(np.array([[-3.0, 5.0]])), [[2000 / 2100, 100 / 2100]], rtol=1e-12)
    # Feature 1 beyond the range: the posterior is that of the prior and feature 0 alone.
    weights = model._weights(model.alpha_)
    log_l0 = np.stack([model.log_likelihood_[k, 0, model._bin_index(beyond)[:, 0]] for k in range(2)], axis=1)
    joint = model.class_log_prior_ + weights[0] * log_l0
    expected = np.exp(joint - np.logaddexp(joint[:, :1], joint[:, 1:]))
    np.testing.assert_allclose(model.predict_proba(beyond), expected, rtol=1e-12)
    # The out-of-range density is the same for both classes, and no higher than any inside the range.
    outside = model.log_likelihood_[:, :, model.bins]
    assert (outside[0] == outside[1]).all()
    assert (outside[0] <= model.log_likelihood_[:, :, : model.bins].min(axis=(0, 2))).all()
    # It still makes the row more unusual than the same row inside the range.
    assert (model.explain(beyond)["outlier_measure"] > model.explain(inside)["outlier_measure"]).all()


def test_hand_written_logsumexp_equals_scipy():
    from scipy.special import logsumexp

    from xrayclass.core.naive_bayes import logsumexp_rows

    rng = np.random.default_rng(4)
    values = rng.normal(-50, 20, size=(300, 10))
    values[:5] = -np.inf  # a class with no probability anywhere in the row
    values[5:10, :3] = -np.inf
    values[10:15] *= 40  # far beyond what exp() can hold without the shift
    with np.errstate(divide="ignore"):
        ours = logsumexp_rows(values)
    theirs = logsumexp(values, axis=1, keepdims=True)
    assert ours.shape == (300, 1)
    np.testing.assert_array_equal(ours[:5], theirs[:5])  # both -inf
    np.testing.assert_allclose(ours[5:], theirs[5:], rtol=1e-14, atol=0)


def test_explain_in_chunks_equals_explain_at_once(monkeypatch):
    # explain bounds its memory by scoring CHUNK_ROWS rows at a time; the rows are
    # independent, so the chunked result must be the one-shot result exactly.
    import xrayclass.core.naive_bayes as naive_bayes

    rng = np.random.default_rng(3)
    X = rng.random((1_000, 4))
    y = rng.choice(["A", "B", "C"], 1_000)
    model = NaiveBayesClassifier(categories={"s": [0, 1], "v": [2, 3]}, tune=False).fit(X, y)
    assigned = np.where(np.arange(1_000) % 7 == 0, "Unclassified", y)
    X_new = rng.random((1_000, 4)) * 1.2  # some values beyond the training range
    at_once = model.explain(X_new, assigned)
    monkeypatch.setattr(naive_bayes, "CHUNK_ROWS", 97)
    chunked = model.explain(X_new, assigned)
    for key in ("outlier_measure", "track", "driven_by"):
        np.testing.assert_array_equal(chunked[key], at_once[key], err_msg=key)


def test_bins_found_arithmetically_equal_searchsorted():
    """The bin of a value is ``searchsorted`` on the inner edges (NaN: the last bin; beyond
    the training range: one past it), on the edges themselves and on their neighbours."""
    rng = np.random.default_rng(5)
    X = np.column_stack([rng.normal(size=500) * scale + shift for scale, shift in ((1e-6, 0), (3.0, -7), (1e4, 2e5))])
    y = rng.choice(["a", "b"], size=500)
    model = NaiveBayesClassifier(categories={"all": ["x0", "x1", "x2"]}, feature_names=["x0", "x1", "x2"])
    model.fit(X, y)
    for j, edges in enumerate(model.edges_):
        values = np.concatenate(
            [
                rng.uniform(edges[0] - np.ptp(edges) / 5, edges[-1] + np.ptp(edges) / 5, 5000),
                edges,
                np.nextafter(edges, -np.inf),
                np.nextafter(edges, np.inf),
                [np.nan],
            ]
        )
        expected = np.searchsorted(edges[1:-1], values, side="right")
        expected[(values < edges[0]) | (values > edges[-1])] = model.bins
        np.testing.assert_array_equal(model._bin_index_of(values, j), expected)
