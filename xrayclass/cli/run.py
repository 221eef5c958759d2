"""The main job behind `make run`: the four stages end to end, then the paper's check.

What it does, in order:

1. The four stages, on the first input of these that applies:
   - the real CSC input data/cscresults.* when it is there (stage 2 from the frozen
     data/cluster_csc_simbad.csv if present, else online when --fetch is given);
   - with --fetch: the CSC input fetched from the CSC TAP service, crossmatched
     online with SIMBAD (needs the network);
   - otherwise a SYNTHETIC mock catalog with known truth, generated here and announced
     as such, crossmatched against its mock SIMBAD; the recovered accuracy is printed.
     Its outputs go to OUT_DIR/mock/.
2. Stage 4 on the published stage-3 output, compared with the published stage-4
   tables and numbers; a pass/fail table is printed.
3. The reproduction report OUT_DIR/report.md (and .html): the paper's analyses on
   this run and each published number next to the value obtained.

It ends by saying where the results are and which commands to try next.

A failed fetch or stage stops the run there with its exit status (2 bad input, 3 a
failed service): steps 2 and 3 are not run, so that the report of an earlier run is
never rebuilt from its stale files and presented as this run's.
"""

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from xrayclass.analysis.mock import format_accuracy, mock_accuracy
from xrayclass.analysis.reproduce import format_checks
from xrayclass.cli.common import configure_logging, report_errors
from xrayclass.cli.fetch import main as fetch_main
from xrayclass.exceptions import InputError
from xrayclass.io import paths
from xrayclass.io.runs import default_run
from xrayclass.io.tables import read_table, write_outputs
from xrayclass.services import EXIT_SERVICE_ERROR
from xrayclass.stages.classification import ClassificationConfig
from xrayclass.stages.crossmatch import CrossmatchConfig
from xrayclass.workflow.mock import write_mock
from xrayclass.workflow.report import write_report
from xrayclass.workflow.reproduction import reproduce_master_tables
from xrayclass.workflow.stages import (
    run_classification_stage,
    run_clustering_stage,
    run_crossmatch_stage,
    run_master_classification_stage,
    stage3_feature_set,
)

__all__ = [
    "EXAMPLE",
    "MOCK_DETECTIONS",
    "MOCK_SEED",
    "REAL_INPUT_CANDIDATES",
    "banner",
    "fetch",
    "main",
    "next_steps",
    "run_mock",
    "run_real",
    "run_stages",
    "write_example",
]

REAL_INPUT_CANDIDATES = [paths.DATA_DIR / f"cscresults{ext}" for ext in (".vot", ".parquet", ".csv", ".fits")]
MOCK_DETECTIONS = 30_000
MOCK_SEED = 42

log = logging.getLogger("xrayclass")


def banner(text: str) -> None:
    print(f"\n== {text} ==", flush=True)


# -- the four stages: each as its command line runs it with its default options ------------


def _clustering(csc_input: Path, run: paths.RunLayout) -> None:
    run_clustering_stage(csc_input, run.clusters, model=run.model)


def _crossmatch(run: paths.RunLayout, frozen: Path | str | None = None, catalog: Path | str | None = None) -> None:
    """Stage 2 from a frozen crossmatch (keeping its clusters, which reproduce the paper), a local
    catalog (the mock's SIMBAD) or, given neither, CDS X-Match (exit status 3 when it fails)."""
    config = CrossmatchConfig(source="frozen" if frozen is not None else "catalog" if catalog is not None else "online")
    run_crossmatch_stage(
        run.clusters,
        run.crossmatch,
        config,
        model=run.model,
        frozen=frozen or paths.FROZEN_CROSSMATCH,
        catalog=catalog,
    )


def _classification(run: paths.RunLayout) -> None:
    feature_set = stage3_feature_set(None, run.model, False)
    run_classification_stage(
        run.crossmatch,
        run.detections,
        ClassificationConfig(feature_set=feature_set),
        model_output=run.classifier,
        outliers_output=run.outliers,
    )


def _master_classification(run: paths.RunLayout) -> None:
    run_master_classification_stage(run.detections, run.directory)


def _stage(name: str, body: Callable[..., None], *args: Any) -> int:
    """One stage as its command line runs it: its log prefix, and its exit status (2 bad input, 3 service)."""
    configure_logging(name)
    status: int = report_errors(f"{name}.py", body, *args)
    return status


def run_stages(
    csc_input: Path | str,
    out_dir: Path | str,
    *,
    frozen: Path | str | None = None,
    catalog: Path | str | None = None,
    online: bool = False,
) -> int:
    """Stages 1-4 into ``out_dir``; returns the first non-zero status (0 when all ran).

    Stage 2 takes its SIMBAD classes from exactly one of: the ``frozen`` crossmatch
    file, a local ``catalog`` (crossmatched by position) or, with ``online``, CDS X-Match.
    """
    if sum((frozen is not None, catalog is not None, online)) != 1:
        raise ValueError("give exactly one of frozen=, catalog= or online=True")
    run = paths.RunLayout(Path(out_dir))
    steps: list[tuple[str, Callable[..., None], tuple[Any, ...]]] = [
        ("clustering", _clustering, (Path(csc_input), run)),
        ("crossmatch", _crossmatch, (run, frozen, catalog)),
        ("classification", _classification, (run,)),
        ("master_classification", _master_classification, (run,)),
    ]
    for name, body, args in steps:
        status = _stage(name, body, *args)
        if status:
            return status
    return 0


def run_real(real_input: Path, out_dir: Path, online: bool) -> int:
    """Stages 1-4 (as far as the inputs allow) on real CSC detections; returns the status."""
    banner(f"Stages 1-4 on the real CSC input {real_input}")
    run = paths.RunLayout(out_dir)
    if online or paths.FROZEN_CROSSMATCH.exists():
        if online:
            status = run_stages(real_input, out_dir, online=True)
        else:
            status = run_stages(real_input, out_dir, frozen=paths.FROZEN_CROSSMATCH)
        if status == 0:
            write_example(real_input, read_table(run.uniquely), read_table(run.ambiguous), run.example)
        return status
    status = _stage("clustering", _clustering, Path(real_input), run)
    print(
        f"Stage 2 needs a crossmatch: put the frozen {paths.FROZEN_CROSSMATCH.name} in {paths.DATA_DIR}/, "
        "or run `make run` with network and RUN_ARGS=--fetch (online SIMBAD); stages 2-4 skipped."
    )
    return status


def run_mock(out_dir: Path) -> tuple[int, Path]:
    """Stages 1-4 on a freshly generated mock catalog; returns (status, run directory)."""
    mock_dir = out_dir / "mock"
    run = paths.RunLayout(mock_dir)
    catalog, simbad = mock_dir / "mock_cscresults.parquet", mock_dir / "mock_simbad.parquet"
    banner(
        f"No CSC input in {paths.DATA_DIR}/: running on a SYNTHETIC MOCK catalog ({MOCK_DETECTIONS:,} "
        f"detections, seed {MOCK_SEED}); these are NOT real sources and NOT the paper's results"
    )
    configure_logging("mock")
    write_mock(MOCK_DETECTIONS, MOCK_SEED, catalog, simbad)
    status = run_stages(catalog, mock_dir, catalog=simbad)
    if status == 0:
        classified = read_table(run.detections)
        uniquely = read_table(run.uniquely)
        print(format_accuracy(mock_accuracy(classified, uniquely)))
        write_example(catalog, uniquely, read_table(run.ambiguous), run.example)
        print(f"outputs (synthetic) in {mock_dir}")
    return status, mock_dir


#: A few of the mock's sources, for trying classify_source.py on a short input.
EXAMPLE = paths.RunLayout.NAMES["example"]


def write_example(catalog: Path | str, uniquely: pd.DataFrame, ambiguous: pd.DataFrame, path: Path | str) -> None:
    """The catalog rows of two uniquely classified sources and an ambiguous one, with 2-4 detections each."""

    def names(table: pd.DataFrame, n: int) -> list[str]:
        counts = table["detection_count"]
        return list(table.loc[(counts >= 2) & (counts <= 4), "name"].sort_values().head(n))

    chosen = names(uniquely, 2) + names(ambiguous, 1)
    table = read_table(catalog)
    if "name" in table.columns and chosen:
        write_outputs([(table.loc[table["name"].isin(chosen)].reset_index(drop=True), path)])


def _python() -> str:
    """The interpreter running this, as the user can type it (.venv/bin/python under `make run`)."""
    executable = Path(sys.executable)
    try:
        return str(executable.relative_to(Path.cwd()))
    except ValueError:
        return str(executable)


def next_steps(run_dir: Path | str, out_dir: Path | str) -> str:
    """Where the results are and commands to try next (only those whose inputs this run made)."""
    run_dir, python = Path(run_dir), _python()

    def found(*needs: str) -> str:
        """`` --run-dir RUN_DIR`` unless the analysis commands would pick this run anyway."""
        return "" if default_run(needs).resolve() == run_dir.resolve() else f" --run-dir {run_dir}"

    lines = [f"Results: the stage outputs are in {run_dir}/" + (" (SYNTHETIC)" if run_dir.name == "mock" else "")]
    for path, what in (
        (paths.RunLayout(Path(out_dir)).report.with_suffix(".html"), "the report"),
        (paths.RunLayout(run_dir).explorer, "the explorer"),
    ):
        if path.is_file():
            lines.append(f"  open {path} in a browser: {what}, works offline")
    commands = []
    if (run_dir / paths.UNIQUELY).is_file():
        commands += [
            (
                f"{python} analysis.py explore{found(paths.UNIQUELY)}",
                f"the interactive explorer, {run_dir / 'explorer.html'} (--help for options)",
            ),
            (
                f"{python} analysis.py figures{found(paths.MODEL.name)}",
                f"the paper's figures of this run, in {run_dir / 'figures'}/",
            ),
        ]
    if (run_dir / paths.CROSSMATCH.name).is_file():
        commands.append(
            (
                f"{python} analysis.py validate{found(paths.CROSSMATCH.name)}",
                "70/30 validation against the SIMBAD labels, over 5 seeds",
            )
        )
    if (run_dir / paths.MODEL.name).is_file() and (run_dir / paths.CLASSIFIER_MODEL.name).is_file():
        artifacts = found(paths.MODEL.name, paths.CLASSIFIER_MODEL.name)
        if (run_dir / EXAMPLE).is_file():
            commands.append(
                (
                    f"{python} classify_source.py {run_dir / EXAMPLE}{artifacts}",
                    "classify new detections with this run's model and classifier (here 3 of its "
                    "sources; --output PATH writes the tables)",
                )
            )
        else:
            commands.append(
                (
                    f"{python} classify_source.py --help",
                    "classify new detections (a table, or a CSC source name) with this run's artifacts",
                )
            )
    commands.append((f"{python} clustering.py --help", "the four stages one by one (see README)"))
    lines.append("Next, try (from this directory):")
    for command, why in commands:
        lines += [f"  # {why}", f"  {command}"]
    return "\n".join(lines)


def fetch(out_dir: Path) -> tuple[int, Path]:
    destination = out_dir / "fetched" / "cscresults.vot"
    status = fetch_main(["--output", str(destination)])
    return status, destination


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="run_pipeline.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out-dir", default=str(paths.OUT_DIR), help="where every output goes")
    parser.add_argument(
        "--fetch",
        action="store_true",
        help="fetch the CSC input from the TAP service and crossmatch online (needs network)",
    )
    args = parser.parse_args(argv)
    out_dir = Path(args.out_dir)
    reference = paths.reference_dir()

    run_dir = out_dir
    try:
        real_input = next((p for p in REAL_INPUT_CANDIDATES if p.exists()), None)
        if args.fetch:
            banner("Fetching the CSC input from the CSC TAP service")
            status, fetched = fetch(out_dir)
            status = status or run_real(fetched, out_dir, online=True)
        elif real_input is not None:
            status = run_real(real_input, out_dir, online=False)
        else:
            status, run_dir = run_mock(out_dir)
    except InputError as exc:
        print(f"run_pipeline.py: error: {exc}", file=sys.stderr)
        return 2
    if status:
        what = "a service failed" if status == EXIT_SERVICE_ERROR else "a stage failed"
        print(
            f"run_pipeline.py: stopped: {what} (exit status {status}, see above); nothing further was "
            f"run and nothing in {out_dir} was rebuilt (no reproduction, no report)",
            file=sys.stderr,
        )
        return status

    if not reference.is_dir():
        banner(
            f"Reproduction skipped: the reference directory {reference} is absent "
            f"(set {paths.REFERENCE_ENV} to its location)"
        )
        banner("Where the results are")
        print(next_steps(run_dir, out_dir))
        return status
    banner("Reproduction of the paper's stage-4 tables from the published stage-3 output")
    configure_logging("reproduction")
    checks = reproduce_master_tables(reference, out_dir / "reproduction")
    print(format_checks(checks))
    print(f"tables written to {out_dir / 'reproduction'}")
    if not all(check.passed for check in checks):
        status = status or 1

    banner("Reproduction report (analyses, figures, published numbers next to this run's)")
    configure_logging("report")
    markdown, html_path, passed, failed = write_report(run_dir, paths.RunLayout(out_dir).report, reference, quick=True)
    print(
        f"wrote {markdown} and {html_path}: {passed} comparisons pass, {failed} fail "
        "(failures are listed in the report; see README, 'Where this pipeline differs')"
    )
    banner("Where the results are")
    print(next_steps(run_dir, out_dir))
    return status
