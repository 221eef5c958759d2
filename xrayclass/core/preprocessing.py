"""Log and MinMax preprocessing of the 12 features."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from xrayclass.constants import FEATURES, LOG_FEATURES, MINMAX_FEATURES

__all__ = [
    "LogMinMaxScaler",
    "ScalerState",
]


@dataclass(frozen=True)
class ScalerState:
    """What :meth:`LogMinMaxScaler.fit` learns from rows, mergeable over parts of a table.

    The log shift needs each log feature's smallest non-zero value, and the range of a
    rescaled feature after the log is that of its raw values (the log is increasing),
    so the per-feature minimum, maximum and smallest non-zero value of each part,
    merged, are those of the whole table: :meth:`LogMinMaxScaler.fit_state` of the
    merged state is ``fit`` of the concatenated parts, whatever the order of the parts.
    """

    #: Smallest non-zero value of each log feature (``inf`` where every value seen is zero).
    min_nonzero: dict[str, float] = field(default_factory=dict)
    #: Smallest and largest raw value of each rescaled feature.
    low: dict[str, float] = field(default_factory=dict)
    high: dict[str, float] = field(default_factory=dict)
    n_rows: int = 0

    def merge(self, other: ScalerState) -> ScalerState:
        """The state of both parts' rows together."""

        def combine(a: dict[str, float], b: dict[str, float], pick: Any) -> dict[str, float]:
            return {k: float(pick(a.get(k, b.get(k)), b.get(k, a.get(k)))) for k in {**a, **b}}

        return ScalerState(
            combine(self.min_nonzero, other.min_nonzero, min),
            combine(self.low, other.low, min),
            combine(self.high, other.high, max),
            self.n_rows + other.n_rows,
        )

    def smallest_nonzero(self) -> pd.DataFrame:
        """One row: each log feature's smallest non-zero value, 0 where it is zero everywhere."""
        return pd.DataFrame([{k: (v if np.isfinite(v) else 0.0) for k, v in self.min_nonzero.items()}])


class LogMinMaxScaler(TransformerMixin, BaseEstimator):
    """The published preprocessing: log where the tail is heavy, then MinMax to [0, 1].

    For a log feature the transform is ``log(x + shift)`` with ``shift`` one tenth of
    the smallest non-zero value seen in ``fit`` (so that exact zeros, e.g. a constant
    light curve, stay finite and at the low end), then MinMax to [0, 1]. MinMax
    features are only rescaled. The other features (hardness ratios, variability
    probabilities) pass through unchanged.

    Parameters
    ----------
    features : sequence of str
        Names of the columns of ``X``, in order.
    log_features, minmax_features : sequence of str
        Which of ``features`` get log + MinMax, and MinMax only.

    Attributes
    ----------
    shift_ : dict
        The additive shift of each log feature.
    data_min_, data_max_ : dict
        Range, after the log, of each rescaled feature in the training data.
    """

    def __init__(
        self,
        features: Sequence[str] = FEATURES,
        log_features: Sequence[str] = LOG_FEATURES,
        minmax_features: Sequence[str] = MINMAX_FEATURES,
        log_floor: float | None = None,
    ) -> None:
        self.features = features
        self.log_features = log_features
        self.minmax_features = minmax_features
        self.log_floor = log_floor

    def _columns(self) -> list[str]:
        features = list(self.features)
        unknown = [f for f in (*self.log_features, *self.minmax_features) if f not in features]
        if unknown:
            raise ValueError(f"features to rescale are not among the features: {unknown}")
        return features

    def _check_X(self, X: ArrayLike) -> np.ndarray:
        X = np.asarray(X, dtype="float64")
        if X.ndim != 2 or X.shape[1] != len(self.features):
            raise ValueError(
                f"expected a 2-D array with {len(self.features)} columns "
                f"({', '.join(self.features)}), got shape {X.shape}"
            )
        if not np.isfinite(X).all():
            raise ValueError("X has missing or non-finite values; drop those rows first")
        return X

    def _training_columns(self, X: ArrayLike | pd.DataFrame) -> dict[str, np.ndarray]:
        if not isinstance(X, pd.DataFrame):
            checked = self._check_X(X)
            return {name: checked[:, j] for j, name in enumerate(self._columns())}
        missing = [name for name in self._columns() if name not in X.columns]
        if missing:
            raise ValueError(f"X has no columns {', '.join(missing)}")
        columns = {name: X[name].to_numpy(dtype="float64") for name in self._columns()}
        if not all(np.isfinite(column).all() for column in columns.values()):
            raise ValueError("X has missing or non-finite values; drop those rows first")
        return columns

    def summarize(self, X: ArrayLike | pd.DataFrame) -> ScalerState:
        """The :class:`ScalerState` of training rows ``X`` (as for :meth:`fit`); merge those of parts."""
        columns = self._training_columns(X)
        minima = {}
        for name in self.log_features:
            column = columns[name]
            nonzero = column[column != 0]
            minima[name] = float(nonzero.min()) if nonzero.size else np.inf
        rescaled = [columns[name] for name in (*self.log_features, *self.minmax_features)]
        return ScalerState(
            minima,
            {name: float(c.min()) if c.size else np.inf for name, c in zip(self._rescaled(), rescaled, strict=True)},
            {name: float(c.max()) if c.size else -np.inf for name, c in zip(self._rescaled(), rescaled, strict=True)},
            len(rescaled[0]) if rescaled else 0,
        )

    def _rescaled(self) -> list[str]:
        return [*self.log_features, *self.minmax_features]

    def fit(self, X: ArrayLike | pd.DataFrame, y: object = None) -> LogMinMaxScaler:
        """Learn the log shifts and the ranges from training features ``X``.

        ``X`` is a 2-D array whose columns are ``features``, or a DataFrame with those
        columns (read a column at a time: no 2-D copy of a large table).
        """
        return self.fit_state(self.summarize(X))

    def fit_state(self, state: ScalerState) -> LogMinMaxScaler:
        """Set the fitted constants from ``state`` (:meth:`summarize` of the training rows, merged).

        The log-shift rule: one tenth of the smallest non-zero value, at least ``log_floor``.
        """
        if self.log_floor is not None and not (np.isfinite(self.log_floor) and self.log_floor > 0):
            raise ValueError(f"log_floor must be a positive number, got {self.log_floor!r}")
        self.shift_ = {}
        for name in self.log_features:
            if not np.isfinite(state.min_nonzero[name]):
                raise ValueError(f"log feature {name!r} is zero everywhere; no shift can be defined")
            self.shift_[name] = float(state.min_nonzero[name] / 10)
            if self.log_floor is not None:
                self.shift_[name] = max(self.shift_[name], float(self.log_floor))
        self.data_min_, self.data_max_ = {}, {}
        for name in self._rescaled():
            # The range after the log is the log of the raw range's ends (the log increases).
            low, high = self._pre_scale(np.array([state.low[name], state.high[name]]), name)
            self.data_min_[name], self.data_max_[name] = float(low), float(high)
        self.n_features_in_ = len(self._columns())
        return self

    def _pre_scale(self, column: np.ndarray, name: str) -> np.ndarray:
        if name in self.log_features:
            with np.errstate(invalid="ignore", divide="ignore"):
                return np.log(column + self.shift_[name])
        return column

    def transform(self, X: ArrayLike) -> np.ndarray:
        """Return the preprocessed copy of ``X``."""
        check_is_fitted(self, "shift_")
        features = self._columns()
        X = self._check_X(X).copy()
        for name in (*self.log_features, *self.minmax_features):
            j = features.index(name)
            low, high = self.data_min_[name], self.data_max_[name]
            # scikit-learn's MinMaxScaler arithmetic (x * scale + offset), so that the
            # values are bit-for-bit those of the published pipeline.
            scale = 1.0 / (high - low) if high > low else 1.0
            X[:, j] = self._pre_scale(X[:, j], name) * scale + (-low * scale)
        return X

    def out_of_range(self, X: ArrayLike) -> np.ndarray:
        """Flag values the training data did not cover.

        Returns a boolean array shaped like ``X``: True where a log feature is at or
        below ``-shift`` (its log is undefined) or where a rescaled value falls
        outside [0, 1], i.e. beyond the training minimum or maximum.
        """
        check_is_fitted(self, "shift_")
        scaled = self.transform(X)
        flags = np.zeros(scaled.shape, dtype=bool)
        features = self._columns()
        for name in (*self.log_features, *self.minmax_features):
            j = features.index(name)
            column = scaled[:, j]
            flags[:, j] = ~np.isfinite(column) | (column < 0) | (column > 1)
        return flags

    def to_dict(self) -> dict[str, Any]:
        """The fitted constants as plain JSON-ready values."""
        check_is_fitted(self, "shift_")
        return {
            "features": list(self.features),
            "log_features": list(self.log_features),
            "minmax_features": list(self.minmax_features),
            "log_floor": self.log_floor,
            "log_shift": dict(self.shift_),
            "data_min": dict(self.data_min_),
            "data_max": dict(self.data_max_),
        }

    @classmethod
    def from_dict(cls, document: Mapping[str, Any]) -> LogMinMaxScaler:
        """Rebuild a fitted scaler from :meth:`to_dict` output."""
        scaler = cls(
            features=tuple(document["features"]),
            log_features=tuple(document["log_features"]),
            minmax_features=tuple(document["minmax_features"]),
            log_floor=document.get("log_floor"),  # absent before issue 13: the paper's rule
        )
        scaler.shift_ = {k: float(v) for k, v in document["log_shift"].items()}
        scaler.data_min_ = {k: float(v) for k, v in document["data_min"].items()}
        scaler.data_max_ = {k: float(v) for k, v in document["data_max"].items()}
        scaler.n_features_in_ = len(scaler.features)
        return scaler
