"""The hashed duplicate check gives pandas' answer, including NaN and -0.0 (in-memory data)."""

import numpy as np
import pandas as pd
import pytest

from xrayclass.core.checks import duplicated_rows


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
    from xrayclass.core.checks import HASHED_FLOATS

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


@pytest.mark.parametrize("seed", range(20))
def test_repeats_looked_for_among_rows_sharing_name_and_obsid(seed, caplog):
    """check_detections finds the rows sharing name and obsid once, and the repeats among
    them: the same rows as pandas over the whole table, and the same kept table."""
    from xrayclass.core.checks import duplicated_detections
    from xrayclass.io.checks import check_detections

    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 60))
    table = pd.DataFrame(
        {
            "name": rng.choice(["a", "b", "c"], n),
            "obsid": rng.integers(0, 3, n),
            "ra": rng.choice([10.0, 11.0], n),
            "dec": rng.choice([-5.0, 5.0], n),
            "hard_hm": rng.choice([0.1, np.nan, -0.0, 0.0], n),
        }
    )
    subset = ["name", "obsid", "ra", "dec", "hard_hm"]
    shared = duplicated_rows(table, ["name", "obsid"], keep=False)
    expected = table.duplicated(subset=subset).to_numpy()
    np.testing.assert_array_equal(duplicated_detections(table, ["hard_hm"], shared), expected)
    np.testing.assert_array_equal(duplicated_detections(table, ["hard_hm"]), expected)
    with pytest.raises(ValueError, match="shared has"):
        duplicated_detections(table, ["hard_hm"], shared[1:])
    with caplog.at_level("INFO", logger="xrayclass"):
        kept = check_detections(table, "t.csv", allow_duplicates=True)
    pd.testing.assert_frame_equal(kept, table.loc[~expected].reset_index(drop=True))
    # Counted on the rows kept: a detection whose only partner was a repeat shares no more.
    n_shared = int(kept.duplicated(["name", "obsid"], keep=False).sum())
    reported = [r.getMessage() for r in caplog.records if "share their name and obsid" in r.getMessage()]
    assert reported == (
        [
            f"t.csv: {n_shared:,} detections share their name and obsid with another detection of "
            "different values (the CSC can list several detections of a source in one observation); "
            "all are kept"
        ]
        if n_shared
        else []
    )


@pytest.mark.parametrize("seed", range(30))
def test_rows_sharing_name_and_obsid_as_pandas_finds_them(seed):
    from xrayclass.core.checks import sharing_name_and_obsid

    rng = np.random.default_rng(seed)
    n = int(rng.integers(0, 60))
    names = rng.choice(["2CXO J1", "2CXO J1 ", "2CXO J2", "2cxo j1", "", "Ä", "Ä\u0308"], n)
    kinds = {
        "text": pd.array(names, dtype="str"),
        "object": names.astype(object),
        "with gaps": pd.array(np.where(rng.random(n) < 0.2, None, names), dtype="str"),
    }
    for kind, column in kinds.items():
        for obsid in (rng.integers(0, 3, n), pd.array(rng.integers(0, 3, n), dtype="Int64")):
            table = pd.DataFrame({"name": column, "obsid": obsid}, index=rng.permutation(n) + 7)
            expected = table.duplicated(["name", "obsid"], keep=False).to_numpy()
            np.testing.assert_array_equal(sharing_name_and_obsid(table), expected, err_msg=kind)
