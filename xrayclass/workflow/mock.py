"""Writing a SYNTHETIC mock catalog and its mock SIMBAD to files, with their provenance.

The catalogs are made by :func:`xrayclass.analysis.mock.generate`, a chunk at a time;
this module writes them (CSV, Parquet or VOTable by extension) as they come.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from astropy.table import Table

from xrayclass.analysis.mock import SYNTHETIC_NOTE, MockSettings, describe, generate
from xrayclass.io.tables import PARQUET_ROW_GROUP, parquet_options, table_format, write_atomic, write_json

__all__ = ["VOTABLE_LIMIT", "write_mock"]

log = logging.getLogger(__name__)


def write_mock(
    n_detections: int,
    seed: int,
    output: str | os.PathLike[str],
    simbad_output: str | os.PathLike[str],
    settings: MockSettings | None = None,
) -> dict[str, Any]:
    """Write a mock catalog and its mock SIMBAD catalog, chunk by chunk.

    Parquet and CSV are written incrementally (memory bounded at any size); VOTable
    is assembled in memory and limited to a few million rows. Both files appear only
    when complete. Returns counts for the log and the provenance sidecar.
    """
    settings = settings or MockSettings()
    formats = {
        table_format(output, ("csv", "parquet", "votable")),
        table_format(simbad_output, ("csv", "parquet", "votable")),
    }
    if "votable" in formats and n_detections > VOTABLE_LIMIT:
        raise ValueError(f"a VOTable of {n_detections:,} rows is impractical; write .parquet instead")
    chunks = generate(n_detections, seed, settings)
    counts = {"detections": 0, "sources": 0, "simbad_objects": 0}

    def tally(detections: pd.DataFrame, simbad: pd.DataFrame) -> None:
        counts["detections"] += len(detections)
        counts["sources"] += detections["name"].nunique()
        counts["simbad_objects"] += len(simbad)

    pending_simbad = []

    def write_detections(temporary: Path) -> None:
        with _TableSink(temporary, output) as sink:
            for detections, simbad in chunks:
                tally(detections, simbad)
                sink.append(detections)
                pending_simbad.append(simbad)
                log.info("mock catalog: %s of %s detections", f"{counts['detections']:,}", f"{n_detections:,}")

    def write_simbad(temporary: Path) -> None:
        with _TableSink(temporary, simbad_output) as sink:
            for simbad in pending_simbad:
                sink.append(simbad)

    write_atomic(output, write_detections)
    write_atomic(simbad_output, write_simbad)
    provenance = {
        **describe(settings),
        "seed": seed,
        "n_detections_requested": n_detections,
        **counts,
        "catalog": str(output),
        "simbad_catalog": str(simbad_output),
    }
    write_json(provenance, f"{output}.provenance.json")
    return provenance


VOTABLE_LIMIT = 3_000_000


class _TableSink:
    """Appends DataFrame chunks to one CSV, Parquet or VOTable file."""

    def __init__(self, path: str | os.PathLike[str], destination: str | os.PathLike[str]) -> None:
        self.path = path
        self.format = table_format(destination, ("csv", "parquet", "votable"))
        self.writer: Any = None
        self.parts: list[pd.DataFrame] = []

    def __enter__(self) -> _TableSink:
        return self

    def append(self, frame: pd.DataFrame) -> None:
        if self.format == "csv":
            frame.to_csv(self.path, mode="a" if self.writer else "w", header=self.writer is None, index=False)
            self.writer = True
        elif self.format == "parquet":
            table = pa.Table.from_pandas(frame, preserve_index=False)
            if self.writer is None:
                table = table.replace_schema_metadata(
                    {**(table.schema.metadata or {}), b"xrayclass.note": SYNTHETIC_NOTE.encode()}
                )
                self.writer = pq.ParquetWriter(self.path, table.schema, **parquet_options(table.schema))
            self.writer.write_table(table.cast(self.writer.schema), row_group_size=PARQUET_ROW_GROUP)
        else:
            self.parts.append(frame)

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> Literal[False]:
        if self.format == "parquet" and self.writer is not None:
            self.writer.close()
        if self.format == "votable" and kind is None:
            table = Table.from_pandas(pd.concat(self.parts, ignore_index=True))
            table.meta["description"] = SYNTHETIC_NOTE
            table.write(self.path, format="votable", overwrite=True)
        return False
