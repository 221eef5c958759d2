"""The checks every detection table gets on arrival, over batches of a file.

:func:`~xrayclass.io.checks.check_detections` checks a whole table in memory: source
names, positions, cluster labels, repeated detections. The engines read a file in
batches; :class:`DetectionChecks` counts the same problems batch by batch (row numbers
of the whole file) and raises the same errors, made by the same functions of
:mod:`xrayclass.core.checks`, in the same order. Repeats need every row: each row's hash
is kept in pass 1, and only the rows whose hash repeats are read again and compared
value by value, so a hash collision never stops a run.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from xrayclass.constants import CLUSTER, NAME, OBSID
from xrayclass.core.checks import (
    bad_cluster_labels,
    blank_name_error,
    blank_names,
    cluster_count,
    cluster_label_error,
    invalid_positions,
    position_error,
    repeat_columns,
    repeat_error,
)
from xrayclass.exceptions import input_files
from xrayclass.io.streaming import InputIdentity, detection_file_columns, iter_batches

__all__ = ["DetectionChecks", "FirstBad", "row_hashes"]

log = logging.getLogger(__name__)


def row_hashes(frame: pd.DataFrame) -> np.ndarray:
    """One 64-bit hash per row of ``frame`` (its values, not its index)."""
    return pd.util.hash_pandas_object(frame, index=False).to_numpy()


@dataclass
class FirstBad:
    """How many rows fail a check, and the first of them (its row in the file, and values)."""

    count: int = 0
    row: int | None = None
    example: tuple = ()

    def add(self, bad: np.ndarray, offset: int, batch: pd.DataFrame, columns: Sequence[str]) -> None:
        if bad.any():
            if self.row is None:
                first = int(np.flatnonzero(bad)[0])
                self.row = offset + first
                self.example = tuple(batch[c].iloc[first] for c in columns)
            self.count += int(bad.sum())

    def extend(self, other: FirstBad, offset: int) -> None:
        """Count ``other``'s rows too, which come ``offset`` rows after these began."""
        if other.count:
            if self.row is None:
                self.row, self.example = offset + (other.row or 0), other.example
            self.count += other.count


@dataclass
class DetectionChecks:
    """:func:`~xrayclass.io.checks.check_detections` of a file read in batches.

    Made by :meth:`of_file` (which checks the header); give every batch of
    :attr:`columns` (the name column called ``name``) to :meth:`add`, then call
    :meth:`raise_problems` and :meth:`check_repeats`. ``positions`` and ``clusters`` as
    for ``check_detections``.
    """

    path: str | Path
    name_column: str
    file_columns: list[str]
    positions: bool = True
    clusters: bool = False
    n_rows: int = 0
    blank_names: FirstBad = field(default_factory=FirstBad)
    bad_positions: FirstBad = field(default_factory=FirstBad)
    bad_clusters: FirstBad = field(default_factory=FirstBad)
    hashes: list = field(default_factory=list)
    identity_hashes: list = field(default_factory=list)

    @classmethod
    def of_file(
        cls, path: str | Path, positions: bool = True, clusters: bool = False, read: Sequence[str] | None = None
    ) -> DetectionChecks:
        """The checks of ``path``, its header checked first (name, obsid and, with ``positions``, ra and dec).

        ``read``: the columns the in-memory stage reads (default all), whose values tell repeats apart.
        """
        required = (NAME, OBSID, *(("ra", "dec") if positions else ()))
        columns, name_column = detection_file_columns(path, required)
        if read is not None:
            columns = [c for c in columns if c in set(read) or c == name_column]
        named = [NAME if c == name_column else c for c in columns]
        return cls(path, name_column, named, positions, clusters and CLUSTER in named)

    @property
    def subset(self) -> list[str]:
        """The columns a repeated detection repeats."""
        return repeat_columns(self.file_columns)

    @property
    def columns(self) -> list[str]:
        """The columns :meth:`add` reads (named as in the header read by :meth:`of_file`'s caller: ``name``)."""
        probabilities = [c for c in self.file_columns if c.startswith("prob_") and c[5:].isdigit()]
        wanted = [
            NAME,
            OBSID,
            *(["ra", "dec"] if self.positions else []),
            *self.subset,
            *([CLUSTER, *probabilities] if self.clusters else []),
        ]
        return list(dict.fromkeys(wanted))

    @property
    def file_names(self) -> list[str]:
        """:attr:`columns` as the file names them (the name column maybe ``name_1``)."""
        return [self.name_column if c == NAME else c for c in self.columns]

    def named(self, batch: pd.DataFrame) -> pd.DataFrame:
        """A batch read from the file with its name column called ``name``."""
        return batch if self.name_column == NAME else batch.rename(columns={self.name_column: NAME})

    def fresh(self) -> DetectionChecks:
        """The same checks of the same file, with no row counted yet (for one batch or partition)."""
        return DetectionChecks(self.path, self.name_column, self.file_columns, self.positions, self.clusters)

    def merge(self, other: DetectionChecks) -> DetectionChecks:
        """These checks followed by ``other``'s (of the rows that come after), as if added in one run."""
        for mine, theirs in (
            (self.blank_names, other.blank_names),
            (self.bad_positions, other.bad_positions),
            (self.bad_clusters, other.bad_clusters),
        ):
            mine.extend(theirs, self.n_rows)
        self.n_rows += other.n_rows
        self.hashes += other.hashes
        self.identity_hashes += other.identity_hashes
        return self

    @property
    def failed(self) -> bool:
        """Whether a batch so far has a problem that :meth:`raise_problems` raises."""
        return bool(self.blank_names.count or self.bad_positions.count or self.bad_clusters.count)

    def add(self, batch: pd.DataFrame) -> None:
        """Count the problems of the next batch (name column ``name``, :attr:`columns` at least)."""
        offset = self.n_rows
        self.n_rows += len(batch)
        self.blank_names.add(blank_names(batch), offset, batch, ())
        if self.positions:
            self.bad_positions.add(invalid_positions(batch), offset, batch, ("ra", "dec"))
        if self.clusters:
            labels = batch[[CLUSTER, *(c for c in self.columns if c.startswith("prob_"))]]
            self.bad_clusters.add(bad_cluster_labels(labels), offset, batch, (CLUSTER,))
        self.hashes.append(row_hashes(batch[self.subset]))
        self.identity_hashes.append(row_hashes(batch[[NAME, OBSID]]))

    def raise_problems(self) -> None:
        """The first error of ``check_detections`` (names, positions, clusters), if any."""
        with input_files(self.path):
            if self.blank_names.count:
                raise blank_name_error(self.blank_names.count, self.blank_names.row or 0)
            if self.bad_positions.count:
                ra, dec = self.bad_positions.example
                raise position_error(self.bad_positions.count, self.bad_positions.row or 0, ra, dec)
            if self.bad_clusters.count:
                n_clusters = cluster_count(self.file_columns)
                (value,) = self.bad_clusters.example
                raise cluster_label_error(n_clusters, self.bad_clusters.count, self.bad_clusters.row or 0, value)

    def check_repeats(self, batch_rows: int, source: InputIdentity | None = None) -> None:
        """Raise as :func:`~xrayclass.io.checks.handle_duplicates` does on repeated detections.

        Reads the file again, only when two rows share a hash, and keeps only those rows.
        """
        hashes = np.concatenate(self.hashes) if self.hashes else np.empty(0, np.uint64)
        self.hashes = []
        values, counts = np.unique(hashes, return_counts=True)
        suspects = values[counts > 1]
        if len(suspects):
            subset = self.subset
            rows = []
            for batch in iter_batches(
                self.path, [self.name_column if c == NAME else c for c in subset], batch_rows, source
            ):
                batch = self.named(batch)[subset]
                rows.append(batch.loc[np.isin(row_hashes(batch), suspects)])
            candidates = pd.concat(rows, ignore_index=True)
            repeated = candidates.duplicated(keep="first").to_numpy()
            if repeated.any():
                with input_files(self.path):
                    raise repeat_error(int(repeated.sum()), candidates.loc[repeated])
        identities = np.concatenate(self.identity_hashes) if self.identity_hashes else np.empty(0, np.uint64)
        self.identity_hashes = []
        values, counts = np.unique(identities, return_counts=True)
        shared = int(counts[counts > 1].sum())
        if shared:
            log.info(
                "%s: %s detections share their name and obsid with another detection of different values "
                "(the CSC can list several detections of a source in one observation); all are kept",
                self.path,
                f"{shared:,}",
            )
