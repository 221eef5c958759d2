"""The package's exceptions: one small hierarchy, mapped to exit codes by the command lines.

Science functions raise these with a message that says what is wrong in one line; they
do not know file names. The command-line and I/O layers add the file name with
:func:`input_files` (a prefix ``"<file>: "``) and turn :class:`InputError` and
:class:`ArtifactError` into exit status 2 and :class:`ServiceError` into exit status 3.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from os import PathLike

__all__ = [
    "EXIT_INPUT_ERROR",
    "EXIT_SERVICE_ERROR",
    "ArtifactError",
    "InputError",
    "ServiceError",
    "XrayclassError",
    "input_files",
    "tables_named",
    "where",
]

#: Exit status of a command given bad input (a file, an argument or an artifact).
EXIT_INPUT_ERROR = 2
#: Exit status of a command whose external service failed.
EXIT_SERVICE_ERROR = 3


class XrayclassError(Exception):
    """Base class of the errors the package raises on purpose."""


class InputError(XrayclassError):
    """A problem with an input table or argument, stated in one line for the user.

    ``table`` names the input (e.g. ``"frozen"``) when a function takes several; :func:`input_files` maps it to a file.
    """

    def __init__(self, *args: object, table: str | None = None) -> None:
        super().__init__(*args)
        self.table = table


class ArtifactError(InputError):
    """A model or classifier artifact (JSON) that is not what it should be."""


class ServiceError(XrayclassError):
    """An external service failed; the message says what failed and what to do, in one line."""


def where(path: str | PathLike | None) -> str:
    """The prefix ``"<path>: "`` of a message about ``path`` (empty when there is no file)."""
    return "" if path is None else f"{path}: "


@contextmanager
def input_files(path: str | PathLike | None = None, **tables: str | PathLike | None) -> Iterator[None]:
    """Name the file in the message of an :class:`InputError` raised inside the block.

    ``path`` is the file of an error that names no table; ``tables`` maps the ``table``
    of an error (e.g. ``frozen=args.frozen``) to its file. A message that already starts
    with its file's name is left alone, so blocks can nest.
    """
    try:
        yield
    except InputError as exc:
        name = tables.get(exc.table, path) if exc.table is not None else path
        message = str(exc.args[0]) if exc.args else ""
        if name is not None and not message.startswith(where(name)):
            exc.args = (where(name) + message, *exc.args[1:])
        raise


@contextmanager
def tables_named(table: str) -> Iterator[None]:
    """Mark an :class:`InputError` raised inside the block (unless already marked) as about input ``table``."""
    try:
        yield
    except InputError as exc:
        if exc.table is None:
            exc.table = table
        raise
