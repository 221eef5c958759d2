#!/usr/bin/env python3
"""LSDB/HATS against our local positional crossmatch, on SYNTHETIC data (not part of the tests).

    python benchmarks/lsdb_eval.py [--detections benchmarks/cache/mock_1000000.parquet]
                                   [--simbad benchmarks/cache/mock_1000000_simbad.parquet]
                                   [--reference-rows 3000000] [--workers 2]

LSDB is not a dependency of this project (benchmarks/lsdb_eval.md says why): run this
with a Python that has the project's environment.txt plus ``pip install lsdb hats-import``,
for example a separate virtual environment. Without lsdb the script says so and exits 2.

What it does, each step in its own process under ``/usr/bin/time -f %M`` (peak resident
memory of that process; Dask runs threaded inside it, so that figure is the whole step's):

1. ``reference``: a SYNTHETIC "SIMBAD extract" of ``--reference-rows`` rows: the mock's own
   mock SIMBAD, plus companions placed 0-2 arcsec from randomly chosen mock SIMBAD objects
   (crowded fields, so that choosing the *nearest* object within 1 arcsec matters), plus
   positions uniform on the sphere up to the requested size. Seeded.
2. ``ours``: the matcher of ``crossmatch.py --catalog``
   (:func:`xrayclass.core.positional.catalog_matches`, astropy's ``match_coordinates_sky``):
   Parquet in, best match within 1 arcsec for every detection, Parquet out.
3. ``import``: both catalogs to HATS with hats-import (and a margin cache for the
   reference, which LSDB needs to find matches across partition edges).
4. ``lsdb``: ``Catalog.crossmatch(reference, radius_arcsec=1, n_neighbors=1)`` on the HATS
   catalogs, Parquet out.
5. compare the two sets of matches (same detection-to-object pairs, separations to
   1e-9 arcsec) and describe the HATS partitions against the Dask engine's.

Writes benchmarks/lsdb_eval.json (every number) and prints a summary. The work files
(about 0.5 GB) go to ``--work`` (default benchmarks/cache/lsdb/).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPOSITORY = HERE.parent
sys.path.insert(0, str(REPOSITORY))

RADIUS_ARCSEC = 1.0
MARGIN_ARCSEC = 5.0  # the margin cache must be at least the match radius (LSDB checks)
COMPANION_ROWS = 200_000
SEPARATION_TOLERANCE = 1e-9  # arcsec


def fail(message: str, status: int = 2) -> None:
    print(f"lsdb_eval.py: {message}", file=sys.stderr)
    sys.exit(status)


def require_lsdb() -> None:
    try:
        import hats_import  # noqa: F401
        import lsdb  # noqa: F401
    except ImportError as error:
        fail(
            f"{error.name} is not installed in {sys.executable}. LSDB is not part of "
            "this project's environment (benchmarks/lsdb_eval.md): make a separate one, e.g.\n"
            "  python3 -m venv /tmp/lsdb-venv && /tmp/lsdb-venv/bin/pip install -r environment.txt lsdb hats-import\n"
            "and run this script with /tmp/lsdb-venv/bin/python"
        )


# ----------------------------------------------------------------------------- steps


def step_reference(simbad: str, output: str, rows: int, seed: int) -> dict:
    """The SYNTHETIC reference catalog: mock SIMBAD + near companions + uniform positions."""
    import numpy as np
    import pandas as pd
    from astropy import units as u
    from astropy.coordinates import SkyCoord

    rng = np.random.default_rng(seed)
    mock = pd.read_parquet(simbad, columns=["ra", "dec", "main_type"])
    companions = min(COMPANION_ROWS, max(rows - len(mock), 0))
    uniform = max(rows - len(mock) - companions, 0)
    around = rng.integers(0, len(mock), companions)
    moved = SkyCoord(
        mock["ra"].to_numpy()[around] * u.deg, mock["dec"].to_numpy()[around] * u.deg
    ).directional_offset_by(rng.uniform(0, 360, companions) * u.deg, rng.uniform(0, 2.0, companions) * u.arcsec)
    types = np.array(["Star", "Galaxy", "X", "Unknown"], dtype=object)
    table = pd.DataFrame(
        {
            "ra": np.concatenate([mock["ra"].to_numpy(), moved.ra.deg, rng.uniform(0, 360, uniform)]),
            "dec": np.concatenate(
                [mock["dec"].to_numpy(), moved.dec.deg, np.degrees(np.arcsin(rng.uniform(-1, 1, uniform)))]
            ),
            "main_type": np.concatenate(
                [mock["main_type"].to_numpy(dtype=object), rng.choice(types, companions + uniform)]
            ).astype(str),
        }
    )
    table.insert(0, "ref_id", np.arange(len(table), dtype=np.int64))
    table.to_parquet(output, index=False, row_group_size=500_000)
    return {"rows": len(table), "mock_simbad": len(mock), "companions": companions, "uniform": uniform}


def step_ours(detections: str, reference: str, output: str) -> dict:
    """crossmatch.py --catalog's matcher, reading and writing Parquet as the stage does."""
    import numpy as np
    import pandas as pd

    from xrayclass.core.positional import catalog_matches

    clock = time.perf_counter()
    det = pd.read_parquet(detections, columns=["ra", "dec"])
    ref = pd.read_parquet(reference, columns=["ref_id", "ra", "dec", "main_type"])
    read = time.perf_counter() - clock
    clock = time.perf_counter()
    matches = catalog_matches(det, ref, RADIUS_ARCSEC)
    match = time.perf_counter() - clock
    clock = time.perf_counter()
    found = matches["ref_id"].notna().to_numpy()
    pd.DataFrame(
        {
            "det_row": np.flatnonzero(found).astype(np.int64),
            "ref_id": matches["ref_id"].to_numpy()[found].astype(np.int64),
            "sep_arcsec": matches["angDist"].to_numpy()[found],
        }
    ).to_parquet(output, index=False)
    write = time.perf_counter() - clock
    return {
        "read_s": read,
        "match_s": match,
        "write_s": write,
        "matched": int(found.sum()),
        "distinct_positions": len(det.drop_duplicates()),
    }


def step_ours_rows(detections: str, reference: str) -> dict:
    """:func:`nearest_within` on every detection row, as LSDB matches them (no sharing of positions)."""
    import pandas as pd

    from xrayclass.core.positional import nearest_within

    det = pd.read_parquet(detections, columns=["ra", "dec"])
    ref = pd.read_parquet(reference, columns=["ra", "dec"])
    clock = time.perf_counter()
    rows, _ = nearest_within(det["ra"], det["dec"], ref["ra"], ref["dec"], RADIUS_ARCSEC)
    return {"match_s": time.perf_counter() - clock, "matched": int((rows >= 0).sum())}


def step_import(detections: str, reference: str, work: str, workers: int, pixel_threshold: int) -> dict:
    """Both catalogs to HATS (hats-import), the reference with a margin cache."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from distributed import Client, LocalCluster
    from hats_import.catalog.arguments import ImportArguments
    from hats_import.margin_cache.margin_cache_arguments import MarginCacheArguments
    from hats_import.pipeline import pipeline_with_client

    work_dir = Path(work)
    # hats-import reads files: give it the detections' positions with their row number.
    clock = time.perf_counter()
    positions = pq.read_table(detections, columns=["ra", "dec"])
    positions = positions.add_column(0, "det_row", pa.array(range(positions.num_rows), type=pa.int64()))
    detections_input = work_dir / "detections_positions.parquet"
    pq.write_table(positions, detections_input, row_group_size=250_000)
    prepare = time.perf_counter() - clock
    del positions

    times = {"prepare_detections_s": prepare}
    # Threads, not processes: the whole import is one process, so /usr/bin/time's peak is all of it.
    with (
        LocalCluster(n_workers=1, threads_per_worker=workers, processes=False, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        for name, source in (("detections", detections_input), ("reference", Path(reference))):
            clock = time.perf_counter()
            args = ImportArguments(
                output_path=work_dir / "hats",
                output_artifact_name=name,
                input_file_list=[str(source)],
                file_reader="parquet",
                ra_column="ra",
                dec_column="dec",
                pixel_threshold=pixel_threshold,
                tmp_dir=work_dir / "tmp",
                resume=False,
                progress_bar=False,
            )
            pipeline_with_client(args, client)
            times[f"import_{name}_s"] = time.perf_counter() - clock
        clock = time.perf_counter()
        margin = MarginCacheArguments(
            input_catalog_path=work_dir / "hats" / "reference",
            output_path=work_dir / "hats",
            output_artifact_name="reference_margin",
            margin_threshold=MARGIN_ARCSEC,
            tmp_dir=work_dir / "tmp",
            resume=False,
            progress_bar=False,
        )
        pipeline_with_client(margin, client)
        times["margin_reference_s"] = time.perf_counter() - clock
    return times


def step_lsdb(work: str, output: str, workers: int) -> dict:
    """LSDB's crossmatch of the HATS catalogs (Dask threaded scheduler, ``workers`` threads)."""
    import dask
    import lsdb
    import numpy as np
    import pandas as pd

    hats = Path(work) / "hats"
    clock = time.perf_counter()
    detections = lsdb.open_catalog(hats / "detections", columns=["det_row", "ra", "dec"])
    reference = lsdb.open_catalog(
        hats / "reference", margin_cache=hats / "reference_margin", columns=["ref_id", "ra", "dec", "main_type"]
    )
    joined = detections.crossmatch(
        reference, radius_arcsec=RADIUS_ARCSEC, n_neighbors=1, suffixes=("_det", "_ref"), log_changes=False
    )
    with dask.config.set(scheduler="threads", num_workers=workers):
        result = joined.compute()
    match = time.perf_counter() - clock
    clock = time.perf_counter()
    table = pd.DataFrame(
        {
            "det_row": result["det_row_det"].to_numpy(dtype=np.int64),
            "ref_id": result["ref_id_ref"].to_numpy(dtype=np.int64),
            "sep_arcsec": result["_dist_arcsec"].to_numpy(dtype=np.float64),
        }
    ).sort_values("det_row", kind="stable")
    table.to_parquet(output, index=False)
    write = time.perf_counter() - clock
    return {"open_match_s": match, "write_s": write, "matched": len(table), "lsdb_partitions": joined.npartitions}


# ----------------------------------------------------------------------------- analysis


def compare(ours_path: Path, lsdb_path: Path) -> dict:
    import numpy as np
    import pandas as pd

    ours = pd.read_parquet(ours_path)
    theirs = pd.read_parquet(lsdb_path)
    duplicated = int(theirs["det_row"].duplicated().sum())
    both = ours.merge(theirs, on="det_row", how="outer", suffixes=("_ours", "_lsdb"), indicator=True)
    common = both[both["_merge"] == "both"]
    same_object = common["ref_id_ours"].to_numpy() == common["ref_id_lsdb"].to_numpy()
    difference = np.abs(common["sep_arcsec_ours"].to_numpy() - common["sep_arcsec_lsdb"].to_numpy())
    return {
        "matched_ours": len(ours),
        "matched_lsdb": len(theirs),
        "lsdb_duplicate_detections": duplicated,
        "only_ours": int((both["_merge"] == "left_only").sum()),
        "only_lsdb": int((both["_merge"] == "right_only").sum()),
        "different_object": int((~same_object).sum()),
        "max_separation_difference_arcsec": float(difference.max()) if len(difference) else 0.0,
        "separations_within_tolerance": bool((difference <= SEPARATION_TOLERANCE).all()),
        "identical": bool(
            len(ours) == len(theirs)
            and (both["_merge"] == "both").all()
            and same_object.all()
            and (difference <= SEPARATION_TOLERANCE).all()
        ),
    }


def hats_partitions(path: Path) -> dict:
    """Orders and sizes of a HATS catalog's partitions."""
    import hats
    import numpy as np

    catalog = hats.read_hats(path)
    pixels = catalog.get_healpix_pixels()
    orders = np.array([pixel.order for pixel in pixels])
    info = catalog.partition_info.as_dataframe() if hasattr(catalog.partition_info, "as_dataframe") else None
    sizes = None
    if info is not None and "num_rows" in info.columns:
        sizes = info["num_rows"].to_numpy()
    else:  # row counts from the partitions' Parquet footers
        import pyarrow.parquet as pq

        sizes = np.array(
            [
                pq.ParquetFile(
                    path
                    / "dataset"
                    / f"Norder={p.order}"
                    / f"Dir={p.pixel // 10000 * 10000}"
                    / f"Npix={p.pixel}.parquet"
                ).metadata.num_rows
                for p in pixels
            ]
        )
    return {
        "partitions": len(pixels),
        "orders": {int(o): int((orders == o).sum()) for o in np.unique(orders)},
        "rows_min": int(sizes.min()),
        "rows_median": float(np.median(sizes)),
        "rows_max": int(sizes.max()),
        "rows_total": int(sizes.sum()),
    }


def sources_split_by_partition(detections: str, hats_detections: Path) -> dict:
    """How many sources (names) have detections in more than one HATS partition."""
    import hats
    import numpy as np
    import pandas as pd

    names = pd.read_parquet(detections, columns=["name"])["name"]
    catalog = hats.read_hats(hats_detections)
    import lsdb

    frame = lsdb.open_catalog(hats_detections, columns=["det_row"])
    parts = []
    for index, pixel in enumerate(catalog.get_healpix_pixels()):
        rows = frame.get_partition(pixel.order, pixel.pixel)["det_row"].compute().to_numpy()
        parts.append(pd.DataFrame({"det_row": rows, "partition": index}))
    placed = pd.concat(parts).sort_values("det_row")
    per_source = pd.Series(placed["partition"].to_numpy(), index=names.to_numpy()[placed["det_row"].to_numpy()])
    spread = per_source.groupby(level=0).nunique()
    return {
        "sources": len(spread),
        "sources_in_several_partitions": int((spread > 1).sum()),
        "max_partitions_per_source": int(np.max(spread)),
    }


def our_partitions(detections: str, workers: int) -> dict:
    """What engine/dask.py would make of the same file: Parquet row groups, and stage 4's shuffle."""
    import pyarrow.parquet as pq

    from xrayclass.io.streaming import BATCH_ROWS

    meta = pq.ParquetFile(detections).metadata
    sizes = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
    return {
        "stage3_partitions_row_groups": len(sizes),
        "stage3_rows_per_partition": sizes,
        "stage4_shuffle_partitions": max(len(sizes), 2 * workers),
        "batch_rows": BATCH_ROWS,
    }


# ----------------------------------------------------------------------------- driver


def measured(name: str, arguments: list[str]) -> dict:
    """Run one step in its own process under /usr/bin/time: its JSON, wall time and peak memory."""
    report = Path(arguments[arguments.index("--report") + 1])
    command = ["/usr/bin/time", "-f", "%M", sys.executable, __file__, "_step", name, *arguments]
    clock = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - clock
    if done.returncode != 0:
        fail(f"step {name} failed (a bug):\n{done.stderr[-4000:]}", 1)
    peak_kb = int(done.stderr.strip().splitlines()[-1])
    result = json.loads(report.read_text())
    result.update({"process_wall_s": wall, "peak_mb": peak_kb / 1024})
    print(f"  {name}: {wall:.1f} s, peak {peak_kb / 1024:,.0f} MB  {json.dumps(result)}", flush=True)
    return result


def run_step(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("name")
    parser.add_argument("--detections")
    parser.add_argument("--simbad")
    parser.add_argument("--reference")
    parser.add_argument("--output")
    parser.add_argument("--work")
    parser.add_argument("--rows", type=int)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--workers", type=int)
    parser.add_argument("--pixel-threshold", type=int)
    parser.add_argument("--report")
    args = parser.parse_args(argv)
    if args.name == "reference":
        result = step_reference(args.simbad, args.output, args.rows, args.seed)
    elif args.name == "ours":
        result = step_ours(args.detections, args.reference, args.output)
    elif args.name == "import":
        result = step_import(args.detections, args.reference, args.work, args.workers, args.pixel_threshold)
    elif args.name == "ours_rows":
        result = step_ours_rows(args.detections, args.reference)
    elif args.name == "lsdb":
        result = step_lsdb(args.work, args.output, args.workers)
    else:
        raise ValueError(f"unknown step {args.name}")
    Path(args.report).write_text(json.dumps(result))


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_step":
        run_step(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--detections", default=str(HERE / "cache" / "mock_1000000.parquet"))
    parser.add_argument("--simbad", default=None, help="default: the detections' mock SIMBAD (<name>_simbad.parquet)")
    parser.add_argument("--reference-rows", type=int, default=3_000_000)
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--workers", type=int, default=2, help="Dask threads for hats-import and LSDB")
    parser.add_argument(
        "--pixel-threshold",
        type=int,
        default=1_000_000,
        help="hats-import's largest partition in rows (its default: 1,000,000)",
    )
    parser.add_argument("--work", default=str(HERE / "cache" / "lsdb"))
    parser.add_argument("--output", default=str(HERE / "lsdb_eval.json"))
    args = parser.parse_args()
    require_lsdb()
    detections = Path(args.detections)
    simbad = Path(args.simbad) if args.simbad else detections.with_name(detections.stem + "_simbad.parquet")
    for path in (detections, simbad):
        if not path.exists():
            fail(f"{path}: file not found (make it with benchmarks/run.py --sizes 1000000)")
    work = Path(args.work)
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    reference = work / f"reference_{args.reference_rows}.parquet"

    import hats
    import lsdb
    import numpy
    import pandas

    results: dict = {
        "note": "SYNTHETIC data: the project's mock catalog and its mock SIMBAD plus seeded random positions",
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, shared with other jobs",
        "versions": {
            "python": platform.python_version(),
            "lsdb": lsdb.__version__,
            "hats": hats.__version__,
            "numpy": numpy.__version__,
            "pandas": pandas.__version__,
        },
        "detections": str(detections),
        "radius_arcsec": RADIUS_ARCSEC,
        "workers": args.workers,
        "pixel_threshold": args.pixel_threshold,
    }
    common = ["--report", str(work / "report.json")]
    print("reference catalog", flush=True)
    results["reference"] = measured(
        "reference",
        [
            "--simbad",
            str(simbad),
            "--output",
            str(reference),
            "--rows",
            str(args.reference_rows),
            "--seed",
            str(args.seed),
            *common,
        ],
    )
    print("ours (crossmatch.py --catalog's matcher)", flush=True)
    results["ours"] = measured(
        "ours",
        [
            "--detections",
            str(detections),
            "--reference",
            str(reference),
            "--output",
            str(work / "ours.parquet"),
            *common,
        ],
    )
    print("ours on every detection row (no shared positions)", flush=True)
    results["ours_rows"] = measured(
        "ours_rows", ["--detections", str(detections), "--reference", str(reference), *common]
    )
    print("HATS import", flush=True)
    results["hats_import"] = measured(
        "import",
        [
            "--detections",
            str(detections),
            "--reference",
            str(reference),
            "--work",
            str(work),
            "--workers",
            str(args.workers),
            "--pixel-threshold",
            str(args.pixel_threshold),
            *common,
        ],
    )
    print("LSDB crossmatch", flush=True)
    results["lsdb"] = measured(
        "lsdb", ["--work", str(work), "--output", str(work / "lsdb.parquet"), "--workers", str(args.workers), *common]
    )
    results["comparison"] = compare(work / "ours.parquet", work / "lsdb.parquet")
    print("comparison", json.dumps(results["comparison"]), flush=True)
    results["partitions"] = {
        "hats_detections": hats_partitions(work / "hats" / "detections"),
        "hats_reference": hats_partitions(work / "hats" / "reference"),
        "hats_reference_margin_rows": int(hats.read_hats(work / "hats" / "reference_margin").catalog_info.total_rows),
        "dask_engine": our_partitions(str(detections), args.workers),
        "sources_split": sources_split_by_partition(str(detections), work / "hats" / "detections"),
    }
    print("partitions", json.dumps(results["partitions"]), flush=True)
    Path(args.output).write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
