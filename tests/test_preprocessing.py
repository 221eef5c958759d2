import numpy as np
import pytest
from sklearn.preprocessing import MinMaxScaler

from xrayclass.constants import FEATURES, LOG_FEATURES
from xrayclass.core.preprocessing import LogMinMaxScaler


def small_scaler():
    return LogMinMaxScaler(features=("a", "b", "c"), log_features=("a",), minmax_features=("b",))


def test_log_shift_and_minmax_hand_computed():
    X = np.array([[0.0, 1.0, -0.5], [0.2, 3.0, 0.0], [1.0, 2.0, 0.5]])
    scaler = small_scaler().fit(X)
    # Smallest non-zero of column a is 0.2: shift 0.02.
    assert scaler.shift_["a"] == pytest.approx(0.02)
    logs = np.log(np.array([0.0, 0.2, 1.0]) + 0.02)
    expected_a = (logs - logs.min()) / (logs.max() - logs.min())
    out = scaler.transform(X)
    np.testing.assert_allclose(out[:, 0], expected_a, rtol=1e-14)
    np.testing.assert_allclose(out[:, 1], [0.0, 1.0, 0.5])
    np.testing.assert_array_equal(out[:, 2], X[:, 2])  # passes through untouched


def test_matches_published_lognorm_bit_for_bit():
    """Same arithmetic as the published code: log(x + min_nonzero/10), then sklearn's MinMaxScaler."""
    rng = np.random.default_rng(3)
    X = rng.lognormal(size=(500, len(FEATURES)))
    X[::17, FEATURES.index("bb_kt")] = 0.0
    ours = LogMinMaxScaler().fit(X).transform(X)
    for j, name in enumerate(FEATURES):
        column = X[:, j]
        if name in LOG_FEATURES:
            column = np.log(column + column[column != 0].min() / 10)
        elif name != "powlaw_gamma":
            np.testing.assert_array_equal(ours[:, j], column)
            continue
        published = MinMaxScaler().fit_transform(column.reshape(-1, 1)).ravel()
        np.testing.assert_array_equal(ours[:, j], published)


def test_dict_round_trip_transforms_identically():
    rng = np.random.default_rng(4)
    X = rng.lognormal(size=(50, len(FEATURES)))
    scaler = LogMinMaxScaler().fit(X)
    again = LogMinMaxScaler.from_dict(scaler.to_dict())
    np.testing.assert_array_equal(again.transform(X), scaler.transform(X))


def test_out_of_range_flags_values_beyond_training():
    X = np.array([[0.1, 1.0, 0.0], [1.0, 2.0, 0.0]])
    scaler = small_scaler().fit(X)  # shift of a: 0.01
    new = np.array([[0.5, 1.5, 9.0], [2.0, 1.5, 0.0], [-0.5, 0.5, 0.0]])
    flags = scaler.out_of_range(new)
    assert flags.tolist() == [[False, False, False], [True, False, False], [True, True, False]]


def test_rejects_missing_values_and_wrong_shape():
    scaler = small_scaler()
    with pytest.raises(ValueError, match="non-finite"):
        scaler.fit(np.array([[np.nan, 1.0, 0.0], [1.0, 2.0, 0.0]]))
    with pytest.raises(ValueError, match="3 columns"):
        scaler.fit(np.ones((4, 2)))
