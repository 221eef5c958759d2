"""Calibration of class probabilities: scores, reliability curves and temperature scaling.

The paper's softmin probabilities are not calibrated (issue 13). This module measures
that (Brier score, expected calibration error of the top class, reliability curve) and
corrects it by **temperature scaling**, ``p_k^(1/T) / sum_j p_j^(1/T)``, fitted on
out-of-fold probabilities. A temperature keeps the ranking of the classes and keeps
zeros at zero.
"""

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import scipy.optimize
from numpy.typing import ArrayLike
from sklearn.model_selection import StratifiedGroupKFold

from xrayclass.exceptions import InputError

__all__ = [
    "LOG_TEMPERATURE_BOUNDS",
    "N_BINS",
    "apply_temperature",
    "brier_score",
    "expected_calibration_error",
    "fit_temperature",
    "out_of_fold_probabilities",
    "reliability_curve",
    "softmax_log",
    "temperature_out_of_fold",
]

#: Bins of the reliability curve and of the ECE (equal width on [0, 1]).
N_BINS = 10
#: Temperatures searched, as log T in this interval.
LOG_TEMPERATURE_BOUNDS = (-4.0, 4.0)


def _true_columns(probabilities: np.ndarray, true_index: np.ndarray) -> np.ndarray:
    true_index = np.asarray(true_index)
    if (
        true_index.shape != (len(probabilities),)
        or (true_index < 0).any()
        or (true_index >= probabilities.shape[1]).any()
    ):
        raise ValueError("true_index must give one class column per row")
    return true_index


def brier_score(probabilities: np.ndarray, true_index: np.ndarray) -> float:
    """Multi-class Brier score: mean over rows of ``sum_k (p_k - [k is true])^2`` (0 is perfect, 2 the worst)."""
    probabilities = np.asarray(probabilities, dtype="float64")
    true_index = _true_columns(probabilities, true_index)
    if not len(probabilities):
        return float("nan")
    onehot = np.zeros_like(probabilities)
    onehot[np.arange(len(probabilities)), true_index] = 1.0
    return float(np.mean(np.sum((probabilities - onehot) ** 2, axis=1)))


def reliability_curve(probabilities: np.ndarray, true_index: np.ndarray, n_bins: int = N_BINS) -> dict:
    """Top-class ``confidence`` against ``accuracy`` and ``count`` in equal-width bins (NaN where empty).

    A row with all-zero probabilities (no class scored) counts with confidence 0 and as wrong.
    """
    probabilities = np.asarray(probabilities, dtype="float64")
    true_index = _true_columns(probabilities, true_index)
    confidence = probabilities.max(axis=1) if len(probabilities) else np.zeros(0)
    correct = (
        (np.argmax(probabilities, axis=1) == true_index) & (confidence > 0)
        if len(probabilities)
        else np.zeros(0, dtype=bool)
    )
    bins = np.minimum((confidence * n_bins).astype(int), n_bins - 1)
    count = np.bincount(bins, minlength=n_bins).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_confidence = np.bincount(bins, weights=confidence, minlength=n_bins) / count
        accuracy = np.bincount(bins, weights=correct.astype(float), minlength=n_bins) / count
    return {"confidence": mean_confidence, "accuracy": accuracy, "count": count}


def expected_calibration_error(probabilities: np.ndarray, true_index: np.ndarray, n_bins: int = N_BINS) -> float:
    """ECE of the top class: ``sum_b (n_b / n) |accuracy_b - confidence_b|`` over equal-width bins."""
    curve = reliability_curve(probabilities, true_index, n_bins)
    total = curve["count"].sum()
    if not total:
        return float("nan")
    filled = curve["count"] > 0
    gaps = np.abs(curve["accuracy"][filled] - curve["confidence"][filled])
    return float(np.sum(curve["count"][filled] * gaps) / total)


def softmax_log(log_weights: ArrayLike) -> np.ndarray:
    """Probabilities ``exp(l) / sum exp(l)`` of each row of log-weights; all zeros without a finite one."""
    weights = np.array(log_weights, dtype="float64")
    top = weights.max(axis=1, keepdims=True)
    top[~np.isfinite(top)] = 0.0
    np.subtract(weights, top, out=weights)
    np.exp(weights, out=weights)
    totals = weights.sum(axis=1, keepdims=True)
    return np.divide(weights, totals, out=np.zeros_like(weights), where=totals > 0)


def apply_temperature(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """``p^(1/T)`` renormalized per row; zeros stay zero, all-zero rows stay all zero."""
    with np.errstate(divide="ignore"):
        return softmax_log(np.log(np.asarray(probabilities, dtype="float64")) / float(temperature))


def fit_temperature(probabilities: np.ndarray, true_index: np.ndarray, objective: str = "brier") -> float:
    """The temperature minimizing the Brier score (default) or the negative log-likelihood; 1.0 without usable rows.

    A row whose true class has probability 0 (too few references in its cluster) has an
    infinite NLL at every temperature: ``"nll"`` leaves it out and then flattens the
    other rows too much, while the Brier score counts every row.
    """
    probabilities = np.asarray(probabilities, dtype="float64")
    true_index = _true_columns(probabilities, true_index)
    if objective not in ("brier", "nll"):
        raise ValueError(f"objective must be 'brier' or 'nll', got {objective!r}")
    usable = (
        probabilities.max(axis=1) > 0
        if objective == "brier"
        else probabilities[np.arange(len(probabilities)), true_index] > 0
    )
    if not usable.any():
        return 1.0
    kept, truth = probabilities[usable], true_index[usable]
    with np.errstate(divide="ignore"):
        logs = np.log(kept)
    rows = np.arange(len(logs))

    def loss(log_temperature: float) -> float:
        if objective == "brier":
            return brier_score(apply_temperature(kept, np.exp(log_temperature)), truth)
        scaled = logs / np.exp(log_temperature)
        top = scaled.max(axis=1, keepdims=True)
        normalizer = np.log(np.exp(scaled - top).sum(axis=1)) + top[:, 0]
        return float(np.mean(normalizer - scaled[rows, truth]))

    result = scipy.optimize.minimize_scalar(
        loss, bounds=LOG_TEMPERATURE_BOUNDS, method="bounded", options={"xatol": 1e-6}
    )
    return float(np.exp(result.x))


def out_of_fold_probabilities(
    fit_predict: Callable[[np.ndarray, np.ndarray], np.ndarray],
    labels: np.ndarray,
    groups: np.ndarray,
    n_folds: int = 3,
    seed: int = 0,
) -> np.ndarray:
    """Probabilities of every row by ``fit_predict(train_index, test_index)`` fitted without its group (source).

    The folds are stratified by label as far as the groups allow; :class:`InputError`
    when the rows cannot make ``n_folds`` of them.
    """
    labels = np.asarray(labels)
    n_groups = len(pd.unique(pd.Series(np.asarray(groups))))
    if n_groups < n_folds:
        raise InputError(
            f"cannot calibrate: the references come from {n_groups} source{'s' if n_groups != 1 else ''}, "
            f"and the {n_folds} calibration folds keep each source whole (at least {n_folds} sources are needed)"
        )
    if not len(labels) or pd.Series(labels).value_counts().iloc[0] < n_folds:
        raise InputError(
            f"cannot calibrate: no class has {n_folds} references, one for each of the {n_folds} calibration folds"
        )
    folds = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        # Rare classes with fewer rows than folds are expected; they go where they can.
        warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
        splits = list(folds.split(np.zeros(len(labels)), labels, groups))
    result: np.ndarray | None = None
    for train, test in splits:
        part = fit_predict(train, test)
        if result is None:
            result = np.zeros((len(labels), part.shape[1]))
        result[test] = part
    assert result is not None, "no fold"
    return result


def temperature_out_of_fold(
    fit_predict: Callable[[np.ndarray, np.ndarray], np.ndarray],
    labels: np.ndarray,
    groups: np.ndarray,
    classes: Sequence[str],
    n_folds: int = 3,
    seed: int = 0,
) -> dict[str, Any]:
    """Fit a temperature on out-of-fold probabilities; the fit and its effect as plain numbers."""
    oof = out_of_fold_probabilities(fit_predict, labels, groups, n_folds, seed)
    true_index = pd.Index(list(classes)).get_indexer(np.asarray(labels))  # type: ignore[arg-type]
    temperature = fit_temperature(oof, true_index)
    calibrated = apply_temperature(oof, temperature)

    def plain(value: float) -> float | None:  # JSON has no NaN: an undefined score is null
        return None if not np.isfinite(value) else float(value)

    return {
        "method": "temperature",
        "temperature": temperature,
        "n_folds": n_folds,
        "seed": seed,
        "n_rows": len(labels),
        "ece_before": plain(expected_calibration_error(oof, true_index)),
        "ece_after": plain(expected_calibration_error(calibrated, true_index)),
        "brier_before": plain(brier_score(oof, true_index)),
        "brier_after": plain(brier_score(calibrated, true_index)),
    }
