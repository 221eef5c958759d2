#!/usr/bin/env python3
"""Stage 3 against its I/O floor (not part of the tests).

    python benchmarks/stage3_floor.py [--n 1000000] [--repeat 5]

The floor is the time pyarrow alone takes to read the stage-2 table and write the
stage-3 table of the same run (Parquet, the stage's own write options); stage 3 is
``classification.py`` in its own process, from the stage-2 file to its three outputs.
The two are timed in turn (stage, floor, stage, floor, ...) and the medians compared.
The stage-2 table comes from benchmarks/run.py's cache (a SYNTHETIC mock catalog through
stages 1-2), made if absent. Appends a row to benchmarks/stage3_floor.csv.
"""

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
REPOSITORY = HERE.parent
sys.path.insert(0, str(REPOSITORY))

from benchmarks.run import mock, run_chain  # noqa: E402
from xrayclass.io.tables import parquet_options  # noqa: E402


def stage2_table(n: int, cache: Path, seed: int) -> Path:
    """The cached stage-2 table of the mock of ``n`` detections (stages 1-2 run if absent)."""
    work = cache / f"floor_{n}"
    if not (work / "s2.parquet").exists():
        catalog, simbad = mock(n, cache, seed)
        run_chain(n, catalog, simbad, work)
    return work / "s2.parquet"


def stage3_seconds(stage2: Path, out: Path) -> float:
    start = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            str(REPOSITORY / "classification.py"),
            "--input",
            str(stage2),
            "--output",
            str(out / "s3.parquet"),
            "--model-output",
            str(out / "classifier.json"),
            "--outliers-output",
            str(out / "outliers.csv"),
            "-q",
        ],
        check=True,
    )
    return time.perf_counter() - start


def floor_seconds(stage2: Path, stage3: Path, out: Path) -> float:
    """pyarrow reading the stage-2 table and writing the stage-3 table (held in memory beforehand)."""
    table = pq.read_table(stage3)
    start = time.perf_counter()
    pq.read_table(stage2)
    pq.write_table(table, out / "floor.parquet", **parquet_options(table.schema))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1_000_000, help="detections of the mock catalog")
    parser.add_argument("--repeat", type=int, default=5, help="runs of each, in turn")
    parser.add_argument("--cache", default=str(HERE / "cache"), help="where mock catalogs and runs are kept")
    parser.add_argument("--seed", type=int, default=1, help="seed of the mock catalog")
    parser.add_argument("--stage2", default=None, help="a stage-2 Parquet table to use instead of the mock's")
    args = parser.parse_args()
    stage2 = Path(args.stage2) if args.stage2 else stage2_table(args.n, Path(args.cache), args.seed)
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder)
        stage3_seconds(stage2, out)  # warm-up: the file cache, and the stage-3 table for the floor
        stage, floor = [], []
        for _ in range(args.repeat):
            stage.append(stage3_seconds(stage2, out))
            floor.append(floor_seconds(stage2, out / "s3.parquet", out))
    ratio = statistics.median(s / f for s, f in zip(stage, floor, strict=True))
    print(f"stage 3: median {statistics.median(stage):.2f} s (runs {', '.join(f'{s:.2f}' for s in stage)})")
    print(f"I/O floor: median {statistics.median(floor):.2f} s (runs {', '.join(f'{f:.2f}' for f in floor)})")
    print(f"stage 3 / floor, median of the pairs: {ratio:.2f}")
    rows = HERE / "stage3_floor.csv"
    new = not rows.exists()
    with open(rows, "a", encoding="utf-8") as handle:
        if new:
            handle.write("n_detections,repeat,stage3_s,floor_s,ratio\n")
        handle.write(
            f"{args.n if not args.stage2 else pq.ParquetFile(stage2).metadata.num_rows},{args.repeat},"
            f"{statistics.median(stage):.3f},{statistics.median(floor):.3f},{ratio:.3f}\n"
        )


if __name__ == "__main__":
    main()
