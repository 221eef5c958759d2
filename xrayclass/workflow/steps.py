"""The paper's analyses on the tables of one pipeline run, as reusable steps.

Each step reads what it needs from a run directory (the stage outputs), writes its
tables and figures, and returns what it computed, so that ``analysis.py`` and the
reproduction report share one implementation.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from xrayclass.analysis import figures
from xrayclass.analysis.census import latitude_census, type_census
from xrayclass.analysis.kselection import bic_scan, knee, summarize_bic
from xrayclass.analysis.mock import mock_names
from xrayclass.analysis.validation import SPLITS, compare_methods, compare_splits, labeled_detections, method_table
from xrayclass.constants import AGGREGATE_CLASSES, CLASSES, FEATURES, NAME
from xrayclass.core.features import complete_rows, prepare_features
from xrayclass.core.featuresets import PAPER
from xrayclass.core.preprocessing import LogMinMaxScaler
from xrayclass.io.figures import save_figure, save_figures
from xrayclass.io.paths import FIGURES, RunLayout, density_figure, source_figure
from xrayclass.io.tables import InputError, read_json, read_table, write_outputs

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from xrayclass.analysis.validation import LabeledSet
    from xrayclass.core.featuresets import FeatureSet


__all__ = [
    "census",
    "default_sources",
    "is_synthetic",
    "k_selection",
    "preprocessed_features",
    "run_figures",
    "stage_counts",
    "validation",
]

log = logging.getLogger(__name__)


#: The run's files: one layout for the stages, ``make run``, the analyses and the report.
RunFiles = RunLayout


def is_synthetic(table: pd.DataFrame) -> bool:
    """True when the table's sources are mock ones (names ``MOCK J...``)."""
    return bool(len(table)) and bool(mock_names(table[NAME]).all())


def preprocessed_features(table: pd.DataFrame) -> np.ndarray:
    """The complete rows' features, preprocessed as in stage 1 (fitted on those rows)."""
    table = prepare_features(table)
    complete, _ = complete_rows(table)
    values = table.loc[complete, list(FEATURES)].to_numpy(dtype="float64")
    return LogMinMaxScaler().fit(values).transform(values)


# -- K selection --------------------------------------------------------------------------


def k_selection(
    clustered: pd.DataFrame,
    out_dir: str | os.PathLike[str],
    figures_dir: str | os.PathLike[str],
    k_values: Iterable[int] = range(2, 21),
    n_fits: int = 3,
    sample: int = 20_000,
    seed: int = 0,
    n_jobs: int = 2,
) -> tuple[pd.DataFrame, int]:
    """BIC scan over K on a seeded subsample; writes the scan, its summary and Fig. 1."""
    X = preprocessed_features(clustered)
    if sample and len(X) > sample:
        rows = np.sort(np.random.default_rng(seed).choice(len(X), size=sample, replace=False))
        log.info("BIC on a seeded subsample of %s of the %s detections", f"{sample:,}", f"{len(X):,}")
        X = X[rows]
    k_values = [k for k in k_values if k < len(X)]
    scan = bic_scan(X, k_values, n_fits=n_fits, seed=seed, n_jobs=n_jobs)
    table = summarize_bic(scan)
    chosen = knee(table)
    out_dir = Path(out_dir)
    write_outputs([(scan, out_dir / "bic_scan.csv"), (table, out_dir / "bic.csv")])
    with figures.synthetic_marking(_names_synthetic(clustered)):
        save_figure(figures.bic_figure(table, chosen_k=chosen), figures_dir, FIGURES["bic"])
    return table, chosen


# -- validation ---------------------------------------------------------------------------


def validation(
    crossmatched: pd.DataFrame,
    out_dir: Path,
    figures_dir: Path,
    seeds: Sequence[int] = range(5),
    group_by_source: bool = False,
    methods: Sequence[str] = ("mahalanobis",),
    calibrate: bool = False,
    both_splits: bool = False,
    feature_set: FeatureSet | None = None,
) -> tuple[dict[str, Any], pd.DataFrame]:
    """The 70/30 validation repeated over ``seeds`` for each method, on the same splits.

    Writes per method the confusion matrices (mean, std), per-class metrics, a summary
    JSON and Figs. 4-5 (file names get a ``_<method>`` suffix except for the paper's
    Mahalanobis method); with several methods also ``method_comparison.csv`` and a
    figure comparing their per-class F1; always a reliability diagram
    (``fig_reliability``). With ``calibrate`` every method also appears
    temperature-calibrated (``<method>+T``, fitted out of fold on the train rows). With
    ``both_splits`` the methods are also compared grouped by source and by detection:
    ``method_comparison_splits.csv`` and ``fig_method_comparison_splits``; the
    per-method files are then those of the split ``group_by_source`` selects. Returns
    method -> result of :func:`xrayclass.validation.validate`, and the comparison table
    (with a ``split`` column when ``both_splits``). ``feature_set``: the features
    (default: the paper's 12).
    """
    labeled = labeled_detections(crossmatched, feature_set=feature_set or PAPER)
    synthetic = _names_synthetic(crossmatched)
    with figures.synthetic_marking(synthetic):
        return _validation(
            labeled,
            out_dir,
            figures_dir,
            seeds,
            group_by_source,
            method_table(methods, calibrate),
            both_splits,
            synthetic,
        )


def _validation(
    labeled: LabeledSet,
    out_dir: Path,
    figures_dir: Path,
    seeds: Sequence[int],
    group_by_source: bool,
    chosen: dict[str, Any],
    both_splits: bool,
    synthetic: bool,
) -> tuple[dict[str, Any], pd.DataFrame]:
    if both_splits:
        by_split, split_table = compare_splits(labeled, list(seeds), chosen)
        headline = next(name for name, grouped in SPLITS.items() if grouped == group_by_source)
        results = by_split[headline]
        table = split_table[split_table["split"] == headline].drop(columns="split").reset_index(drop=True)
    else:
        results, table = compare_methods(labeled, list(seeds), chosen, group_by_source)
    out_dir = Path(out_dir)
    outputs = []
    labels = {"classes": list(CLASSES), "aggregated": list(AGGREGATE_CLASSES)}
    for name, result in results.items():
        suffix = "" if name == "mahalanobis" else f"_{name.replace('-', '_')}"
        document = {key: result[key] for key in ("seeds", "n_train", "n_test", "group_by_source")}
        document["method"] = name
        summary_keys = ("accuracy_mean", "accuracy_std", "accuracies", "brier_mean", "brier_std", "ece_mean", "ece_std")
        for level in ("classes", "aggregated"):
            part = result[level]
            for kind in ("confusion_mean", "confusion_std"):
                outputs.append((part[kind].reset_index(), out_dir / f"{kind}_{level}{suffix}.csv"))
            metrics = pd.concat([part["metrics_mean"], part["metrics_std"].add_suffix("_std")], axis=1).reset_index()
            outputs.append((metrics, out_dir / f"metrics_{level}{suffix}.csv"))
            document[level] = {key: part[key] for key in summary_keys}
        outputs.append((document, out_dir / f"validation_summary{suffix}.json"))
        for level, stem, title in (
            ("classes", FIGURES["confusion"], "ten classes"),
            ("aggregated", FIGURES["confusion_aggregated"], "aggregated classes"),
        ):
            matrix = result[level]["confusion_mean"][labels[level]]
            heatmap = figures.confusion_heatmap(
                matrix.to_numpy(),
                labels[level],
                f"Validation ({name}), {title}: mean of {len(result['seeds'])} seeded 70/30 splits",
            )
            save_figure(heatmap, figures_dir, stem + suffix)
    if len(results) > 1:
        outputs.append((table, out_dir / "method_comparison.csv"))
        save_figure(figures.method_comparison_figure(table), figures_dir, FIGURES["method_comparison"])
    reliability = figures.reliability_figure(
        {name: result["classes"]["reliability"] for name, result in results.items()}, synthetic=synthetic
    )
    save_figure(reliability, figures_dir, FIGURES["reliability_splits" if both_splits else "reliability"])
    if both_splits:
        outputs.append((split_table, out_dir / "method_comparison_splits.csv"))
        comparison = figures.comparison_figure(split_table, synthetic=synthetic)
        save_figure(comparison, figures_dir, FIGURES["method_comparison_splits"])
        table = split_table
    write_outputs(outputs)
    return results, table


# -- census -------------------------------------------------------------------------------


def census(crossmatched: pd.DataFrame, out_dir: str | os.PathLike[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Table 3 (top SIMBAD types per cluster) and the low-latitude share of each cluster."""
    types = type_census(crossmatched)
    latitude = latitude_census(crossmatched)
    write_outputs([(types, Path(out_dir) / "census_types.csv"), (latitude, Path(out_dir) / "census_latitude.csv")])
    return types, latitude


# -- figures ------------------------------------------------------------------------------


def default_sources(uniquely: pd.DataFrame, count: int = 3) -> list[str]:
    """The uniquely classified sources with the most detections (Table A1's head)."""
    return uniquely.sort_values(["detection_count", NAME], ascending=[False, True]).head(count)[NAME].tolist()


def _names_synthetic(table: pd.DataFrame) -> bool:
    """Mock names (``MOCK J...``) in either spelling of the name column."""
    for column in (NAME, "name_1"):
        if column in table:
            return bool(mock_names(table[column]).any())
    return False


def run_figures(
    run: RunLayout, figures_dir: str | os.PathLike[str] | None = None, sources: Sequence[str] | None = None
) -> list[Path]:
    """Figs. 2, 3, 6, 7, 8 and 10 from the stage outputs that exist; returns the PNG paths.

    Figures of a mock run (source names ``MOCK J...``) are marked SYNTHETIC.
    """
    synthetic = False
    for table_path in (run.uniquely, run.detections, run.clusters):
        if table_path.exists():
            synthetic = _names_synthetic(read_table(table_path, columns=[NAME, "name_1"]))
            break
    if sources and run.detections.exists():
        # Checked before anything is drawn: a misspelt name should not cost the other figures' time.
        known = set(read_table(run.detections, columns=[NAME])[NAME])
        unknown = [name for name in sources if name not in known]
        if unknown:
            raise InputError(f"{run.detections}: no detection of source {unknown[0]!r}")
    # Every figure is drawn before any is written: a failure on the last leaves none.
    with figures.synthetic_marking(synthetic):
        made = save_figures(_drawn_figures(run, sources), Path(figures_dir or run.figures))
    return [path for path in made if Path(path).suffix == ".png"]


def _drawn_figures(run: RunLayout, sources: Sequence[str] | None) -> Iterator[tuple[Figure, str]]:
    """The figures of the run's stage outputs that exist, one at a time, with their file names."""
    if run.clusters.exists():
        clustered = read_table(run.clusters)
        yield figures.cluster_sky_map(clustered), FIGURES["cluster_sky_map"]
        yield figures.hardness_by_cluster(clustered), FIGURES["hardness_by_cluster"]
    else:
        log.warning("%s absent: Figs. 2 and 3 skipped", run.clusters)
    if run.detections.exists():
        classified = read_table(run.detections)
        for kind in ("hardness", "variability"):
            yield figures.class_density_maps(classified, kind=kind), density_figure(kind)
        if run.uniquely.exists():
            uniquely = read_table(run.uniquely)
            yield figures.class_sky_density(uniquely), FIGURES["class_sky_density"]
            masters = uniquely.set_index(NAME)["master_class"]
            for name in sources or default_sources(uniquely):
                if name not in set(classified[NAME]):
                    raise InputError(f"{run.detections}: no detection of source {name!r}")
                plot = figures.source_probability_plot(classified, name, master_class=masters.get(name))
                yield plot, source_figure(name)
    else:
        log.warning("%s absent: Figs. 6, 7, 8 and 10 skipped", run.detections)


def stage_counts(run: RunLayout) -> dict[str, Any]:
    """Row counts of each stage of a run, from its outputs (None where absent)."""
    counts: dict[str, Any] = {}
    if run.model.exists():
        training = read_json(run.model).get("training", {})
        counts["input_detections"] = training.get("n_input_rows")
        counts["complete_detections"] = training.get("n_detections")
    if run.detections.exists():
        detections = read_table(run.detections, columns=[NAME, "main_type"])
        counts["classified_detections"] = len(detections)
        counts["classified_sources"] = int(detections[NAME].nunique())
    summary = read_json(run.summary) if run.summary.exists() else None
    if summary:
        counts.update(
            uniquely_classified=summary["uniquely_classified"],
            ambiguous=summary["ambiguous"],
            cohen_kappa=summary["cohen_kappa"],
            detections_per_source=summary["detections_per_source"],
            cohen_kappa_multiple_detections=summary.get("cohen_kappa_multiple_detections"),
        )
    return counts
