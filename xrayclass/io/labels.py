"""Reading an astronomer's ``labels.csv`` files (``classification.py --labels``).

The checks and the rule that the latest label wins are science
(:mod:`xrayclass.core.labels`); this module reads the files, names them in the
messages and records each one's hash for ``classifier.json``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from xrayclass.core.labels import checked_labels, latest_labels
from xrayclass.exceptions import InputError, input_files
from xrayclass.io.files import require_regular_file
from xrayclass.text import one_line

__all__ = ["file_sha256", "read_labels"]


def file_sha256(path: str | os.PathLike[str]) -> str:
    """The SHA-256 of a file's bytes, read a megabyte at a time."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_labels(paths: Sequence[str | os.PathLike[str]]) -> tuple[pd.DataFrame, list[dict]]:
    """The labels of one or more ``labels.csv`` files, one row per source.

    Returns the labels and, per file, its path, sha256 and number of rows. Raises
    :class:`InputError` naming the file (and the line) for a missing file or column, a
    FIFO, device or directory in place of a file, an unknown class, an empty name or a
    time that is not an ISO 8601 time.
    """
    tables, files = [], []
    for path in map(Path, paths):
        if not path.exists():
            raise InputError(f"{path}: labels file not found")
        require_regular_file(path)
        try:
            table = pd.read_csv(path, dtype=str, keep_default_na=False)
        except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
            raise InputError(f"{path}: not a labels CSV ({one_line(exc)})") from None
        with input_files(path):
            tables.append(checked_labels(table))
        files.append({"file": str(path), "sha256": file_sha256(path), "rows": len(table)})
    return latest_labels(tables), files
