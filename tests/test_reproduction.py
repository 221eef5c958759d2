"""Stage 4 on the published stage-3 output reproduces the published stage-4 tables."""

import pandas as pd
import pytest
from conftest import reference_path

from xrayclass.analysis import published
from xrayclass.analysis.reproduce import format_checks, master_table_checks
from xrayclass.constants import CLASSES
from xrayclass.io.tables import read_table
from xrayclass.stages.master_classification import master_classification


@pytest.fixture(scope="module")
def paper_tables(reference_dir):
    detections_path = reference_path(reference_dir, published.DETECTION_LEVEL_FILE)
    uniquely, ambiguous, summary = master_classification(read_table(detections_path))
    return {
        "uniquely": uniquely,
        "ambiguous": ambiguous,
        "summary": summary,
        "published_uniquely": read_table(reference_path(reference_dir, published.UNIQUELY_FILE)),
        "published_ambiguous": read_table(reference_path(reference_dir, published.AMBIGUOUS_FILE)),
    }


def test_published_counts_kappa_and_multiplicity(paper_tables):
    summary = paper_tables["summary"]
    assert summary["sources"] == 8756
    assert summary["uniquely_classified"] == 8271
    assert summary["ambiguous"] == 485
    assert round(summary["cohen_kappa"], 3) == 0.936
    assert summary["detections_per_source"] == {"1": 6802, "2": 1000, "3-10": 882, ">10": 72}


def test_kappa_of_sources_with_two_or_more_detections(paper_tables):
    from xrayclass.stages.master_classification import tables_kappa

    summary = paper_tables["summary"]
    assert summary["sources_multiple_detections"] == 1000 + 882 + 72
    # The number, recomputed from our votes and from the published tables alone.
    assert round(summary["cohen_kappa_multiple_detections"], 3) == published.COHEN_KAPPA_MULTIPLE_DETECTIONS == 0.711
    theirs = tables_kappa(paper_tables["published_uniquely"], paper_tables["published_ambiguous"], 2)
    assert round(theirs, 3) == 0.711
    assert round(tables_kappa(paper_tables["published_uniquely"], paper_tables["published_ambiguous"]), 3) == 0.936


@pytest.mark.parametrize(
    "table, class_columns",
    [
        ("uniquely", ["agg_master_class", "master_class"]),
        ("ambiguous", ["hard_master_class", "soft_master_class"]),
    ],
)
def test_same_sources_classes_strings_and_counts(paper_tables, table, class_columns):
    ours = paper_tables[table]
    theirs = paper_tables[f"published_{table}"]
    assert sorted(ours["name"]) == sorted(theirs["name"])
    columns = ["name", *class_columns, "detection_count", *CLASSES]
    mine = ours[columns].sort_values("name").reset_index(drop=True)
    published_rows = theirs[columns].sort_values("name").reset_index(drop=True)
    pd.testing.assert_frame_equal(mine, published_rows, check_dtype=False)
    # The same column order as the published tables, up to the feature columns the
    # published stage-3 file does not carry.
    assert list(ours.columns) == list(theirs.columns)[: len(ours.columns)]
    # Sorted by detection count, most first, as published.
    assert ours["detection_count"].is_monotonic_decreasing


def test_every_reproduction_check_passes(paper_tables):
    checks = master_table_checks(
        paper_tables["uniquely"],
        paper_tables["ambiguous"],
        paper_tables["summary"],
        paper_tables["published_uniquely"],
        paper_tables["published_ambiguous"],
    )
    failed = [check for check in checks if not check.passed]
    assert not failed, format_checks(checks)


def test_table_a1_head(paper_tables):
    head = paper_tables["uniquely"].head(3)
    assert head["name"].tolist() == ["2CXO J004231.1+411621", "2CXO J004248.5+411521", "2CXO J123049.3+122328"]
    assert head["detection_count"].tolist() == [97, 93, 85]
    assert head["master_class"].tolist() == ["HMXB", "HMXB", "Seyfert_1"]
    assert head.iloc[0]["HMXB"] == "0.241±0.215" and head.iloc[2]["Seyfert_1"] == "0.467±0.397"


def test_checks_can_fail(paper_tables):
    """The comparison notices a changed class and a changed probability string."""
    altered = paper_tables["uniquely"].copy()
    altered.loc[0, "master_class"] = "QSO"
    altered.loc[5, "YSO"] = "0.5±0.5"
    checks = master_table_checks(
        altered,
        paper_tables["ambiguous"],
        paper_tables["summary"],
        paper_tables["published_uniquely"],
        paper_tables["published_ambiguous"],
    )
    failed = {check.name: check.obtained for check in checks if not check.passed}
    assert failed == {
        "uniquely classified: sources whose master classes differ": 1,
        "uniquely classified: sources whose mean±std strings (10 classes) differ": 1,
    }
