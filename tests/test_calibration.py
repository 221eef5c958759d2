"""Calibration scores, temperature scaling, and its use in stage 3 and classify_source."""

import json

import numpy as np
import pytest
from sklearn.metrics import brier_score_loss

from xrayclass.core.calibration import (
    apply_temperature,
    brier_score,
    expected_calibration_error,
    fit_temperature,
    reliability_curve,
)
from xrayclass.io.artifacts import read_classifier_model


def test_brier_score_is_twice_scikit_learns_on_two_classes():
    rng = np.random.default_rng(0)
    p = rng.uniform(size=200)
    truth = rng.integers(0, 2, size=200)
    probabilities = np.column_stack([1 - p, p])
    # The multi-class form sums both columns' squared errors: twice the binary score.
    assert brier_score(probabilities, truth) == pytest.approx(2 * brier_score_loss(truth, p), rel=1e-12)


def test_expected_calibration_error_hand_computed():
    probabilities = np.array([[0.95, 0.05], [0.95, 0.05], [0.55, 0.45], [0.3, 0.7]])
    truth = np.array([0, 1, 0, 1])
    curve = reliability_curve(probabilities, truth, n_bins=10)
    assert curve["count"][9] == 2 and curve["accuracy"][9] == 0.5 and curve["confidence"][9] == pytest.approx(0.95)
    # Bins: 0.95 (2 rows, accuracy 1/2), 0.55 (1 row, right), 0.7 (1 row, right).
    expected = (2 * abs(0.5 - 0.95) + abs(1 - 0.55) + abs(1 - 0.7)) / 4
    assert expected_calibration_error(probabilities, truth, n_bins=10) == pytest.approx(expected)


def test_temperature_keeps_ranking_and_zeros():
    probabilities = np.array([[0.7, 0.2, 0.1, 0.0], [0.0, 0.0, 0.0, 0.0], [0.25, 0.25, 0.5, 0.0]])
    hotter = apply_temperature(probabilities, 3.0)
    np.testing.assert_array_equal(np.argmax(hotter[[0, 2]], axis=1), [0, 2])
    assert hotter[0, 3] == 0 and (hotter[1] == 0).all()
    np.testing.assert_allclose(hotter[[0, 2]].sum(axis=1), 1.0)
    np.testing.assert_allclose(apply_temperature(probabilities, 1.0), probabilities, atol=1e-15)
    assert hotter[0, 0] < probabilities[0, 0]  # flatter


def test_fitted_temperature_undoes_a_known_over_confidence():
    # SYNTHETIC: true class probabilities softmax(z); reported ones softmax(3 z) (over-confident).
    rng = np.random.default_rng(1)
    z = rng.normal(size=(20_000, 4))
    true_p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    truth = (rng.uniform(size=(len(z), 1)) > np.cumsum(true_p, axis=1)).sum(axis=1)
    reported = np.exp(3 * z) / np.exp(3 * z).sum(axis=1, keepdims=True)
    temperature = fit_temperature(reported, truth)
    assert temperature == pytest.approx(3.0, rel=0.05)
    assert fit_temperature(reported, truth, objective="nll") == pytest.approx(3.0, rel=0.05)
    calibrated = apply_temperature(reported, temperature)
    assert expected_calibration_error(calibrated, truth) < 0.02 < expected_calibration_error(reported, truth)
    assert brier_score(calibrated, truth) < brier_score(reported, truth)


def test_stage3_calibration_is_stored_applied_and_reloaded(crossmatch_sample, tmp_path):
    from xrayclass.constants import CLASSES
    from xrayclass.io.tables import InputError, read_table
    from xrayclass.stages.classification import ClassificationConfig, run_classification

    table = read_table(crossmatch_sample)
    plain, _ = run_classification(table, ClassificationConfig(explain=False))
    result, model = run_classification(table, ClassificationConfig(explain=False, calibrate=True))
    calibration = model.to_dict()["calibration"]
    assert calibration["for_method"] == "mahalanobis" and calibration["temperature"] > 0
    expected = apply_temperature(plain[list(CLASSES)].to_numpy(), calibration["temperature"])
    np.testing.assert_allclose(result[list(CLASSES)].to_numpy(), expected, rtol=1e-12, atol=1e-15)
    assert (result["main_type"] == plain["main_type"]).all()  # a temperature keeps the ranking
    path = tmp_path / "classifier.json"
    path.write_text(json.dumps(model.to_dict()))
    loaded = read_classifier_model(path)
    np.testing.assert_array_equal(
        loaded.predict_proba(result, result["cluster"].to_numpy(), calibrate=True), result[list(CLASSES)].to_numpy()
    )
    _, uncalibrated = run_classification(table, ClassificationConfig(explain=False))
    with pytest.raises(InputError, match="--calibrate"):
        uncalibrated.classify(result, result["cluster"].to_numpy(), calibrate=True)
