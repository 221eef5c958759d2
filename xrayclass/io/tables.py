"""Reading and writing tables and JSON artifacts.

The format follows the file extension: ``.csv``, ``.parquet``, and for catalog inputs
also VOTable (``.vot``, ``.xml``) and ``.fits``. Every problem with an input is an
:class:`InputError` naming the file in one line; every output is written to a temporary
file beside its destination and renamed into place, so a failed run leaves no partial file.
"""

import csv
import glob
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from xrayclass.constants import COLUMN_UNITS, FORMULA_STARTS
from xrayclass.exceptions import InputError, where
from xrayclass.io.files import require_regular_file
from xrayclass.text import one_line

__all__ = [
    "NO_ROWS",
    "OUTPUT_FORMATS",
    "PARQUET_ROW_GROUP",
    "PARSE_ERRORS",
    "BatchedTable",
    "parquet_columns",
    "parquet_options",
    "read_json",
    "read_table",
    "remove_stale_folders",
    "remove_stale_temporaries",
    "table_format",
    "temporary_folder",
    "temporary_space_failed",
    "write_atomic",
    "write_json",
    "write_outputs",
    "write_parquet",
    "write_parquet_batches",
    "write_table",
]

log = logging.getLogger(__name__)

TABLE_FORMATS = {
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".vot": "votable",
    ".xml": "votable",
    ".fits": "fits",
    ".fit": "fits",
}
#: Rows per Parquet row group in the files the stages write: a streamed reader never
#: decodes more than one group at a time.
PARQUET_ROW_GROUP = 131_072
#: What is said of a table without rows (after its file's name), by every reader and engine.
NO_ROWS = "the table has no rows"
#: Formats a stage may write (VOTable and FITS are accepted as catalog input only).
OUTPUT_FORMATS = ("csv", "parquet")
#: What the readers raise for a file they cannot parse (pandas' ParserError, pyarrow's
#: ArrowInvalid and astropy's VOTable errors are ValueErrors; a corrupt FITS file is an
#: OSError). Anything else is a bug, not bad input.
PARSE_ERRORS = (ValueError, OSError, pa.ArrowException)
#: Column pandas gives the unnamed index that ``DataFrame.to_csv`` writes by default
#: (the published pipeline's files carry one).
UNNAMED_INDEX = "Unnamed: 0"
#: Kinds of the engines' work folders in TMPDIR: stage 3's on-disk sort, the spilled stage-4 tables.
TEMPORARY_FOLDER_KINDS = ("sort", "spill")


@runtime_checkable
class BatchedTable(Protocol):
    """A table too large to hold, given as its rows in order, a DataFrame at a time."""

    def batches(self) -> Iterator[pd.DataFrame]:
        """The rows, in order (every batch with the columns of :meth:`empty`)."""
        ...

    def empty(self) -> pd.DataFrame:
        """The table's columns and types, without rows."""
        ...

    def __len__(self) -> int: ...


#: What :func:`write_outputs` writes: a table (CSV or Parquet by extension), one given a
#: batch at a time, a JSON document, bytes, or a function that writes the file it is given.
Content = pd.DataFrame | BatchedTable | Mapping[str, Any] | bytes | Callable[[Path], object]


def table_format(path: str | os.PathLike[str], allowed: Sequence[str] | None = None) -> str:
    """The format name of ``path`` from its extension; an :class:`InputError` if unknown or not ``allowed``."""
    suffix = Path(path).suffix.lower()
    fmt = TABLE_FORMATS.get(suffix)
    allowed = allowed or tuple(sorted(set(TABLE_FORMATS.values())))
    if fmt is None or fmt not in allowed:
        extensions = sorted(ext for ext, name in TABLE_FORMATS.items() if name in allowed)
        raise InputError(
            f"{path}: unknown table format {suffix or '(no extension)'!r}; use one of {', '.join(extensions)}"
        )
    return fmt


def read_table(
    path: str | os.PathLike[str],
    columns: Sequence[str] | None = None,
    allowed: Sequence[str] | None = None,
    allow_empty: bool = False,
) -> pd.DataFrame:
    """Read a table into a DataFrame, choosing the reader from the extension.

    Parameters
    ----------
    path : str or Path
    columns : sequence of str, optional
        Read only those of these columns the file has (VOTable and FITS are read whole,
        then cut down); missing ones are left for the caller's checks to name.
    allowed : sequence of str, optional
        Format names accepted (default: every format of ``TABLE_FORMATS``).
    allow_empty : bool
        Accept a table with columns but no rows (a stage-4 ambiguous table can be one).

    Returns
    -------
    pandas.DataFrame
        Without an unnamed CSV index column; VOTable FIELDs by ``name``, not ``ID``.

    Raises
    ------
    InputError
        Missing or unreadable file, unknown format, or a table with no rows.
    """
    path = Path(path)
    fmt = table_format(path, allowed)
    require_regular_file(path)
    try:
        if fmt == "csv":
            wanted = None if columns is None else {*columns, UNNAMED_INDEX}
            table = pd.read_csv(path, low_memory=False, usecols=None if wanted is None else wanted.__contains__)
        elif fmt == "parquet":
            present = set(parquet_columns(pq.read_schema(path), path))
            columns = None if columns is None else [c for c in columns if c in present]
            # One file read without pre-buffering (a local file), converted column by
            # column while Arrow's copy is freed, numbers shared rather than copied into
            # one 2-D block; Arrow's pages then go back to the system for the stage to use.
            arrow = pq.ParquetFile(path, pre_buffer=False).read(columns=columns, use_pandas_metadata=True)
            table = arrow.to_pandas(split_blocks=True, self_destruct=True)
            del arrow
            pa.default_memory_pool().release_unused()
        else:
            table = _read_with_astropy(path, fmt)
    except InputError:
        raise
    except pd.errors.EmptyDataError:
        raise InputError(f"{path}: the file is empty") from None
    except PARSE_ERRORS as exc:
        raise InputError(f"{path}: cannot read as {fmt}: {one_line(exc)}") from None
    if fmt == "csv":
        _check_csv_complete(path)
    if UNNAMED_INDEX in table.columns:
        table = table.drop(columns=UNNAMED_INDEX)
    if len(table) == 0 and not allow_empty:
        raise InputError(f"{path}: {NO_ROWS}")
    if columns is not None and fmt != "parquet":
        table = table[[c for c in columns if c in table.columns]]
    return table


def parquet_columns(schema: pa.Schema, path: str | os.PathLike[str]) -> list[str]:
    """The column names of a Parquet file's ``schema``, refused when one is given twice.

    Arrow writes two columns of one name, but no reader can pick one of them by name.
    """
    names = list(schema.names)
    if len(set(names)) < len(names):
        repeated = sorted({name for name in names if names.count(name) > 1})
        raise InputError(f"{path}: column {', '.join(map(repr, repeated))} appears more than once; rename or drop it")
    return names


def _check_csv_complete(path: str | os.PathLike[str]) -> None:
    """Raise if the CSV's last row is cut short (a copy that stopped mid-row), which pandas fills silently.

    A complete file ends with a newline; one that does not is checked field by field against the header.
    """
    with open(path, "rb") as handle:
        header = handle.readline()
        handle.seek(max(0, handle.seek(0, os.SEEK_END) - 65536))
        tail = handle.read()
    last = tail.rsplit(b"\n", 1)[-1]
    if not tail or tail.endswith(b"\n") or last == header.rstrip(b"\r\n"):
        return
    try:
        n_header = len(next(csv.reader([header.decode("utf-8", "replace")])))
        n_last = len(next(csv.reader([last.decode("utf-8", "replace")])))
    except (csv.Error, StopIteration):
        n_header, n_last = 1, 0
    if n_last != n_header:
        raise InputError(
            f"{path}: the last row has {n_last} of {n_header} fields and no end of line: the file looks cut short"
        )


def _read_with_astropy(path: str | os.PathLike[str], fmt: str) -> pd.DataFrame:
    import warnings

    from astropy.io.votable.exceptions import VOWarning
    from astropy.table import Table
    from astropy.units import UnitsWarning

    with warnings.catch_warnings():
        # Non-standard units and VOTable quirks that do not affect the values are not the user's problem.
        warnings.simplefilter("ignore", UnitsWarning)
        warnings.simplefilter("ignore", VOWarning)
        extra = {"use_names_over_ids": True} if fmt == "votable" else {}
        table = Table.read(path, format=fmt, **extra)
    convert_units(table, path)
    multidim = [name for name in table.colnames if len(table[name].shape) > 1]
    if multidim:
        log.warning("%s: skipping multidimensional columns %s", path, ", ".join(multidim))
        table.remove_columns(multidim)
    frame = table.to_pandas()
    # Byte strings (FITS) become text, so names compare equal whatever the source.
    for column in frame.columns:
        if frame[column].dtype == object and len(frame) and isinstance(frame[column].iloc[0], bytes):
            frame[column] = frame[column].str.decode("utf-8").str.strip()
    return frame


def convert_units(table: Any, path: str | os.PathLike[str] | None = None) -> None:
    """Bring the columns of an astropy ``table`` to the units of :data:`~xrayclass.constants.COLUMN_UNITS`, in place.

    A unit of the same kind is converted (and logged); one that cannot mean the expected
    quantity is an :class:`InputError`. Columns without a unit are left alone (most
    catalogs give none for positions). A right ascension in ``h`` is read as hours of angle.
    """
    import astropy.units as u

    for name in table.colnames:
        if name not in COLUMN_UNITS or table[name].unit is None or table[name].dtype.kind not in "fiu":
            continue
        unit, expected = table[name].unit, u.Unit(COLUMN_UNITS[name])
        if isinstance(unit, u.UnrecognizedUnit):
            # VOUnit, the VOTable standard, knows neither 'count/s' (the CSC's own) nor
            # 'hourangle'; astropy's own format knows both.
            unit = u.Unit(unit.to_string(), parse_strict="silent")
        if unit == u.hour and expected.physical_type == "angle":
            unit = u.hourangle
        equivalencies = u.temperature_energy() if expected.physical_type == "energy" else []
        try:
            scale = unit.to(expected, 1.0, equivalencies=equivalencies)
            linear = unit.to(expected, 0.0, equivalencies=equivalencies) == 0
        except (u.UnitsError, ValueError, TypeError):
            scale, linear = None, False
        if isinstance(unit, u.UnrecognizedUnit) or scale is None or not linear:
            wanted = f"'{expected}'" if expected != u.dimensionless_unscaled else "none (a pure number)"
            raise InputError(
                f"{where(path)}column '{name}' has unit '{table[name].unit}', which cannot be converted "
                f"to the expected unit: {wanted}"
            )
        if scale != 1.0:
            converted = table[name] * scale
            converted.unit = expected
            table[name] = converted
            log.info("%scolumn %r converted from %s to %s", where(path), name, unit, str(expected) or "a pure number")


# -- temporaries and what killed runs left --------------------------------------------------


def _temporary_prefix(path: str | os.PathLike[str]) -> str:
    return f".{Path(path).stem}."


def temporary_path(path: str | os.PathLike[str]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # The process id in the name tells a temporary left by a killed run (its process is
    # gone) from one a concurrent run is still writing.
    handle, name = tempfile.mkstemp(
        prefix=f"{_temporary_prefix(path)}{os.getpid()}-", suffix=f".tmp{path.suffix}", dir=path.parent
    )
    os.close(handle)
    umask = os.umask(0)  # mkstemp makes the file private; outputs get the usual permissions
    os.umask(umask)
    os.chmod(name, 0o666 & ~umask)
    return Path(name)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def remove_stale_temporaries(path: str | os.PathLike[str]) -> list[Path]:
    """Remove the temporaries ``.<stem>.<pid>-<random>.tmp<suffix>`` that killed runs left beside ``path``.

    One whose process still runs belongs to a concurrent run and is left alone. Returns what was removed.
    """
    path = Path(path)
    return _remove_stale(path.parent, _temporary_prefix(path), f".tmp{path.suffix}", str(path))


def temporary_folder(kind: str, directory: str | os.PathLike[str] | None = None) -> Path:
    """A new work folder ``.xrayclass-<kind>-<pid>-<random>`` in ``directory`` (default TMPDIR).

    A folder that cannot be made is an :class:`InputError` (``cannot write``), as a full disk is for an output.
    """
    if kind not in TEMPORARY_FOLDER_KINDS:
        raise ValueError(f"unknown kind of temporary folder {kind!r}")
    try:
        return Path(tempfile.mkdtemp(prefix=f".xrayclass-{kind}-{os.getpid()}-", dir=directory))
    except OSError as exc:
        raise temporary_space_failed(directory or tempfile.gettempdir(), exc) from None


def remove_stale_folders(directory: str | os.PathLike[str] | None = None) -> list[Path]:
    """Remove the engines' work folders that killed runs left in ``directory`` (default TMPDIR); return them.

    Those of a process that still runs are left alone.
    """
    where_to = Path(directory or tempfile.gettempdir())
    purpose = f"the temporary space {where_to}"
    return [
        path for kind in TEMPORARY_FOLDER_KINDS for path in _remove_stale(where_to, f".xrayclass-{kind}-", "", purpose)
    ]


def _remove_stale(directory: Path, prefix: str, suffix: str, purpose: str) -> list[Path]:
    """Remove ``<prefix><pid>-<random><suffix>`` in ``directory`` (files or folders) of dead processes."""
    if not directory.is_dir():
        return []
    removed = []
    for candidate in directory.glob(f"{glob.escape(prefix)}*{glob.escape(suffix)}"):
        middle = candidate.name[len(prefix) : len(candidate.name) - len(suffix)]
        pid_text = middle.split("-", 1)[0] if "-" in middle else ""
        if pid_text.isdigit() and int(pid_text) != os.getpid() and _process_alive(int(pid_text)):
            log.warning("%s: a run with process id %s is writing %s; left alone", candidate, pid_text, purpose)
            continue
        try:
            if candidate.is_dir() and not candidate.is_symlink():
                size = sum(f.stat().st_size for f in candidate.rglob("*") if f.is_file())
                shutil.rmtree(candidate)
            else:
                size = candidate.stat().st_size
                candidate.unlink()
        except FileNotFoundError:
            continue
        except OSError as exc:
            log.warning("%s: cannot remove this leftover of an interrupted run: %s", candidate, exc.strerror)
            continue
        log.warning("removed %s (%s bytes), left by an interrupted run", candidate, f"{size:,}")
        removed.append(candidate)
    return removed


def write_failed(path: str | os.PathLike[str] | None, exc: OSError) -> InputError:
    """An operating-system error while writing (disk full, no permission) as one line."""
    return InputError(f"{path}: cannot write: {exc.strerror or exc}")


def temporary_space_failed(path: str | os.PathLike[str], exc: OSError) -> InputError:
    """:func:`write_failed` for the engines' temporary space, saying how to give it more room."""
    return InputError(f"{write_failed(path, exc)} (temporary space: set TMPDIR to a folder on a larger disk)")


# -- writing ---------------------------------------------------------------------------------


def write_atomic(path: str | os.PathLike[str], write: Callable[[Path], object]) -> Path:
    """Call ``write(temporary_path)``, then rename the result onto ``path``.

    The temporary sits in the destination directory, so the rename is atomic and a failed
    write leaves neither a partial file nor the temporary.
    """
    return write_outputs([(write, path)])[0]


def write_outputs(outputs: Iterable[tuple[Content, str | os.PathLike[str]]]) -> list[Path]:
    """Write several outputs so that either all of them appear or none does.

    ``outputs`` are ``(content, path)`` pairs (see :data:`Content`). Every file is first
    written to a temporary beside its destination, one after the other on the calling
    thread, so that a signal or Ctrl-C is acted on between two steps of a write; only when
    all writes succeeded are they renamed into place. The temporaries never outlive the call.
    """
    writers = [(_writer(content, path), Path(path)) for content, path in outputs]
    temporaries: list[Path] = []
    current = None
    try:
        for write, path in writers:
            current = path
            temporaries.append(temporary_path(path))
            write(temporaries[-1])
        for temporary, (_, path) in zip(temporaries, writers, strict=True):
            current = path
            os.replace(temporary, path)
    except OSError as exc:
        raise write_failed(current, exc) from None
    finally:
        for temporary in temporaries:
            temporary.unlink(missing_ok=True)
    return [path for _, path in writers]


def write_table(table: pd.DataFrame, path: str | os.PathLike[str], na_rep: str = "") -> Path:
    """Write a DataFrame as CSV or Parquet (by extension), atomically, without index.

    ``na_rep`` is how CSV shows a missing value (``"NaN"`` for a metric that is undefined rather than unknown).
    """
    return write_atomic(path, _writer(table, path, na_rep))


def write_json(document: Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write a JSON document atomically, indented for reading."""
    return write_atomic(path, _writer(document, path))


def _writer(content: Content, path: str | os.PathLike[str], na_rep: str = "") -> Callable[[Path], object]:
    """The function that writes ``content`` to the temporary it is given."""
    if callable(content):
        return content
    if isinstance(content, bytes):
        return lambda temporary: temporary.write_bytes(content)
    if isinstance(content, BatchedTable):
        return _batched_writer(content, path)
    if not isinstance(content, pd.DataFrame):

        def dump(temporary: Path) -> None:
            with open(temporary, "w", encoding="utf-8") as handle:
                json.dump(content, handle, indent=1, allow_nan=False)
                handle.write("\n")

        return dump
    if table_format(path, OUTPUT_FORMATS) == "parquet":
        return lambda temporary: write_parquet(content, temporary)

    def write_csv(temporary: Path) -> None:
        content.to_csv(temporary, index=False, na_rep=na_rep)
        _warn_formulas(path, *formula_like(content))

    return write_csv


def formula_like(table: pd.DataFrame) -> tuple[int, str | None]:
    """How many text cells of ``table`` begin like a spreadsheet formula, and the first one."""
    count, first = 0, None
    for column in table.columns:
        values = table[column]
        if not (pd.api.types.is_object_dtype(values.dtype) or pd.api.types.is_string_dtype(values.dtype)):
            continue  # numbers are written as numbers, whatever their sign
        try:
            # Cells that are not text (a number in an object column) give NA: not counted.
            starts = values.str.startswith(FORMULA_STARTS, na=False).to_numpy(dtype=bool)
        except AttributeError:  # an object column without any text
            continue
        if starts.any():
            count += int(starts.sum())
            first = first if first is not None else str(values.iloc[int(np.flatnonzero(starts)[0])])
    return count, first


def _warn_formulas(path: str | os.PathLike[str], count: int, first: str | None) -> None:
    """One line for the CSV cells a spreadsheet could run as formulas.

    They are written unchanged: quoting them, as OWASP advises for files made for
    spreadsheets, would change source names for every other reader (TOPCAT, pandas, the
    next stage), and a leading minus also starts numbers and real names.
    """
    if count:
        log.warning(
            "%s: %s text values begin with =, +, -, @, a tab or a carriage return (first %r); written "
            "unchanged, but a spreadsheet may run them as formulas: import the file as text, not by opening it",
            path,
            f"{count:,}",
            first,
        )


def _batched_writer(table: BatchedTable, path: str | os.PathLike[str]) -> Callable[[Path], object]:
    """Write ``table`` batch by batch: the same file as writing all of its rows at once."""
    if table_format(path, OUTPUT_FORMATS) == "parquet":
        return lambda temporary: write_parquet_batches(table.batches(), temporary, table.empty())

    def write_csv(temporary: Path) -> None:
        count, first = 0, None
        with open(temporary, "w", encoding="utf-8", newline="") as handle:
            header = True
            for batch in table.batches():
                batch.to_csv(handle, index=False, header=header, na_rep="")
                header = False
                more, example = formula_like(batch)
                count, first = count + more, first if first is not None else example
            if header:
                table.empty().to_csv(handle, index=False, na_rep="")
        _warn_formulas(path, count, first)

    return write_csv


def parquet_options(schema: pa.Schema) -> dict[str, Any]:
    """How the stages write Parquet: dictionary encoding for the text columns only.

    Measured values never repeat, so a dictionary only costs time; names and classes repeat.
    """
    text = [field.name for field in schema if pa.types.is_string(field.type) or pa.types.is_large_string(field.type)]
    return {"use_dictionary": text}


def write_parquet(table: pd.DataFrame, path: str | os.PathLike[str]) -> None:
    """Write a DataFrame as Parquet (no index) with :func:`parquet_options` and row groups of ``PARQUET_ROW_GROUP``."""
    write_parquet_batches([table], path, table)


def write_parquet_batches(batches: Iterable[pd.DataFrame], path: str | os.PathLike[str], like: pd.DataFrame) -> None:
    """Write the rows of ``batches`` as the file :func:`write_parquet` writes for all of them at once.

    Row groups of ``PARQUET_ROW_GROUP`` rows whatever the batches' sizes, each converted
    on its own (no Arrow copy of the whole table); the schema is that of ``like`` (the
    whole table, or one with its columns and types).
    """
    schema = pa.Schema.from_pandas(like, preserve_index=False)
    rows = pa.Table.from_pandas(like.iloc[:0], schema=schema, preserve_index=False)
    written = False
    with pq.ParquetWriter(path, schema, **parquet_options(schema)) as writer:
        for batch in batches:
            rows = pa.concat_tables([rows, pa.Table.from_pandas(batch, schema=schema, preserve_index=False)])
            while len(rows) >= PARQUET_ROW_GROUP:
                # One chunk per column: the writer cuts pages where a column's chunks end,
                # so the bytes would otherwise depend on how the rows were batched.
                writer.write_table(rows.slice(0, PARQUET_ROW_GROUP).combine_chunks())
                rows, written = rows.slice(PARQUET_ROW_GROUP), True
        if len(rows) or not written:
            writer.write_table(rows.combine_chunks())


def read_json(path: str | os.PathLike[str]) -> Any:
    """Read a JSON document, raising :class:`InputError` with the file name on failure."""
    path = Path(path)
    require_regular_file(path)
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not a valid JSON file: {one_line(exc)}") from None
