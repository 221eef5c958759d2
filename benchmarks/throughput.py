#!/usr/bin/env python3
"""Stage-3 classification throughput on one core (detections per second).

    taskset -c 0 env OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python benchmarks/throughput.py [--n 1000000]

(``taskset`` gives the process one processor: the classification's own threads follow the
processors it may run on, BLAS's the environment; ``threads`` in the output says how many
the classification used.)

Uses the artifact and the classified detections of the 1M-detection benchmark run
(benchmarks/cache/run_1000000, made by run.py), repeats rows to ``--n`` detections, and
times, best of three: the Mahalanobis probabilities alone; the whole classification
step without the outlier measures and tracks; and with them. Preprocessing is included,
reading and writing files are not. Writes benchmarks/throughput.csv.
"""

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from xrayclass.constants import CLUSTER, FEATURES  # noqa: E402
from xrayclass.core.progress import available_threads  # noqa: E402
from xrayclass.io.artifacts import read_classifier_model  # noqa: E402
from xrayclass.io.tables import read_table  # noqa: E402


def best_of(function, repeats=3):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--run", default=str(HERE / "cache" / "run_1000000"))
    args = parser.parse_args()
    run = Path(args.run)
    model = read_classifier_model(run / "classifier.json")
    detections = read_table(run / "s3.parquet", columns=["ra", "dec", CLUSTER, *FEATURES])
    repeats = -(-args.n // len(detections))
    detections = pd.concat([detections] * repeats, ignore_index=True).iloc[: args.n]
    clusters = detections[CLUSTER].to_numpy()
    X = model.preprocess(detections)
    rows = []
    for step, function in (
        ("mahalanobis probabilities", lambda: model.references.predict_proba(X, clusters)),
        ("classification without outliers and tracks", lambda: model.classify(detections, clusters, explain=False)),
        ("classification with outliers and tracks", lambda: model.classify(detections, clusters)),
    ):
        seconds = best_of(function)
        rows.append(
            {
                "step": step,
                "n_detections": args.n,
                "seconds": seconds,
                "detections_per_second": args.n / seconds,
                "threads": available_threads(),
            }
        )
        print(rows[-1], flush=True)
    pd.DataFrame(rows).to_csv(HERE / "throughput.csv", index=False)


if __name__ == "__main__":
    main()
