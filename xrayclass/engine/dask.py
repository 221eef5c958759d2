"""Stages 3 and 4 on a Dask cluster: the same results as one process, over partitions.

Stage 3 fits its model as the streamed stage does (two batched passes on the client:
the references are a minority, the scaler needs only column ranges), broadcasts the
model to every worker (``client.scatter(..., broadcast=True)``), classifies each
partition of the input on the workers, and gathers the classified partitions in input
order into the on-disk sort by name and obsid (:mod:`xrayclass.engine.streaming`), so
the output is that of the single-process run byte for byte. Stage 4 shuffles the
detections by source name, so that each partition holds whole sources, votes on the
workers, and combines the per-partition tables.

``scheduler`` is the address of a running scheduler (for example one started by
dask-jobqueue on a SLURM cluster, see README "Scaling up"); without it a
``distributed.LocalCluster`` of ``workers`` single-threaded workers is started.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xrayclass.constants import CLASSES
from xrayclass.exceptions import InputError, ServiceError, input_files
from xrayclass.io.files import require_regular_file
from xrayclass.io.streaming import BATCH_ROWS, InputIdentity
from xrayclass.io.tables import NO_ROWS, table_format
from xrayclass.text import one_line

if TYPE_CHECKING:
    # Only for the annotations: pandas, Dask and the stage modules load when a function runs.
    import dask.dataframe
    import distributed
    import pandas as pd

    from xrayclass.core.featuresets import FeatureSet
    from xrayclass.core.mixture import ClusteringModel
    from xrayclass.stages.classification import ClassifierModel

__all__ = [
    "classify_dataset",
    "cluster_dataset",
    "dask_client",
    "master_classification_dataset",
    "require_dask",
]

log = logging.getLogger(__name__)


#: Seconds to wait for a Dask scheduler given with --scheduler (Dask's own default is 30).
CONNECT_TIMEOUT = 5


def require_dask() -> None:
    """Raise :class:`InputError` before any work when Dask (an optional dependency) is not installed."""
    import importlib.util

    missing = [name for name in ("dask", "distributed") if importlib.util.find_spec(name) is None]
    if not missing:
        missing = [] if importlib.util.find_spec("dask.dataframe") is not None else ["dask[dataframe]"]
    if missing:
        raise InputError(
            f"--engine dask: {', '.join(missing)} not installed (pip install 'xrayclass[dask]'); "
            "or use --engine streaming, which needs no cluster"
        )


@contextmanager
def dask_client(scheduler: str | None = None, workers: int = 2, processes: bool = True) -> Iterator[distributed.Client]:
    """A ``distributed.Client`` on ``scheduler``, or on a local cluster closed afterwards.

    A scheduler that does not answer within :data:`CONNECT_TIMEOUT` seconds is a
    :class:`ServiceError` naming its address.
    """
    from distributed import Client, LocalCluster

    if scheduler:
        try:
            client = Client(scheduler, timeout=CONNECT_TIMEOUT)
        except (OSError, TimeoutError, ValueError) as exc:  # refused, timed out, or not an address
            raise ServiceError(
                f"{scheduler}: cannot reach the Dask scheduler within {CONNECT_TIMEOUT} s ({one_line(exc)}); "
                "start it, check --scheduler, or leave --scheduler out for a local cluster"
            ) from None
        with client:
            yield client
            _log_worker_memory(client, "since each worker started")
        return
    with (
        LocalCluster(n_workers=workers, threads_per_worker=1, processes=processes, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        yield client
        _log_worker_memory(client, "this stage")


def _peak_memory_mb() -> float:
    """This process's peak resident memory, in MB.

    On Linux the high-water mark of the running program (``VmHWM``): ``getrusage``'s
    ``ru_maxrss`` survives ``exec``, so a worker started from a large client would report
    the client's memory at the moment it was started.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    import resource
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB elsewhere


def _log_worker_memory(client: distributed.Client, span: str) -> None:
    """Log the largest peak resident memory of the workers (what a cluster's jobs must be given)."""
    try:
        peaks = client.run(_peak_memory_mb)
    except Exception:  # noqa: BLE001  (a worker lost at the end: the figure is only informative)
        return
    if peaks:
        largest = max(peaks.values())
        log.info(
            "Dask workers' peak memory (%s): largest %s MB of %d workers",
            span,
            f"{largest:,.0f}",
            len(peaks),
        )


def _frame(
    path: str | Path, columns: Sequence[str] | None = None, batch_rows: int = BATCH_ROWS
) -> dask.dataframe.DataFrame:
    import dask.dataframe as dd

    fmt = table_format(path, ("csv", "parquet"))
    require_regular_file(path)
    if fmt == "parquet":
        if columns is not None:
            from xrayclass.io.streaming import table_columns

            present = set(table_columns(path))
            columns = [c for c in columns if c in present]
        return dd.read_parquet(path, columns=columns, split_row_groups=True)
    # CSV columns get the whole file's types, every one of them: Dask guesses a type from
    # the file's first bytes, and a block further on with text in that column fails.
    from xrayclass.io.streaming import _csv_types

    names = list(__import__("pandas").read_csv(path, nrows=0).columns)
    wanted = names if columns is None else [c for c in names if c in set(columns)]
    types = _csv_types(Path(path), wanted, batch_rows, every_column=True)
    return dd.read_csv(path, usecols=wanted, dtype=types or None, blocksize="64MB", low_memory=False)


def classify_dataset(
    path: str | Path,
    output: str | Path,
    model_output: str | Path,
    outliers_output: str | Path,
    batch_rows: int = BATCH_ROWS,
    scheduler: str | None = None,
    workers: int = 2,
    processes: bool = True,
    temporary_dir: str | Path | None = None,
    **options: Any,
) -> tuple[ClassifierModel, int, int]:
    """Stage 3 with Dask; returns ``(model, n_classified, n_outliers)`` as the streamed stage does.

    ``options`` are the fields of :class:`~xrayclass.engine.streaming.Stage3Options`
    (classify_detections' keywords), honoured as in one process.
    """
    from xrayclass.engine.streaming import Stage3Options, classify_batch, fit_streamed, write_classified

    require_dask()
    settings = Stage3Options(**options)
    model, census = fit_streamed(path, settings, batch_rows)
    source = census.source or InputIdentity(path)
    frame = _frame(path, None, batch_rows)
    with dask_client(scheduler, workers, processes) as client:
        shared = client.scatter(model, broadcast=True)
        import dask

        task = dask.delayed(classify_batch, pure=True)
        on_worker = dataclasses.replace(settings, threads=1)
        parts = frame.to_delayed()
        n_workers = len(client.scheduler_info()["workers"])
        log.info("classifying %d partitions on %d workers", len(parts), n_workers)

        def in_order() -> Iterator[pd.DataFrame | None]:
            # Input order: the sort's ties keep it.
            tasks = [task(part, shared, on_worker) for part in parts]
            yield from _in_order(client, tasks, IN_FLIGHT * max(n_workers, 1), path, source)

        return write_classified(
            in_order(),
            census,
            model,
            path,
            output,
            model_output,
            outliers_output,
            settings,
            batch_rows,
            temporary_dir,
        )


#: Tasks per worker (stage-1 chunks, stage-3 partitions) computed ahead of the one being written.
IN_FLIGHT = 2


@contextmanager
def read_by_workers(path: str | Path, source: InputIdentity) -> Iterator[None]:
    """Around results of tasks that read ``path`` on the workers: its problems as the streamed engine says them.

    A part of the file the client's passes did not read (a column chunk in the middle of
    a Parquet file) fails there first; the error comes back from the worker as the
    reader raised it. A file changed meanwhile is said to be so.
    """
    import pandas as pd
    import pyarrow
    from distributed.comm import CommClosedError

    try:
        with input_files(path):
            yield
    except CommClosedError as exc:  # an OSError, but the cluster's, not the file's
        raise ServiceError(f"the Dask cluster's connection closed ({one_line(exc)}); nothing written") from None
    except (OSError, pyarrow.ArrowException, pd.errors.ParserError, UnicodeDecodeError) as exc:
        source.check()
        fmt = table_format(path, ("csv", "parquet"))
        raise InputError(f"{path}: cannot read as {fmt}: {one_line(exc)}") from None


def _in_order(
    client: distributed.Client, tasks: Sequence[Any], in_flight: int, path: str | Path, source: InputIdentity
) -> Iterator[Any]:
    """The results of Dask ``tasks`` in their order, at most ``in_flight`` computed and not yet taken.

    The workers hold only those results: submitting every task at once left each worker
    holding all of its results until the client took them (3.1-4.8 GB per worker for
    stage 3 at 10M detections). The tasks read ``path`` (see :func:`read_by_workers`).
    """
    pending: collections.deque[distributed.Future] = collections.deque()

    def collect() -> Any:
        future = pending.popleft()
        with read_by_workers(path, source):
            result = future.result()
        future.release()
        return result

    for task in tasks:
        pending.append(client.compute(task))
        if len(pending) >= in_flight:
            yield collect()
    while pending:
        yield collect()


def _vote(part: pd.DataFrame, classes: Sequence[str]) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]] | None:
    from xrayclass.stages.master_classification import master_classification

    if not len(part):
        return None
    return master_classification(part, classes)


def master_classification_dataset(
    path: str | Path,
    classes: Sequence[str] = CLASSES,
    batch_rows: int = BATCH_ROWS,
    scheduler: str | None = None,
    workers: int = 2,
    processes: bool = True,
    n_partitions: int | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Stage 4 with Dask: partitions holding whole sources (a shuffle by name), votes combined."""
    from xrayclass.core.checks import canonical_names
    from xrayclass.engine.checks import DetectionChecks
    from xrayclass.engine.streaming import combine_votes
    from xrayclass.io.streaming import iter_batches
    from xrayclass.stages.master_classification import STAGE4_COLUMNS

    require_dask()
    source = InputIdentity(path)
    # check_detections of the in-memory stage, on the client before any vote: a pass over
    # the columns it reads (a blank name cannot be shuffled on, nor a missing name column).
    checks = DetectionChecks.of_file(path, positions=False, read=STAGE4_COLUMNS)
    for batch in iter_batches(path, checks.file_names, batch_rows, source):
        checks.add(checks.named(batch))
    checks.raise_problems()
    checks.check_repeats(batch_rows, source)
    frame = _frame(path, list(STAGE4_COLUMNS), batch_rows)
    if "name" not in frame.columns:
        frame = frame.map_partitions(canonical_names, str(path))
    n_partitions = n_partitions or max(frame.npartitions, 2 * workers)
    by_source = frame.shuffle(on="name", npartitions=n_partitions)
    with dask_client(scheduler, workers, processes) as client:
        import dask

        task = dask.delayed(_vote, pure=True)
        futures = client.compute([task(part, classes) for part in by_source.to_delayed()])
        with read_by_workers(path, source):
            parts = [result for result in client.gather(futures) if result is not None]
    source.check()
    if not parts:  # every partition empty: as the other engines say it
        raise InputError(f"{path}: {NO_ROWS}")
    return combine_votes(parts)


def cluster_dataset(
    path: str | Path,
    output: str | Path,
    model_output: str | Path,
    n_components: int,
    random_state: int,
    fit_sample: int | None = None,
    log_floor: float | None = None,
    feature_set: FeatureSet | None = None,
    batch_rows: int = BATCH_ROWS,
    scheduler: str | None = None,
    workers: int = 2,
    processes: bool = True,
) -> tuple[ClusteringModel, int]:
    """Stage 1 with Dask: the fit on the client (as the streamed stage), the assignment on the workers.

    The model goes to every worker as its JSON document (``client.scatter(...,
    broadcast=True)``); each partition is assigned there and the results are written in
    input order, so the files are those of one process. Returns ``(model, n_rows)``.
    """
    import dask
    import numpy as np

    from xrayclass.core.featuresets import PAPER
    from xrayclass.engine.clustering import fit_clustering_file, kept_rows, write_clustered
    from xrayclass.stages import clustering as stage1

    require_dask()
    source = InputIdentity(path)
    model, name_column = fit_clustering_file(
        path,
        n_components,
        random_state,
        fit_sample,
        log_floor,
        feature_set or PAPER,
        batch_rows,
        source,
    )
    model.training["input"] = str(path)
    frame = _frame(path, None, batch_rows)
    document = model.to_dict()
    with dask_client(scheduler, workers, processes) as client:
        shared = client.scatter(document, broadcast=True)
        # The kept rows of each partition stay a recipe (read, check, keep): counted first,
        # then made again by the chunk tasks that need them, so that no worker holds all of
        # its partitions at once (holding them took 4-8 GB per worker at 10M detections).
        keep = dask.delayed(kept_rows, pure=True)
        kept = [keep(part, shared, name_column) for part in frame.to_delayed()]
        with read_by_workers(path, source):
            lengths = client.gather(client.compute([dask.delayed(len, pure=True)(part) for part in kept]))
        # Score the same chunks of kept rows as one process does (see aligned_chunks):
        # each chunk task takes the slices of the partitions it spans.
        chunk_rows = stage1.CHUNK_ROWS
        starts = np.cumsum([0, *lengths])
        assign = dask.delayed(_assign_pieces, pure=True)
        chunks = []
        for start in range(0, int(starts[-1]), chunk_rows):
            stop = min(start + chunk_rows, int(starts[-1]))
            pieces = [
                (part, max(start - first, 0), min(stop, last) - first)
                for part, first, last in zip(kept, starts[:-1], starts[1:], strict=True)
                if first < stop and last > start
            ]
            chunks.append(assign(pieces, shared))
        n_workers = len(client.scheduler_info()["workers"])
        log.info("assigning %d partitions (%d chunks) on %d workers", len(kept), len(chunks), n_workers)

        def in_order() -> Iterator[pd.DataFrame]:
            yield from _in_order(client, chunks, IN_FLIGHT * max(n_workers, 1), path, source)

        written = write_clustered(in_order(), output, model, model_output, source)
        return model, written


def _assign_pieces(pieces: Sequence[tuple[pd.DataFrame, int, int]], model: dict[str, Any]) -> pd.DataFrame:
    import pandas as pd

    from xrayclass.engine.clustering import assign_kept

    frames = [part.iloc[low:high] for part, low, high in pieces]
    return assign_kept(
        pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0].reset_index(drop=True), model
    )
