"""The main job (``make run``): the four stages end to end, then the paper's check.

1. The four stages on the real CSC input in ``data/`` when it is there
   (``data/cscresults.*``, and for stage 2 the frozen ``data/cluster_csc_simbad.csv``);
   otherwise on the real-format sample ``crossmatch_sample_2021.csv`` of the shared
   reference directory (1,615 real CSC 2.0 detections, not the paper's input).
2. Stage 4 on the published stage-3 output, compared with the published stage-4
   tables and numbers; a pass/fail table is printed.
"""

import argparse
import sys
from pathlib import Path

from . import paths
from .cli import (
    classification_main, clustering_main, configure_logging, crossmatch_main, master_classification_main,
)
from .io import InputError, read_table, write_table
from .reproduce import format_checks, reproduce_master_tables

REAL_INPUT_CANDIDATES = [paths.DATA_DIR / f"cscresults{ext}" for ext in (".vot", ".parquet", ".csv", ".fits")]
SAMPLE_FILE = "crossmatch_sample_2021.csv"


def banner(text):
    print(f"\n== {text} ==", flush=True)


def run_stages(csc_input, frozen, out_dir):
    """Stages 1-4 through the command-line entry points; returns the first non-zero status."""
    out_dir = Path(out_dir)
    steps = [
        (clustering_main, ["--input", str(csc_input), "--output", str(out_dir / "cluster_csc.csv"),
                           "--model", str(out_dir / "model.json")]),
        (crossmatch_main, ["--input", str(out_dir / "cluster_csc.csv"), "--frozen", str(frozen),
                           "--output", str(out_dir / "cluster_csc_simbad.csv")]),
        (classification_main, ["--input", str(out_dir / "cluster_csc_simbad.csv"),
                               "--output", str(out_dir / "detection_level_classification.csv"),
                               "--model-output", str(out_dir / "classifier.json")]),
        (master_classification_main, ["--input", str(out_dir / "detection_level_classification.csv"),
                                      "--out-dir", str(out_dir)]),
    ]
    for main, argv in steps:
        status = main(argv)
        if status:
            return status
    return 0


def sample_csc_columns(sample_path, destination):
    """The CSC query columns of the crossmatch sample (everything before its cluster columns)."""
    sample = read_table(sample_path)
    columns = list(sample.columns)
    write_table(sample[columns[: columns.index("cluster")]], destination)
    return destination


def main(argv=None):
    parser = argparse.ArgumentParser(prog="run_pipeline.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out-dir", default=str(paths.OUT_DIR), help="where every output goes")
    args = parser.parse_args(argv)
    out_dir = Path(args.out_dir)
    reference = paths.reference_dir()
    have_reference = reference.is_dir()
    status = 0

    real_input = next((p for p in REAL_INPUT_CANDIDATES if p.exists()), None)
    if real_input is not None:
        banner(f"Stages 1-4 on the real CSC input {real_input}")
        if paths.FROZEN_CROSSMATCH.exists():
            status = run_stages(real_input, paths.FROZEN_CROSSMATCH, out_dir)
        else:
            status = clustering_main(["--input", str(real_input), "--output", str(out_dir / "cluster_csc.csv"),
                                      "--model", str(out_dir / "model.json")])
            print(f"Stage 2 needs a crossmatch: put the frozen {paths.FROZEN_CROSSMATCH.name} in "
                  f"{paths.DATA_DIR}/ (or run crossmatch.py --frozen PATH); stages 2-4 skipped.")
    elif have_reference and (reference / SAMPLE_FILE).exists():
        sample_dir = out_dir / "sample"
        banner(f"No CSC input in {paths.DATA_DIR}/: stages 1-4 on the real-format sample {SAMPLE_FILE} "
               "(1,615 real CSC 2.0 detections with their 2021 SIMBAD crossmatch; NOT the paper's input)")
        configure_logging("run")
        try:
            csc = sample_csc_columns(reference / SAMPLE_FILE, sample_dir / "sample_csc_columns.csv")
        except InputError as exc:
            print(f"run_pipeline.py: error: {exc}", file=sys.stderr)
            return 2
        status = run_stages(csc, reference / SAMPLE_FILE, sample_dir)
    else:
        banner(f"No CSC input in {paths.DATA_DIR}/ and no reference directory at {reference}: stages 1-4 skipped")

    if not have_reference:
        banner(f"Reproduction skipped: the reference directory {reference} is absent "
               f"(set {paths.REFERENCE_ENV} to its location)")
        return status
    banner("Reproduction of the paper's stage-4 tables from the published stage-3 output")
    configure_logging("reproduction")
    checks = reproduce_master_tables(reference, out_dir / "reproduction")
    print(format_checks(checks))
    print(f"tables written to {out_dir / 'reproduction'}")
    if not all(check.passed for check in checks):
        status = status or 1
    return status
