"""The one hand-made concurrency the pipeline keeps: rows scored in blocks on threads.

Stage 3's classification scores each row on its own (the results of a row do not depend
on the others), and most of its time is NumPy work that releases the GIL, so blocks of
rows scored on one thread per processor finish sooner than one pass on one thread, with
the same results. It stays because ``benchmarks/results.md`` shows it saving at least 10%
of stage 3's time at 1M detections, measured with and without (``XRAYCLASS_THREADS=1``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise
from typing import TypeVar

__all__ = ["THREADS_VARIABLE", "map_row_blocks", "thread_count"]

T = TypeVar("T")

#: The environment variable that caps the threads (1: everything on the calling thread).
THREADS_VARIABLE = "XRAYCLASS_THREADS"


def thread_count() -> int:
    """One thread per processor this process may use, or ``$XRAYCLASS_THREADS`` if set."""
    available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, int(os.environ.get(THREADS_VARIABLE, available)))


def map_row_blocks(function: Callable[[slice], T], n_rows: int, threads: int | None = None) -> list[T]:
    """``function`` of contiguous blocks of ``range(n_rows)``, one per thread, in row order."""
    threads = min(thread_count() if threads is None else threads, max(n_rows, 1))
    bounds = [n_rows * k // threads for k in range(threads + 1)]
    blocks = [slice(start, stop) for start, stop in pairwise(bounds)]
    if threads == 1:
        return [function(block) for block in blocks]
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="xrayclass-rows") as pool:
        return list(pool.map(function, blocks))
