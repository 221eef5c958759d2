"""Stage 3 passes every other input column through to its output: the command line writes
the table run_classification gives on the whole input."""

import json

import numpy as np
import pandas as pd
import pytest

from xrayclass.cli.stages import classification_main
from xrayclass.core.featuresets import PAPER
from xrayclass.io.tables import read_table, write_outputs, write_table
from xrayclass.stages.classification import ClassificationConfig, passthrough_columns, run_classification


@pytest.fixture(scope="module")
def wide_input(mock_crossmatched, tmp_path_factory):
    """SYNTHETIC: the mock stage-2 table with pass-through columns of every kind, some between
    the columns stage 3 reads, two named like columns it computes, the name as TOPCAT's
    ``name_1``, and the rows shuffled (the output's order is not the file's)."""
    rng = np.random.default_rng(3)
    table = mock_crossmatched.sample(frac=1.0, random_state=3).reset_index(drop=True)
    n = len(table)
    table.insert(1, "note", pd.array(np.where(rng.random(n) < 0.3, None, "seen"), dtype="str"))
    table.insert(3, "count", rng.integers(0, 9, n))
    table["flag"] = rng.random(n) < 0.5
    table["extra"] = np.where(rng.random(n) < 0.2, np.nan, rng.normal(size=n))
    table["QSO"] = 0.5
    table["outlier_measure"] = -1.0
    table = table.rename(columns={"name": "name_1"})
    path = tmp_path_factory.mktemp("wide") / "s2.parquet"
    write_table(table, path)
    return path


def test_every_input_column_reaches_the_output_once(wide_input):
    table = read_table(wide_input)
    classified, _ = run_classification(table, ClassificationConfig(explain=False))
    columns = classified.columns.tolist()
    assert len(set(columns)) == len(columns)
    front = columns[: columns.index("simbad_main_type") + 1]
    expected = [
        c for c in passthrough_columns(["name" if c == "name_1" else c for c in table.columns], PAPER) if c not in front
    ]
    assert columns[-len(expected) :] == expected
    assert {"note", "count", "flag", "extra"} <= set(expected)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_the_output_is_that_of_the_whole_table(wide_input, tmp_path, monkeypatch, fmt):
    monkeypatch.chdir(tmp_path)  # no stage-1 model in the default place: the paper's features
    out = tmp_path / f"s3.{fmt}"
    argv = ["--input", wide_input, "--output", out, "--model-output", tmp_path / "classifier.json"]
    argv += ["--outliers-output", tmp_path / "outliers.csv", "-q"]
    assert classification_main([str(a) for a in argv]) == 0

    expected, model = run_classification(read_table(wide_input))
    write_table(expected, tmp_path / f"expected.{fmt}")
    assert out.read_bytes() == (tmp_path / f"expected.{fmt}").read_bytes()
    assert json.loads((tmp_path / "classifier.json").read_text()) == json.loads(json.dumps(model.to_dict()))
    columns = read_table(out).columns.tolist()
    tail = columns[columns.index("driven_by") :]
    # The pass-through columns in the input's order, the unread ones among the others.
    assert [c for c in tail if c in ("note", "count", "otype", "flag", "extra")][:2] == ["note", "count"]
    assert tail[-2:] == ["flag", "extra"]
    assert columns.count("QSO") == 1 and columns.count("outlier_measure") == 1
    assert (read_table(out)["QSO"] != 0.5).any()  # the computed probability, not the input's column


def test_the_callers_table_is_left_as_it_was(wide_input):
    table = read_table(wide_input)
    before = table.copy()
    run_classification(table, ClassificationConfig(explain=False))
    pd.testing.assert_frame_equal(table, before)


def test_a_batched_table_is_written_as_the_whole_one(tmp_path):
    whole = pd.DataFrame({"a": np.arange(5), "b": list("vwxyz"), "c": [1.5, np.nan, 2.0, -3.0, 0.0]})

    class Batches:
        def batches(self):
            return (whole.iloc[start : start + 2] for start in range(0, len(whole), 2))

        def empty(self):
            return whole.iloc[:0]

        def __len__(self):
            return len(whole)

    for fmt in ("csv", "parquet"):
        write_outputs([(Batches(), tmp_path / f"batched.{fmt}")])
        write_table(whole, tmp_path / f"whole.{fmt}")
        assert (tmp_path / f"batched.{fmt}").read_bytes() == (tmp_path / f"whole.{fmt}").read_bytes()


def test_rows_in_name_then_obsid_order_ties_in_input_order(mock_crossmatched):
    """SYNTHETIC: the output order is pandas' stable sort by name then obsid, whatever the
    input order; detections sharing both keep the input's order."""
    table = mock_crossmatched.sample(frac=1.0, random_state=11).reset_index(drop=True)
    twins = table[table["main_type"].isna()].head(50).assign(hard_hm=lambda t: t["hard_hm"] * 0.99)
    table = pd.concat([table, twins], ignore_index=True)
    table.loc[:4, "name"] = ["2CXO a", "2CXO B", "2CXO \u00e9", "2CXO z", "2CXO Z"]
    table["input_row"] = np.arange(len(table))
    classified, _ = run_classification(table, ClassificationConfig(explain=False))
    chosen = table.iloc[np.sort(classified["input_row"].to_numpy())]
    expected = chosen.sort_values(["name", "obsid"], kind="stable")["input_row"].to_numpy()
    np.testing.assert_array_equal(classified["input_row"].to_numpy(), expected)
