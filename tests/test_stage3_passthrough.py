"""Stage 3's command line leaves a Parquet input's pass-through columns in the file until it
writes: the output must be the one classify_detections gives on the whole table."""

import json

import numpy as np
import pandas as pd
import pytest

from xrayclass.cli.stages import classification_main
from xrayclass.core.featuresets import PAPER
from xrayclass.io.tables import InputError, JoinedRows, read_table, write_outputs, write_table
from xrayclass.stages.classification import classify_detections, classify_detections_in_parts
from xrayclass.workflow.stages import joined_output, unread_columns


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


def test_the_unread_columns_are_the_pass_through_ones(wide_input):
    unread = unread_columns(str(wide_input), PAPER)
    assert {"note", "count", "flag", "extra"} <= set(unread)
    assert not {"name_1", "obsid", "ra", "dec", "cluster", "main_type", "QSO", *PAPER.features} & set(unread)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_the_output_is_that_of_the_whole_table(wide_input, tmp_path, monkeypatch, fmt):
    monkeypatch.chdir(tmp_path)  # no stage-1 model in the default place: the paper's features
    out = tmp_path / f"s3.{fmt}"
    argv = ["--input", wide_input, "--output", out, "--model-output", tmp_path / "classifier.json"]
    argv += ["--outliers-output", tmp_path / "outliers.csv", "-q"]
    assert classification_main([str(a) for a in argv]) == 0

    expected, model = classify_detections(read_table(wide_input))
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


def test_a_file_changed_meanwhile_is_an_input_error(wide_input, tmp_path):
    unread = unread_columns(str(wide_input), PAPER)
    read = [c for c in read_table(wide_input).columns if c not in unread]
    table = read_table(wide_input, columns=read)
    parts = classify_detections_in_parts(table, explain=False)
    output = joined_output(parts, str(wide_input), unread, len(table) + 1, PAPER)
    with pytest.raises(InputError, match="changed meanwhile"):
        write_outputs([(output, tmp_path / "s3.parquet")])
    assert not (tmp_path / "s3.parquet").exists()


def test_joined_rows_in_batches():
    front = pd.DataFrame({"a": np.arange(5), "b": list("vwxyz")})
    others = pd.DataFrame({"c": np.arange(10) * 10.0, "d": list("ABCDEFGHIJ")})
    rows = np.array([9, 0, 4, 4, 2])
    loads = []

    def load():
        loads.append(1)
        return others

    joined = JoinedRows(front, load, rows, ["a", "c", "b", "d"], batch_rows=2)
    assert not loads  # nothing read before it is written
    batches = list(joined.batches())
    assert [len(b) for b in batches] == [2, 2, 1]
    whole = pd.concat(batches, ignore_index=True)
    assert whole.columns.tolist() == ["a", "c", "b", "d"]
    assert whole["c"].tolist() == [90.0, 0.0, 40.0, 40.0, 20.0]
    assert whole["d"].tolist() == ["J", "A", "E", "E", "C"]
    assert whole["b"].tolist() == list("vwxyz")
    assert joined.empty().dtypes.to_dict() == whole.dtypes.to_dict()
    assert len(loads) == 1 and len(joined) == 5
    with pytest.raises(ValueError, match="row positions"):
        JoinedRows(front, others, rows[:3], ["a"])


def test_rows_in_name_then_obsid_order_ties_in_input_order(mock_crossmatched):
    """SYNTHETIC: the output order is pandas' stable sort by name then obsid, whatever the
    input order; detections sharing both keep the input's order."""
    table = mock_crossmatched.sample(frac=1.0, random_state=11).reset_index(drop=True)
    twins = table[table["main_type"].isna()].head(50).assign(hard_hm=lambda t: t["hard_hm"] * 0.99)
    table = pd.concat([table, twins], ignore_index=True)
    table.loc[:4, "name"] = ["2CXO a", "2CXO B", "2CXO \u00e9", "2CXO z", "2CXO Z"]
    table["input_row"] = np.arange(len(table))
    parts = classify_detections_in_parts(table, explain=False)
    chosen = table.iloc[np.sort(parts.rows)]
    expected = chosen.sort_values(["name", "obsid"], kind="stable")["input_row"].to_numpy()
    np.testing.assert_array_equal(parts.passthrough["input_row"].to_numpy(), expected)
    np.testing.assert_array_equal(parts.rows, expected)
