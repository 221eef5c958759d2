#!/usr/bin/env python3
"""Benchmarks of the pipeline on mock catalogs of growing size (not part of the tests).

    python benchmarks/run.py [--sizes 30000,300000,1000000,10000000]

For each size: a SYNTHETIC mock catalog (cached in benchmarks/cache/), then stages 1-4
through the command-line scripts, each in its own process, with Parquet in and out
(stage 2 matches the mock's own mock SIMBAD, a frozen-style local crossmatch). Writes
benchmarks/results.csv (stage, n_detections, seconds, peak_mb; stage "all" is the
whole chain: the sum of the times and the largest peak), benchmarks/results.md (a table
with the machine's description) and benchmarks/scaling.png (time against size, log-log).

It also times the Mahalanobis step the published way (for each class, the diagonal of
an N x N product) beside the vectorized one, at the sizes where the N x N matrices
still fit in memory, and reports the ratio (benchmarks/mahalanobis.csv).
"""

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
REPOSITORY = HERE.parent
sys.path.insert(0, str(REPOSITORY))

STAGES = ("clustering", "crossmatch", "classification", "master_classification")


def machine():
    """A one-line description of this machine."""
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    import numpy
    import pandas
    import sklearn

    return (
        f"{model}, {os.cpu_count()} cores, {memory:.0f} GiB; Python {platform.python_version()}, "
        f"numpy {numpy.__version__}, pandas {pandas.__version__}, scikit-learn {sklearn.__version__}"
    )


def mock(n, cache, seed):
    """The cached mock catalog of ``n`` detections (made if absent): (catalog, mock SIMBAD)."""
    catalog, simbad = cache / f"mock_{n}.parquet", cache / f"mock_{n}_simbad.parquet"
    if not (catalog.exists() and simbad.exists()):
        print(f"making the SYNTHETIC mock catalog of {n:,} detections ...", flush=True)
        start = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                str(REPOSITORY / "make_mock_catalog.py"),
                "--n-detections",
                str(n),
                "--seed",
                str(seed),
                "--output",
                str(catalog),
                "--simbad-output",
                str(simbad),
                "-q",
            ],
            check=True,
        )
        print(f"  made in {time.perf_counter() - start:.0f} s", flush=True)
    return catalog, simbad


#: The line the Dask engine logs at the end of a stage with its workers' largest peak memory.
WORKER_PEAK = re.compile(r"Dask workers' peak memory \(this stage\): largest ([\d,]+) MB")


def measure(script, *args, repeat=1, quiet=True):
    """Run a stage script in its own process ``repeat`` times: the median wall time, the
    largest peak memory of the stage's process and the largest of its Dask workers (read
    from the stage's log, so not quiet; NaN without Dask)."""
    reports = []
    for _ in range(repeat):
        result = subprocess.run(
            [sys.executable, str(HERE / "measure.py"), script, *map(str, args), *(["-q"] if quiet else [])],
            capture_output=True,
            text=True,
        )
        report = json.loads(result.stdout.strip().splitlines()[-1]) if result.stdout.strip() else {"status": -1}
        if result.returncode or report.get("status"):
            raise RuntimeError(f"{script} failed:\n{result.stderr[-2000:]}")
        workers = [float(peak.replace(",", "")) for peak in WORKER_PEAK.findall(result.stderr)]
        report["worker_peak_mb"] = max(workers) if workers else float("nan")
        reports.append(report)
    return (
        float(np.median([r["seconds"] for r in reports])),
        max(r["peak_mb"] for r in reports),
        max(r["worker_peak_mb"] for r in reports),
    )


def run_chain(n, catalog, simbad, work, engine="memory", batch_rows=None, workers=None, repeat=1):
    work.mkdir(parents=True, exist_ok=True)
    # Every stage takes --engine; stage 2 has no Dask engine (its local crossmatch streams
    # the detections against the catalog in memory), so it streams under --engine dask.
    scale = (
        "--engine",
        engine,
        *(("--batch-rows", batch_rows) if batch_rows else ()),
        *(("--workers", workers) if workers and engine == "dask" else ()),
    )
    scale2 = (
        "--engine",
        "streaming" if engine == "dask" else engine,
        *(("--batch-rows", batch_rows) if batch_rows else ()),
    )
    steps = {
        "clustering": (
            "clustering.py",
            "--input",
            catalog,
            "--output",
            work / "s1.parquet",
            "--model",
            work / "model.json",
            *scale,
        ),
        "crossmatch": (
            "crossmatch.py",
            "--input",
            work / "s1.parquet",
            "--catalog",
            simbad,
            "--output",
            work / "s2.parquet",
            *scale2,
        ),
        "classification": (
            "classification.py",
            "--input",
            work / "s2.parquet",
            "--output",
            work / "s3.parquet",
            "--model-output",
            work / "classifier.json",
            "--outliers-output",
            work / "outliers.csv",
            *scale,
        ),
        "master_classification": (
            "master_classification.py",
            "--input",
            work / "s3.parquet",
            "--out-dir",
            work,
            "--format",
            "parquet",
            *scale,
        ),
    }
    rows = []
    for stage in STAGES:
        seconds, peak, worker_peak = measure(*steps[stage], repeat=repeat, quiet=engine != "dask")
        workers_peak = f"  workers {worker_peak:8.0f} MB" if not np.isnan(worker_peak) else ""
        print(f"  {stage:<22} {seconds:8.1f} s  {peak:8.0f} MB{workers_peak}", flush=True)
        rows.append(
            {
                "stage": stage,
                "n_detections": n,
                "seconds": seconds,
                "peak_mb": peak,
                "worker_peak_mb": worker_peak,
            }
        )
    rows.append(
        {
            "stage": "all",
            "n_detections": n,
            "seconds": sum(r["seconds"] for r in rows),
            "peak_mb": max(r["peak_mb"] for r in rows),
            "worker_peak_mb": np.nanmax([r["worker_peak_mb"] for r in rows])
            if any(not np.isnan(r["worker_peak_mb"]) for r in rows)
            else float("nan"),
        }
    )
    for row in rows:
        row.update(
            engine=engine, workers=workers if engine == "dask" else 1, batch_rows=batch_rows or "", repeat=repeat
        )
        # Whole-stage throughput (reading and writing included): detections of the input per second.
        row["detections_per_second"] = n / row["seconds"] if row["seconds"] else float("nan")
    return rows


def mahalanobis_comparison(work, n, max_matrix_gb):
    """Time the published N x N way against the vectorized one on a run's own references."""
    from xrayclass.constants import CLUSTER, FEATURES
    from xrayclass.core.classifier import softmin
    from xrayclass.io.artifacts import read_classifier_model
    from xrayclass.io.tables import read_table

    model = read_classifier_model(work / "classifier.json")
    detections = read_table(work / "s3.parquet", columns=[CLUSTER, *FEATURES])
    X, clusters = model.preprocess(detections), detections[CLUSTER].to_numpy()
    largest = max(int((clusters == c).sum()) for c in np.unique(clusters))
    if largest**2 * 8 / 2**30 > max_matrix_gb:
        return None
    start = time.perf_counter()
    vectorized = model.references.predict_proba(X, clusters)
    fast = time.perf_counter() - start
    start = time.perf_counter()
    published = np.zeros_like(vectorized)
    for cluster, classifier in model.references.classifiers_.items():
        members = clusters == cluster
        centered_rows = X[members]
        distances = np.full((members.sum(), len(classifier.classes_)), np.inf)
        for k in np.flatnonzero(classifier.scored_):
            centered = centered_rows - classifier.means_[k]
            # The published code: the diagonal of the full (N x N) product.
            distances[:, k] = np.dot(np.dot(centered, classifier.inverse_covariances_[k]), centered.T).diagonal()
        published[members] = softmin(distances)
    slow = time.perf_counter() - start
    agree = float(np.max(np.abs(published - vectorized)))
    return {
        "n_detections": n,
        "classified": len(X),
        "largest_cluster": largest,
        "vectorized_s": fast,
        "published_nxn_s": slow,
        "ratio": slow / fast,
        "max_probability_difference": agree,
    }


def plot(results, path, description):
    """Time against size, log-log: a colour per stage, a line style and marker per engine."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8.5, 4.8), layout="constrained")
    ax = figure.subplots()
    if "engine" not in results.columns:
        results = results.assign(engine="memory", workers=1)
    colours = {stage: f"C{k}" for k, stage in enumerate([*STAGES, "all"])}
    styles = {"memory": ("-", "o"), "streaming": ("--", "s"), "dask": (":", "^")}
    for (stage, engine, workers), rows in results.groupby(["stage", "engine", "workers"], sort=False):
        line, marker = styles.get(engine, ("-.", "x"))
        engine_label = f"dask, {workers} worker{'s' if workers != 1 else ''}" if engine == "dask" else engine
        ax.loglog(
            rows["n_detections"],
            rows["seconds"],
            linestyle=line,
            marker="v" if engine == "dask" and workers == 1 else marker,
            color=colours.get(stage, "k"),
            label=f"{stage} ({engine_label})",
        )
    ax.set_xlabel("detections (SYNTHETIC mock catalog)")
    ax.set_ylabel("wall time (s)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=6.5, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.set_title(f"SYNTHETIC mock catalogs; {description}", fontsize=6)
    figure.savefig(path, dpi=150)


def markdown_table(results, description):
    """One table per engine (and number of Dask workers) run."""
    if "engine" not in results.columns:
        results = results.assign(engine="memory", workers=1)
    lines = [f"Machine: {description}", ""]
    for (engine, workers), run in results.groupby(["engine", "workers"], sort=False):
        lines += [
            f"Engine of stages 1-4: {engine}"
            + (f", {workers} workers (stage 2: streaming)" if engine == "dask" else ""),
            "",
            _markdown_run(run, workers_column=engine == "dask"),
            "",
        ]
    return "\n".join(lines)


def _markdown_run(results, workers_column=False):
    if "worker_peak_mb" not in results.columns:
        results = results.assign(worker_peak_mb=np.nan)
    table = results.pivot(index="stage", columns="n_detections", values=["seconds", "peak_mb", "worker_peak_mb"])
    sizes = sorted(results["n_detections"].unique())
    unit = "s / peak MB / largest worker's peak MB" if workers_column else "s / peak MB"
    lines = [
        "| stage | " + " | ".join(f"{n:,} detections: {unit}" for n in sizes) + " |",
        "|---|" + "---|" * len(sizes),
    ]

    def cell(stage, n):
        if stage not in table.index or np.isnan(table.loc[stage, ("seconds", n)]):
            return "-"
        text = f"{table.loc[stage, ('seconds', n)]:.1f} / {table.loc[stage, ('peak_mb', n)]:,.0f}"
        if workers_column:
            worker = table.loc[stage, ("worker_peak_mb", n)]
            text += " / " + ("-" if np.isnan(worker) else f"{worker:,.0f}")
        return text

    for stage in [*STAGES, "all"]:
        cells = [cell(stage, n) for n in sizes]
        lines.append(f"| {stage} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--sizes", default="30000,300000,1000000,10000000", help="comma-separated numbers of detections"
    )
    parser.add_argument("--cache", default=str(HERE / "cache"), help="where mock catalogs and runs are kept")
    parser.add_argument("--seed", type=int, default=1, help="seed of the mock catalogs")
    parser.add_argument(
        "--max-matrix-gb", type=float, default=4.0, help="largest N x N matrix the published Mahalanobis way may build"
    )
    parser.add_argument(
        "--engine",
        choices=("memory", "streaming", "dask"),
        default="memory",
        help="engine of every stage (stage 2 streams under dask; recorded with the results)",
    )
    parser.add_argument("--batch-rows", type=int, default=None, help="--batch-rows of every stage")
    parser.add_argument("--workers", type=int, default=None, help="Dask workers (--engine dask)")
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs of each stage: the median time is reported (the peak: the largest)"
    )
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    description = machine()
    print(description)
    # The package's bytecode compiled first, as an installed package's is: under
    # PYTHONDONTWRITEBYTECODE each stage would otherwise compile it at every start.
    import compileall

    compileall.compile_dir(str(REPOSITORY / "xrayclass"), quiet=1)

    results_path = HERE / "results.csv"
    previous = pd.read_csv(results_path) if results_path.exists() else pd.DataFrame()
    rows, comparisons = [], []
    for n in sizes:
        catalog, simbad = mock(n, cache, args.seed)
        print(f"{n:,} detections:", flush=True)
        work = cache / f"run_{n}"
        rows += run_chain(n, catalog, simbad, work, args.engine, args.batch_rows, args.workers, args.repeat)
        comparison = mahalanobis_comparison(work, n, args.max_matrix_gb)
        if comparison:
            comparisons.append(comparison)
            print(
                f"  Mahalanobis step: vectorized {comparison['vectorized_s']:.2f} s, published N x N way "
                f"{comparison['published_nxn_s']:.2f} s ({comparison['ratio']:.0f}x)",
                flush=True,
            )
    results = pd.DataFrame(rows)
    if len(previous):  # keep the sizes (and engines) not re-run this time
        for column, default in (("engine", "memory"), ("workers", 1), ("batch_rows", "")):
            if column not in previous.columns:
                previous[column] = default
        rerun = (
            previous["n_detections"].isin(sizes)
            & (previous["engine"] == args.engine)
            & (previous["workers"] == (args.workers if args.engine == "dask" else 1))
        )
        results = pd.concat([previous[~rerun], results], ignore_index=True)
    results = results.sort_values(["n_detections"], kind="stable")
    results.to_csv(results_path, index=False)
    if comparisons:
        pd.DataFrame(comparisons).to_csv(HERE / "mahalanobis.csv", index=False)
    (HERE / "results.md").write_text(markdown_table(results, description))
    plot(results, HERE / "scaling.png", description)
    print(markdown_table(results, description))


if __name__ == "__main__":
    main()
