"""Tables read and written in batches of rows, so that memory does not grow with N.

:func:`iter_batches` yields a table as pandas DataFrames of at most ``batch_rows`` rows
whose column types are those the whole file would get from :func:`~xrayclass.io.tables.read_table`
(so that a batch written as CSV reads, and prints, as the whole table would): Parquet
is read in record batches, with integer columns that hold a null anywhere read as
floats in every batch; CSV is read in pandas chunks, after one pass that settles each
column's type over the whole file.

:class:`BatchWriter` appends batches to a CSV or Parquet file written atomically (a
temporary file beside the destination, renamed into place at the end), and
:class:`ExternalSort` sorts a stream of batches by source name and obsid with bounded
memory (buckets of name ranges on disk), as ``DataFrame.sort_values(kind="stable")``
would sort their concatenation.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import stat
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from xrayclass.constants import NAME, NAME_ALIASES, OBSID
from xrayclass.core.checks import require_columns
from xrayclass.exceptions import InputError, input_files
from xrayclass.io.files import require_regular_file
from xrayclass.io.tables import (
    NO_ROWS,
    OUTPUT_FORMATS,
    PARSE_ERRORS,
    UNNAMED_INDEX,
    parquet_columns,
    parquet_options,
    table_format,
    temporary_folder,
    temporary_path,
    temporary_space_failed,
    write_failed,
    write_parquet,
)
from xrayclass.text import one_line

__all__ = [
    "BATCH_ROWS",
    "BatchWriter",
    "ExternalSort",
    "InputIdentity",
    "SpillByKey",
    "detection_file_columns",
    "iter_batches",
    "name_boundaries",
    "name_buckets",
    "read_error",
    "source_name_column",
    "table_columns",
    "write_part",
]

log = logging.getLogger(__name__)

#: Rows per batch by default: a few hundred MB for the widest stage tables.
BATCH_ROWS = 250_000


def _check_file(path: Path, fmt: str) -> None:
    require_regular_file(path)


#: Bytes of a CSV file's start and end in its identity (a Parquet file's footer is read whole).
_IDENTITY_BYTES = 65_536


class InputIdentity:
    """What identifies an input file an engine reads in several passes, recorded when it starts.

    The streaming and Dask engines read their input more than once (the census, the
    ranges, the classification or assignment) and on Dask from other processes, so a
    file replaced or rewritten meanwhile would give rows of one file scored with a model
    of another. :meth:`check`, called before each further pass and before the outputs
    are committed, refuses that: the device, inode, size and modification time (in ns)
    of the file, and a digest of its Parquet footer (the schema, the row groups' offsets
    and statistics) or of a CSV file's first and last 64 KiB, must all be unchanged.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        require_regular_file(self.path)  # from its stat: a FIFO is never opened
        self.stamp = self._stamp()
        if self.stamp is None:
            raise InputError(f"{self.path}: cannot read")

    def _stamp(self) -> tuple[Any, ...] | None:
        try:
            status = os.stat(self.path)
            if not stat.S_ISREG(status.st_mode):
                return None
            with open(self.path, "rb") as handle:
                if table_format(self.path, OUTPUT_FORMATS) == "parquet" and status.st_size >= 12:
                    handle.seek(-8, os.SEEK_END)
                    trailer = handle.read(8)
                    length = min(int.from_bytes(trailer[:4], "little"), status.st_size - 8)
                    handle.seek(-8 - length, os.SEEK_END)
                    sampled = handle.read(length) + trailer
                else:
                    sampled = handle.read(_IDENTITY_BYTES)
                    handle.seek(max(0, status.st_size - _IDENTITY_BYTES))
                    sampled += handle.read(_IDENTITY_BYTES)
        except (OSError, ValueError):
            return None
        digest = hashlib.sha256(sampled).hexdigest()
        return status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns, digest

    def check(self) -> None:
        """Raise :class:`InputError` naming the file if it is no longer the one first seen."""
        if self._stamp() != self.stamp:
            raise InputError(
                f"{self.path}: changed while it was being read (replaced, rewritten or removed); nothing "
                "written: run again once the file is complete"
            )


def read_error(path: str | Path, fmt: str, exc: BaseException) -> InputError:
    """The error for a table file its reader cannot parse."""
    return InputError(f"{path}: cannot read as {fmt}: {one_line(exc)}")


def table_columns(path: str | Path) -> list[str]:
    """Column names of a CSV or Parquet table, without reading its rows."""
    path = Path(path)
    fmt = table_format(path, OUTPUT_FORMATS)
    _check_file(path, fmt)
    try:
        if fmt == "parquet":
            schema = pq.read_schema(path)
            parquet_columns(schema, path)
            # An index pandas stored is read back as the index, not as a column.
            stored = (schema.pandas_metadata or {}).get("index_columns", [])
            index = {"__index_level_0__", *(c for c in stored if isinstance(c, str))}
            return [c for c in schema.names if c not in index]
        return [c for c in pd.read_csv(path, nrows=0).columns if c != UNNAMED_INDEX]
    except pd.errors.EmptyDataError:
        raise InputError(f"{path}: the file is empty") from None
    except PARSE_ERRORS as exc:
        raise read_error(path, fmt, exc) from None


def _wanted(columns: Sequence[str] | None, present: Sequence[str]) -> list[str]:
    if columns is None:
        return [c for c in present if c != UNNAMED_INDEX]
    wanted = set(columns)
    return [c for c in present if c in wanted]


def _parquet_batches(path: Path, columns: Sequence[str] | None, batch_rows: int) -> Iterator[pd.DataFrame]:
    # pre_buffer (pyarrow's default) caches the row groups' column chunks ahead and keeps
    # them until the reader is done: memory then grows with the file, not the batch.
    # Without it a reader holds at most one row group.
    source = pq.ParquetFile(path, pre_buffer=False)
    present = parquet_columns(source.schema_arrow, path)
    names = _wanted(columns, [c for c in present if c != "__index_level_0__"])
    schema = source.schema_arrow
    # pandas reads an integer (or boolean) column with a null anywhere as float (object):
    # give every batch that type, not only the batches that happen to hold the null.
    widen = [c for c in names if pa.types.is_integer(schema.field(c).type) or pa.types.is_boolean(schema.field(c).type)]
    with_nulls: set[str] = set()
    if widen:
        for batch in source.iter_batches(batch_size=batch_rows, columns=widen):
            with_nulls.update(c for c in widen if batch.column(c).null_count)
    metadata = schema.metadata
    for batch in source.iter_batches(batch_size=batch_rows, columns=names):
        # The file's pandas metadata (if pandas wrote it) restores the dtypes it recorded.
        table = pa.Table.from_batches([batch])
        if metadata:
            table = table.replace_schema_metadata(metadata)
        frame = table.to_pandas()
        # Neither the Arrow copy of the batch nor (below) the frame outlives its turn: held
        # while the caller works, or while the next batch is read, each would add a batch.
        del batch, table
        for column in with_nulls:
            kind = frame[column].dtype
            if isinstance(kind, np.dtype) and kind.kind in "iu":
                frame[column] = frame[column].astype("float64")
            elif isinstance(kind, np.dtype) and kind.kind == "b":
                frame[column] = frame[column].astype(object)
        frame = frame.reset_index(drop=True)
        yield frame
        del frame


def csv_types(path: Path, names: list[str], batch_rows: int, every_column: bool = False) -> dict[str, Any]:
    """The type pandas gives each column when it reads the whole file.

    Only the columns whose chunks differ in type, unless ``every_column``: a column of
    one type throughout then gets it too (each chunk would infer it alone, but a reader
    that infers the types from the file's head, as Dask's, would not).
    """
    kinds: dict[str, set[str]] = {c: set() for c in names}
    dtypes: dict[str, Any] = {}
    for chunk in pd.read_csv(path, usecols=names, chunksize=batch_rows, low_memory=False):
        for column in names:
            kinds[column].add(chunk[column].dtype.kind)
            dtypes.setdefault(column, chunk[column].dtype)
    types: dict[str, Any] = {}
    for column, seen in kinds.items():
        if len(seen) <= 1:
            if every_column and column in dtypes:
                types[column] = dtypes[column]
            continue  # one type throughout: each chunk infers it alone
        if seen <= {"i", "u", "f"}:
            types[column] = "float64"
        elif seen <= {"b", "f"} or seen <= {"b", "O"}:
            types[column] = object
        else:
            types[column] = "str"
    return types


def _csv_batches(path: Path, columns: Sequence[str] | None, batch_rows: int) -> Iterator[pd.DataFrame]:
    present = list(pd.read_csv(path, nrows=0).columns)
    names = _wanted(columns, present)
    types = csv_types(path, names, batch_rows)
    for chunk in pd.read_csv(path, usecols=names, chunksize=batch_rows, low_memory=False, dtype=types or None):
        yield chunk[names]


def iter_batches(
    path: str | Path,
    columns: Sequence[str] | None = None,
    batch_rows: int = BATCH_ROWS,
    identity: InputIdentity | None = None,
) -> Iterator[pd.DataFrame]:
    """Yield a CSV or Parquet table in DataFrames of at most ``batch_rows`` rows.

    Only the listed ``columns`` that the file has are read (all if ``None``), in the
    file's order; an unnamed CSV index column is left out. Problems with the file
    are :class:`InputError` naming it. With ``identity`` (one of the passes of a run
    that reads the file several times) the file must still be the one it recorded,
    before the pass and after its last batch.
    """
    path = Path(path)
    fmt = table_format(path, OUTPUT_FORMATS)
    _check_file(path, fmt)
    if identity is not None:
        identity.check()
    reader = _parquet_batches if fmt == "parquet" else _csv_batches
    try:
        empty = True
        for batch in reader(path, columns, batch_rows):
            empty = False
            yield batch
            del batch  # not held while the next batch is read
    except InputError:
        raise
    except pd.errors.EmptyDataError:
        raise InputError(f"{path}: the file is empty") from None
    except PARSE_ERRORS as exc:
        if identity is not None:
            identity.check()  # a file rewritten under the reader fails to parse: say what happened
        raise read_error(path, fmt, exc) from None
    if identity is not None:
        identity.check()
    if empty:
        raise InputError(f"{path}: {NO_ROWS}")


class BatchWriter:
    """Append DataFrames to one CSV or Parquet file, which appears only on :meth:`close`.

    All batches must have the same columns; CSV gets one header. Parquet takes the
    schema of the first batch (later batches are cast to it).
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.format = table_format(self.path, OUTPUT_FORMATS)
        self.temporary = temporary_path(self.path)
        self._writer: Any = None
        self._schema = None
        self._columns: list[str] | None = None
        self._started = False
        self.rows = 0

    def write(self, frame: pd.DataFrame) -> None:
        if self._columns is None:
            self._columns = list(frame.columns)
        elif list(frame.columns) != self._columns:
            raise ValueError("every batch must have the same columns")
        try:
            if self.format == "csv":
                frame.to_csv(self.temporary, index=False, header=not self._started, mode="a" if self._started else "w")
                self._started = True
            else:
                table = pa.Table.from_pandas(frame, schema=self._schema, preserve_index=False)
                if self._writer is None:
                    self._schema = table.schema
                    self._writer = pq.ParquetWriter(self.temporary, self._schema, **parquet_options(self._schema))
                self._writer.write_table(table)
        except OSError as exc:  # a full disk, a quota: the in-memory stages' words
            raise write_failed(self.path, exc) from None
        self.rows += len(frame)

    def append_part(self, part: str | Path, columns: Sequence[str]) -> None:
        """Append a part file written by :func:`write_part` (same format, ``columns``), without pandas.

        CSV parts are copied byte for byte after the header; Parquet parts row group by
        row group, cast to the first part's schema.
        """
        try:
            if self.format == "csv":
                if self._columns is None:
                    self.write(pd.DataFrame(columns=list(columns)))
                with open(part, "rb") as source, open(self.temporary, "ab") as target:
                    shutil.copyfileobj(source, target)
                return
            reader = pq.ParquetFile(part)
            for group in range(reader.num_row_groups):
                table = reader.read_row_group(group)
                if self._writer is None:
                    self._schema = table.schema
                    self._writer = pq.ParquetWriter(self.temporary, self._schema, **parquet_options(self._schema))
                self._writer.write_table(table.cast(self._schema))
        except OSError as exc:
            raise write_failed(self.path, exc) from None

    def close(self) -> Path:
        """Finish the file and move it into place."""
        try:
            if self._writer is not None:
                self._writer.close()
            os.replace(self.temporary, self.path)
        except OSError as exc:
            raise write_failed(self.path, exc) from None
        return self.path

    def abort(self) -> None:
        """Drop the partial file."""
        if self._writer is not None:
            try:
                self._writer.close()
            except (OSError, ValueError):  # pyarrow errors are ValueErrors or OSErrors; the file is deleted anyway
                pass
        self.temporary.unlink(missing_ok=True)

    def __enter__(self) -> BatchWriter:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if kind is None:
            self.close()
        else:
            self.abort()


class ExternalSort:
    """Sort batches by (name, obsid) in bounded memory, stably, as pandas would.

    The batches are spread over buckets of name ranges (``boundaries``: sorted names,
    e.g. quantiles of a sample of the names to come), each kept as Parquet files in
    a temporary directory; :meth:`sorted_batches` then sorts one bucket at a time. The
    result is the rows of ``pd.concat(batches).sort_values([name, obsid],
    kind="stable")``: ties keep their arrival order.
    """

    ROW = "__xrayclass_row__"

    def __init__(self, boundaries: Sequence[str], directory: str | Path | None = None):
        self.boundaries = np.asarray(sorted(boundaries), dtype=object)
        self.directory = temporary_folder("sort", directory)
        self.files: dict[int, list[Path]] = {}
        self.rows = 0

    def add(self, frame: pd.DataFrame) -> None:
        if not len(frame):
            return
        frame = frame.assign(**{self.ROW: np.arange(self.rows, self.rows + len(frame), dtype=np.int64)})
        self.rows += len(frame)
        bucket = name_buckets(frame[NAME].to_numpy(dtype=object), self.boundaries)
        for b in np.unique(bucket):
            part = frame.loc[bucket == b]
            files = self.files.setdefault(int(b), [])
            path = self.directory / f"bucket{int(b):05d}_{len(files):05d}.parquet"
            try:
                write_parquet(part, path)
            except OSError as exc:
                raise temporary_space_failed(self.directory, exc) from None
            files.append(path)

    def sorted_batches(self) -> Iterator[pd.DataFrame]:
        """Each bucket sorted, buckets in name order; the row counter column dropped."""
        for b in sorted(self.files):
            bucket = pd.concat([pd.read_parquet(path) for path in self.files[b]], ignore_index=True)
            bucket = bucket.sort_values([NAME, OBSID, self.ROW], kind="stable").drop(columns=self.ROW)
            yield bucket.reset_index(drop=True)
            for path in self.files[b]:
                path.unlink(missing_ok=True)

    def close(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> ExternalSort:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SpillByKey:
    """A table kept on disk, in one file per value of an integer column, read back by value.

    :meth:`batches` gives the rows of the largest value first (or the smallest, with
    ``descending=False``), each value's rows in the order they were added: rows added
    in name order come back as ``sort_values([key, name], ascending=[False, True])``
    would order them, without holding the table or sorting it. A
    :class:`~xrayclass.io.tables.BatchedTable`, so ``write_outputs`` writes it.
    Rows wait in memory until ``buffer_rows`` of them have come, then go to the files
    together (row groups of a useful size, not one per value and frame); a table that
    never fills the buffer is given back from memory, without files.
    """

    def __init__(
        self,
        key: str,
        directory: str | Path | None = None,
        descending: bool = True,
        buffer_rows: int = 2 * BATCH_ROWS,
    ):
        self.key = key
        self.descending = descending
        self.buffer_rows = buffer_rows
        self.directory = temporary_folder("spill", directory)
        self._writers: dict[int, Any] = {}
        self._pending: dict[int, list[pd.DataFrame]] = {}
        self._pending_rows = 0
        self._schema: Any = None
        self._like: pd.DataFrame | None = None
        self._rows = 0

    def add(self, frame: pd.DataFrame) -> None:
        """Keep ``frame``'s rows (every frame with the same columns and types)."""
        if self._like is None:
            self._like = frame.iloc[:0]
            self._schema = pa.Schema.from_pandas(self._like, preserve_index=False)
        if not len(frame):
            return
        values = frame[self.key].to_numpy()
        order = np.argsort(values, kind="stable")  # each value's rows together, in their order
        ordered = frame.take(order)
        edges = np.flatnonzero(np.diff(values[order])) + 1
        for rows in np.split(np.arange(len(frame)), edges):
            value = int(values[order[rows[0]]])
            self._pending.setdefault(value, []).append(ordered.iloc[rows[0] : rows[-1] + 1])
        self._rows += len(frame)
        self._pending_rows += len(frame)
        if self._pending_rows >= self.buffer_rows:
            self._flush()

    def _flush(self) -> None:
        try:
            self._write_pending()
        except OSError as exc:
            raise temporary_space_failed(self.directory, exc) from None

    def _write_pending(self) -> None:
        for value, frames in self._pending.items():
            writer = self._writers.get(value)
            if writer is None:
                writer = self._writers[value] = pq.ParquetWriter(
                    self._path(value), self._schema, **parquet_options(self._schema)
                )
            rows = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
            writer.write_table(pa.Table.from_pandas(rows, schema=self._schema, preserve_index=False))
        self._pending, self._pending_rows = {}, 0

    def _path(self, value: int) -> Path:
        return self.directory / f"{self.key}_{value}.parquet"

    def __len__(self) -> int:
        return self._rows

    def empty(self) -> pd.DataFrame:
        if self._like is None:
            raise ValueError("no frame was added: the table's columns are unknown")
        return self._like

    def batches(self) -> Iterator[pd.DataFrame]:
        """The rows by value of the key, each value's in the order added."""
        if not self._writers:  # it all fitted in the buffer
            for value in sorted(self._pending, reverse=self.descending):
                yield pd.concat(self._pending[value], ignore_index=True)
            return
        self._flush()
        try:
            for writer in self._writers.values():
                writer.close()  # a second close does nothing: the files are complete before they are read
        except OSError as exc:
            raise temporary_space_failed(self.directory, exc) from None
        for value in sorted(self._writers, reverse=self.descending):
            for batch in pq.ParquetFile(self._path(value)).iter_batches(batch_size=self.buffer_rows):
                yield batch.to_pandas()

    def close(self) -> None:
        """Remove the files."""
        for writer in self._writers.values():
            try:
                writer.close()
            except (OSError, ValueError):  # pyarrow errors are ValueErrors or OSErrors; deleted anyway
                pass
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> SpillByKey:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_part(frame: pd.DataFrame, path: str | Path) -> None:
    """One part of a table assembled by :meth:`BatchWriter.append_part`: CSV without header, or Parquet."""
    if table_format(path, OUTPUT_FORMATS) == "csv":
        frame.to_csv(path, index=False, header=False)
    else:
        write_parquet(frame, path)


def name_buckets(names: np.ndarray, boundaries: np.ndarray) -> np.ndarray:
    """The bucket of each name among the ranges that sorted ``boundaries`` cut."""
    if not len(boundaries):
        return np.zeros(len(names), dtype=int)
    return np.searchsorted(boundaries, names, side="right")


def name_boundaries(sample: Sequence[str], n_buckets: int) -> list[str]:
    """``n_buckets - 1`` names splitting a sample of names into equal shares."""
    names = np.sort(np.asarray(sample, dtype=object))
    if n_buckets <= 1 or not len(names):
        return []
    positions = (np.arange(1, n_buckets) * len(names)) // n_buckets
    return sorted(set(names[positions].tolist()))


def detection_file_columns(
    path: str | Path, required: Sequence[str] = (NAME, OBSID, "ra", "dec")
) -> tuple[list[str], str]:
    """A detection file's columns and the one holding the source name, read from its header.

    Raises :class:`InputError` naming ``path`` when a ``required`` column (the name in
    any of its spellings) is missing, before any batch is read.
    """
    columns = table_columns(path)
    name_column = source_name_column(columns)
    if name_column is None:
        raise InputError(f"{path}: missing required columns: {NAME} (or {', '.join(NAME_ALIASES)})")
    if name_column != NAME:
        log.info("%s: using column %r as the source name", path, name_column)
    named = [NAME if c == name_column else c for c in columns]
    with input_files(path):
        require_columns(pd.DataFrame(columns=named), required)
    return columns, name_column


def source_name_column(columns: Sequence[str]) -> str | None:
    """The column holding the source name (``name`` or an alias), if any."""
    for column in (NAME, *NAME_ALIASES):
        if column in columns:
            return column
    return None
