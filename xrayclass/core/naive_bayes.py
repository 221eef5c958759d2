"""A weighted naive Bayes classifier on X-ray features, with outlier measures and tracks.

After Tranin et al. (4XMM-DR10 / 2SXPS): the features are grouped into categories
(spectrum, variability, optionally location) and the posterior of class ``c`` is

    P(c | x)  ∝  P(c) * ( prod_t L_t(x | c) ^ alpha_t ) ^ (1 / sum_t alpha_t),

``L_t`` the product of category ``t``'s feature likelihoods and the weights ``alpha_t``
tuned out of fold for a score (macro F1, or the rarest class's F1). The same terms give
an **outlier measure**, ``-log( P(c) * prod_t L_t(x | c) ^ (alpha_t / sum alpha) )``, and
a **probability track**: the class's posterior as the categories are added one by one,
and the category that moved it most ("XB, driven by variability").

Likelihoods are histograms on each feature's training range, smoothed by a Gaussian
kernel reflected at the edges, plus a floor. A value beyond the range gets, for every
class alike, the lowest density any class has inside it: it favours no class but counts
fully as unusual.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy.ndimage import gaussian_filter1d
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import StratifiedKFold
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from xrayclass.constants import NB_SCORES as SCORES
from xrayclass.core.sampling import seeded_subsample

__all__ = [
    "ALPHA_GRID",
    "CHUNK_ROWS",
    "SCORES",
    "TUNE_SAMPLE",
    "NaiveBayesClassifier",
    "f1_per_class",
    "logsumexp_rows",
    "score_codes",
    "score_predictions",
]

#: Weights tried for each category when tuning (every combination, all-zero excluded).
ALPHA_GRID = (0.0, 0.5, 1.0, 2.0, 4.0)
#: Training rows the weights are tuned on at most (a seeded subsample); the paper's
#: catalog has fewer references, so its tuning uses them all.
TUNE_SAMPLE = 50_000
#: Rows scored at once, to bound memory at any catalog size.
CHUNK_ROWS = 65_536


def logsumexp_rows(values: np.ndarray) -> np.ndarray:
    """``scipy.special.logsumexp(values, axis=1, keepdims=True)`` to 1e-14, without its general-case cost."""
    top = values.max(axis=1, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    return np.log(np.exp(values - top).sum(axis=1, keepdims=True)) + top


def _category_index(features: Sequence[str], categories: Mapping[str, Sequence[str]]) -> dict[str, np.ndarray]:
    """Map each category to the column indices of its features, in feature order."""
    features = list(features)
    unknown = sorted({f for members in categories.values() for f in members} - set(features))
    if unknown:
        raise ValueError(f"category features not among the features: {unknown}")
    return {name: np.array([features.index(f) for f in members]) for name, members in categories.items()}


def f1_per_class(true_codes: np.ndarray, predicted_codes: np.ndarray, n_classes: int) -> np.ndarray:
    """F1 of each class from integer class codes (0 where never true nor predicted), by ``bincount``."""
    confusion = np.bincount(true_codes * n_classes + predicted_codes, minlength=n_classes * n_classes).reshape(
        n_classes, n_classes
    )
    hits = np.diag(confusion).astype(float)
    denominator = confusion.sum(axis=0) + confusion.sum(axis=1)
    return np.divide(2 * hits, denominator, out=np.zeros(n_classes), where=denominator > 0)


def score_codes(true_codes: np.ndarray, predicted_codes: np.ndarray, n_classes: int, scoring: str) -> float:
    """Macro F1 over the classes present in ``true_codes``, or the F1 of the rarest of them."""
    f1 = f1_per_class(true_codes, predicted_codes, n_classes)
    counts = np.bincount(true_codes, minlength=n_classes)
    if scoring == "macro_f1":
        return float(f1[counts > 0].mean())
    if scoring == "rarest_f1":
        present = np.flatnonzero(counts)
        return float(f1[present[np.argmin(counts[present])]])
    raise ValueError(f"scoring must be one of {SCORES}, got {scoring!r}")


def score_predictions(
    true: ArrayLike, predicted: ArrayLike, classes: Sequence[str] | np.ndarray, scoring: str
) -> float:
    """:func:`score_codes` for label arrays; a prediction outside ``classes`` is always wrong."""
    index = pd.Index(list(classes))
    true_codes, predicted_codes = index.get_indexer(np.asarray(true)), index.get_indexer(np.asarray(predicted))  # type: ignore[arg-type]
    if (true_codes < 0).any():
        raise ValueError("true labels outside the classes")
    unknown = len(index)  # an extra code that is never a true class
    return score_codes(true_codes, np.where(predicted_codes < 0, unknown, predicted_codes), unknown + 1, scoring)


class NaiveBayesClassifier(ClassifierMixin, BaseEstimator):
    """Naive Bayes with per-category weights tuned for a chosen score.

    Parameters
    ----------
    categories : dict or None
        Category -> column indices, or names with ``feature_names``; default one category ``"all"``.
    bins, smoothing, floor
        Histogram bins per feature, Gaussian kernel width in bins, pseudo-count per bin.
    alpha : dict or None
        Fixed category weights; ``None`` tunes them (``tune``) or gives 1 to all.
    scoring : {"macro_f1", "rarest_f1"}
        What the tuning over ``alpha_grid`` (``n_folds`` folds, at most ``tune_sample`` rows) maximizes.
    priors : {"empirical", "uniform"}
        Class priors: training frequencies or equal.

    Fitted: ``classes_``, ``class_log_prior_``, ``edges_``, ``log_likelihood_`` (class, feature,
    bin; the last bin is beyond the range), ``alpha_``, ``tuning_`` (weights and out-of-fold
    score, best first) and ``equal_weight_score_``.
    """

    def __init__(
        self,
        categories: Mapping[str, Sequence[str]] | None = None,
        feature_names: Sequence[str] | None = None,
        classes: Sequence[str] | None = None,
        bins: int = 24,
        smoothing: float = 1.0,
        floor: float = 0.5,
        alpha: Mapping[str, float] | None = None,
        tune: bool = True,
        scoring: str = "macro_f1",
        alpha_grid: Sequence[float] = ALPHA_GRID,
        n_folds: int = 3,
        priors: str = "empirical",
        tune_sample: int | None = TUNE_SAMPLE,
        random_state: int = 0,
    ) -> None:
        self.categories = categories
        self.feature_names = feature_names
        self.classes = classes
        self.bins = bins
        self.smoothing = smoothing
        self.floor = floor
        self.alpha = alpha
        self.tune = tune
        self.scoring = scoring
        self.alpha_grid = alpha_grid
        self.n_folds = n_folds
        self.priors = priors
        self.tune_sample = tune_sample
        self.random_state = random_state

    # -- fitting ----------------------------------------------------------------------------

    def _resolved_categories(self, n_features: int) -> dict[str, np.ndarray]:
        if self.categories is None:
            return {"all": np.arange(n_features)}
        resolved = {}
        for name, members in self.categories.items():
            members = list(members)
            if members and isinstance(members[0], str):
                if self.feature_names is None:
                    raise ValueError("categories name features: give feature_names")
                resolved.update(_category_index(self.feature_names, {name: members}))
            else:
                resolved[name] = np.asarray(members, dtype=int)
        covered = np.concatenate(list(resolved.values()))
        if len(np.unique(covered)) != len(covered) or covered.max() >= n_features:
            raise ValueError("each feature must belong to at most one category, and exist")
        return resolved

    def _histograms(self, index: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """Log densities (n_classes, n_features, bins + 1) from the rows' bins and class codes."""
        n_classes, n_features = len(self.classes_), index.shape[1]
        log_density = np.empty((n_classes, n_features, self.bins + 1))
        widths = np.diff(self.edges_, axis=1)
        slots = self.bins + 1
        # Every class's counts of a feature in one pass: (class, bin) as one index.
        offsets = codes.astype(np.intp) * slots
        for j in range(n_features):
            binned = np.bincount(offsets + index[:, j], minlength=n_classes * slots).reshape(n_classes, slots)
            counts = binned[:, : self.bins].astype(float)
            if self.smoothing > 0:
                counts = gaussian_filter1d(counts, self.smoothing, axis=1, mode="reflect")
            counts += self.floor
            total = counts.sum(axis=1, keepdims=True)
            log_density[:, j, : self.bins] = np.log(counts / total / widths[j])
        # One out-of-range density per feature, shared by the classes: each class's own
        # floor would favour the rare classes by itself (issue 13).
        inside = log_density[:, :, : self.bins]
        lowest = np.where(np.isfinite(inside), inside, np.inf).min(axis=(0, 2))
        log_density[:, :, self.bins] = np.where(np.isfinite(lowest), lowest, 0.0)[None, :]
        return log_density

    def _bin_index_of(self, values: np.ndarray, j: int) -> np.ndarray:
        """``searchsorted`` on feature ``j``'s inner edges (NaN in the last bin), found arithmetically.

        The bins are equal, so ``(value - low) / width`` is the bin up to rounding, which one
        comparison with each neighbouring edge corrects (a test checks it against ``searchsorted``).
        """
        edges = self.edges_[j]
        low, high, last = edges[0], edges[-1], self.bins - 1
        with np.errstate(invalid="ignore"):
            guess = (values - low) * (self.bins / (high - low))
            index = np.clip(np.nan_to_num(guess, nan=last), 0, last).astype(np.intp)
            index -= (values < edges[index]) & (index > 0)
            index += (values >= edges[index + 1]) & (index < last)
            outside = (values < low) | (values > high)
        return np.where(outside, self.bins, index)

    def _bin_index(self, X: np.ndarray) -> np.ndarray:
        """Bin of each value, ``bins`` beyond the training range, in the smallest integer type that holds it."""
        index = np.empty(X.shape, dtype=np.min_scalar_type(self.bins))
        for j in range(X.shape[1]):
            index[:, j] = self._bin_index_of(X[:, j], j)
        return index

    def fit(self, X: np.ndarray, y: np.ndarray) -> NaiveBayesClassifier:
        """Learn priors, per-class histograms and (optionally) the category weights."""
        X, y = validate_data(self, X, y, dtype="float64")
        check_classification_targets(y)
        self.classes_ = np.unique(y) if self.classes is None else np.asarray(list(self.classes))
        codes = pd.Index(self.classes_).get_indexer(y)
        unknown = sorted(set(y[codes < 0].tolist()))
        if unknown:
            raise ValueError(f"labels {unknown} are not among classes {self.classes_.tolist()}")
        if self.priors not in ("empirical", "uniform"):
            raise ValueError("priors must be 'empirical' or 'uniform'")
        self.categories_ = self._resolved_categories(X.shape[1])
        low, high = X.min(axis=0), X.max(axis=0)
        high = np.where(high > low, high, low + 1.0)
        self.edges_ = np.linspace(low, high, self.bins + 1).T
        counts = np.bincount(codes, minlength=len(self.classes_)).astype(float)
        prior = counts / counts.sum() if self.priors == "empirical" else np.full(len(counts), 1 / len(counts))
        with np.errstate(divide="ignore"):
            self.class_log_prior_ = np.log(prior)
        index = self._bin_index(X)
        self.log_likelihood_ = self._histograms(index, codes)
        self.tuning_: list[tuple[dict[str, float], float]] = []
        self.equal_weight_score_ = np.nan
        if self.alpha is not None:
            self.alpha_ = {name: float(self.alpha[name]) for name in self.categories_}
        elif self.tune and len(self.categories_) > 1 and len(X) >= self.n_folds:
            # Fewer rows than folds cannot be split: the weights stay equal, untuned.
            rows = seeded_subsample(len(X), self.tune_sample, self.random_state)
            self.alpha_ = self._tune(index[rows], codes[rows], y[rows])
        else:
            self.alpha_ = dict.fromkeys(self.categories_, 1.0)
        return self

    def _tune(self, index: np.ndarray, codes: np.ndarray, y: np.ndarray) -> dict[str, float]:
        """Out-of-fold category log-likelihoods of the tuning rows, then the grid weights that score best."""
        out_of_fold = np.empty((len(index), len(self.categories_), len(self.classes_)))
        present = [label for label in self.classes_ if (y == label).sum() >= self.n_folds]
        folds = StratifiedKFold(self.n_folds, shuffle=True, random_state=self.random_state)
        stratify = np.where(np.isin(y, present), y, present[0] if present else y[0])
        fitted, edges = self.log_likelihood_, self.edges_
        for train, held_out in folds.split(index, stratify):
            self.log_likelihood_ = self._histograms(index[train], codes[train])
            out_of_fold[held_out] = self._bin_log_likelihoods(index[held_out])
        self.log_likelihood_, self.edges_ = fitted, edges
        names = list(self.categories_)
        grid = [
            dict(zip(names, weights, strict=False))
            for weights in itertools.product(self.alpha_grid, repeat=len(names))
            if sum(weights) > 0
        ]
        equal = dict.fromkeys(names, 1.0)
        # (1, 1, 1) and (2, 2, 2) predict the same: each normalization is scored once.
        weightings = [
            (alpha, tuple(self._weights(alpha).tolist())) for alpha in [equal, *(a for a in grid if a != equal)]
        ]
        distinct: dict[tuple[float, ...], dict[str, float]] = {}
        for alpha, key in weightings:
            distinct.setdefault(key, alpha)

        def score(alpha: dict[str, float]) -> float:
            predicted_codes = np.argmax(self._combine(out_of_fold, alpha), axis=1)
            return score_codes(codes, predicted_codes, len(self.classes_), self.scoring)

        by_weights = {key: score(alpha) for key, alpha in distinct.items()}
        scored = [(alpha, by_weights[key]) for alpha, key in weightings]
        self.equal_weight_score_ = scored[0][1]
        # Best first; among equal scores the earlier (equal weights first) wins.
        order = sorted(range(len(scored)), key=lambda i: (-scored[i][1], i))
        self.tuning_ = [scored[i] for i in order]
        return dict(self.tuning_[0][0])

    # -- scoring ----------------------------------------------------------------------------

    def _category_log_likelihoods(self, X: np.ndarray) -> np.ndarray:
        """(n, n_categories, n_classes): summed log likelihood of each category's features."""
        return self._bin_log_likelihoods(self._bin_index(X))

    def _bin_log_likelihoods(self, index: np.ndarray) -> np.ndarray:
        """:meth:`_category_log_likelihoods` of rows given by their bins (:meth:`_bin_index`)."""
        # Summed a category at a time into a contiguous (rows, classes) block, gathered by
        # bin from each feature's (bins, classes) table.
        by_bin = np.ascontiguousarray(self.log_likelihood_.transpose(1, 2, 0))
        result = np.zeros((len(self.categories_), len(index), len(self.classes_)))
        for t, columns in enumerate(self.categories_.values()):
            for j in columns:
                result[t] += by_bin[j].take(index[:, j], axis=0)
        return result.transpose(1, 0, 2)

    def _weights(self, alpha: Mapping[str, float]) -> np.ndarray:
        weights = np.array([alpha[name] for name in self.categories_], dtype=float)
        return weights / weights.sum()

    def _combine(self, category_ll: np.ndarray, alpha: Mapping[str, float], upto: int | None = None) -> np.ndarray:
        """Unnormalized log posterior: log prior + sum_t (alpha_t / sum alpha) LL_t (first ``upto`` categories)."""
        weights = self._weights(alpha)
        if upto is not None:
            weights = np.where(np.arange(len(weights)) < upto, weights, 0.0)
        return self.class_log_prior_ + np.einsum("ntk,t->nk", category_ll, weights)

    def _scores(self, X: np.ndarray) -> np.ndarray:
        check_is_fitted(self, "log_likelihood_")
        X = validate_data(self, X, dtype="float64", reset=False)
        return (
            np.concatenate(
                [
                    self._category_log_likelihoods(X[start : start + CHUNK_ROWS])
                    for start in range(0, len(X), CHUNK_ROWS)
                ]
            )
            if len(X)
            else np.zeros((0, len(self.categories_), len(self.classes_)))
        )

    def predict_log_proba(self, X: np.ndarray) -> np.ndarray:
        joint = self._combine(self._scores(X), self.alpha_)
        return joint - logsumexp_rows(joint)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Posterior probabilities; columns follow ``classes_``."""
        return np.exp(self.predict_log_proba(X))

    def predict(self, X: np.ndarray) -> np.ndarray:
        """The most probable class (the first in ``classes_`` on a tie)."""
        check_is_fitted(self, "log_likelihood_")
        return self.classes_[np.argmax(self.predict_log_proba(X), axis=1)]

    def explain(self, X: np.ndarray, assigned: ArrayLike | None = None) -> dict[str, np.ndarray]:
        """Outlier measure and probability track of each row for its ``assigned`` class.

        ``assigned`` defaults to this classifier's prediction; a label outside ``classes_``
        gives NaN. Returns ``outlier_measure``, ``track`` (n, 1 + n_categories: the class's
        posterior after the prior, then each category in turn) and ``driven_by`` (the
        category favouring the class most over the best other one).
        """
        check_is_fitted(self, "log_likelihood_")
        columns = None if assigned is None else pd.Index(self.classes_).get_indexer(np.asarray(assigned))
        explained = self._explain(X, columns)
        names = np.array([*self.categories_, ""], dtype=object)
        # -1 (no class to explain) takes the last name, "".
        return {
            "outlier_measure": explained["outlier_measure"],
            "track": explained["track"],
            "driven_by": names[explained["driven_by_category"]],
        }

    def explain_columns(self, X: np.ndarray, columns: np.ndarray) -> dict[str, np.ndarray]:
        """:meth:`explain` for the classes at positions ``columns`` (-1: none), categories as positions."""
        return self._explain(X, np.asarray(columns))

    def _explain(self, X: np.ndarray, columns: np.ndarray | None) -> dict[str, np.ndarray]:
        check_is_fitted(self, "log_likelihood_")
        X = validate_data(self, X, dtype="float64", reset=False)
        # Each row's result depends on that row alone: in chunks, to bound memory.
        parts = [
            self._explain_rows(
                X[start : start + CHUNK_ROWS], None if columns is None else columns[start : start + CHUNK_ROWS]
            )
            for start in range(0, len(X), CHUNK_ROWS)
        ]
        if len(parts) == 1:
            return parts[0]
        if not parts:
            return self._explain_rows(X, columns)
        return {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}

    def _explain_rows(self, X: np.ndarray, columns: np.ndarray | None) -> dict[str, np.ndarray]:
        """:meth:`explain_columns` of validated rows ``X``, all at once (default: the predicted classes)."""
        category_ll = self._category_log_likelihoods(X)
        joint = self._combine(category_ll, self.alpha_)
        if columns is None:
            column = np.argmax(joint, axis=1)
            known = np.ones(len(X), dtype=bool)
        else:
            known = columns >= 0
            column = np.where(known, columns, 0)
        rows = np.arange(len(X))
        outlier = np.where(known, -joint[rows, column], np.nan)

        steps = []
        for upto in range(len(self.categories_) + 1):
            partial = self._combine(category_ll, self.alpha_, upto)
            steps.append(np.exp(partial[rows, column] - logsumexp_rows(partial)[:, 0]))
        track = np.where(known[:, None], np.stack(steps, axis=1), np.nan)

        rival_joint = joint.copy()
        rival_joint[rows, column] = -np.inf
        rival = np.argmax(rival_joint, axis=1)
        weights = self._weights(self.alpha_)
        evidence = weights[None, :] * (category_ll[rows, :, column] - category_ll[rows, :, rival])
        driven_by = np.where(known, np.argmax(evidence, axis=1), -1)
        return {"outlier_measure": outlier, "track": track, "driven_by_category": driven_by}

    # -- artifact ---------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        check_is_fitted(self, "log_likelihood_")
        return {
            "classes": self.classes_.tolist(),
            "categories": {name: columns.tolist() for name, columns in self.categories_.items()},
            "feature_names": list(self.feature_names) if self.feature_names is not None else None,
            "bins": self.bins,
            "smoothing": self.smoothing,
            "floor": self.floor,
            "scoring": self.scoring,
            "priors": self.priors,
            # A class without training rows has prior 0 (log -inf): JSON null.
            "class_log_prior": [None if np.isinf(v) else float(v) for v in self.class_log_prior_],
            "edges": self.edges_.tolist(),
            "log_likelihood": self.log_likelihood_.tolist(),
            "alpha": self.alpha_,
            "equal_weight_score": None if np.isnan(self.equal_weight_score_) else self.equal_weight_score_,
            "tuned_score": self.tuning_[0][1] if self.tuning_ else None,
        }

    @classmethod
    def from_dict(cls, document: Mapping[str, Any]) -> NaiveBayesClassifier:
        model = cls(
            categories=document["categories"],
            feature_names=document["feature_names"],
            classes=document["classes"],
            bins=document["bins"],
            smoothing=document["smoothing"],
            floor=document["floor"],
            alpha=document["alpha"],
            scoring=document["scoring"],
            priors=document["priors"],
        )
        model.classes_ = np.asarray(document["classes"])
        model.categories_ = {name: np.asarray(columns, dtype=int) for name, columns in document["categories"].items()}
        model.class_log_prior_ = np.array([-np.inf if v is None else v for v in document["class_log_prior"]])
        model.edges_ = np.asarray(document["edges"], dtype=float)
        model.log_likelihood_ = np.asarray(document["log_likelihood"], dtype=float)
        model.alpha_ = {name: float(value) for name, value in document["alpha"].items()}
        model.equal_weight_score_ = np.nan if document["equal_weight_score"] is None else document["equal_weight_score"]
        model.tuning_ = [] if document["tuned_score"] is None else [(model.alpha_, document["tuned_score"])]
        model.n_features_in_ = model.edges_.shape[0]
        return model
