"""The one check every file a user names passes before anything opens it.

Opening a named pipe (FIFO) for reading waits for a writer that may never come; a
character device such as ``/dev/zero`` never ends; a directory or a socket cannot be
read at all. :func:`require_regular_file` refuses them from their ``stat``, which does
not open the file, so a command stops with one line instead of hanging or crashing.
Symbolic links are followed: a link to a regular file is a regular file.
"""

from __future__ import annotations

import os
import stat

from xrayclass.exceptions import InputError

__all__ = ["require_regular_file"]

#: What each kind of file that is not a regular one is called in messages.
_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def require_regular_file(path: str | os.PathLike[str]) -> os.stat_result:
    """The ``stat`` of ``path`` (size, modification time) if it is a regular file or a link to one.

    Otherwise an :class:`InputError`: ``"<path>: file not found"``, ``"<path>: is a named
    pipe (FIFO), not a regular file"`` (or a directory, a device, a socket), or
    ``"<path>: cannot read (...)"`` when even its ``stat`` fails.
    """
    try:
        status = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        raise InputError(f"{path}: file not found") from None
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the name
        raise InputError(f"{path}: cannot read ({getattr(exc, 'strerror', None) or exc})") from None
    if not stat.S_ISREG(status.st_mode):
        kind = next((name for test, name in _KINDS if test(status.st_mode)), "something else")
        raise InputError(f"{path}: is {kind}, not a regular file")
    return status
