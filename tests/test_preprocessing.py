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


def test_fitted_on_a_table_as_on_its_array():
    """A DataFrame is read a column at a time, in the order of ``features`` whatever the
    table's: the same constants as the 2-D array."""
    import pandas as pd

    rng = np.random.default_rng(8)
    X = rng.lognormal(size=(300, len(FEATURES)))
    X[::11, FEATURES.index("bb_kt")] = 0.0
    table = pd.DataFrame(X, columns=list(FEATURES)).iloc[:, ::-1].assign(other=1.0)
    assert LogMinMaxScaler(log_floor=1e-4).fit(table).to_dict() == LogMinMaxScaler(log_floor=1e-4).fit(X).to_dict()
    with pytest.raises(ValueError, match="no columns bb_kt"):
        LogMinMaxScaler().fit(table.drop(columns="bb_kt"))
    table.loc[5, "hard_hm"] = np.inf
    with pytest.raises(ValueError, match="non-finite"):
        LogMinMaxScaler().fit(table)


# -- log floor (issue 13) --------------------------------------------------------------


def test_log_floor_bounds_the_shift_from_below_only():
    X = np.array([[1e-16, 1.0, 0.0], [0.5, 2.0, 0.0], [1.0, 3.0, 0.0]])
    assert small_scaler().fit(X).shift_["a"] == pytest.approx(1e-17)
    floored = LogMinMaxScaler(
        features=("a", "b", "c"), log_features=("a",), minmax_features=("b",), log_floor=1e-3
    ).fit(X)
    assert floored.shift_["a"] == 1e-3
    high = np.array([[0.2, 1.0, 0.0], [1.0, 2.0, 0.0]])
    assert LogMinMaxScaler(features=("a", "b", "c"), log_features=("a",), minmax_features=("b",), log_floor=1e-3).fit(
        high
    ).shift_["a"] == pytest.approx(0.02)  # the paper's, larger
    again = LogMinMaxScaler.from_dict(floored.to_dict())
    assert again.log_floor == 1e-3 and floored.to_dict()["log_floor"] == 1e-3
    np.testing.assert_array_equal(again.transform(X), floored.transform(X))
    with pytest.raises(ValueError, match="log_floor"):
        LogMinMaxScaler(log_floor=-1.0).fit(np.ones((3, len(FEATURES))))


def test_log_floor_unsqueezes_var_ratio_b_on_the_real_sample(crossmatch_sample):
    from xrayclass.core.features import complete_rows, prepare_features
    from xrayclass.io.tables import read_table

    table = prepare_features(read_table(crossmatch_sample))
    complete, _ = complete_rows(table)
    X = table.loc[complete, list(FEATURES)].to_numpy(dtype="float64")
    j = FEATURES.index("var_ratio_b")
    squeezed = {
        floor: float(np.mean(LogMinMaxScaler(log_floor=floor).fit(X).transform(X)[:, j] >= 0.64))
        for floor in (None, 1e-3)
    }
    # The paper's rule: a shift of ~3e-17 set by floating-point noise, most values at the top.
    assert squeezed[None] > 0.9
    assert squeezed[1e-3] < 0.05


@pytest.mark.parametrize("log_floor", [None, 1e-3])
def test_merged_states_of_parts_fit_as_the_whole_table(log_floor):
    # The engines fit the scaler over batches or partitions: the merged states of the
    # parts, in any order, give fit's constants on the whole table, bit for bit.
    rng = np.random.default_rng(5)
    X = rng.lognormal(size=(1_000, len(FEATURES)))
    X[:400, FEATURES.index("bb_kt")] = 0.0  # the first parts hold no non-zero value
    whole = LogMinMaxScaler(log_floor=log_floor).fit(X)
    scaler = LogMinMaxScaler(log_floor=log_floor)
    states = [scaler.summarize(X[start : start + 137]) for start in range(0, len(X), 137)]
    merged = states[-1]
    for state in reversed(states[:-1]):
        merged = state.merge(merged)
    assert merged.n_rows == len(X)
    assert scaler.fit_state(merged).to_dict() == whole.to_dict()
    np.testing.assert_array_equal(scaler.transform(X), whole.transform(X))
