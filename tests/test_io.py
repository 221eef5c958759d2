import itertools

import numpy as np
import pandas as pd
import pytest
from astropy.table import Table
from conftest import reference_path

from xrayclass.core.checks import canonical_names, require_columns, require_numeric
from xrayclass.exceptions import input_files
from xrayclass.io.tables import InputError, read_table, write_atomic, write_outputs, write_table


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match=r"nope\.csv: file not found"):
        read_table(tmp_path / "nope.csv")


def test_unknown_extension(tmp_path):
    path = tmp_path / "table.txt"
    path.write_text("a\n1\n")
    with pytest.raises(InputError, match=r"table\.txt: unknown table format '\.txt'"):
        read_table(path)


def test_empty_file_and_header_only(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(InputError, match=r"empty\.csv: the file is empty"):
        read_table(empty)
    header = tmp_path / "header.csv"
    header.write_text("name,obsid\n")
    with pytest.raises(InputError, match=r"header\.csv: the table has no rows"):
        read_table(header)


def test_unreadable_files(tmp_path):
    parquet = tmp_path / "broken.parquet"
    parquet.write_bytes(b"not parquet at all")
    with pytest.raises(InputError, match=r"broken\.parquet: cannot read as parquet"):
        read_table(parquet)
    votable = tmp_path / "broken.vot"
    votable.write_text("<VOTABLE><RESOURCE>")
    with pytest.raises(InputError, match=r"broken\.vot: cannot read as votable"):
        read_table(votable)
    (tmp_path / "folder.csv").mkdir()
    with pytest.raises(InputError, match=r"folder\.csv: is a directory"):
        read_table(tmp_path / "folder.csv")


def test_votable_columns_are_read_by_name_not_id(reference_dir):
    table = read_table(reference_path(reference_dir, "example_source.vot"))
    assert "name" in table.columns and "col1" not in table.columns
    assert table["name"].iloc[0].startswith("2CXO J004307.5-092302")
    assert np.isnan(table["powlaw_gamma"].iloc[0]) and np.isnan(table["bb_kt"].iloc[0])


def test_fits_and_parquet_round_trips(tmp_path):
    frame = pd.DataFrame({"name": ["2CXO A", "2CXO B"], "obsid": [1, 2], "hard_hm": [0.5, np.nan]})
    Table.from_pandas(frame).write(tmp_path / "t.fits")
    from_fits = read_table(tmp_path / "t.fits")
    assert from_fits["name"].tolist() == ["2CXO A", "2CXO B"]
    assert np.isnan(from_fits["hard_hm"].iloc[1])
    write_table(frame, tmp_path / "t.parquet")
    assert read_table(tmp_path / "t.parquet", columns=["obsid"]).columns.tolist() == ["obsid"]


def test_unnamed_csv_index_is_dropped(tmp_path):
    pd.DataFrame({"a": [1, 2]}).to_csv(tmp_path / "indexed.csv")
    assert read_table(tmp_path / "indexed.csv").columns.tolist() == ["a"]


def test_required_and_numeric_columns():
    frame = pd.DataFrame({"a": ["1", "", "x"], "b": [1, 2, 3]})
    # The checks know no file; the caller that read the table names it (input_files).
    with pytest.raises(InputError, match=r"f\.csv: missing required columns: c, d"), input_files("f.csv"):
        require_columns(frame, ["a", "c", "d"])
    with (
        pytest.raises(
            InputError, match=r"f\.csv: column 'a' has non-numeric values \(1 rows\), e.g. 'x' in data row 3"
        ),
        input_files("f.csv"),
    ):
        require_numeric(frame, ["a"])
    converted = require_numeric(frame.iloc[:2], ["a", "b"])
    assert converted["a"].tolist()[0] == 1 and np.isnan(converted["a"].tolist()[1])
    assert converted["b"].dtype == np.int64


def test_name_alias():
    frame = pd.DataFrame({"name_1": ["x"]})
    assert canonical_names(frame).columns.tolist() == ["name"]
    with pytest.raises(InputError, match="missing required columns: name"):
        canonical_names(pd.DataFrame({"other": [1]}))


def test_failed_write_leaves_nothing(tmp_path):
    target = tmp_path / "out.csv"

    def failing(temporary):
        temporary.write_text("partial")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_atomic(target, failing)
    assert list(tmp_path.iterdir()) == []


def test_outputs_appear_together_or_not_at_all(tmp_path):
    frame = pd.DataFrame({"a": [1]})
    with pytest.raises(ValueError):
        write_outputs([(frame, tmp_path / "one.csv"), ({"not json": np.nan}, tmp_path / "two.json")])
    assert list(tmp_path.iterdir()) == []
    write_outputs([(frame, tmp_path / "one.csv"), ({"ok": 1}, tmp_path / "two.json")])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one.csv", "two.json"]


def test_parquet_written_a_row_group_at_a_time_is_the_whole_table_written_at_once(tmp_path, monkeypatch):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from xrayclass.io import tables

    rng = np.random.default_rng(5)
    table = pd.DataFrame(
        {
            "name": [f"2CXO J{i:06d}" for i in range(2_500)],
            "obsid": rng.integers(1, 30_000, 2_500),
            "hard_hm": rng.uniform(-1, 1, 2_500),
            "main_type": rng.choice(["QSO", "NaN", None], 2_500),
        }
    )
    monkeypatch.setattr(tables, "PARQUET_ROW_GROUP", 1_000)
    tables.write_parquet(table, tmp_path / "groups.parquet")
    arrow = pa.Table.from_pandas(table, preserve_index=False)
    pq.write_table(arrow, tmp_path / "whole.parquet", row_group_size=1_000, **tables.parquet_options(arrow.schema))
    assert (tmp_path / "groups.parquet").read_bytes() == (tmp_path / "whole.parquet").read_bytes()
    assert pq.ParquetFile(tmp_path / "groups.parquet").metadata.num_row_groups == 3
    pd.testing.assert_frame_equal(tables.read_table(tmp_path / "groups.parquet"), table)


def test_parquet_written_in_batches_is_the_file_written_whole(tmp_path, monkeypatch):
    """Row groups of a fixed size whatever the batches, each made while the one before is
    encoded: the bytes of writing the whole table at once."""
    import pyarrow.parquet as pq

    import xrayclass.io.tables as tables

    monkeypatch.setattr(tables, "PARQUET_ROW_GROUP", 10)
    rng = np.random.default_rng(5)
    whole = pd.DataFrame(
        {
            "name": pd.array([f"S{k % 7}" for k in range(46)], dtype="str"),
            "x": rng.normal(size=46),
            "n": rng.integers(0, 5, 46),
        }
    )
    tables.write_parquet(whole, tmp_path / "whole.parquet")
    edges = [0, 3, 3, 20, 45, 46]
    batches = [whole.iloc[a:b] for a, b in itertools.pairwise(edges)]
    tables.write_parquet_batches(iter(batches), tmp_path / "batched.parquet", whole)
    assert (tmp_path / "batched.parquet").read_bytes() == (tmp_path / "whole.parquet").read_bytes()
    assert pq.ParquetFile(tmp_path / "batched.parquet").metadata.num_row_groups == 5
    tables.write_parquet_batches(iter([whole.iloc[:0]]), tmp_path / "none.parquet", whole)
    assert pq.ParquetFile(tmp_path / "none.parquet").metadata.num_rows == 0


class _Batched:
    """A BatchedTable of ``whole`` in batches of ``size`` rows; ``fail_after`` batches, then an InputError."""

    def __init__(self, whole, size, fail_after=None):
        self.whole, self.size, self.fail_after = whole, size, fail_after

    def batches(self):
        for k, start in enumerate(range(0, len(self.whole), self.size)):
            if self.fail_after is not None and k == self.fail_after:
                raise InputError("s2.parquet: the file changed meanwhile")
            yield self.whole.iloc[start : start + self.size]

    def empty(self):
        return self.whole.iloc[:0]

    def __len__(self):
        return len(self.whole)


def test_batches_are_written_in_their_order(tmp_path):
    whole = pd.DataFrame({"k": np.arange(40), "name": [f"s{k}" for k in range(40)]})
    write_outputs([(_Batched(whole, 7), tmp_path / "t.parquet"), (_Batched(whole, 7), tmp_path / "t.csv")])
    pd.testing.assert_frame_equal(read_table(tmp_path / "t.parquet"), whole, check_dtype=False)
    pd.testing.assert_frame_equal(read_table(tmp_path / "t.csv"), whole, check_dtype=False)


def test_an_error_in_the_batches_is_raised_and_leaves_nothing(tmp_path):
    whole = pd.DataFrame({"k": np.arange(40)})
    with pytest.raises(InputError, match="changed meanwhile"):
        write_outputs([({"a": 1}, tmp_path / "m.json"), (_Batched(whole, 7, fail_after=2), tmp_path / "t.parquet")])
    assert list(tmp_path.iterdir()) == []


def test_a_batched_table_without_rows_writes_its_columns(tmp_path):
    whole = pd.DataFrame({"k": np.arange(3), "name": ["a", "b", "c"]}).iloc[:0]
    write_outputs([(_Batched(whole, 7), tmp_path / "t.csv"), (_Batched(whole, 7), tmp_path / "t.parquet")])
    assert (tmp_path / "t.csv").read_text() == "k,name\n"
    assert read_table(tmp_path / "t.parquet", allow_empty=True).columns.tolist() == ["k", "name"]
