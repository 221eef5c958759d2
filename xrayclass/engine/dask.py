"""Stages 1, 3 and 4 on a Dask cluster: the streamed stages' functions mapped over partitions.

Stage 3 is a reduction then a map (see :func:`classify_dataset`): the surveys of the
partitions made on the workers and merged on the client, the model fitted there and
broadcast, each partition classified on a worker, the rows shuffled by ranges of
source names and each range sorted and written as a part by a worker; the client only
appends the parts. Stage 4 shuffles the detections by source name, so that each
partition holds whole sources, and votes on the workers
(:func:`~xrayclass.engine.partitions.vote_partition`). Stage 1 fits on the client
(the streamed stage's pass) and assigns on the workers.

Dask and distributed are optional: they are imported in one place, :func:`require_dask`,
which every function here calls first (and which says what to install when they are
missing). ``EngineConfig.scheduler`` is the address of a running scheduler (for example
one started by dask-jobqueue on a SLURM cluster, see README "Scaling up"); without it a
``distributed.LocalCluster`` of ``EngineConfig.workers`` single-threaded workers is started.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import logging
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow

from xrayclass.constants import NAME, OBSID
from xrayclass.core.checks import canonical_names
from xrayclass.core.classifier import ClassifierModel
from xrayclass.core.featuresets import PAPER
from xrayclass.core.mixture import ClusteringModel
from xrayclass.engine import EngineConfig
from xrayclass.engine.checks import DetectionChecks
from xrayclass.engine.clustering import assign_kept, fit_clustering_file, kept_rows, write_clustered
from xrayclass.engine.partitions import vote_partition
from xrayclass.engine.streaming import (
    Survey,
    Tally,
    classify_batch,
    fit_survey,
    survey_batch,
    survey_columns,
)
from xrayclass.engine.voting import combine_votes
from xrayclass.exceptions import InputError, ServiceError, input_files
from xrayclass.io.files import require_regular_file
from xrayclass.io.streaming import (
    BatchWriter,
    InputIdentity,
    csv_types,
    iter_batches,
    name_boundaries,
    name_buckets,
    read_error,
    table_columns,
    write_part,
)
from xrayclass.io.tables import NO_ROWS, table_format, temporary_folder, write_outputs, write_parquet
from xrayclass.stages import clustering as stage1
from xrayclass.stages.classification import ClassificationConfig
from xrayclass.stages.clustering import ClusteringConfig
from xrayclass.stages.master_classification import STAGE4_COLUMNS, MasterClassificationConfig
from xrayclass.text import one_line

if TYPE_CHECKING:
    import dask.dataframe
    import distributed

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


def require_dask() -> Any:
    """The ``dask`` module, with ``dask.dataframe`` and ``distributed`` loaded (the one place they are imported).

    Raises :class:`InputError` before any work when they are not installed.
    """
    missing = [name for name in ("dask", "distributed") if importlib.util.find_spec(name) is None]
    if not missing:
        missing = [] if importlib.util.find_spec("dask.dataframe") is not None else ["dask[dataframe]"]
    if missing:
        raise InputError(
            f"--engine dask: {', '.join(missing)} not installed (pip install 'xrayclass[dask]'); "
            "or use --engine streaming, which needs no cluster"
        )
    for name in ("dask.dataframe", "distributed"):
        importlib.import_module(name)
    return importlib.import_module("dask")


@contextmanager
def dask_client(engine: EngineConfig = EngineConfig(engine="dask")) -> Iterator[distributed.Client]:
    """A ``distributed.Client`` on ``engine.scheduler``, or on a local cluster closed afterwards.

    A scheduler that does not answer within :data:`CONNECT_TIMEOUT` seconds is a
    :class:`ServiceError` naming its address.
    """
    distributed = require_dask() and importlib.import_module("distributed")
    if engine.scheduler:
        try:
            client = distributed.Client(engine.scheduler, timeout=CONNECT_TIMEOUT)
        except (OSError, TimeoutError, ValueError) as exc:  # refused, timed out, or not an address
            raise ServiceError(
                f"{engine.scheduler}: cannot reach the Dask scheduler within {CONNECT_TIMEOUT} s ({one_line(exc)}); "
                "start it, check --scheduler, or leave --scheduler out for a local cluster"
            ) from None
        with client:
            yield client
            _log_worker_memory(client, "since each worker started")
        return
    with (
        distributed.LocalCluster(
            n_workers=engine.workers, threads_per_worker=1, processes=engine.processes, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
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
    import resource  # not on Windows
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


def _frame(path: str | Path, columns: Sequence[str] | None, batch_rows: int) -> dask.dataframe.DataFrame:
    """The table at ``path`` as Dask partitions (Parquet: its row groups; CSV: with the whole file's types)."""
    dd = require_dask().dataframe
    fmt = table_format(path, ("csv", "parquet"))
    require_regular_file(path)
    present = table_columns(path)
    wanted = present if columns is None else [c for c in present if c in set(columns)]
    if fmt == "parquet":
        return dd.read_parquet(path, columns=wanted, split_row_groups=True)
    # Every column gets the whole file's type: Dask guesses a type from the file's first
    # bytes, and a block further on with text in that column fails.
    types = csv_types(Path(path), wanted, batch_rows, every_column=True)
    return dd.read_csv(path, usecols=wanted, dtype=types or None, blocksize="64MB", low_memory=False)


def classify_dataset(
    path: str | Path,
    output: str | Path,
    model_output: str | Path,
    outliers_output: str | Path,
    config: ClassificationConfig = ClassificationConfig(),
    engine: EngineConfig = EngineConfig(engine="dask"),
    temporary_dir: str | Path | None = None,
) -> tuple[ClassifierModel, int, int]:
    """Stage 3 with Dask: the streamed stage's functions mapped over partitions.

    1. :func:`~xrayclass.engine.streaming.survey_batch` of every partition on the
       workers, the surveys merged on the client and the model fitted there
       (:func:`~xrayclass.engine.streaming.fit_survey`);
    2. the model broadcast; each partition classified on a worker
       (:func:`~xrayclass.engine.streaming.classify_batch`), its rows written to files
       by ranges of source names; each range's files read, sorted by name and obsid
       and written as a part by a worker (all in ``temporary_dir``, which the workers
       must see: the rows go through files, not the cluster's connections);
    3. the parts appended into ``output`` in name order (bytes for CSV, row groups
       for Parquet: no row passes through pandas on the client).

    Returns ``(model, n_classified, n_outliers)`` as the streamed stage does.
    """
    dask = require_dask()
    source = InputIdentity(path)
    checks = DetectionChecks.of_file(path, clusters=True)
    frame = _frame(path, survey_columns(path, config, checks), engine.batch_rows)
    with dask_client(engine) as client:
        survey_task = dask.delayed(survey_batch, pure=True)
        futures = client.compute([survey_task(part, checks, config, str(path)) for part in frame.to_delayed()])
        with read_by_workers(path, source):
            surveys = client.gather(futures)
        del futures
        survey = functools.reduce(Survey.merge, surveys, Survey(checks.fresh()))
        model = fit_survey(path, survey, config, engine.batch_rows, source)

        n_buckets = max(engine.workers, -(-survey.n_to_classify // engine.batch_rows))
        boundaries = np.asarray(name_boundaries(survey.names, n_buckets), dtype=object)
        n_buckets = len(boundaries) + 1
        shared = client.scatter(model, broadcast=True)
        folder = temporary_folder("sort", temporary_dir)
        try:
            split = dask.delayed(_classify_split, pure=True)
            partitions = _frame(path, None, engine.batch_rows).to_delayed()
            pieces = [
                split(part, shared, config, boundaries, folder / f"p{i:05d}") for i, part in enumerate(partitions)
            ]
            with read_by_workers(path, source):
                written = client.gather(client.compute(pieces))
            log.info("classified %d partitions; sorting %d parts on %d workers", len(pieces), n_buckets, engine.workers)
            write = dask.delayed(_write_bucket, pure=True)
            suffix = Path(output).suffix
            buckets = [
                write([files[b] for files in written if b in files], folder / f"part{b:05d}{suffix}", config)
                for b in range(n_buckets)
            ]
            parts = client.gather(client.compute(buckets))
            return _assemble(parts, model, path, output, model_output, outliers_output, config, source)
        finally:
            shutil.rmtree(folder, ignore_errors=True)


def _classify_split(
    part: pd.DataFrame, model: ClassifierModel, config: ClassificationConfig, boundaries: np.ndarray, stem: Path
) -> dict[int, Path]:
    """A partition classified (one thread: the workers are the parallelism), its rows written by name range.

    Each range's rows go to a Parquet file beside ``stem`` (not through the cluster's
    connections); returns the file of each range that has rows.
    """
    classified = classify_batch(part, model, config)
    if classified is None:
        return {}
    bucket = name_buckets(classified[NAME].to_numpy(dtype=object), boundaries)
    files = {}
    for b in np.unique(bucket):
        files[int(b)] = stem.with_name(f"{stem.name}_{int(b):05d}.parquet")
        write_parquet(classified.loc[bucket == b], files[int(b)])
    return files


def _write_bucket(
    pieces: Sequence[Path], path: Path, config: ClassificationConfig
) -> tuple[Path | None, list[str], Tally]:
    """One name range's rows (pieces in partition order) sorted as the in-memory output and written as a part."""
    if not pieces:
        return None, [], Tally()
    # Stable: among equal (name, obsid), the input's order (partitions in order, rows in order).
    rows = pd.concat([pd.read_parquet(piece) for piece in pieces], ignore_index=True)
    rows = rows.sort_values([NAME, OBSID], kind="stable").reset_index(drop=True)
    write_part(rows, path)
    for piece in pieces:
        piece.unlink()
    return path, list(rows.columns), Tally().add(rows, config)


def _assemble(
    written: Sequence[tuple[Path | None, list[str], Tally]],
    model: ClassifierModel,
    path: str | Path,
    output: str | Path,
    model_output: str | Path,
    outliers_output: str | Path,
    config: ClassificationConfig,
    source: InputIdentity,
) -> tuple[ClassifierModel, int, int]:
    """The parts appended into ``output`` in name order, then the model and outliers: all or none."""
    tally = functools.reduce(Tally.merge, (t for _, _, t in written), Tally())
    with BatchWriter(output) as writer:
        for part, columns, _ in written:
            if part is not None:
                writer.append_part(part, columns)
        outliers = tally.finish(path, model, config)
        source.check()
        write_outputs([(model.to_dict(), model_output), (outliers, outliers_output)])
    log.info("%s detections classified", f"{tally.rows:,}")
    return model, tally.rows, len(outliers)


#: Tasks per worker (stage-1 chunks) computed ahead of the one being written.
IN_FLIGHT = 2


@contextmanager
def read_by_workers(path: str | Path, source: InputIdentity) -> Iterator[None]:
    """Around results of tasks that read ``path`` on the workers: its problems as the streamed engine says them.

    A part of the file the client's passes did not read (a column chunk in the middle of
    a Parquet file) fails there first; the error comes back from the worker as the
    reader raised it. A file changed meanwhile is said to be so.
    """
    closed = importlib.import_module("distributed.comm").CommClosedError
    try:
        with input_files(path):
            yield
    except closed as exc:  # an OSError, but the cluster's, not the file's
        raise ServiceError(f"the Dask cluster's connection closed ({one_line(exc)}); nothing written") from None
    except (OSError, pyarrow.ArrowException, pd.errors.ParserError, UnicodeDecodeError) as exc:
        source.check()
        fmt = table_format(path, ("csv", "parquet"))
        raise read_error(path, fmt, exc) from None


def _in_order(
    client: distributed.Client, tasks: Sequence[Any], in_flight: int, path: str | Path, source: InputIdentity
) -> Iterator[Any]:
    """The results of Dask ``tasks`` in their order, at most ``in_flight`` computed and not yet taken.

    The workers hold only those results, not all of theirs until the client takes them.
    The tasks read ``path`` (see :func:`read_by_workers`).
    """
    pending: list[distributed.Future] = []
    for task in tasks:
        pending.append(client.compute(task))
        if len(pending) >= in_flight:
            with read_by_workers(path, source):
                yield pending.pop(0).result()
    while pending:
        with read_by_workers(path, source):
            yield pending.pop(0).result()


def master_classification_dataset(
    path: str | Path,
    config: MasterClassificationConfig = MasterClassificationConfig(),
    engine: EngineConfig = EngineConfig(engine="dask"),
    n_partitions: int | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Stage 4 with Dask: partitions holding whole sources (a shuffle by name), voted on the workers, combined."""
    dask = require_dask()
    source = InputIdentity(path)
    # check_detections of the in-memory stage, before any vote (a blank name cannot be shuffled on).
    checks = DetectionChecks.of_file(path, positions=False, read=STAGE4_COLUMNS)
    for batch in iter_batches(path, checks.file_names, engine.batch_rows, source):
        checks.add(checks.named(batch))
    checks.raise_problems()
    checks.check_repeats(engine.batch_rows, source)
    frame = _frame(path, list(STAGE4_COLUMNS), engine.batch_rows)
    if NAME not in frame.columns:
        frame = frame.map_partitions(canonical_names, str(path))
    n_partitions = n_partitions or max(frame.npartitions, 2 * engine.workers)
    by_source = frame.shuffle(on=NAME, npartitions=n_partitions)
    with dask_client(engine) as client:
        vote = dask.delayed(vote_partition, pure=True)
        futures = client.compute([vote(part, config.classes) for part in by_source.to_delayed()])
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
    config: ClusteringConfig = ClusteringConfig(),
    engine: EngineConfig = EngineConfig(engine="dask"),
) -> tuple[ClusteringModel, int]:
    """Stage 1 with Dask: the fit on the client (as the streamed stage), the assignment on the workers.

    The model goes to every worker as its JSON document; each partition's kept rows are
    assigned in the same chunks of rows as in memory, written in input order. Returns
    ``(model, n_rows)``.
    """
    dask = require_dask()
    source = InputIdentity(path)
    model, name_column = fit_clustering_file(
        path,
        config.n_components,
        config.random_state,
        config.fit_sample,
        config.log_floor,
        config.feature_set or PAPER,
        engine.batch_rows,
        source,
    )
    model.training["input"] = str(path)
    frame = _frame(path, None, engine.batch_rows)
    with dask_client(engine) as client:
        shared = client.scatter(model.to_dict(), broadcast=True)
        # The kept rows of each partition stay a recipe (read, check, keep): counted first,
        # then made again by the chunk tasks that need them, so that no worker holds all of
        # its partitions at once.
        keep = dask.delayed(kept_rows, pure=True)
        kept = [keep(part, shared, name_column) for part in frame.to_delayed()]
        with read_by_workers(path, source):
            lengths = client.gather(client.compute([dask.delayed(len, pure=True)(part) for part in kept]))
        # Score the same chunks of kept rows as one process does (see aligned_chunks).
        starts = np.cumsum([0, *lengths])
        assign = dask.delayed(_assign_pieces, pure=True)
        chunks = []
        for start in range(0, int(starts[-1]), stage1.CHUNK_ROWS):
            stop = min(start + stage1.CHUNK_ROWS, int(starts[-1]))
            pieces = [
                (part, max(start - first, 0), min(stop, last) - first)
                for part, first, last in zip(kept, starts[:-1], starts[1:], strict=True)
                if first < stop and last > start
            ]
            chunks.append(assign(pieces, shared))
        log.info("assigning %d partitions (%d chunks) on %d workers", len(kept), len(chunks), engine.workers)
        assigned = _in_order(client, chunks, IN_FLIGHT * engine.workers, path, source)
        return model, write_clustered(assigned, output, model, model_output, source)


def _assign_pieces(pieces: Sequence[tuple[pd.DataFrame, int, int]], model: dict[str, Any]) -> pd.DataFrame:
    frames = [part.iloc[low:high] for part, low, high in pieces]
    return assign_kept(pd.concat(frames, ignore_index=True), model)
