#!/usr/bin/env python3
"""Size and load time of the explorer (analysis.py explore), not part of the tests.

    python benchmarks/explorer.py [--sizes 1000000] [--published]

``--published``: the explorer of the published stage-4 tables (8,271 + 485 sources,
with the published stage-3 table for the source panel), from the reference directory.
Each size N: a SYNTHETIC stage-4-like table of N sources (names ``MOCK J...``, classes,
``mean±std`` probabilities, features drawn at random, seed 0: nothing real), written as
an explorer with the default cap. For each page: the time to write it, its size, and
the time headless Chromium (Debian's, software WebGL) takes from navigation to the page
saying it is ready (all views drawn), opened from file:// with the network blocked.
Appends to benchmarks/explorer.csv.
"""

import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPOSITORY = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPOSITORY))

from xrayclass import paths  # noqa: E402
from xrayclass.analysis.explore import RunTables  # noqa: E402
from xrayclass.constants import AGGREGATE_CLASS, CLASSES, FEATURES  # noqa: E402
from xrayclass.workflow.explorer import read_run, write_explorer  # noqa: E402

CACHE = REPOSITORY / "benchmarks" / "cache"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
]


def synthetic_stage4(n: int, seed: int = 0) -> pd.DataFrame:
    """A SYNTHETIC table shaped like uniquely_classified.csv (nothing real in it)."""
    rng = np.random.default_rng(seed)
    ra = rng.uniform(0, 360, n)
    dec = np.degrees(np.arcsin(rng.uniform(-1, 1, n)))
    serial = np.arange(n)
    names = pd.Series(serial).map(lambda i: f"MOCK J{i // 10000:06d}.{i % 10}+{i % 10000:06d}")
    probabilities = rng.dirichlet(np.full(len(CLASSES), 0.3), n)
    std = probabilities * rng.uniform(0, 0.5, (n, 1))
    master = np.asarray(CLASSES)[probabilities.argmax(axis=1)]
    table = pd.DataFrame(
        {
            "name": names,
            "agg_master_class": [AGGREGATE_CLASS[c] for c in master],
            "master_class": master,
            "detection_count": rng.geometric(0.6, n),
        }
    )
    for k, name in enumerate(CLASSES):
        table[name] = (
            pd.Series(np.round(probabilities[:, k], 3)).astype(str)
            + "±"
            + pd.Series(np.round(std[:, k], 3)).astype(str)
        )
    table["ra"], table["dec"] = ra, dec
    for feature in FEATURES:
        table[feature] = rng.normal(size=n)
    return table


def load_seconds(path: Path) -> float:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as runner:
        browser = runner.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.route("**/*", lambda r: r.continue_() if r.request.url.startswith("file:") else r.abort())
        start = time.perf_counter()
        page.goto(path.resolve().as_uri(), timeout=600_000)
        page.wait_for_selector("body[data-ready='1']", timeout=600_000)
        seconds = time.perf_counter() - start
        browser.close()
    return seconds


def measure(label: str, tables: RunTables, output: Path) -> dict:
    start = time.perf_counter()
    meta = write_explorer(tables, output)
    written = time.perf_counter() - start
    row = {
        "page": label,
        "sources": meta["n_total"],
        "drawn": meta["n_shown"],
        "write_seconds": round(written, 1),
        "size_mb": round(output.stat().st_size / 1e6, 1),
        "load_seconds": round(load_seconds(output), 1),
    }
    print(row, flush=True)
    return row


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000000")
    parser.add_argument("--published", action="store_true")
    args = parser.parse_args()
    CACHE.mkdir(parents=True, exist_ok=True)
    rows = []
    if args.published:
        reference = paths.reference_dir()
        tables = read_run(
            CACHE,
            reference / "paper_uniquely_classified.csv",
            reference / "paper_ambiguous_classification.csv",
            reference / "paper_detection_level_classification.csv",
        )
        rows.append(measure("published stage-4 tables", tables, CACHE / "explorer_paper.html"))
    for size in [int(s) for s in args.sizes.split(",") if s]:
        tables = RunTables(synthetic_stage4(size), synthetic=True, title=f"SYNTHETIC {size:,}-source benchmark")
        rows.append(measure(f"SYNTHETIC {size:,} sources", tables, CACHE / f"explorer_{size}.html"))
    target = REPOSITORY / "benchmarks" / "explorer.csv"
    new = not target.exists()
    with open(target, "a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        if new:
            writer.writeheader()
        writer.writerows(rows)


if __name__ == "__main__":
    main()
