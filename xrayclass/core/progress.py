"""Progress bars for the steps that take more than a few seconds on large catalogs.

tqdm draws on a terminal and stays silent otherwise (logs and CI stay clean). It is
imported only when a bar is drawn: a one-chunk run does not pay for the import.
"""

from collections.abc import Iterable, Iterator
from typing import TypeVar

__all__ = [
    "chunks",
    "steps",
]

T = TypeVar("T")


def chunks(n_rows: int, chunk_rows: int, description: str) -> Iterator[slice]:
    """Yield ``slice`` objects covering ``range(n_rows)`` in chunks, with a progress bar."""
    starts = range(0, n_rows, chunk_rows)
    if len(starts) > 1:
        from tqdm.auto import tqdm
    bar = (
        tqdm(total=n_rows, desc=description, unit=" rows", unit_scale=True, disable=None, leave=False)
        if len(starts) > 1
        else None
    )
    for start in starts:
        stop = min(start + chunk_rows, n_rows)
        yield slice(start, stop)
        if bar is not None:
            bar.update(stop - start)
    if bar is not None:
        bar.close()


def steps(iterable: Iterable[T], total: int, description: str, unit: str = " steps") -> Iterable[T]:
    """Iterate over ``iterable`` (``total`` items) with a progress bar, drawn on a terminal only."""
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=description, unit=unit, disable=None, leave=False)
