"""Validation, K selection, census and the report, on SYNTHETIC (mock) data."""

import json

import numpy as np
import pandas as pd
import pytest
from conftest import library_warnings, run_script

from xrayclass.analysis.census import latitude_census, type_census
from xrayclass.analysis.kselection import bic_scan, knee, summarize_bic
from xrayclass.analysis.validation import evaluate, labeled_detections, split, validate
from xrayclass.constants import AGGREGATE_CLASSES, CLASSES
from xrayclass.io.paths import reference_file
from xrayclass.workflow.report import CROSSMATCH_SAMPLE_FILE


def test_validation_on_the_mock_is_strongly_diagonal(mock_crossmatched):
    labeled = labeled_detections(mock_crossmatched)
    result = validate(labeled, seeds=range(3))
    aggregated = result["aggregated"]["confusion_mean"]
    diagonal = np.diag(aggregated[list(AGGREGATE_CLASSES)].to_numpy())
    print("aggregated validation confusion (mock):\n", aggregated.round(2))
    # Every true class is recovered as itself more than as any other class ...
    for true in AGGREGATE_CLASSES:
        row = aggregated.loc[true, list(AGGREGATE_CLASSES)]
        assert row.idxmax() == true
    # ... the XB and YSO families (well separated in the mock) by far.
    assert diagonal[2] > 0.6 and diagonal[3] > 0.75
    assert diagonal.mean() > 0.6
    assert result["aggregated"]["accuracy_mean"] > 0.65
    assert result["n_test"] == pytest.approx(0.3 * (result["n_train"] + result["n_test"]), abs=2)
    # Rows are normalized over the true class.
    np.testing.assert_allclose(result["classes"]["confusion_mean"].sum(axis=1), 1.0)


def test_validation_is_seeded(mock_crossmatched):
    labeled = labeled_detections(mock_crossmatched)
    first = validate(labeled, seeds=[4])
    again = validate(labeled, seeds=[4])
    other = validate(labeled, seeds=[5])
    pd.testing.assert_frame_equal(first["classes"]["confusion_mean"], again["classes"]["confusion_mean"])
    assert first["classes"]["accuracies"] != other["classes"]["accuracies"]


def test_split_is_stratified_and_groups_sources_on_request(mock_crossmatched):
    labeled = labeled_detections(mock_crossmatched)
    train, test = split(labeled, seed=0)
    shares = pd.Series(labeled.labels[test]).value_counts(normalize=True)
    overall = pd.Series(labeled.labels).value_counts(normalize=True)
    assert (shares - overall).abs().max() < 0.01
    train, test = split(labeled, seed=0, group_by_source=True)
    assert not set(labeled.sources[train]) & set(labeled.sources[test])
    assert 0.2 < len(test) / len(labeled.labels) < 0.4


def test_evaluate_hand_computed():
    true = np.array(["A", "A", "B", "B"], dtype=object)
    predicted = np.array(["A", "B", "B", "Unclassified"], dtype=object)
    result = evaluate(true, predicted, ["A", "B"])
    assert result["confusion"].to_numpy().tolist() == [[0.5, 0.5, 0.0], [0.0, 0.5, 0.5]]
    assert result["accuracy"] == 0.5
    assert result["metrics"].loc["B", "precision"] == 0.5 and result["metrics"].loc["A", "recall"] == 0.5


def test_knee_of_a_curve_that_flattens():
    k = np.arange(2, 21)
    bic = np.where(k <= 6, -1000 * k, -6000 - 20 * (k - 6))
    table = pd.DataFrame({"k": k, "bic_mean": bic, "bic_std": 0.0})
    assert knee(table) == 6


def test_bic_scan_shape_and_determinism():
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(c, 0.05, size=(150, 2)) for c in (0.0, 1.0, 2.0)])
    scan = bic_scan(X, [1, 2, 3, 4, 5], n_fits=2, seed=1)
    assert len(scan) == 10 and scan.equals(bic_scan(X, [1, 2, 3, 4, 5], n_fits=2, seed=1))
    table = summarize_bic(scan)
    assert list(table.columns) == ["k", "bic_mean", "bic_std", "gradient"]
    assert knee(table) == 3  # three well separated blobs


def test_census_hand_computed():
    table = pd.DataFrame(
        {
            "cluster": [0, 0, 0, 1, 1],
            "main_type": ["QSO", "QSO", None, "X", "YSO"],
            "ra": [266.4168, 266.4168, 0.0, 10.0, 10.0],  # the first two at the Galactic Centre
            "dec": [-29.0078, -29.0078, 89.0, 41.0, 41.0],
        }
    )
    types = type_census(table)
    assert types[types["cluster"] == 0][["main_type", "detections"]].values.tolist() == [["QSO", 2], ["NaN", 1]]
    assert types[types["cluster"] == 1]["main_type"].tolist() == ["X", "YSO"]
    latitude = latitude_census(table).set_index("cluster")
    assert latitude.loc[0, "share_low_latitude"] == pytest.approx(2 / 3)
    assert latitude.loc[1, "share_low_latitude"] == 0.0


@pytest.mark.slow
def test_analysis_commands_and_report_on_a_mock_run(tmp_path, reference_dir):
    out = tmp_path / "run"
    catalog = tmp_path / "mock.parquet"
    assert run_script("make_mock_catalog.py", "--n-detections", 8000, "--seed", 3, "--output", catalog).returncode == 0
    steps = [
        ("clustering.py", "--input", catalog, "--output", out / "cluster_csc.csv", "--model", out / "model.json"),
        (
            "crossmatch.py",
            "--input",
            out / "cluster_csc.csv",
            "--catalog",
            tmp_path / "mock_simbad.parquet",
            "--output",
            out / "cluster_csc_simbad.csv",
            "--model",
            out / "model.json",
        ),
        (
            "classification.py",
            "--input",
            out / "cluster_csc_simbad.csv",
            "--output",
            out / "detection_level_classification.csv",
            "--model-output",
            out / "classifier.json",
            "--outliers-output",
            out / "outliers.csv",
        ),
        ("master_classification.py", "--input", out / "detection_level_classification.csv", "--out-dir", out),
    ]
    for script, *args in steps:
        result = run_script(script, *args)
        assert result.returncode == 0, result.stderr
        assert not library_warnings(result.stderr)
    kselect = run_script("analysis.py", "kselect", "--run-dir", out, "--k-max", 6, "--n-fits", 2, "--sample", 2000)
    assert kselect.returncode == 0, kselect.stderr
    assert "knee of the BIC curve at K =" in kselect.stdout and (out / "bic.csv").exists()
    validate_run = run_script("analysis.py", "validate", "--run-dir", out, "--seeds", 2)
    assert validate_run.returncode == 0, validate_run.stderr
    summary = json.loads((out / "validation" / "validation_summary.json").read_text())
    assert len(summary["aggregated"]["accuracies"]) == 2
    census = run_script("analysis.py", "census", "--run-dir", out)
    assert census.returncode == 0 and (out / "census_types.csv").exists()
    report = run_script("analysis.py", "report", "--run-dir", out, "--output", tmp_path / "report.md")
    assert report.returncode == 0, report.stderr
    for done in (kselect, validate_run, census, report):
        assert not library_warnings(done.stderr)
    text = (tmp_path / "report.md").read_text()
    assert "SYNTHETIC (mock catalog: not real data)" in text
    assert "| uniquely classified sources (paper) | 8,271 | 8,271 | PASS |" in text
    assert "| AGN+Seyfert: matches | 31 | 31 | PASS |" in text
    assert "not compared" in text
    # The method comparison, computed by the report: this (SYNTHETIC) run, and the real sample when present.
    assert "## Method comparison: every method on the same seeded splits" in text
    assert "### This run: cluster_csc_simbad.csv (" in text and "rows, SYNTHETIC mock catalog)" in text
    assert text.count("| hist-gradient-boosting+T |") == (4 if reference_file(CROSSMATCH_SAMPLE_FILE) else 2)
    for figure in ("fig1_bic", "fig2_cluster_sky_map", "fig4_validation_confusion", "fig8_class_sky_density"):
        assert f"figures/{figure}.png" in text
        assert (out / "figures" / f"{figure}.png").stat().st_size > 1000
    page = (tmp_path / "report.html").read_text()
    # Self-contained: every figure is embedded, so moving the report breaks nothing.
    assert page.count("<img src='data:image/png;base64,") >= 8
    assert page.count("<img") == page.count("<img src='data:")
    assert "<a href='run/explorer.html'>" in page and (out / "explorer.html").stat().st_size > 1_000_000
    assert "[Open the explorer (explorer.html)](run/explorer.html)" in text


def test_analysis_reports_missing_inputs_clearly(tmp_path):
    result = run_script("analysis.py", "validate", "--run-dir", tmp_path)
    assert result.returncode == 2
    assert "cluster_csc_simbad.csv: file not found" in result.stderr


def test_figures_checks_the_source_name_before_drawing(tmp_path):
    """SYNTHETIC two-row detection table: a wrong --source fails at once, nothing drawn."""
    pd.DataFrame({"name": ["MOCK J000001.0+000000"] * 2, "obsid": [1, 2]}).to_csv(
        tmp_path / "detection_level_classification.csv", index=False
    )
    done = run_script("analysis.py", "figures", "--run-dir", tmp_path, "--source", "MOCK J999999.9+000000")
    assert done.returncode == 2
    assert "no detection of source 'MOCK J999999.9+000000'" in done.stderr
    assert not (tmp_path / "figures").exists()


def test_validate_help_shows_a_plain_percent():
    done = run_script("analysis.py", "validate", "--help")
    assert "30% as if unlabeled" in " ".join(done.stdout.split()) and "%%" not in done.stdout


# -- method comparison and calibration (issue 13) --------------------------------------------


@pytest.mark.slow
def test_methods_compared_on_both_splits_with_calibration(mock_crossmatched, tmp_path):
    from xrayclass.analysis.validation import compare_splits, gaussian_method, method_table
    from xrayclass.core.calibration import brier_score
    from xrayclass.core.classifier import ClusterwiseMahalanobis
    from xrayclass.workflow.steps import validation

    labeled = labeled_detections(mock_crossmatched)
    methods = {**method_table(["mahalanobis", "gaussian"], calibrate=True), **method_table(["hist-gradient-boosting"])}
    _results, table = compare_splits(labeled, [0, 1], methods)
    assert table["split"].unique().tolist() == ["by source", "by detection"]
    assert set(table["method"]) == {"mahalanobis", "gaussian", "hist-gradient-boosting", "mahalanobis+T", "gaussian+T"}
    aggregated = table[table["level"] == "aggregated"]
    for label in AGGREGATE_CLASSES:
        assert aggregated[f"diag_{label}"].between(0, 1).all() and (aggregated[f"diag_{label}_std"] >= 0).all()
    assert table["ece"].between(0, 1).all() and table["brier"].between(0, 2).all()
    # A temperature never changes the predicted class: same accuracy, with or without.
    by_method = table[table["level"] == "classes"].set_index(["split", "method"])
    for split_name in ("by source", "by detection"):
        for name in ("mahalanobis", "gaussian"):
            assert by_method.loc[(split_name, name + "+T"), "accuracy"] == pytest.approx(
                by_method.loc[(split_name, name), "accuracy"], abs=1e-12
            )
            # ... and fitted out of fold it does not make the calibration worse by much.
            assert by_method.loc[(split_name, name + "+T"), "brier"] < by_method.loc[(split_name, name), "brier"] + 0.02

    # The Gaussian method is the per-cluster Gaussian classifier, and the Brier score is the table's.
    train, test = split(labeled, 0, group_by_source=True)
    direct = ClusterwiseMahalanobis(CLASSES, likelihood="gaussian").fit(
        labeled.X[train], labeled.labels[train], labeled.clusters[train], all_clusters=np.unique(labeled.clusters)
    )
    probabilities = gaussian_method()(labeled, train, test)
    np.testing.assert_array_equal(probabilities, direct.predict_proba(labeled.X[test], labeled.clusters[test]))
    single = compare_splits(labeled, [0], {"gaussian": gaussian_method()})[1]
    truth = pd.Index(CLASSES).get_indexer(labeled.labels[test])
    row = single[(single["split"] == "by source") & (single["level"] == "classes")].iloc[0]
    assert row["brier"] == pytest.approx(brier_score(probabilities, truth), rel=1e-12)

    # The analysis step writes the table and the figures, labelled SYNTHETIC.
    _, written = validation(
        mock_crossmatched,
        tmp_path / "validation",
        tmp_path / "figures",
        seeds=[0],
        methods=("mahalanobis", "gaussian"),
        both_splits=True,
    )
    assert (tmp_path / "validation" / "method_comparison_splits.csv").exists()
    assert (tmp_path / "figures" / "fig_method_comparison_splits.png").exists()
    assert (tmp_path / "figures" / "fig_reliability_splits.png").exists()
    assert written["split"].unique().tolist() == ["by source", "by detection"]


def test_report_page_escapes_text_and_marks_outcomes(tmp_path):
    from xrayclass.workflow.report import Report

    figure = tmp_path / "figure.png"
    figure.write_bytes(b"\x89PNG not really")
    report = Report("Run <1> & co")
    report.heading("Stage 4", level=3)
    report.paragraph("a < b")
    report.table(pd.DataFrame({"quantity": ["x"], "outcome": ["PASS"]}))
    report.link(tmp_path / "run" / "explorer.html", "Open")
    report.image(figure, "Figure 1")
    page = report.html(tmp_path)
    assert "<title>Run &lt;1&gt; &amp; co</title>" in page and "<h3>Stage 4</h3>" in page
    assert "<p>a &lt; b</p>" in page
    assert "<tr><th>quantity</th><th>outcome</th></tr><tr><td class='x'>x</td><td class='PASS'>PASS</td></tr>" in page
    assert "<a href='run/explorer.html'>Open</a>" in page
    assert "<img src='data:image/png;base64,iVBORyBub3QgcmVhbGx5' alt='Figure 1'>" in page
