"""Progress bars for the steps that take more than a few seconds on large catalogs.

tqdm draws on a terminal and stays silent otherwise (logs and CI stay clean). It is
imported only when a bar is drawn: a one-chunk run does not pay for the import.
"""

import os
from collections.abc import Iterable, Iterator
from typing import TypeVar

__all__ = ["available_threads", "chunks", "steps"]

T = TypeVar("T")


def available_threads() -> int:
    """The processors this process may run on (a batch system's CPU set, not the node's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def chunks(n_rows: int, chunk_rows: int, description: str) -> Iterator[slice]:
    """Yield ``slice`` objects covering ``range(n_rows)`` in chunks, with a progress bar."""
    slices = [slice(start, min(start + chunk_rows, n_rows)) for start in range(0, n_rows, chunk_rows)]
    bar = None
    if len(slices) > 1:
        from tqdm.auto import tqdm

        bar = tqdm(total=n_rows, desc=description, unit=" rows", unit_scale=True, disable=None, leave=False)
    for rows in slices:
        yield rows
        if bar is not None:
            bar.update(rows.stop - rows.start)
    if bar is not None:
        bar.close()


def steps(iterable: Iterable[T], total: int, description: str, unit: str = " steps") -> Iterable[T]:
    """Iterate over ``iterable`` (``total`` items) with a progress bar, drawn on a terminal only."""
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=description, unit=unit, disable=None, leave=False)
