"""Stage 2 against a local catalog, the detections streamed in batches (the catalog in memory).

Two passes over the stage-1 table:

1. validate every row as the in-memory stage does (names, positions, cluster labels,
   repeats) and find each detection's best match within the radius
   (:func:`~xrayclass.core.positional.nearest_within`, astropy's
   ``match_coordinates_sky``), keeping only the matched catalog row and separation;
2. join the matched catalog columns to each batch
   (:func:`~xrayclass.stages.crossmatch.join_matches`) and write it.

The output is that of :func:`~xrayclass.core.positional.crossmatch_local` on the whole
table (a test compares the CSV files byte for byte): the catalog's columns get the
types the whole-table join gives them, whatever matched in a given batch.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from xrayclass.constants import MAIN_TYPE
from xrayclass.core.checks import require_columns, require_numeric
from xrayclass.core.positional import CATALOG_SUFFIX, nearest_within
from xrayclass.engine import EngineConfig
from xrayclass.engine.checks import DetectionChecks, row_hashes
from xrayclass.exceptions import InputError, input_files
from xrayclass.io.streaming import (
    BatchWriter,
    InputIdentity,
    iter_batches,
)
from xrayclass.io.tables import NO_ROWS, write_outputs
from xrayclass.stages.crossmatch import CrossmatchConfig, join_matches, log_matches

__all__ = [
    "crossmatch_file",
]

log = logging.getLogger(__name__)


def _positions(
    batch: pd.DataFrame, catalog: pd.DataFrame, radius_arcsec: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row: the catalog row matched (-1: none), its separation, and a hash of the position."""
    codes, positions = pd.factorize(pd.MultiIndex.from_arrays([batch["ra"], batch["dec"]]))
    nearest, separation = nearest_within(
        positions.get_level_values(0), positions.get_level_values(1), catalog["ra"], catalog["dec"], radius_arcsec
    )
    return nearest[codes], separation[codes], row_hashes(batch[["ra", "dec"]])


def crossmatch_file(
    path: str | Path,
    catalog: pd.DataFrame,
    output: str | Path,
    config: CrossmatchConfig = CrossmatchConfig(source="catalog"),
    engine: EngineConfig = EngineConfig(engine="streaming"),
    model: tuple[dict, str | Path] | None = None,
) -> int:
    """Stage 2 with a local catalog (within ``config.radius`` arcsec), from file to file; returns the rows written.

    ``catalog`` is a checked catalog (:func:`~xrayclass.io.checks.check_catalog`);
    ``model`` an optional ``(document, path)`` written with the output, both or neither.
    """
    radius_arcsec, batch_rows = config.radius, engine.batch_rows
    source = InputIdentity(path)
    # check_detections(clusters=True) of the in-memory stage, over the batches of pass 1.
    checks = DetectionChecks.of_file(path, clusters=True)
    require_columns(catalog, ("ra", "dec", MAIN_TYPE))
    catalog = require_numeric(catalog, ("ra", "dec")).reset_index(drop=True)
    catalog = catalog.dropna(subset=["ra", "dec"]).reset_index(drop=True)

    # Pass 1: checks and matches.
    problem: InputError | None = None
    nearest, separation, position_hashes = [], [], []
    for batch in iter_batches(path, checks.file_names, batch_rows, source):
        batch = checks.named(batch)
        checks.add(batch)
        if problem is not None or checks.failed:
            continue
        try:
            batch = require_numeric(batch, ("ra", "dec"))
        except InputError as exc:
            problem = exc
            continue
        rows, distances, hashes = _positions(batch, catalog, radius_arcsec)
        nearest.append(rows)
        separation.append(distances)
        position_hashes.append(hashes)
    if checks.n_rows == 0:
        raise InputError(f"{path}: {NO_ROWS}")
    checks.raise_problems()
    if problem is not None:
        with input_files(path):
            raise problem
    checks.check_repeats(batch_rows, source)
    nearest_all = np.concatenate(nearest)
    separation_all = np.concatenate(separation)
    hashes = np.concatenate(position_hashes)
    within = nearest_all >= 0
    log.info(
        "%s of %s distinct positions have an object within %g arcsec",
        f"{len(np.unique(hashes[within])):,}",
        f"{len(np.unique(hashes)):,}",
        radius_arcsec,
    )
    del hashes, position_hashes

    renamed = catalog.rename(columns={"ra": f"ra{CATALOG_SUFFIX}", "dec": f"dec{CATALOG_SUFFIX}"})
    if not within.all():
        # The types the whole-table join gives the catalog's columns (an unmatched row
        # makes an integer column float), for every batch.
        renamed = renamed.astype(renamed.reindex([-1]).dtypes.to_dict())

    # Pass 2: join and write.
    n_unmatched, start = 0, 0
    n_columns: tuple[int, int] = (0, 0)
    with BatchWriter(output) as writer:
        for batch in iter_batches(path, None, batch_rows, source):
            with input_files(path):
                batch = require_numeric(checks.named(batch), ("ra", "dec"))
            stop = start + len(batch)
            matches = renamed.reindex(nearest_all[start:stop]).reset_index(drop=True)
            matches["angDist"] = separation_all[start:stop]
            start = stop
            if n_columns == (0, 0):
                n_columns = (sum(c not in batch.columns for c in matches.columns), batch.shape[1])
            combined, unmatched = join_matches(batch, matches)
            n_unmatched += int(unmatched.sum())
            writer.write(combined)
        if model is not None:
            write_outputs([model])
    log_matches(*n_columns, writer.rows, n_unmatched)
    return writer.rows
