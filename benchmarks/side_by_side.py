#!/usr/bin/env python3
"""This checkout's whole chain against another checkout's, side by side (not a test).

    python benchmarks/side_by_side.py --baseline ../base [--n 1000000] [--rounds 5]

Both checkouts run the four stage scripts, in memory, with Parquet in and out, on the same
SYNTHETIC mock catalog (made by this checkout, cached in benchmarks/cache/), each stage in
its own process with its own Python (``DIR/.venv/bin/python``). After a warm-up round
(not counted), the two chains alternate (this, baseline, this, baseline, ...), so that a
drift of the machine's speed falls on both; each stage is timed as a whole process (start-up and imports included) with its peak
resident memory from the kernel's accounting (``wait4``). Prints and appends to
benchmarks/side_by_side.csv the medians per stage and chain, and the ratio this/baseline.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
REPOSITORY = HERE.parent
sys.path.insert(0, str(HERE))

from run import STAGES, machine, mock  # noqa: E402


def stage_commands(checkout: Path, catalog: Path, simbad: Path, work: Path) -> dict[str, list[str]]:
    """The four stage commands of ``checkout`` on ``catalog``, writing into ``work``."""
    python = str(checkout / ".venv" / "bin" / "python")
    return {
        "clustering": [python, str(checkout / "clustering.py"), "--input", str(catalog),
                       "--output", str(work / "s1.parquet"), "--model", str(work / "model.json"), "-q"],
        "crossmatch": [python, str(checkout / "crossmatch.py"), "--input", str(work / "s1.parquet"),
                       "--catalog", str(simbad), "--output", str(work / "s2.parquet"), "-q"],
        "classification": [python, str(checkout / "classification.py"), "--input", str(work / "s2.parquet"),
                           "--output", str(work / "s3.parquet"), "--model-output", str(work / "classifier.json"),
                           "--outliers-output", str(work / "outliers.csv"), "-q"],
        "master_classification": [python, str(checkout / "master_classification.py"), "--input",
                                  str(work / "s3.parquet"), "--out-dir", str(work), "--format", "parquet", "-q"],
    }  # fmt: skip


def timed(command: list[str], cwd: Path) -> tuple[float, float]:
    """Wall seconds and peak resident MB of one process running ``command``."""
    with tempfile.TemporaryFile() as errors:
        start = time.perf_counter()
        process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=errors)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode:
            errors.seek(0)
            raise RuntimeError(f"{command} failed ({process.returncode}): {errors.read().decode()[-2000:]}")
    return seconds, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", required=True, type=Path, help="the other checkout (with its .venv)")
    parser.add_argument("--n", type=int, default=1_000_000, help="detections in the mock catalog")
    parser.add_argument("--rounds", type=int, default=5, help="chains of each checkout, alternating")
    parser.add_argument("--warmup", type=int, default=1, help="rounds run first and not counted")
    parser.add_argument("--seed", type=int, default=1, help="seed of the mock catalog")
    parser.add_argument("--cache", type=Path, default=HERE / "cache")
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    catalog, simbad = mock(args.n, args.cache, args.seed)
    checkouts = {"this": REPOSITORY, "baseline": args.baseline.resolve()}
    rows = []
    for round_ in range(-args.warmup, args.rounds):
        for label, checkout in checkouts.items():
            work = args.cache / f"side_by_side_{label}"
            work.mkdir(exist_ok=True)
            for stage, command in stage_commands(checkout, catalog, simbad, work).items():
                seconds, peak = timed(command, checkout)
                rows.append({"round": round_, "checkout": label, "stage": stage, "seconds": seconds, "peak_mb": peak})
            chain = sum(r["seconds"] for r in rows[-len(STAGES) :])
            print(f"round {round_ + 1}/{args.rounds} {label:<8} chain {chain:6.1f} s", flush=True)
    runs = pd.DataFrame(rows).query("round >= 0")
    chains = runs.groupby(["round", "checkout"], as_index=False)["seconds"].sum().assign(stage="chain")
    medians = (
        pd.concat([runs, chains])
        .groupby(["stage", "checkout"])["seconds"]
        .median()
        .unstack("checkout")
        .reindex([*STAGES, "chain"])
    )
    medians["ratio"] = medians["this"] / medians["baseline"]
    peaks = runs.groupby(["stage", "checkout"])["peak_mb"].max().unstack("checkout").add_suffix("_peak_mb")
    table = medians.join(peaks)
    describe = lambda path: subprocess.run(  # noqa: E731
        ["git", "-C", str(path), "log", "-1", "--format=%h"], capture_output=True, text=True
    ).stdout.strip()
    print(f"\n{machine()}\n{args.n:,} detections, {args.rounds} alternating rounds; medians (s):")
    print(f"this = {describe(REPOSITORY)}, baseline = {describe(args.baseline)}")
    print(table.round(2).to_string())
    out = table.reset_index().assign(
        n_detections=args.n,
        rounds=args.rounds,
        this_commit=describe(REPOSITORY),
        baseline_commit=describe(args.baseline),
    )
    path = HERE / "side_by_side.csv"
    out.to_csv(path, mode="a", header=not path.exists(), index=False)


if __name__ == "__main__":
    main()
