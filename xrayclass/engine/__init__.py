"""Engines that run stages 3 and 4 beyond one in-memory table.

They read and write files themselves (the science in :mod:`xrayclass.stages` never
does): :mod:`.streaming` in record batches on one machine, :mod:`.dask` on a Dask
cluster.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from xrayclass.core.checks import require_choice
from xrayclass.exceptions import InputError
from xrayclass.io.streaming import BATCH_ROWS

__all__ = ["ENGINES", "EngineConfig"]

ENGINES = ("memory", "streaming", "dask")


@dataclass(frozen=True)
class EngineConfig:
    """How a stage runs: the whole table in memory, streamed in batches, or on Dask.

    Parameters
    ----------
    engine : {"memory", "streaming", "dask"}
        ``memory``: the whole table at once; ``streaming``: Parquet or CSV in batches of
        ``batch_rows`` rows (memory bounded by the batch size); ``dask``: partitions of
        ``batch_rows`` rows on a Dask cluster.
    batch_rows : int
        Rows per batch (streaming) or per partition (dask).
    scheduler : str or None
        Address of a running Dask scheduler; ``None``: a local cluster of ``workers``
        processes.
    workers : int
        Workers of the local Dask cluster.
    processes : bool
        Whether the local cluster's workers are processes (else threads of this one).
    """

    engine: Literal["memory", "streaming", "dask"] = "memory"
    batch_rows: int = BATCH_ROWS
    scheduler: str | None = None
    workers: int = 2
    processes: bool = True

    def __post_init__(self) -> None:
        require_choice("engine", self.engine, ENGINES)
        if self.batch_rows < 1 or self.workers < 1:
            raise InputError("batch_rows and workers must be at least 1")
