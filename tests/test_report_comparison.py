"""The report's method comparison (issue 13), on a small SYNTHETIC (mock) run."""

import re

import numpy as np
import pandas as pd
import pytest

from xrayclass.analysis.validation import (
    CALIBRATED,
    METHODS,
    gaussian_method,
    labeled_detections,
    naive_bayes_method,
    predict,
    split,
    temperature_scaled,
)
from xrayclass.constants import CLASSES
from xrayclass.core.calibration import apply_temperature, fit_temperature, out_of_fold_probabilities
from xrayclass.io import paths
from xrayclass.workflow.report import CROSSMATCH_SAMPLE_FILE, Report, method_comparison_section


@pytest.fixture(scope="module")
def small_mock_run(tmp_path_factory):
    """Stages 1-2 on a 3,000-detection SYNTHETIC mock, written as a run directory."""
    from xrayclass.analysis.mock import generate
    from xrayclass.stages.clustering import cluster_detections
    from xrayclass.stages.crossmatch import crossmatch_local

    detections, simbad = (pd.concat(parts, ignore_index=True) for parts in zip(*generate(3_000, 5), strict=False))
    stage1, _ = cluster_detections(detections)
    run = paths.RunLayout(tmp_path_factory.mktemp("run"))
    crossmatch_local(stage1, simbad, 1.0).to_csv(run.crossmatch, index=False)
    return run


def _block(text, start, end=None):
    """The text from the line starting ``start`` to the next ``end`` (or the end)."""
    begin = text.index(start)
    stop = text.find(end, begin + len(start)) if end else -1
    return text[begin:] if stop < 0 else text[begin:stop]


def test_report_compares_every_method_on_the_mock_and_says_the_sample_is_absent(small_mock_run, tmp_path, monkeypatch):
    empty = tmp_path / "no_reference"
    empty.mkdir()
    monkeypatch.setenv(paths.REFERENCE_ENV, str(empty))
    report = Report("comparison")
    method_comparison_section(report, small_mock_run, paths.reference_dir(), tmp_path / "out", [0, 1])
    text = report.markdown(tmp_path)

    run_block = _block(text, "### This run", "### The real CSC")
    heading = run_block.splitlines()[0]
    assert "SYNTHETIC" in heading, heading
    names = [*METHODS, *(name + CALIBRATED for name in METHODS)]
    for name in names:
        rows = re.findall(rf"^\| {re.escape(name)} \|(.*)\|$", run_block, flags=re.MULTILINE)
        assert len(rows) == 2, (name, rows)  # by source, then by detection
        for row in rows:
            cells = [cell.strip() for cell in row.split("|")]
            # accuracy, macro F1, four aggregated diagonals, ECE, Brier: each "mean ± std".
            assert len(cells) == 8 and all(re.fullmatch(r"(\d\.\d{3}|nan) ± (\d\.\d{3}|nan)", c) for c in cells), row
            assert float(cells[0].split(" ± ")[0]) > 0
    # Both tables' captions and the figure's (image and caption lines) carry the mark; headline first.
    captions = [line for line in run_block.splitlines() if "mean ± std over 2 seeds" in line]
    assert len(captions) == 4 and all(line.lstrip("![*").startswith("SYNTHETIC") for line in captions)
    assert run_block.index("grouped by source (headline)") < run_block.index("by detection; mean")
    assert (tmp_path / "out" / "comparison_run" / "fig_method_comparison_splits.png").stat().st_size > 1000
    written = pd.read_csv(tmp_path / "out" / "comparison_run" / "method_comparison_splits.csv")
    assert set(written["method"]) == set(names) and written["split"].unique().tolist() == ["by source", "by detection"]

    sample_block = _block(text, "### The real CSC")
    lines = [line for line in sample_block.splitlines()[1:] if line.strip()]
    assert lines == [
        f"Not shown: the real crossmatch sample is absent ({CROSSMATCH_SAMPLE_FILE} is not in the "
        f"reference directory {empty})."
    ]
    page = report.html(tmp_path)
    assert "hist-gradient-boosting+T" in page and "SYNTHETIC (mock catalog, not real data)" in page
    assert "<img src='data:image/png;base64," in page


def test_comparison_numbers_do_not_depend_on_what_was_computed_before(small_mock_run, tmp_path):
    """The shared splits and fits give the numbers a fresh computation gives, byte for byte."""
    crossmatched = pd.read_csv(small_mock_run.crossmatch)
    reports = []
    for _ in range(2):
        report = Report("comparison")
        method_comparison_section(report, small_mock_run, None, tmp_path / "out", [0])
        reports.append(report.markdown(tmp_path))
    assert reports[0] == reports[1]
    assert "Not shown: the real crossmatch sample is absent" in reports[0]

    # A calibrated method reuses its base method's fit: the same as computing it all afresh
    # with the package's out-of-fold function.
    labeled = labeled_detections(crossmatched)
    train, test = split(labeled, 1, group_by_source=True)
    for method in (gaussian_method(), naive_bayes_method()):
        predict(method, labeled, train, test)  # stored first, as in a comparison
        got = temperature_scaled(method)(labeled, train, test)
        fresh = labeled_detections(crossmatched)
        oof = out_of_fold_probabilities(
            lambda a, b, method=method, fresh=fresh: method(fresh, train[a], train[b]),
            fresh.labels[train],
            fresh.sources[train],
            3,
        )
        truth = pd.Index(list(CLASSES)).get_indexer(fresh.labels[train])
        expected = apply_temperature(method(fresh, train, test), fit_temperature(oof, truth))
        np.testing.assert_array_equal(got, expected)
