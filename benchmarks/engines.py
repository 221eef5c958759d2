#!/usr/bin/env python3
"""The engines side by side on stages 3-4, in one run (not part of the tests).

    python benchmarks/engines.py [--size 3000000] [--repeat 1]

Makes (or reuses, benchmarks/cache/) the SYNTHETIC mock of ``--size`` detections and its
stage-2 table (stages 1-2 streamed), then runs stages 3 and 4 through the scripts, each
in its own process, with Dask on 2 worker processes, Dask on 1 and the streaming
engine; the configurations take turns in each round (``--repeat`` rounds, medians
kept). Prints the table and writes it to benchmarks/engines.csv; the machine's load
average before and after is printed with it (the timings mean little on a busy machine).
"""

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import run as bench  # noqa: E402  (benchmarks/run.py: the mock and the measured subprocesses)

#: (engine, Dask workers) of each configuration compared.
CONFIGURATIONS = (("dask", 2), ("dask", 1), ("streaming", None))


def stage2_table(n, cache, seed, batch_rows):
    """The stage-2 table of the mock of ``n`` detections (stages 1-2 streamed), made once."""
    catalog, simbad = bench.mock(n, cache, seed)
    work = cache / f"engines_{n}"
    if not (work / "s2.parquet").exists():
        rows = bench.run_chain(n, catalog, simbad, work, "streaming", batch_rows)
        print(f"  stages 1-2 streamed: {rows[0]['seconds'] + rows[1]['seconds']:.0f} s", flush=True)
    return work


def stages34(work, engine, workers, batch_rows):
    """Seconds and peaks (client, largest worker) of stages 3 and 4 with one engine."""
    run = work / f"{engine}{workers or ''}"
    run.mkdir(exist_ok=True)
    scale = ("--engine", engine, *(("--workers", workers) if workers else ()), "--batch-rows", batch_rows)
    stage3 = bench.measure(
        "classification.py",
        "--input",
        work / "s2.parquet",
        "--output",
        run / "s3.parquet",
        "--model-output",
        run / "classifier.json",
        "--outliers-output",
        run / "outliers.csv",
        *scale,
        quiet=False,
    )
    stage4 = bench.measure(
        "master_classification.py",
        "--input",
        run / "s3.parquet",
        "--out-dir",
        run,
        "--format",
        "parquet",
        *scale,
        quiet=False,
    )
    return stage3, stage4


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=3_000_000, help="detections of the mock")
    parser.add_argument("--repeat", type=int, default=1, help="rounds (medians kept)")
    parser.add_argument("--batch-rows", type=int, default=250_000, help="--batch-rows of every run")
    parser.add_argument("--cache", default=str(HERE / "cache"))
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    work = stage2_table(args.size, cache, args.seed, args.batch_rows)
    print(f"load average before: {os.getloadavg()}", flush=True)
    measured = {config: [] for config in CONFIGURATIONS}
    for round_ in range(args.repeat):
        order = CONFIGURATIONS[round_ % len(CONFIGURATIONS) :] + CONFIGURATIONS[: round_ % len(CONFIGURATIONS)]
        for engine, workers in order:
            (s3, p3, w3), (s4, p4, w4) = stages34(work, engine, workers, args.batch_rows)
            print(f"  {engine} {workers or ''}: stage 3 {s3:.1f} s, stage 4 {s4:.1f} s", flush=True)
            measured[(engine, workers)].append((s3, s4, max(p3, p4), np.nanmax([w3, w4, np.nan])))
    load = os.getloadavg()
    rows = []
    for (engine, workers), runs in measured.items():
        s3, s4 = float(np.median([r[0] for r in runs])), float(np.median([r[1] for r in runs]))
        rows.append(
            {
                "engine": engine,
                "workers": workers or "",
                "n_detections": args.size,
                "stage3_s": round(s3, 1),
                "stage4_s": round(s4, 1),
                "stages34_s": round(s3 + s4, 1),
                "client_peak_mb": round(max(r[2] for r in runs)),
                "worker_peak_mb": round(max(r[3] for r in runs)) if any(np.isfinite(r[3]) for r in runs) else "",
                "rounds": args.repeat,
            }
        )
    table = pd.DataFrame(rows)
    table.to_csv(HERE / "engines.csv", index=False)
    print("| " + " | ".join(table.columns) + " |\n|" + "---|" * len(table.columns))
    for row in table.itertuples(index=False):
        print("| " + " | ".join(str(value) for value in row) + " |")
    dask2, dask1, streaming = (table.loc[i, "stages34_s"] for i in range(3))
    print(f"Dask 2 workers vs 1: {dask1 / dask2:.2f}x; vs streaming: {streaming / dask2:.2f}x")
    print(f"load average after: {load}")


if __name__ == "__main__":
    main()
