"""Stage 4 on files, batch by batch: the stage-3 output, sorted by name, read in batches
cut at source boundaries, each voted by :func:`~xrayclass.stages.master_classification.master_classification`.

Apart from stage 3's module so that stage 4 imports none of stage 3's libraries.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from xrayclass.constants import (
    NAME,
)
from xrayclass.core.checks import canonical_names
from xrayclass.engine import EngineConfig
from xrayclass.engine.checks import DetectionChecks
from xrayclass.exceptions import InputError, input_files
from xrayclass.io.streaming import (
    BATCH_ROWS,
    InputIdentity,
    SpillByKey,
    iter_batches,
)
from xrayclass.stages.master_classification import (
    STAGE4_COLUMNS,
    MasterClassificationConfig,
    Votes,
    master_classification,
    summarize,
)

__all__ = ["combine_votes", "master_classification_file", "source_batches", "spill_votes"]

log = logging.getLogger(__name__)


def source_batches(
    path: str | Path,
    columns: Sequence[str] | None,
    batch_rows: int = BATCH_ROWS,
    checks: DetectionChecks | None = None,
) -> Iterator[pd.DataFrame]:
    """Batches of a name-sorted table, cut so that no source spans two batches.

    Raises :class:`InputError` if the names are not sorted (stage 4 then needs the
    table in memory, or a sort). With ``checks`` (whose columns ``columns`` must
    include), every batch is checked as a detection table, and the batches stop at the
    first problem, raised once the whole file has been read.
    """
    carry: pd.DataFrame | None = None
    previous_last = None
    source = InputIdentity(path)
    for batch in iter_batches(path, columns, batch_rows, source):
        with input_files(path):
            batch = canonical_names(batch)
        if checks is not None:
            checks.add(batch)
            if checks.failed:
                continue  # counted to the end, as the in-memory check counts
        names = batch[NAME].to_numpy(dtype=object)
        if len(names) and (
            (previous_last is not None and names[0] < previous_last) or bool((names[1:] < names[:-1]).any())
        ):
            raise InputError(
                f"{path}: not sorted by source name (stage 3 writes it sorted); run stage 4 without --engine streaming"
            )
        if len(names):
            previous_last = names[-1]
        if carry is not None:
            batch = pd.concat([carry, batch], ignore_index=True)
            names = batch[NAME].to_numpy(dtype=object)
        last = names[-1]
        cut = int(np.searchsorted(names, last, side="left")) if len(names) else 0
        carry = batch.iloc[cut:].reset_index(drop=True)
        if cut:
            yield batch.iloc[:cut].reset_index(drop=True)
    if checks is not None:
        checks.raise_problems()
        checks.check_repeats(batch_rows, source)
    if carry is not None and len(carry):
        yield carry


def master_classification_file(
    path: str | Path,
    config: MasterClassificationConfig = MasterClassificationConfig(),
    engine: EngineConfig = EngineConfig(engine="streaming"),
    temporary_dir: str | Path | None = None,
) -> tuple[SpillByKey, SpillByKey, dict[str, Any]]:
    """Stage 4 on a name-sorted stage-3 file, a batch of whole sources at a time.

    Returns what :func:`~xrayclass.stages.master_classification.master_classification`
    returns on the whole table, the two tables kept on disk (in ``temporary_dir``,
    default the system's) as :class:`~xrayclass.io.streaming.SpillByKey`: give them to
    ``write_outputs``, or read them with ``batches()``, then ``close()`` them. Memory
    holds one batch of sources and the votes (three values a source), not the tables.
    """
    checks = DetectionChecks.of_file(path, positions=False, read=STAGE4_COLUMNS)

    def parts() -> Iterator[tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]]:
        # A batch's own problem waits for the checks of the whole file (memory makes those first).
        problem: InputError | None = None
        for batch in source_batches(path, [*STAGE4_COLUMNS, *checks.file_names], engine.batch_rows, checks):
            if problem is None:
                try:
                    part = master_classification(batch, config.classes)
                except InputError as exc:
                    problem = exc
                    continue
                yield part
        if problem is not None:
            raise problem

    with input_files(path):
        return spill_votes(parts(), temporary_dir)


#: The parts' summary counts that add up to the whole table's.
SUMMED_COUNTS = ("detections", "detections_unclassified", "sources_unclassified")


def spill_votes(
    parts: Iterable[tuple[pd.DataFrame, pd.DataFrame, Mapping[str, Any]]],
    temporary_dir: str | Path | None = None,
) -> tuple[SpillByKey, SpillByKey, dict[str, Any]]:
    """:func:`combine_votes` of parts that come in source-name order, the tables on disk.

    The tables are ordered by detection count (most first), then name: parts in name
    order, each value's rows kept in the order they come, are in that order already.
    """
    uniquely = SpillByKey("detection_count", temporary_dir)
    ambiguous = SpillByKey("detection_count", temporary_dir)
    try:
        votes: list[pd.DataFrame] = []
        totals = dict.fromkeys(SUMMED_COUNTS, 0)
        for part_uniquely, part_ambiguous, summary in parts:
            uniquely.add(part_uniquely)
            ambiguous.add(part_ambiguous)
            votes.append(_source_votes(part_uniquely, part_ambiguous))
            for key in totals:
                totals[key] += summary[key]
        summary = _summary_of_votes(pd.concat(votes, ignore_index=True) if votes else _NO_VOTES, totals)
    except BaseException:
        uniquely.close()
        ambiguous.close()
        raise
    return uniquely, ambiguous, summary


def combine_votes(
    parts: Iterable[tuple[pd.DataFrame, pd.DataFrame, Mapping[str, Any]]],
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """The stage-4 tables and summary of the whole table from those of parts holding whole sources."""
    uniquely_parts: list[pd.DataFrame] = []
    ambiguous_parts: list[pd.DataFrame] = []
    totals = dict.fromkeys(SUMMED_COUNTS, 0)
    for uniquely, ambiguous, summary in parts:
        uniquely_parts.append(uniquely)
        ambiguous_parts.append(ambiguous)
        for key in totals:
            totals[key] += summary[key]
    order = ["detection_count", NAME]
    uniquely = (
        pd.concat(uniquely_parts, ignore_index=True)
        .sort_values(order, ascending=[False, True], kind="stable")
        .reset_index(drop=True)
    )
    ambiguous = (
        pd.concat(ambiguous_parts, ignore_index=True)
        .sort_values(order, ascending=[False, True], kind="stable")
        .reset_index(drop=True)
    )
    return uniquely, ambiguous, _summary_of_votes(_source_votes(uniquely, ambiguous), totals)


def _source_votes(uniquely: pd.DataFrame, ambiguous: pd.DataFrame) -> pd.DataFrame:
    """Each source's votes and detection count (name, hard, soft, count), in name order."""
    frames = [
        pd.DataFrame(
            {
                NAME: table[NAME],
                "hard": table[hard],
                "soft": table[soft],
                "count": table["detection_count"],
            }
        )
        for table, hard, soft in (
            (uniquely, "master_class", "master_class"),
            (ambiguous, "hard_master_class", "soft_master_class"),
        )
    ]
    return pd.concat(frames).sort_values(NAME, kind="stable")


#: The votes of no source (a table without detections).
_NO_VOTES = pd.DataFrame({NAME: [], "hard": [], "soft": [], "count": []})


def _summary_of_votes(sources: pd.DataFrame, totals: Mapping[str, int]) -> dict[str, Any]:
    """The whole-table summary from every source's votes (:func:`_source_votes`, name order)."""
    # summarize reads the names, counts and votes only: the per-detection fields stay empty.
    unused = np.empty(0)
    votes = Votes(
        sources[NAME].to_numpy(dtype=object),
        sources["count"].to_numpy(),
        unused,
        unused,
        sources["soft"].to_numpy(dtype=object),
        sources["hard"].to_numpy(dtype=object),
        unused,
    )
    summary = summarize(votes, totals["detections"], totals["detections_unclassified"])
    summary["sources_unclassified"] = totals["sources_unclassified"]
    return summary
