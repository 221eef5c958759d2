"""The hashed duplicate check gives pandas' answer, including NaN and -0.0 (in-memory data)."""

import numpy as np
import pandas as pd
import pytest

from xrayclass.io.checks import duplicated_rows


@pytest.mark.parametrize("seed", range(40))
def test_same_answer_as_pandas(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 80))
    table = pd.DataFrame(
        {
            "name": rng.choice(["a", "b", "c", None], n),
            "obsid": rng.integers(0, 3, n),
            "x": rng.choice([0.0, -0.0, np.nan, 1.5], n),
            "y": pd.array(rng.choice([1.0, 2.0, np.nan], n), dtype="Float64"),
        },
        index=rng.permutation(n) + 100,
    )
    for keep in ("first", False):
        for subset in (["name", "obsid"], ["name", "obsid", "x", "y"], ["x"], ["y", "obsid"]):
            expected = table.duplicated(subset=subset, keep=keep).to_numpy()
            np.testing.assert_array_equal(duplicated_rows(table, subset, keep), expected)


def test_distinct_nan_payloads_count_as_one_value():
    other_nan = np.frombuffer(np.uint64(0x7FF8000000000001).tobytes(), dtype="float64")[0]
    table = pd.DataFrame({"x": [np.nan, other_nan, -0.0, 0.0]})
    assert duplicated_rows(table, ["x"]).tolist() == [False, True, False, True]


def test_rows_equal_on_the_hashed_floats_but_not_beyond_are_not_repeats():
    from xrayclass.io.checks import HASHED_FLOATS

    rng = np.random.default_rng(1)
    n = 60
    columns = {f"f{k}": rng.choice([0.5, 1.5], n) for k in range(HASHED_FLOATS + 2)}
    table = pd.DataFrame({"name": rng.choice(["a", "b"], n), **columns})
    subset = list(table.columns)
    for keep in ("first", False):
        expected = table.duplicated(subset=subset, keep=keep).to_numpy()
        np.testing.assert_array_equal(duplicated_rows(table, subset, keep), expected)
    # The columns beyond the hashed ones still decide.
    assert table.duplicated(subset=subset[: HASHED_FLOATS + 1]).sum() > table.duplicated(subset=subset).sum()
