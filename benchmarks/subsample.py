#!/usr/bin/env python3
"""How much fitting the mixture on a subsample changes the clusters (stage 1 at scale).

    python benchmarks/subsample.py [--n 1000000] [--samples 25000,50000,100000,200000,400000]

On the cached SYNTHETIC mock of ``--n`` detections (benchmarks/cache, made by run.py
if absent): fit the 6-component mixture on all complete detections and on seeded
subsamples of several sizes, assign every detection with each fit, and report the
fit time and the share of detections whose cluster agrees with the full fit's (after
the best relabeling). Also the agreement between two full fits with different seeds,
the yardstick of what "the same clusters" can mean. Writes benchmarks/subsample.csv.
"""

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from run import mock  # noqa: E402

from xrayclass.constants import FEATURES  # noqa: E402
from xrayclass.core.features import complete_rows, prepare_features  # noqa: E402
from xrayclass.core.mixture import ClusteringModel, fit_mixture  # noqa: E402
from xrayclass.core.preprocessing import LogMinMaxScaler  # noqa: E402
from xrayclass.io.tables import read_table  # noqa: E402
from xrayclass.stages.clustering import fit_rows  # noqa: E402
from xrayclass.stages.crossmatch import cluster_agreement  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1_000_000, help="detections of the mock catalog")
    parser.add_argument("--samples", default="25000,50000,100000,200000,400000")
    parser.add_argument("--seed", type=int, default=42, help="seed of the fits (the pipeline's default)")
    args = parser.parse_args()
    catalog, _ = mock(args.n, HERE / "cache", 1)
    table = prepare_features(read_table(catalog))
    complete, _ = complete_rows(table)
    features = table.loc[complete, list(FEATURES)].to_numpy(dtype="float64")
    scaler = LogMinMaxScaler().fit(features)
    X = scaler.transform(features)

    def fit(rows, seed):
        start = time.perf_counter()
        mixture = fit_mixture(X[rows], random_state=seed)
        seconds = time.perf_counter() - start
        clusters, _ = ClusteringModel(scaler, mixture).assign(pd.DataFrame(features, columns=FEATURES))
        return clusters, seconds

    print(f"{len(X):,} complete detections; full fit ...", flush=True)
    full, full_seconds = fit(slice(None), args.seed)
    other, _ = fit(slice(None), args.seed + 1)
    rows = [
        {"fit_sample": len(X), "fit_seconds": full_seconds, "agreement_with_full_fit": 1.0},
        {
            "fit_sample": f"{len(X)} (other seed)",
            "fit_seconds": float("nan"),
            "agreement_with_full_fit": cluster_agreement(full, other),
        },
    ]
    for size in (int(s) for s in args.samples.split(",")):
        clusters, seconds = fit(fit_rows(X, size, args.seed), args.seed)
        rows.append(
            {"fit_sample": size, "fit_seconds": seconds, "agreement_with_full_fit": cluster_agreement(full, clusters)}
        )
        print(rows[-1], flush=True)
    result = pd.DataFrame(rows)
    result.to_csv(HERE / "subsample.csv", index=False)
    print(result.to_string(index=False))


if __name__ == "__main__":
    main()
