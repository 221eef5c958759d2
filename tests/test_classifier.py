import numpy as np
import pytest
import scipy.linalg
from conftest import synthetic_features
from scipy.spatial.distance import mahalanobis
from sklearn.utils.estimator_checks import parametrize_with_checks

from xrayclass.constants import CLASSES, UNCLASSIFIED
from xrayclass.core.classifier import (
    ClusterwiseMahalanobis,
    MahalanobisClassifier,
    labels_from_probabilities,
    softmin,
    squared_mahalanobis,
)


@parametrize_with_checks([MahalanobisClassifier(), MahalanobisClassifier(likelihood="gaussian", priors="references")])
def test_scikit_learn_estimator_contract(estimator, check):
    check(estimator)


def test_squared_distance_equals_direct_pinv_computation():
    rng = np.random.default_rng(0)
    references = rng.normal(size=(40, 5))
    X = rng.normal(size=(7, 5))
    mean = references.mean(axis=0)
    inverse = scipy.linalg.pinv(np.cov(references.T))
    ours = squared_mahalanobis(X, mean, inverse)
    direct = [mahalanobis(x, mean, inverse) ** 2 for x in X]
    np.testing.assert_allclose(ours, direct, rtol=1e-12)
    # The published code's form: the diagonal of the full N x N product.
    centered = X - mean
    np.testing.assert_allclose(ours, np.diag(centered @ inverse @ centered.T), rtol=1e-12)


def test_pseudo_inverse_handles_a_singular_covariance():
    """A constant feature makes the covariance singular; pinv still gives finite distances."""
    rng = np.random.default_rng(1)
    references = np.column_stack([rng.normal(size=30), rng.normal(size=30), np.full(30, 0.5)])
    classifier = MahalanobisClassifier(min_references=3).fit(references, np.array(["A"] * 30))
    distances = classifier.squared_distances(np.array([[0.1, -0.2, 0.5], [0.0, 0.0, 0.9]]))
    assert np.isfinite(distances).all()
    # Along the degenerate axis the pseudo-inverse gives no penalty.
    assert distances[1, 0] == pytest.approx(
        squared_mahalanobis(np.array([[0.0, 0.0, 0.5]]), classifier.means_[0], classifier.inverse_covariances_[0])[0]
    )


def test_softmin_hand_computed():
    distances = np.array([[0.0, np.log(2.0), np.log(4.0)]])
    # exp(-d) = 1, 1/2, 1/4; sum 7/4
    np.testing.assert_allclose(softmin(distances), [[4 / 7, 2 / 7, 1 / 7]])


def test_softmin_stays_defined_where_exp_underflows():
    distances = np.array([[1000.0, 1001.0, np.inf]])
    np.testing.assert_allclose(softmin(distances), [[1 / (1 + np.exp(-1)), np.exp(-1) / (1 + np.exp(-1)), 0.0]])


def test_softmin_of_a_row_without_finite_distance_is_all_zero():
    assert softmin(np.array([[np.inf, np.inf]])).tolist() == [[0.0, 0.0]]


def test_too_few_references_gives_probability_zero():
    X, y = synthetic_features(30, ["A", "B"], n_features=4)
    # Class C has 3 references, fewer than the 4 features.
    X = np.vstack([X, X[:3] + 0.01])
    y = np.concatenate([y, ["C"] * 3])
    classifier = MahalanobisClassifier(classes=["A", "B", "C"]).fit(X, y)
    assert classifier.scored_.tolist() == [True, True, False]
    probabilities = classifier.predict_proba(X[:5])
    assert (probabilities[:, 2] == 0).all()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)


def test_exactly_n_features_references_is_enough():
    X, y = synthetic_features(4, ["A"], n_features=4)
    assert MahalanobisClassifier().fit(X, y).scored_.tolist() == [True]


def test_no_scorable_class_gives_zeros_and_unclassified_label():
    X, y = synthetic_features(3, ["A", "B"], n_features=4)
    classifier = MahalanobisClassifier(classes=["A", "B"]).fit(X, y)
    assert (classifier.predict_proba(X) == 0).all()
    assert (classifier.predict(X) == UNCLASSIFIED).all()


def test_tie_goes_to_the_first_class():
    probabilities = np.array([[0.5, 0.5, 0.0], [0.2, 0.4, 0.4]])
    assert labels_from_probabilities(probabilities, ["A", "B", "C"]).tolist() == ["A", "B"]


def test_equidistant_classes_tie_to_the_first_class():
    """Two classes with mirrored references: a point on the mirror plane is equidistant."""
    rng = np.random.default_rng(2)
    left = rng.normal(size=(50, 2)) + [-3, 0]
    right = left * [-1, 1]
    classifier = MahalanobisClassifier(classes=["B", "A"]).fit(
        np.vstack([left, right]), np.array(["B"] * 50 + ["A"] * 50)
    )
    probabilities = classifier.predict_proba([[0.0, 0.3]])
    assert probabilities[0, 0] == pytest.approx(probabilities[0, 1], rel=1e-9)
    assert classifier.predict([[0.0, 0.3]]).tolist() == ["B"]


def test_probability_columns_follow_the_given_class_order():
    X, y = synthetic_features(30, ["A", "B"], n_features=3)
    forward = MahalanobisClassifier(classes=["A", "B"]).fit(X, y).predict_proba(X)
    backward = MahalanobisClassifier(classes=["B", "A"]).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(forward, backward[:, ::-1])


def test_labels_outside_the_classes_are_refused():
    X, y = synthetic_features(30, ["A", "B"], n_features=3)
    with pytest.raises(ValueError, match=r"labels \['B'\] are not among classes"):
        MahalanobisClassifier(classes=["A"]).fit(X, y)


def test_separated_classes_are_recovered():
    X, y = synthetic_features(100, list(CLASSES), seed=5)
    classifier = MahalanobisClassifier(classes=CLASSES).fit(X, y)
    Xt, yt = synthetic_features(20, list(CLASSES), seed=5)
    assert (classifier.predict(Xt) == yt).mean() > 0.95


def test_scoring_in_chunks_equals_scoring_at_once(monkeypatch):
    import xrayclass.core.classifier as module

    X, y = synthetic_features(40, ["A", "B", "C"], n_features=5)
    classifier = MahalanobisClassifier().fit(X, y)
    whole = classifier.predict_proba(X)
    monkeypatch.setattr(module, "CHUNK_ROWS", 7)
    np.testing.assert_array_equal(classifier.predict_proba(X), whole)


def test_clusterwise_uses_each_clusters_own_references():
    X, y = synthetic_features(30, ["A", "B"], n_features=3, seed=1)
    clusters = np.array([0] * 30 + [1] * 30)
    # Cluster 0 has only A references and cluster 1 only B.
    model = ClusterwiseMahalanobis(["A", "B"]).fit(X, y, clusters)
    assert model.reference_counts() == {0: {"A": 30, "B": 0}, 1: {"A": 0, "B": 30}}
    assert model.predict(X, clusters).tolist() == ["A"] * 30 + ["B"] * 30
    # A cluster never fitted gives all-zero probabilities.
    assert (model.predict_proba(X[:2], np.array([7, 7])) == 0).all()


def test_clusterwise_dict_round_trip_predicts_identically():
    X, y = synthetic_features(30, ["A", "B", "C"], n_features=4, seed=2)
    clusters = np.tile([0, 1], 45)
    model = ClusterwiseMahalanobis(["A", "B", "C"]).fit(X, y, clusters)
    again = ClusterwiseMahalanobis.from_dict(model.to_dict())
    np.testing.assert_array_equal(again.predict_proba(X, clusters), model.predict_proba(X, clusters))


# -- Gaussian likelihood and priors (issue 13) -------------------------------------------


def test_gaussian_log_likelihood_equals_scipy_logpdf_on_full_rank_covariances():
    from scipy.stats import multivariate_normal

    X, y = synthetic_features(40, ["A", "B"], n_features=5, seed=3, spread=0.1)
    model = MahalanobisClassifier(likelihood="gaussian").fit(X, y)
    assert (model.ranks_ == 5).all()
    expected = np.column_stack(
        [
            multivariate_normal(X[y == c].mean(axis=0), np.cov(X[y == c], rowvar=False, ddof=1)).logpdf(X)
            for c in ("A", "B")
        ]
    )
    np.testing.assert_allclose(model.log_likelihood(X), expected, rtol=1e-10, atol=1e-10)
    # The probabilities are the normalized densities.
    densities = np.exp(expected)
    np.testing.assert_allclose(
        model.predict_proba(X), densities / densities.sum(axis=1, keepdims=True), rtol=1e-9, atol=1e-12
    )


def test_pseudo_determinant_keeps_the_singular_values_pinv_keeps():
    from xrayclass.core.classifier import pseudo_log_determinant

    rng = np.random.default_rng(4)
    basis = rng.standard_normal((5, 3))
    covariance = basis @ np.diag([4.0, 1.0, 0.25]) @ basis.T  # rank 3 in 5 dimensions
    log_pdet, rank = pseudo_log_determinant(covariance)
    assert rank == 3 == np.linalg.matrix_rank(scipy.linalg.pinv(covariance))
    nonzero = np.linalg.eigvalsh(covariance)[-3:]
    assert log_pdet == pytest.approx(np.sum(np.log(nonzero)), rel=1e-10)


def test_gaussian_likelihood_penalizes_the_broad_class_that_softmin_favours():
    rng = np.random.default_rng(5)
    narrow = 0.0 + 0.05 * rng.standard_normal((200, 2))
    broad = 1.0 + 2.0 * rng.standard_normal((200, 2))
    X = np.vstack([narrow, broad])
    y = np.repeat(["narrow", "broad"], 200)
    point = np.array([[0.3, 0.3]])  # 6 narrow sigmas away, within one broad sigma
    assert MahalanobisClassifier().fit(X, y).predict(point)[0] == "broad"
    gaussian = MahalanobisClassifier(likelihood="gaussian").fit(X, y)
    distance = MahalanobisClassifier().fit(X, y)
    # The log-determinant term moves probability towards the narrow class.
    k = list(gaussian.classes_).index("narrow")
    assert gaussian.predict_proba(point)[0, k] > distance.predict_proba(point)[0, k]


def test_reference_priors_weight_classes_by_their_share_of_references():
    X, y = synthetic_features(30, ["A", "B"], n_features=2, seed=6, spread=0.2)
    X, y = np.vstack([X, X[y == "A"]]), np.concatenate([y, y[y == "A"]])  # A now has 60, B 30
    plain = MahalanobisClassifier(likelihood="gaussian").fit(X, y)
    weighted = MahalanobisClassifier(likelihood="gaussian", priors="references").fit(X, y)
    odds = lambda p: p[:, 0] / p[:, 1]  # noqa: E731
    np.testing.assert_allclose(odds(weighted.predict_proba(X)), 2 * odds(plain.predict_proba(X)), rtol=1e-9)


def test_unknown_likelihood_or_priors_is_refused():
    X, y = synthetic_features(10, ["A", "B"], n_features=2)
    with pytest.raises(ValueError, match="likelihood"):
        MahalanobisClassifier(likelihood="student").fit(X, y)
    with pytest.raises(ValueError, match="priors"):
        MahalanobisClassifier(priors="flat").fit(X, y)


def test_clusterwise_round_trip_keeps_likelihood_and_priors():
    X, y = synthetic_features(30, ["A", "B", "C"], n_features=4, seed=2)
    clusters = np.tile([0, 1], 45)
    model = ClusterwiseMahalanobis(["A", "B", "C"], likelihood="gaussian", priors="references").fit(X, y, clusters)
    document = model.to_dict()
    assert (document["likelihood"], document["priors"]) == ("gaussian", "references")
    again = ClusterwiseMahalanobis.from_dict(document)
    np.testing.assert_array_equal(again.predict_proba(X, clusters), model.predict_proba(X, clusters))
    assert not np.allclose(
        again.predict_proba(X, clusters),
        ClusterwiseMahalanobis(["A", "B", "C"]).fit(X, y, clusters).predict_proba(X, clusters),
    )
