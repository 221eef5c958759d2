"""Reading and writing tables and JSON artifacts.

The format follows the file extension: ``.csv``, ``.parquet``, and for catalog inputs
also VOTable (``.vot``, ``.xml``) and ``.fits``. Every problem with an input becomes a
:class:`InputError` whose message names the file and says what is wrong in one line;
every output is written to a temporary file beside its destination and renamed into
place, so a failed run never leaves a partial file behind.
"""

import csv
import glob
import json
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar, runtime_checkable

import numpy as np
import pandas as pd
import pyarrow

from xrayclass.constants import FORMULA_STARTS, NAME, NAME_ALIASES
from xrayclass.exceptions import InputError, where
from xrayclass.io.files import require_regular_file
from xrayclass.text import one_line

__all__ = [
    "FORMULA_STARTS",
    "NO_ROWS",
    "OUTPUT_FORMATS",
    "PARQUET_ROW_GROUP",
    "PARSE_ERRORS",
    "TABLE_FORMATS",
    "BatchedTable",
    "canonical_names",
    "convert_units",
    "formula_like",
    "parquet_columns",
    "parquet_options",
    "read_json",
    "read_table",
    "remove_stale_folders",
    "remove_stale_temporaries",
    "require_columns",
    "require_numeric",
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
#: Rows per Parquet row group in the files the stages write.
PARQUET_ROW_GROUP = 131_072
#: What is said of a table without rows (after its file's name), by every reader and engine.
NO_ROWS = "the table has no rows"
#: Formats a stage may write (VOTable and FITS are accepted as catalog input only).
OUTPUT_FORMATS = ("csv", "parquet")

#: Column pandas gives the unnamed index that ``DataFrame.to_csv`` writes by default
#: (the published pipeline's files carry one).
UNNAMED_INDEX = "Unnamed: 0"


def table_format(path: str | os.PathLike[str], allowed: Sequence[str] | None = None) -> str:
    """Return the format name of ``path`` from its extension.

    Raises
    ------
    InputError
        If the extension is not a known table format (or not in ``allowed``).
    """
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
        The table file.
    columns : sequence of str, optional
        Read only those of these columns the file has (CSV and Parquet read nothing
        else; VOTable and FITS are read whole and then cut down). Missing ones are
        left for the caller's checks to name.
    allowed : sequence of str, optional
        Format names accepted here (default: every format in ``TABLE_FORMATS``).
    allow_empty : bool
        Accept a table with columns but no rows (a stage-4 ambiguous table can be one).

    Returns
    -------
    pandas.DataFrame
        The table, with an unnamed CSV index column dropped. VOTable FIELDs are read
        by their ``name`` attribute, not their ``ID``.

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
            wanted = None if columns is None else set(columns) | {UNNAMED_INDEX}
            table = pd.read_csv(
                path, low_memory=False, usecols=None if wanted is None else (lambda name: name in wanted)
            )
        elif fmt == "parquet":
            import pyarrow.parquet

            present = parquet_columns(pyarrow.parquet.read_schema(path), path)
            if columns is not None:
                columns = [c for c in columns if c in set(present)]

            # Read as one file (each column one array; pandas' reader goes through
            # pyarrow's datasets, whose batches then have to be joined: 0.3-0.5 s of a
            # 1M-row, 68-column stage-2 table), without pre-buffering every column chunk
            # (a local file), then converted column by column, freeing Arrow's copy as it
            # goes, numbers without nulls shared with Arrow rather than copied into one
            # 2-D block: 0.2 s and a 0.85 GB peak, against 1.1-1.3 s and 1.2 GB.
            arrow = pyarrow.parquet.ParquetFile(path, pre_buffer=False).read(
                columns=list(columns) if columns is not None else None, use_pandas_metadata=True
            )
            table = arrow.to_pandas(split_blocks=True, self_destruct=True)
            del arrow
            import pyarrow

            # Arrow's allocator keeps the pages it decoded into for later; nothing of
            # Arrow's comes next, so they go back to the system for the stage to use.
            pyarrow.default_memory_pool().release_unused()
        else:
            table = _read_with_astropy(path, fmt)
    except InputError:
        raise
    except pd.errors.EmptyDataError:
        raise InputError(f"{path}: the file is empty") from None
    except PARSE_ERRORS as exc:  # a parser failure is the input's problem, said once
        raise InputError(f"{path}: cannot read as {fmt}: {one_line(exc)}") from None
    if fmt == "csv":
        _check_csv_complete(path)
    if UNNAMED_INDEX in table.columns:
        table = table.drop(columns=UNNAMED_INDEX)
    if len(table) == 0 and not allow_empty:
        raise InputError(f"{path}: {NO_ROWS}")
    if columns is not None and fmt != "parquet":
        kept = [c for c in columns if c in table.columns]
        table = table[kept]
    return table


def parquet_columns(schema: pyarrow.Schema, path: str | os.PathLike[str]) -> list[str]:
    """The column names of a Parquet file's ``schema``, refused when one is given twice.

    Arrow writes a table with two columns of one name, but no reader can pick one of
    them by name (pandas makes a frame whose column is a table, Arrow a KeyError).
    """
    names = list(schema.names)
    if len(set(names)) < len(names):
        repeated = sorted({name for name in names if names.count(name) > 1})
        raise InputError(f"{path}: column {', '.join(map(repr, repeated))} appears more than once; rename or drop it")
    return names


#: What the readers raise for a file they cannot parse: pandas' ParserError and
#: UnicodeDecodeError, pyarrow's ArrowInvalid and astropy's VOTable errors are
#: ValueErrors; a corrupt FITS file or an unreadable one is an OSError; pyarrow raises
#: other ArrowExceptions for types it cannot convert. Anything else is a bug, not bad input.
PARSE_ERRORS = (ValueError, OSError, pyarrow.ArrowException)


def _check_csv_complete(path: str | os.PathLike[str]) -> None:
    """Raise if the CSV's last row is cut short (a copy or download that stopped mid-row).

    pandas fills a short last row with missing values without a word. A complete file
    ends with a newline; one that does not is checked field by field against the header.
    """
    with open(path, "rb") as handle:
        header = handle.readline()
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        handle.seek(max(0, size - 65536))
        tail = handle.read()
    if tail.endswith(b"\n") or not tail:
        return
    last = tail.rsplit(b"\n", 1)[-1]
    if last == header.rstrip(b"\r\n"):
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
        # Catalog files often carry non-standard units or VOTable quirks that do not
        # affect the values; they are not the user's problem.
        warnings.simplefilter("ignore", UnitsWarning)
        warnings.simplefilter("ignore", VOWarning)
        if fmt == "votable":
            table = Table.read(path, format="votable", use_names_over_ids=True)
        else:
            table = Table.read(path, format="fits")
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

    A column with a unit of the same kind is converted (and the conversion logged);
    one whose unit cannot mean the expected quantity is an :class:`InputError` naming
    the column, its unit and the expected one. Columns without a unit are left alone:
    most catalogs give none for positions, and the pipeline's units are the CSC's.
    A right ascension in ``h`` (astropy's hour of time) is read as hours of angle.
    """
    import astropy.units as u

    from xrayclass.constants import COLUMN_UNITS

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


def canonical_names(table: pd.DataFrame, path: str | os.PathLike[str] | None = None) -> pd.DataFrame:
    """Return ``table`` with its source-name column called ``name``.

    TOPCAT's crossmatch renames ``name`` to ``name_1``; either spelling is accepted.
    """
    if NAME in table.columns:
        return table
    for alias in NAME_ALIASES:
        if alias in table.columns:
            log.info("%susing column %r as the source name", where(path), alias)
            return table.rename(columns={alias: NAME})
    raise InputError(f"{where(path)}missing required columns: {NAME} (or {', '.join(NAME_ALIASES)})")


def require_columns(table: pd.DataFrame, columns: Iterable[str], path: str | os.PathLike[str] | None = None) -> None:
    """Raise :class:`InputError` listing every column of ``columns`` not in ``table``."""
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise InputError(f"{where(path)}missing required columns: {', '.join(missing)}")


def require_numeric(
    table: pd.DataFrame, columns: Iterable[str], path: str | os.PathLike[str] | None = None
) -> pd.DataFrame:
    """Return ``table`` with ``columns`` numeric, or say which value is not a number.

    Numeric columns are left as they are (integers stay integers); text columns are
    converted. Empty cells are missing values (NaN), not errors; text such as
    ``'abc'`` is an error.
    """
    converted = {}
    for column in columns:
        values = table[column]
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            continue
        blank = values.isna() | (values.astype(str).str.strip() == "")
        numbers = pd.to_numeric(values.where(~blank), errors="coerce")
        bad = numbers.isna() & ~blank
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise InputError(
                f"{where(path)}column {column!r} has non-numeric values "
                f"({int(bad.sum())} rows), e.g. {values.iloc[row]!r} in data row {row + 1}"
            )
        converted[column] = numbers
    return table.assign(**converted) if converted else table


def _temporary_prefix(path: str | os.PathLike[str]) -> str:
    return f".{Path(path).stem}."


def temporary_path(path: str | os.PathLike[str]) -> Path:
    """A new empty temporary file beside ``path`` (its folder made), to be renamed onto it when complete."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # The process id in the name lets a later run tell a temporary left by a killed run
    # (its process is gone) from one a concurrent run is still writing.
    handle, name = tempfile.mkstemp(
        prefix=f"{_temporary_prefix(path)}{os.getpid()}-", suffix=f".tmp{path.suffix}", dir=path.parent
    )
    os.close(handle)
    # mkstemp makes the file private; outputs get the usual permissions (umask).
    umask = os.umask(0)
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
    """Remove the temporaries a killed run left beside ``path``; return what was removed.

    A temporary is ``.<stem>.<pid>-<random>.tmp<suffix>`` (older versions wrote no pid).
    One whose process still runs belongs to a concurrent run and is left alone.
    """
    path = Path(path)
    return _remove_stale(path.parent, _temporary_prefix(path), f".tmp{path.suffix}", str(path))


#: Kinds of the engines' work folders in the temporary directory (TMPDIR): the on-disk
#: sort of stage 3 and the spilled stage-4 tables.
TEMPORARY_FOLDER_KINDS = ("sort", "spill")


def _folder_prefix(kind: str) -> str:
    return f".xrayclass-{kind}-"


def temporary_folder(kind: str, directory: str | os.PathLike[str] | None = None) -> Path:
    """A new work folder ``.xrayclass-<kind>-<pid>-<random>`` in ``directory`` (default TMPDIR).

    The process id lets a later run remove the folder when its run was killed
    (:func:`remove_stale_folders`). A folder that cannot be made is an :class:`InputError`
    (``cannot write``), as a full disk is for an output.
    """
    if kind not in TEMPORARY_FOLDER_KINDS:
        raise ValueError(f"unknown kind of temporary folder {kind!r}")
    try:
        return Path(tempfile.mkdtemp(prefix=f"{_folder_prefix(kind)}{os.getpid()}-", dir=directory))
    except OSError as exc:
        raise temporary_space_failed(directory or tempfile.gettempdir(), exc) from None


def remove_stale_folders(directory: str | os.PathLike[str] | None = None) -> list[Path]:
    """Remove the engines' work folders that killed runs left in ``directory`` (default TMPDIR).

    Those of a process that still runs are left alone; those without a process id
    (older versions) are removed. Returns what was removed.
    """
    where_to = Path(directory or tempfile.gettempdir())
    removed = []
    for kind in TEMPORARY_FOLDER_KINDS:
        removed += _remove_stale(where_to, _folder_prefix(kind), "", f"the temporary space {where_to}")
    return removed


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
    failed = write_failed(path, exc)
    return InputError(f"{failed} (temporary space: set TMPDIR to a folder on a larger disk)")


def write_atomic(path: str | os.PathLike[str], write: Callable[[Path], object]) -> Path:
    """Call ``write(temporary_path)``, then rename the result onto ``path``.

    The temporary file sits in the destination directory, so the rename is atomic and
    an interrupted or failed write leaves neither a partial file nor the temporary.
    """
    return _write_all([(write, Path(path))])[0]


def _write_all(writers: Sequence[tuple[Callable[[Path], object], Path]]) -> list[Path]:
    """Call each ``write(temporary)``; rename the temporaries into place only when all succeeded.

    Several outputs are written at once, each on its own thread (Arrow's Parquet writer
    and the file writes release the GIL: a stage's table, model and side table take the
    time of the largest). The threads are daemons, so a run stopped by a signal exits
    at once, its temporaries removed, without waiting for them.
    """
    temporaries: list[Path] = []
    current = None
    try:
        for _, path in writers:
            current = path
            temporaries.append(temporary_path(path))
        failures: list[BaseException | None] = [None] * len(writers)

        def run(k: int) -> None:
            try:
                writers[k][0](temporaries[k])
            except BaseException as exc:  # noqa: BLE001 - re-raised below, on the calling thread
                failures[k] = exc

        # Every write on a thread, none on the calling one: the kernel hands a process's
        # signal to any of its threads, and only the main thread acts on it, when it runs
        # Python. Were it writing itself (in C, or sleeping in a slow file system) while a
        # writer thread took the signal, Ctrl-C would wait for its write to end (seen in CI).
        threads = [
            threading.Thread(target=run, args=(k,), name=f"xrayclass-write-{k}", daemon=True)
            for k in range(len(writers))
        ]
        for thread in threads:
            thread.start()
        # Waited for unless a signal or Ctrl-C stops the run (raised here, not caught):
        # their temporaries are only removed once nothing writes them any more.
        for thread in threads:
            # In short waits, for the same reason: a join without a timeout would keep the
            # main thread blocked.
            while thread.is_alive():
                thread.join(0.1)
        for failure, (_, path) in zip(failures, writers, strict=True):
            if failure is not None:
                current = path
                raise failure
        for temporary, (_, path) in zip(temporaries, writers, strict=False):
            current = path
            os.replace(temporary, path)
    except OSError as exc:
        raise write_failed(current, exc) from None
    finally:
        for temporary in temporaries:
            temporary.unlink(missing_ok=True)
    return [path for _, path in writers]


def formula_like(table: pd.DataFrame) -> tuple[int, str | None]:
    """How many text cells of ``table`` begin like a spreadsheet formula, and the first one.

    Only text columns: numbers are written as numbers, whatever their sign.
    """
    count, first = 0, None
    for column in table.columns:
        values = table[column]
        if not (pd.api.types.is_object_dtype(values.dtype) or pd.api.types.is_string_dtype(values.dtype)):
            continue
        try:
            # Cells that are not text (a number in an object column) give NA: not counted.
            starts = values.str.startswith(FORMULA_STARTS, na=False).to_numpy(dtype=bool)
        except AttributeError:  # an object column without any text
            continue
        if starts.any():
            count += int(starts.sum())
            if first is None:
                first = str(values.iloc[int(np.flatnonzero(starts)[0])])
    return count, first


def _warn_formulas(path: str | os.PathLike[str], count: int, first: str | None) -> None:
    """One line for the CSV cells a spreadsheet could run as formulas; they are written unchanged.

    Prefixing them with a quote, as OWASP advises for files made for spreadsheets, would
    change source names for every other reader (TOPCAT, pandas, the next stage, a
    crossmatch against the same names), and a leading minus also starts numbers and
    real names; so the values stay as they are and the user is told.
    """
    if count:
        log.warning(
            "%s: %s text values begin with =, +, -, @, a tab or a carriage return (first %r); written "
            "unchanged, but a spreadsheet may run them as formulas: import the file as text, not by opening it",
            path,
            f"{count:,}",
            first,
        )


def _table_writer(table: pd.DataFrame, path: str | os.PathLike[str], na_rep: str = "") -> Callable[[Path], object]:
    fmt = table_format(path, OUTPUT_FORMATS)
    if fmt == "csv":

        def write(tmp: Path) -> None:
            table.to_csv(tmp, index=False, na_rep=na_rep)
            _warn_formulas(path, *formula_like(table))

        return write
    return lambda tmp: write_parquet(table, tmp)


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


class JoinedRows:
    """A :class:`BatchedTable`: the rows of ``front``, each joined to the row of ``others``
    at its position ``rows``, with the columns in the order ``columns``.

    ``others`` is a DataFrame, or a function that reads one: called when the table is
    first written, so that columns left in a file meanwhile take memory only then (the
    command line's stage 3 reads its input's pass-through columns this way).
    """

    def __init__(
        self,
        front: pd.DataFrame,
        others: pd.DataFrame | Callable[[], pd.DataFrame],
        rows: np.ndarray,
        columns: Sequence[str],
        batch_rows: int = PARQUET_ROW_GROUP,
    ):
        if len(rows) != len(front):
            raise ValueError(f"{len(rows)} row positions for {len(front)} rows")
        self.front, self.rows, self.columns, self.batch_rows = front, np.asarray(rows), list(columns), batch_rows
        self._others = others

    def _other_columns(self) -> pd.DataFrame:
        if callable(self._others):
            self._others = self._others()
        return self._others

    def _joined(self, start: int, stop: int) -> pd.DataFrame:
        joined = pd.concat(
            [
                self.front.iloc[start:stop].reset_index(drop=True),
                self._other_columns().take(self.rows[start:stop]).reset_index(drop=True),
            ],
            axis=1,
        )
        return joined[self.columns]

    def __len__(self) -> int:
        return len(self.front)

    def empty(self) -> pd.DataFrame:
        return self._joined(0, 0)

    def batches(self) -> Iterator[pd.DataFrame]:
        for start in range(0, len(self.front), self.batch_rows):
            yield self._joined(start, start + self.batch_rows)


def _batched_writer(table: BatchedTable, path: str | os.PathLike[str]) -> Callable[[Path], object]:
    """Write ``table`` batch by batch: the same file as writing all of its rows at once."""
    fmt = table_format(path, OUTPUT_FORMATS)

    def write(tmp: Path) -> None:
        if fmt == "parquet":
            write_parquet_batches(table.batches(), tmp, table.empty())
            return
        # What DataFrame.to_csv(path) writes, a batch at a time (one header).
        count, first = 0, None
        with open(tmp, "w", encoding="utf-8", newline="") as handle:
            header = True
            for batch in table.batches():
                batch.to_csv(handle, index=False, header=header, na_rep="")
                header = False
                more, example = formula_like(batch)
                count, first = count + more, first if first is not None else example
            if header:
                table.empty().to_csv(handle, index=False, na_rep="")
        _warn_formulas(path, count, first)

    return write


def parquet_options(schema: pyarrow.Schema) -> dict[str, Any]:
    """How the stages write Parquet: dictionary encoding for the text columns only.

    pyarrow dictionary-encodes every column by default; on measured values (floats
    that never repeat) that only costs time, and reading such a column back was 7x
    slower (1.9 s against 0.25 s for a 1M-row stage table). Names and classes repeat,
    so they keep it.
    """
    import pyarrow as pa

    text = [field.name for field in schema if pa.types.is_string(field.type) or pa.types.is_large_string(field.type)]
    return {"use_dictionary": text}


def write_parquet(table: pd.DataFrame, path: str | os.PathLike[str]) -> None:
    """Write a DataFrame as Parquet (no index) with :func:`parquet_options`.

    Row groups are of bounded size, so that a streamed reader (--engine streaming,
    Dask) never has to decode more than one group of rows at a time.
    """
    write_parquet_batches([table], path, table)


def write_parquet_batches(batches: Iterable[pd.DataFrame], path: str | os.PathLike[str], like: pd.DataFrame) -> None:
    """Write the rows of ``batches`` as one Parquet file, the file :func:`write_parquet`
    writes for all of them at once.

    Row groups of ``PARQUET_ROW_GROUP`` rows whatever the batches' sizes; the schema is
    that of ``like`` (the whole table, or one with its columns and types).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.Schema.from_pandas(like, preserve_index=False)

    def row_groups() -> Iterator[pa.Table]:
        # One row group converted at a time: the same file as converting the whole table
        # first, without holding an Arrow copy of all of it.
        pending: list[pd.DataFrame] = []
        n_pending = 0
        written = False

        def group(rows: int) -> pa.Table:
            nonlocal pending, n_pending
            frame = pending[0] if len(pending) == 1 else pd.concat(pending, ignore_index=True)
            converted = pa.Table.from_pandas(frame.iloc[:rows], schema=schema, preserve_index=False)
            pending = [frame.iloc[rows:]] if rows < len(frame) else []
            n_pending -= rows
            # One chunk per column: the writer cuts pages where a column's chunks end, so
            # the bytes would depend on how the rows were batched before.
            return converted.combine_chunks()

        for batch in batches:
            if len(batch):
                pending.append(batch)
                n_pending += len(batch)
            while n_pending >= PARQUET_ROW_GROUP:
                written = True
                yield group(PARQUET_ROW_GROUP)
        if n_pending:
            yield group(n_pending)
        elif not written:
            yield pa.Table.from_pandas(like.iloc[:0], schema=schema, preserve_index=False)

    with pq.ParquetWriter(path, schema, **parquet_options(schema)) as writer:
        # The next group is made (its batches gathered, converted to Arrow) while Arrow
        # encodes this one, which it does without the GIL.
        for table in made_ahead(row_groups(), name="xrayclass-row-groups"):
            writer.write_table(table)


T = TypeVar("T")


def made_ahead(items: Iterator[T], name: str = "xrayclass-ahead") -> Iterator[T]:
    """The items of ``items``, each made on another thread while the caller uses the one before.

    At most two items exist at a time: the one the caller has and the next. An error
    raised while making an item is raised here, in its place. The thread is a daemon
    (a run stopped by a signal does not wait for it), and the caller waits in short
    steps, so that a signal the kernel hands to that thread is acted on at once.
    """
    import queue

    made: queue.Queue[tuple[bool, Any]] = queue.Queue()
    turns = threading.Semaphore(2)  # an item is made only when fewer than two exist
    stop = threading.Event()

    def make() -> None:
        try:
            while True:
                while not turns.acquire(timeout=0.1):
                    if stop.is_set():
                        return
                if stop.is_set():
                    return
                try:
                    item = next(items)
                except StopIteration:
                    made.put((False, None))
                    return
                made.put((True, item))
                del item
        except BaseException as exc:  # noqa: BLE001 - raised again on the caller's thread
            made.put((False, exc))

    thread = threading.Thread(target=make, name=name, daemon=True)
    thread.start()
    try:
        while True:
            try:
                more, item = made.get(timeout=0.1)
            except queue.Empty:
                continue
            if not more:
                if item is not None:
                    raise item
                return
            yield item
            del item
            turns.release()
    finally:
        stop.set()


def _json_writer(document: Mapping[str, Any]) -> Callable[[Path], None]:
    def dump(tmp: Path) -> None:
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(document, handle, indent=1, allow_nan=False)
            handle.write("\n")

    return dump


def write_table(table: pd.DataFrame, path: str | os.PathLike[str], na_rep: str = "") -> Path:
    """Write a DataFrame as CSV or Parquet (by extension), atomically, without index.

    ``na_rep`` is how CSV shows a missing value (e.g. ``"NaN"`` for a metric that is
    undefined rather than unknown).
    """
    return write_atomic(path, _table_writer(table, path, na_rep))


def write_json(document: Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write a JSON document atomically, indented for reading."""
    return write_atomic(path, _json_writer(document))


def write_outputs(
    outputs: Iterable[tuple[pd.DataFrame | BatchedTable | Mapping[str, Any] | bytes, str | os.PathLike[str]]],
) -> list[Path]:
    """Write several outputs so that either all of them appear or none does.

    ``outputs`` is a sequence of ``(content, path)``: a DataFrame (CSV or Parquet by
    extension), a :class:`BatchedTable` (the same, written a batch at a time), a
    JSON-ready dict, or bytes (a rendered figure) written as they are. Every file is first written to a temporary beside
    its destination; only when all writes succeeded are they renamed into place.
    """
    return _write_all([(_writer(content, path), Path(path)) for content, path in outputs])


def _writer(
    content: pd.DataFrame | BatchedTable | Mapping[str, Any] | bytes, path: str | os.PathLike[str]
) -> Callable[[Path], object]:
    if isinstance(content, bytes):
        return lambda temporary: Path(temporary).write_bytes(content)
    if isinstance(content, pd.DataFrame):
        return _table_writer(content, path)
    if isinstance(content, BatchedTable):
        return _batched_writer(content, path)
    return _json_writer(content)


def read_json(path: str | os.PathLike[str]) -> Any:
    """Read a JSON document, raising :class:`InputError` with the file name on failure."""
    path = Path(path)
    require_regular_file(path)
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not a valid JSON file: {one_line(exc)}") from None
