"""The reproduction report: each published number next to the value this run obtained.

``analysis.py report`` writes ``report.md`` and ``report.html`` from the outputs of one
run and the shared reference data. Every "obtained" value is computed here, from the
files, when the report is made; the "published" values are those of
:mod:`xrayclass.analysis.published`. Counts must match exactly; fractions within a stated
tolerance. Where the run's input is synthetic (mock sources), its numbers are shown
but not compared with the paper's. Where an input is missing, its section says so.
"""

import base64
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import jinja2
import pandas as pd

from xrayclass.analysis import published
from xrayclass.analysis.comparison import compare_catalog
from xrayclass.analysis.explore import ExploreError
from xrayclass.analysis.kselection import knee
from xrayclass.analysis.mock import mock_names
from xrayclass.analysis.validation import (
    GRADIENT_BOOSTING_MAX_ITER,
    METHODS,
    compare_splits,
    comparison_frame,
    labeled_detections,
    method_table,
)
from xrayclass.constants import AGGREGATE_CLASSES, CLASSES
from xrayclass.exceptions import input_files
from xrayclass.io.figures import figure_png, save_figure
from xrayclass.io.paths import CLASSIFIER_MODEL, FIGURES, RunLayout
from xrayclass.io.tables import InputError, read_json, read_table, write_atomic, write_outputs
from xrayclass.stages.classification import census_table
from xrayclass.workflow import steps as analyses
from xrayclass.workflow.explorer import read_run, write_explorer
from xrayclass.workflow.reproduction import reproduce_master_tables

__all__ = [
    "COMPARISON_SEEDS_FULL",
    "COMPARISON_SEEDS_QUICK",
    "CROSSMATCH_SAMPLE_FILE",
    "TWO_DECIMALS",
    "VALIDATION_TOLERANCE",
    "Report",
    "census_section",
    "comparison_section",
    "explorer_section",
    "figures_section",
    "kselection_section",
    "method_comparison_section",
    "references_section",
    "run_section",
    "stage4_section",
    "validation_section",
    "write_report",
]

log = logging.getLogger(__name__)

#: Tolerance for fractions printed with two decimals in the paper (rounding).
TWO_DECIMALS = 0.005
#: Tolerance for the validation fractions: a different 70/30 split moves them by a few
#: hundredths (the spread over seeds is reported beside them).
VALIDATION_TOLERANCE = 0.05

PASS, FAIL, SHOWN = "PASS", "FAIL", "not compared"

#: The real crossmatch sample of the shared reference data (1,615 CSC rows with SIMBAD types).
CROSSMATCH_SAMPLE_FILE = "crossmatch_sample_2021.csv"
#: Seeded splits of the method comparison in the report: 3 by default (``make run``; the
#: spread over 3 seeds is shown), 5 with ``analysis.py report --full`` (``validate``'s default).
COMPARISON_SEEDS_QUICK, COMPARISON_SEEDS_FULL = 3, 5


@dataclass
class Report:
    """A document of headings, paragraphs, tables and images, rendered as Markdown or HTML."""

    title: str
    blocks: list[tuple[Any, ...]] = field(default_factory=list)

    def heading(self, text: str, level: int = 2) -> None:
        self.blocks.append(("heading", level, text))

    def paragraph(self, text: str) -> None:
        self.blocks.append(("paragraph", text))

    def table(self, frame: pd.DataFrame) -> None:
        self.blocks.append(("table", frame))

    def image(self, path: str | os.PathLike[str], caption: str) -> None:
        self.blocks.append(("image", Path(path), caption))

    def link(self, path: str | os.PathLike[str], text: str) -> None:
        self.blocks.append(("link", Path(path), text))

    def markdown(self, base: str | os.PathLike[str]) -> str:
        lines = [f"# {self.title}", ""]
        for block in self.blocks:
            kind = block[0]
            if kind == "heading":
                lines += ["#" * block[1] + " " + block[2], ""]
            elif kind == "paragraph":
                lines += [block[1], ""]
            elif kind == "table":
                frame = block[1].astype(str)
                lines.append("| " + " | ".join(frame.columns) + " |")
                lines.append("|" + "---|" * len(frame.columns))
                lines += ["| " + " | ".join(row) + " |" for row in frame.itertuples(index=False)]
                lines.append("")
            elif kind == "link":
                lines += [f"[{block[2]}]({_relative(block[1], base)})", ""]
            else:
                lines += [f"![{block[2]}]({_relative(block[1], base)})", "", f"*{block[2]}*", ""]
        return "\n".join(lines)

    def html(self, base: str | os.PathLike[str]) -> str:
        """The document as one self-contained HTML page (``templates/report.html.j2``)."""
        blocks = []
        for block in self.blocks:
            kind = block[0]
            if kind == "heading":
                blocks.append({"kind": kind, "level": block[1], "text": block[2]})
            elif kind == "paragraph":
                blocks.append({"kind": kind, "text": block[1]})
            elif kind == "table":
                frame = block[1].astype(str)
                blocks.append(
                    {
                        "kind": kind,
                        "columns": [str(c) for c in frame.columns],
                        "rows": list(frame.itertuples(index=False)),
                    }
                )
            elif kind == "link":
                blocks.append({"kind": kind, "href": _relative(block[1], base), "text": block[2]})
            else:
                blocks.append({"kind": kind, "src": _data_uri(block[1]), "text": block[2]})
        return _TEMPLATES.get_template("report.html.j2").render(title=self.title, blocks=blocks)


#: The page templates shipped in the package; every value put in them is escaped.
_TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("xrayclass", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
)


def _data_uri(path: str | os.PathLike[str]) -> str:
    suffix = Path(path).suffix.lower().lstrip(".")
    kind = {"png": "image/png", "svg": "image/svg+xml", "jpg": "image/jpeg", "jpeg": "image/jpeg"}.get(
        suffix, "image/png"
    )
    return f"data:{kind};base64,{base64.b64encode(Path(path).read_bytes()).decode('ascii')}"


def _relative(path: str | os.PathLike[str], base: str | os.PathLike[str]) -> str:
    return Path(os.path.relpath(Path(path).resolve(), Path(base).resolve())).as_posix()


def _text(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _row(
    quantity: str, published_value: float, obtained: float | None, tolerance: float = 0, comparable: bool = True
) -> dict[str, str]:
    """One comparison row; ``tolerance`` 0 means an exact match is required."""
    if obtained is None:
        return {"quantity": quantity, "published": _text(published_value), "obtained": "absent", "result": SHOWN}
    if not comparable:
        result = SHOWN
    elif tolerance == 0:
        result = PASS if obtained == published_value else FAIL
    else:
        result = PASS if abs(obtained - published_value) <= tolerance + 1e-12 else FAIL
    return {
        "quantity": quantity,
        "published": str(published_value) if isinstance(published_value, float) else _text(published_value),
        "obtained": _text(obtained),
        "result": result,
    }


def _outcomes(rows: list[dict[str, str]]) -> list[bool]:
    """Pass (True) or fail (False) of each compared row; rows only shown are left out."""
    return [row["result"] == PASS for row in rows if row["result"] != SHOWN]


def _frame(rows: list[dict[str, str]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["quantity", "published", "obtained", "result"])


# -- sections -------------------------------------------------------------------------------


def stage4_section(report: Report, reference: Path | None, out_dir: Path) -> list[bool]:
    report.heading("Stage 4 from the published stage-3 output (frozen input)")
    if reference is None or not (reference / published.DETECTION_LEVEL_FILE).exists():
        report.paragraph("Skipped: the shared reference directory with the published stage-3 output is absent.")
        return []
    checks = reproduce_master_tables(reference, out_dir / "reproduction")
    report.paragraph(
        "Input: the published detection-level classification (frozen, real). Our stage 4 is run on it "
        "and its tables are compared with the published stage-4 tables, source by source."
    )
    report.table(pd.DataFrame([check.row() for check in checks]).rename(columns={"check": "quantity"}))
    return [check.passed for check in checks]


def comparison_section(report: Report, reference: Path | None) -> list[bool]:
    report.heading("Table 4: comparison with the MUWCLASS training set (frozen input)")
    if (
        reference is None
        or not (reference / published.MUWCLASS_TD_FILE).exists()
        or not (reference / published.UNIQUELY_FILE).exists()
    ):
        report.paragraph("Skipped: the published uniquely classified table or muwclass_td.csv is absent.")
        return []
    uniquely_path = reference / published.UNIQUELY_FILE
    catalog_path = reference / published.MUWCLASS_TD_FILE
    with input_files(uniquely_path, sources=uniquely_path, catalog=catalog_path):
        comparison = compare_catalog(read_table(uniquely_path), read_table(catalog_path))
    comparison.summary["catalog"] = str(catalog_path)
    metrics = comparison.metrics.set_index("class")
    rows = []
    for name, (matches, precision, r_precision, recall) in published.TABLE4_MUWCLASS_TD.items():
        # One row per class (the index is unique), so a row is a Series.
        got = cast(pd.Series, metrics.loc[name])
        rows.append(_row(f"{name}: matches", matches, int(got["matches"])))
        rows.append(_row(f"{name}: precision", precision, float(got["precision"]), TWO_DECIMALS))
        rows.append(_row(f"{name}: R-precision", r_precision, float(got["r_precision"]), TWO_DECIMALS))
        rows.append(_row(f"{name}: recall", recall, float(got["recall"]), TWO_DECIMALS))
    report.paragraph(
        "Input: the published uniquely classified table against muwclass_td.csv (MUWCLASS's Class "
        "column), matched by CSC name or within 1 arcsec. Fractions within 0.005 (two decimals). "
        "The YSO R-precision printed in the paper (0.74) is not reachable by any count consistent "
        "with the rest of its row (10/14 = 0.71); see xrayclass/comparison.py."
    )
    report.table(_frame(rows))
    return [row["result"] == PASS for row in rows]


def run_section(report: Report, run: RunLayout, synthetic: bool) -> list[bool]:
    report.heading(f"This run's pipeline ({run.directory})")
    counts = analyses.stage_counts(run)
    if not counts:
        report.paragraph(f"Skipped: no stage outputs in {run.directory}.")
        return []
    quantities = [
        ("input detections", published.INPUT_DETECTIONS, "input_detections", 0),
        ("detections with all 12 features", published.COMPLETE_DETECTIONS, "complete_detections", 0),
        ("classified detections", published.CLASSIFIED_DETECTIONS, "classified_detections", 0),
        ("classified sources", published.CLASSIFIED_SOURCES, "classified_sources", 0),
        ("uniquely classified sources", published.UNIQUELY_CLASSIFIED, "uniquely_classified", 0),
        ("ambiguous sources", published.AMBIGUOUS, "ambiguous", 0),
        ("Cohen's kappa", published.COHEN_KAPPA, "cohen_kappa", 0.0005),
        (
            "Cohen's kappa, sources with 2+ detections (from the published tables)",
            published.COHEN_KAPPA_MULTIPLE_DETECTIONS,
            "cohen_kappa_multiple_detections",
            0.0005,
        ),
    ]
    histogram = counts.get("detections_per_source") or {}
    rows = [
        _row(label, value, counts.get(key), tolerance, not synthetic) for label, value, key, tolerance in quantities
    ]
    rows += [
        _row(f"sources with {label} detections", value, histogram.get(label), comparable=not synthetic)
        for label, value in published.DETECTIONS_PER_SOURCE.items()
    ]
    report.table(_frame(rows))
    return _outcomes(rows)


def references_section(report: Report, run: RunLayout) -> list[bool]:
    """Stage 3's reference census: the SIMBAD-labeled detections each class learned from."""
    report.heading("Stage 3: what it learned from (reference census)")
    path = run.directory / Path(CLASSIFIER_MODEL).name
    if not path.exists():
        report.paragraph(f"Skipped: {path} is absent.")
        return []
    document = read_json(path)
    census = document.get("reference_census")
    if census is None:
        # An artifact from before the census: its per-cluster references still say it.
        clusters = document["references"]["clusters"]
        classes = document["references"]["classes"]
        census = {
            "classes": {
                label: {
                    "total": sum(clusters[c][label]["n_references"] for c in clusters),
                    "per_cluster": {c: clusters[c][label]["n_references"] for c in clusters},
                }
                for label in classes
            }
        }
        census["classes_without_references"] = [k for k, v in census["classes"].items() if v["total"] == 0]
    report.paragraph(
        f"From {path}: the detections whose SIMBAD type is one of the ten classes (read under the "
        "paper's names whatever spelling SIMBAD used), per class and cluster. A class needs at least "
        "12 references in a cluster to get a probability there."
    )
    report.table(census_table(census))
    notes = []
    if census["classes_without_references"]:
        notes.append("Classes without any reference: " + ", ".join(census["classes_without_references"]) + ".")
    labels = census.get("labels")
    if labels:
        notes.append(
            f"SIMBAD types: {labels['matched']:,} matched detections; {labels['renamed']:,} labels in a "
            f"later spelling renamed to the paper's, {labels['from_code']:,} read from the short code, "
            f"{labels['trimmed']:,} trimmed, {len(labels['case_fixed'])} labels read in another case; "
            f"{100 * labels['unknown_share']:.1f}% of a type the package does not know"
            + (
                f" ({', '.join(f'{k} {v:,}' for k, v in list(labels['unknown'].items())[:5])})"
                if labels["unknown"]
                else ""
            )
            + "."
        )
    if notes:
        report.paragraph(" ".join(notes))
    return []


def kselection_section(report: Report, run: RunLayout, synthetic: bool, quick: bool) -> list[bool]:
    report.heading("K selection (Fig. 1)")
    if not run.clusters.exists():
        report.paragraph(f"Skipped: {run.clusters} is absent.")
        return []
    if run.bic.exists():
        table = read_table(run.bic)

        chosen = knee(table)
        how = f"read from {run.bic} (made by analysis.py kselect)"
        save_figure(analyses.figures.bic_figure(table, chosen_k=chosen), run.figures, FIGURES["bic"])
    else:
        settings: dict[str, Any] = dict(k_values=range(2, 21), n_fits=2, sample=3_000) if quick else {}
        with input_files(run.clusters):
            table, chosen = analyses.k_selection(read_table(run.clusters), run.directory, run.figures, **settings)
        how = "computed now: " + (
            "K = 2..20, 2 seeded fits per K on a 3,000-detection subsample (quick)"
            if quick
            else "K = 2..20, 3 seeded fits per K on up to 20,000 detections"
        )
    report.paragraph(f"BIC of the full-covariance mixture, {how}. The chosen K is the knee of the mean BIC curve.")
    rows = [_row("K at the knee of the BIC", published.CHOSEN_K, chosen, comparable=not synthetic)]
    report.table(_frame(rows))
    report.table(table.round(1))
    report.image(
        figure_png(run.figures, FIGURES["bic"]), "Fig. 1: BIC against K, mean and spread over seeds, and its gradient"
    )
    return _outcomes(rows)


def validation_section(report: Report, run: RunLayout, synthetic: bool) -> list[bool]:
    report.heading("Validation: 70/30 split of the SIMBAD-labeled detections (Figs. 4 and 5)")
    if not run.crossmatch.exists():
        report.paragraph(f"Skipped: {run.crossmatch} is absent.")
        return []
    crossmatched = read_table(run.crossmatch)
    with input_files(run.crossmatch):
        results, comparison = analyses.validation(
            crossmatched, run.directory / "validation", run.figures, methods=("mahalanobis", "naive-bayes")
        )
    result = results["mahalanobis"]
    classes, aggregated = result["classes"], result["aggregated"]
    diagonal = [
        (f"{label} recovered as {label}", published.VALIDATION_DIAGONAL[label], classes, label, label)
        for label in CLASSES
    ]
    off = [
        (f"{true} predicted {other}", published.VALIDATION_AGGREGATED[true][other], aggregated, true, other)
        for true in AGGREGATE_CLASSES
        for other in AGGREGATE_CLASSES
    ]
    rows = [
        _row(quantity, value, float(part["confusion_mean"].loc[true, other]), VALIDATION_TOLERANCE, not synthetic)
        for quantity, value, part, true, other in diagonal + off
    ]
    report.paragraph(
        f"Mean over {len(result['seeds'])} seeded splits ({result['n_train']:,} reference / {result['n_test']:,} "
        f"held-out detections); accuracy {classes['accuracy_mean']:.3f} ± {classes['accuracy_std']:.3f} "
        f"(ten classes), {aggregated['accuracy_mean']:.3f} ± {aggregated['accuracy_std']:.3f} (aggregated). "
        f"Fractions within {VALIDATION_TOLERANCE} of the paper's (one split)."
        + (" Synthetic input: shown, not compared." if synthetic else "")
    )
    report.table(_frame(rows))
    report.image(figure_png(run.figures, FIGURES["confusion"]), "Fig. 4: validation confusion matrix, ten classes")
    report.image(
        figure_png(run.figures, FIGURES["confusion_aggregated"]),
        "Fig. 5: validation confusion matrix, aggregated classes",
    )
    report.paragraph(
        "The paper's Mahalanobis classifier and the optimized naive Bayes (Tranin et al.; "
        "not in the paper) on the same splits: accuracy and F1 (means over the seeds)."
    )
    shown = comparison[["method", "level", "accuracy", "accuracy_std", "macro_f1"]].copy()
    report.table(shown.round(3))
    report.image(
        figure_png(run.figures, FIGURES["method_comparison"]), "Per-class F1 of the two classifiers on the same splits"
    )
    return _outcomes(rows)


def method_comparison_section(
    report: Report,
    run: RunLayout,
    reference: str | os.PathLike[str] | None,
    out_dir: str | os.PathLike[str],
    seeds: Sequence[int],
) -> list[bool]:
    """Every validation method on the same seeded splits, on this run and on the real reference sample.

    Computed when the report is made (``seeds`` seeded splits, both kinds); the tables and
    figures go to ``out_dir/comparison_run`` and ``out_dir/comparison_reference_sample``.
    """
    report.heading("Method comparison: every method on the same seeded splits")
    names = ", ".join(METHODS)
    report.paragraph(
        f"Methods: {names} (the paper's softmin of squared Mahalanobis distances; the Gaussian "
        "likelihood without and with reference priors; the optimized naive Bayes; scikit-learn's "
        f"HistGradientBoostingClassifier with {GRADIENT_BOOSTING_MAX_ITER} iterations as a supervised "
        "reference), each also temperature-calibrated out of fold on its train rows ('+T'). "
        f"Settings: {len(seeds)} seeded 70/30 splits (seeds {seeds[0]}-{seeds[-1]}), stratified by class; "
        "every number is the mean ± standard deviation over the seeds; accuracy and macro F1 over "
        "the ten classes, the diagonal of the aggregated 4-class confusion matrix, and the calibration "
        "of the ten-class probabilities (expected calibration error of the top class, 10 bins; Brier "
        "score). The headline split keeps each source's detections on one side (by source): a source "
        "to classify never has its own detections among the references, while the paper's split by "
        "detection lets a held-out detection be classified with its own source's other detections, "
        "which flatters every method; it is shown second."
    )
    _comparison_block(
        report,
        f"This run: {run.crossmatch.name}",
        run.crossmatch if run.crossmatch.exists() else None,
        f"{run.crossmatch} is absent",
        Path(out_dir) / "comparison_run",
        seeds,
    )
    sample = Path(reference) / CROSSMATCH_SAMPLE_FILE if reference is not None else None
    _comparison_block(
        report,
        "The real CSC crossmatch sample of the shared reference data",
        sample if sample is not None and sample.is_file() else None,
        f"the real crossmatch sample is absent ({CROSSMATCH_SAMPLE_FILE} is not in the reference "
        f"directory {reference if reference is not None else '(none)'})",
        Path(out_dir) / "comparison_reference_sample",
        seeds,
    )
    return []


def _comparison_block(
    report: Report, title: str, path: Path | None, absent: str, out_dir: str | os.PathLike[str], seeds: Sequence[int]
) -> None:
    """One data set's comparison: two tables (by source, by detection) and the figure; or one line."""
    if path is None:
        report.heading(title, level=3)
        report.paragraph(f"Not shown: {absent}.")
        return
    with input_files(path):
        crossmatched = read_table(path)
        labeled = labeled_detections(crossmatched)
        _, table = compare_splits(labeled, list(seeds), method_table(list(METHODS), calibrate=True))
    # Mock names (MOCK J...) mark a synthetic input, in the heading, every caption and the figure.
    synthetic = bool(mock_names(labeled.sources).any())
    mark = "SYNTHETIC (mock catalog, not real data): " if synthetic else ""
    title = f"{title} ({len(crossmatched):,} rows{', SYNTHETIC mock catalog' if synthetic else ''})"
    report.heading(title, level=3)
    present = pd.Series(labeled.labels).value_counts()
    report.paragraph(
        f"{mark}From {path}: {len(labeled.labels):,} labeled detections of "
        f"{len(set(labeled.sources)):,} sources; labeled detections per class: "
        + ", ".join(f"{label} {int(n):,}" for label, n in present.items())
        + ". A class with no held-out detection has an undefined ('nan') diagonal."
    )
    frame = comparison_frame(table)
    for split_name, caption in (("by source", "grouped by source (headline)"), ("by detection", "by detection")):
        report.paragraph(f"{mark}{title}, {caption}; mean ± std over {len(seeds)} seeds.")
        report.table(frame[frame["split"] == split_name].drop(columns="split"))
    out_dir = Path(out_dir)
    write_outputs([(table, out_dir / "method_comparison_splits.csv")])
    stem = FIGURES["method_comparison_splits"]
    with analyses.figures.synthetic_marking(synthetic):
        save_figure(analyses.figures.comparison_figure(table, synthetic=synthetic), out_dir, stem)
    report.image(
        figure_png(out_dir, stem), f"{mark}{title}: every method on both splits (mean ± std over {len(seeds)} seeds)"
    )


def census_section(report: Report, run: RunLayout, synthetic: bool) -> list[bool]:
    report.heading("Table 3: SIMBAD types per cluster, and the galactic plane")
    if not run.crossmatch.exists():
        report.paragraph(f"Skipped: {run.crossmatch} is absent.")
        return []
    types, latitude = analyses.census(read_table(run.crossmatch), run.directory)
    report.paragraph(
        "The ten most common SIMBAD types (main_type; NaN = no match) of each cluster in this run. "
        "Cluster numbers of different mixture fits are arbitrary, so the published Table 3 is shown "
        "for reading side by side, not compared row by row."
    )
    # pandas-stubs do not know apply's include_groups (pandas >= 2.2).
    ours = types.groupby("cluster").apply(  # type: ignore[call-overload]
        lambda rows: ", ".join(f"{t} {n:,}" for t, n in zip(rows["main_type"], rows["detections"], strict=False)),
        include_groups=False,
    )
    theirs = {k: ", ".join(f"{t} {n:,}" for t, n in v) for k, v in published.TYPE_CENSUS.items()}
    report.table(
        pd.DataFrame(
            {
                "cluster": ours.index,
                "this run": ours.to_numpy(),
                "published": [theirs.get(int(k), "") for k in ours.index],
            }
        )
    )
    shares = latitude.assign(
        share_low_latitude=latitude["share_low_latitude"].round(3),
        published=[published.LOW_LATITUDE_SHARE.get(int(k), "") for k in latitude["cluster"]],
    )
    report.paragraph("Share of each cluster's detections at galactic |b| < 5 deg (astropy galactic coordinates).")
    report.table(shares)
    return []


def figures_section(report: Report, run: RunLayout) -> None:
    report.heading("Figures of this run")
    made = analyses.run_figures(run)
    if not made:
        report.paragraph("No stage outputs to draw.")
    captions = {
        "fig2": "Fig. 2: clusters on the sky (galactic Mollweide)",
        "fig3": "Fig. 3: hard_hs against hard_hm per cluster, coloured by var_prob_h",
        "fig6": "Fig. 6: hardness-ratio density per predicted class",
        "fig7": "Fig. 7: variability-probability density per predicted class",
        "fig8": "Fig. 8: sky density of the uniquely classified sources per aggregated class",
        "fig10": "Fig. 10: class probabilities of one source's detections",
    }
    for path in made:
        report.image(path, f"{captions.get(Path(path).stem.split('_')[0], Path(path).stem)} ({Path(path).stem})")


def explorer_section(report: Report, run: RunLayout, synthetic: bool) -> None:
    """Write the run's interactive explorer beside its tables and link it."""
    report.heading("Explore the results")
    if not run.uniquely.exists():
        report.paragraph(f"No explorer: {run.uniquely} is absent.")
        return
    output = run.explorer
    try:
        meta = write_explorer(read_run(run.directory, synthetic=synthetic or None), output)
    except (ExploreError, InputError) as exc:
        report.paragraph(f"No explorer: {exc}")
        return
    report.paragraph(
        f"An interactive, self-contained page (works offline) with the {meta['n_total']:,} sources of "
        f"this run{' (SYNTHETIC)' if meta['synthetic'] else ''}: sky map, feature plots, search, "
        "a table, each source's probabilities and detections, and your own labels."
    )
    report.link(output, f"Open the explorer ({output.name})")


def write_report(
    run_dir: str | os.PathLike[str], output: str | os.PathLike[str], reference: Path | None = None, quick: bool = True
) -> tuple[Path, Path, int, int]:
    """Make the report of the run in ``run_dir``; returns (markdown path, html path, passed, failed)."""
    run = RunLayout(Path(run_dir))
    output = Path(output)
    synthetic = run.detections.exists() and analyses.is_synthetic(read_table(run.detections, columns=["name"]))
    kind = "real CSC data" if run.detections.exists() else "absent"
    kind = "SYNTHETIC (mock catalog: not real data)" if synthetic else kind
    report = Report("Reproduction report: Pérez-Díaz et al. 2024, MNRAS")
    report.paragraph(
        "Every published number below is quoted from the paper; every obtained number was computed "
        "from the files when this report was made. PASS: equal (counts) or within the stated tolerance "
        "(fractions). 'not compared': the input is synthetic or the number is for reading only."
    )
    report.heading("Inputs")
    report.table(
        pd.DataFrame(
            [
                {
                    "input": "published stage-3 and stage-4 tables, muwclass_td.csv",
                    "kind": "frozen published outputs (real)" if reference else "absent",
                },
                {"input": f"this run's stage outputs in {run.directory}", "kind": kind},
            ]
        )
    )
    results = stage4_section(report, reference, output.parent)
    results += comparison_section(report, reference)
    results += run_section(report, run, synthetic)
    results += references_section(report, run)
    results += kselection_section(report, run, synthetic, quick)
    results += validation_section(report, run, synthetic)
    seeds = range(COMPARISON_SEEDS_QUICK if quick else COMPARISON_SEEDS_FULL)
    results += method_comparison_section(report, run, reference, output.parent, list(seeds))
    results += census_section(report, run, synthetic)
    figures_section(report, run)
    explorer_section(report, run, synthetic)
    passed, failed = sum(results), len(results) - sum(results)
    report.blocks.insert(1, ("paragraph", f"Summary: {passed} comparisons pass, {failed} fail."))
    markdown_path, html_path = output.with_suffix(".md"), output.with_suffix(".html")
    write_atomic(markdown_path, lambda tmp: Path(tmp).write_text(report.markdown(output.parent), encoding="utf-8"))
    write_atomic(html_path, lambda tmp: Path(tmp).write_text(report.html(output.parent), encoding="utf-8"))
    return markdown_path, html_path, passed, failed
