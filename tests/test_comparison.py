"""Catalog comparison (the paper's Table 4): the published row, hand-computed SYNTHETIC cases, bad input."""

import math

import numpy as np
import pandas as pd
import pytest
from conftest import reference_path, run_script

from xrayclass.analysis.comparison import (
    DEFAULT_MAPPING,
    RESULT_COLUMNS,
    CatalogColumns,
    class_metrics,
    class_pair,
    compare_catalog,
    parse_class_pair,
    parse_mapping,
    shared_labels,
)
from xrayclass.core.positional import nearest_within
from xrayclass.io.tables import InputError

ARCSEC = 1 / 3600

# -- the published Table 4 row (MUWCLASS training set) ----------------------------------

#: Table 4 of the paper, MUWCLASS TD row: class -> (matches, precision, R-precision, recall).
PAPER_TABLE4_MUWCLASS_TD = {
    "AGN+Seyfert": (31, 0.32, 0.56, 0.83),
    "XB": (29, 0.17, 0.62, 0.31),
    "YSO": (56, 0.18, 0.74, 0.83),
}

#: The published YSO R-precision (0.74) is not reachable by any count consistent with
#: the rest of the row: the numerator is pinned to 10 by the precision (10/56 = 0.18;
#: 9 or 11 give 0.16 or 0.20) and by the recall (10/12 = 0.83), and no integer d puts
#: 10/d in [0.735, 0.745) (10/13 = 0.77, 10/14 = 0.71). We get 10/14 = 0.714; the
#: tolerance admits that nearest achievable value (|0.714 - 0.74| = 0.026) and nothing
#: one count further away (10/13 = 0.769 and 10/15 = 0.667 are both more than 0.029 off).
YSO_R_PRECISION_TOLERANCE = 0.027


@pytest.fixture(scope="module")
def muwclass_comparison(reference_dir):
    sources_path = reference_path(reference_dir, "paper_uniquely_classified.csv")
    catalog_path = reference_path(reference_dir, "muwclass_td.csv")
    return compare_catalog(pd.read_csv(sources_path), pd.read_csv(catalog_path))


def test_muwclass_matches_are_all_by_name(muwclass_comparison):
    summary = muwclass_comparison.summary
    assert (summary["by_name"], summary["by_position_only"], summary["unmatched"]) == (116, 0, 8271 - 116)
    assert summary["catalog_rows_matched_twice"] == 0


def test_reproduces_paper_table4_muwclass_training_set(muwclass_comparison):
    metrics = muwclass_comparison.metrics.set_index("class")
    assert list(muwclass_comparison.metrics.columns) == list(RESULT_COLUMNS)
    for label, (matches, precision, r_precision, recall) in PAPER_TABLE4_MUWCLASS_TD.items():
        row = metrics.loc[label]
        assert row["matches"] == matches, label
        assert round(row["precision"], 2) == precision, label
        assert round(row["recall"], 2) == recall, label
        if label == "YSO":
            assert abs(row["r_precision"] - r_precision) <= YSO_R_PRECISION_TOLERANCE
        else:
            assert round(row["r_precision"], 2) == r_precision, label


def test_muwclass_counts_behind_the_shares(muwclass_comparison):
    """The exact fractions, which pin down the counts (see the module docstring)."""
    metrics = muwclass_comparison.metrics.set_index("class")
    expected = {
        "AGN+Seyfert": (10 / 31, 10 / 18, 10 / 12),
        "XB": (5 / 29, 5 / 8, 5 / 16),
        "YSO": (10 / 56, 10 / 14, 10 / 12),
    }
    for label, shares in expected.items():
        assert tuple(metrics.loc[label, ["precision", "r_precision", "recall"]]) == pytest.approx(shares, abs=1e-15)


def test_muwclass_true_class_labels_give_other_numbers(reference_dir):
    sources_path = reference_path(reference_dir, "paper_uniquely_classified.csv")
    catalog_path = reference_path(reference_dir, "muwclass_td.csv")
    comparison = compare_catalog(
        pd.read_csv(sources_path), pd.read_csv(catalog_path), CatalogColumns(label="True_Class")
    )
    precision = comparison.metrics.set_index("class")["precision"]
    assert tuple(precision) == pytest.approx((13 / 31, 3 / 29, 8 / 56))


@pytest.mark.slow
def test_cli_reproduces_table4(reference_dir, tmp_path):
    sources_path = reference_path(reference_dir, "paper_uniquely_classified.csv")
    catalog_path = reference_path(reference_dir, "muwclass_td.csv")
    output = tmp_path / "comparison.csv"
    result = run_script(
        "analysis.py", "compare", "--catalog", catalog_path, "--uniquely", sources_path, "--output", output
    )
    assert result.returncode == 0, result.stderr
    assert "116 by name, 0 by position only" in result.stdout
    assert "AGN+Seyfert       31       0.32         0.56    0.83" in result.stdout
    table = pd.read_csv(output)
    assert list(table.columns) == list(RESULT_COLUMNS)
    assert list(table["matches"]) == [31, 29, 56]


# -- SYNTHETIC tables, every number computed by hand ------------------------------------


def synthetic_tables():
    """SYNTHETIC sources of ours and a SYNTHETIC MUWCLASS-style catalog (not real data).

    ====  ==========  ===============================  ==========  ==================
    ours  class       how it matches                   reference   label
    ====  ==========  ===============================  ==========  ==================
    S1    QSO         name (position 30 arcsec off)    R1          AGN
    S2    Seyfert_1   0.5 arcsec across RA = 0         R2          AGN
    S3    AGN         name                             R3          LMXB
    S4    AGN         name                             R4          LM-STAR
    S5    Seyfert_2   name                             R5          YSO
    S6    HMXB        name                             R6          HMXB
    S7    XB          name                             R7          AGN
    S8    LMXB        name                             R8          CV
    S9    YSO         1.5 arcsec from R9: none         (R9)        YSO
    S10   TTau*       nothing near                     -           -
    ====  ==========  ===============================  ==========  ==================
    """
    dec = np.arange(10) * 2.0 - 60.0  # 2 degrees apart: no accidental neighbours
    ours = pd.DataFrame(
        {
            "name": [f"SYNTHETIC S{i}" for i in range(1, 11)],
            "agg_master_class": ["AGN", "Seyfert", "AGN", "AGN", "Seyfert", "XB", "XB", "XB", "YSO", "YSO"],
            "master_class": ["QSO", "Seyfert_1", "AGN", "AGN", "Seyfert_2", "HMXB", "XB", "LMXB", "YSO", "TTau*"],
            "ra": [10.0, 0.25 * ARCSEC, 10, 10, 10, 10, 10, 10, 10, 10],
            "dec": dec,
        }
    )
    catalog = pd.DataFrame(
        {
            "CSCv2_name": [
                "synthetic  s1",
                "SYNTHETIC R2",
                "SYNTHETIC S3",
                "SYNTHETIC S4",
                "SYNTHETIC S5",
                "SYNTHETIC S6",
                "SYNTHETIC S7",
                "SYNTHETIC S8",
                "SYNTHETIC R9",
            ],
            "CSCv2_RA": [10.0, 360 - 0.25 * ARCSEC, 10, 10, 10, 10, 10, 10, 10],
            "CSCv2_DEC": np.r_[dec[0] + 30 * ARCSEC, dec[1:8], dec[8] + 1.5 * ARCSEC],
            "Class": ["AGN", "AGN", "LMXB", "LM-STAR", "YSO", "HMXB", "AGN", "CV", "YSO"],
        }
    )
    return ours, catalog


@pytest.fixture
def synthetic_comparison():
    ours, catalog = synthetic_tables()
    return compare_catalog(ours, catalog)


def test_synthetic_matching(synthetic_comparison):
    summary = synthetic_comparison.summary
    assert (summary["by_name"], summary["by_position_only"], summary["unmatched"]) == (7, 1, 2)
    matched = synthetic_comparison.matched.set_index("name")
    assert matched.loc["SYNTHETICS1", "matched_by"] == "name"  # 30 arcsec apart, same name (spacing, case)
    assert matched.loc["SYNTHETICS2", ["matched_by", "label"]].tolist() == ["position", "AGN"]
    assert "SYNTHETICS9" not in matched.index  # 1.5 arcsec: beyond the radius
    assert "SYNTHETICS10" not in matched.index


def test_synthetic_metrics_by_hand(synthetic_comparison):
    # Shared labels: AGN, HMXB, LMXB, YSO (LM-STAR and CV are not).
    # AGN+Seyfert: S1-S5 -> 5 matches; agree S1, S2 -> 2; shared S1,S2,S3,S5 -> 4;
    #   reference AGN among matches: S1, S2, S7 -> 3.
    # XB: S6-S8 -> 3 matches; agree S6 -> 1; shared S6, S7 -> 2; reference HMXB/LMXB: S3, S6 -> 2.
    # YSO: no match -> precision and R-precision undefined; reference YSO: S5 -> recall 0/1.
    metrics = synthetic_comparison.metrics.set_index("class")
    assert list(metrics["matches"]) == [5, 3, 0]
    assert metrics.loc["AGN+Seyfert", ["precision", "r_precision", "recall"]].tolist() == [2 / 5, 2 / 4, 2 / 3]
    assert metrics.loc["XB", ["precision", "r_precision", "recall"]].tolist() == [1 / 3, 1 / 2, 1 / 2]
    assert math.isnan(metrics.loc["YSO", "precision"]) and math.isnan(metrics.loc["YSO", "r_precision"])
    assert metrics.loc["YSO", "recall"] == 0.0


def test_position_match_across_ra_zero_within_one_arcsec():
    rows, separations = nearest_within(
        [0.25 * ARCSEC, 10.0], [0.0, 0.0], [360 - 0.25 * ARCSEC, 10.0 + 1.5 * ARCSEC], [0.0, 0.0], 1.0
    )
    assert rows.tolist() == [0, -1]
    assert separations[0] == pytest.approx(0.5, abs=1e-6) and math.isnan(separations[1])


def test_name_match_takes_precedence_over_a_nearer_position():
    ours = pd.DataFrame({"name": ["SYNTHETIC A"], "master_class": ["QSO"], "ra": [50.0], "dec": [10.0]})
    catalog = pd.DataFrame(
        {
            "CSCv2_name": ["SYNTHETIC A", "SYNTHETIC B"],
            "CSCv2_RA": [50.0, 50.0],
            "CSCv2_DEC": [10.0 + 0.8 * ARCSEC, 10.0 + 0.1 * ARCSEC],
            "Class": ["AGN", "YSO"],
        }
    )
    comparison = compare_catalog(ours, catalog)
    assert comparison.matched[["matched_by", "label"]].values.tolist() == [["name", "AGN"]]


def test_class_with_no_matches_is_nan_not_a_crash():
    metrics = class_metrics([], [], DEFAULT_MAPPING)
    assert list(metrics["matches"]) == [0, 0, 0]
    assert metrics[["precision", "r_precision", "recall"]].isna().all().all()


def test_shared_labels_of_the_default_mapping():
    assert shared_labels(DEFAULT_MAPPING) == ("AGN", "HMXB", "LMXB", "YSO")
    assert DEFAULT_MAPPING[0].ours == ("QSO", "AGN", "Seyfert_1", "Seyfert_2")
    assert DEFAULT_MAPPING[1].ours == ("HMXB", "LMXB", "XB")


def test_parse_class_pair():
    assert parse_class_pair("AGN+Seyfert=AGN") == class_pair("AGN+Seyfert", ("AGN",))
    assert parse_class_pair(" XB = HMXB, LMXB ") == class_pair("XB", ("HMXB", "LMXB"))
    assert parse_class_pair("HMXB=HMXB").ours == ("HMXB",)
    for bad in ("AGN", "=AGN", "AGN=", "AGN+=AGN"):
        with pytest.raises(InputError, match="expected OURS=THEIRS"):
            parse_class_pair(bad)
    with pytest.raises(InputError, match="unknown class 'Galaxy'"):
        parse_class_pair("Galaxy=GAL")
    with pytest.raises(InputError, match="more than once"):
        parse_mapping(["XB=HMXB", "XB=LMXB"])


def test_missing_catalog_columns_are_all_named():
    ours, catalog = synthetic_tables()
    with pytest.raises(InputError, match=r"missing required columns: True_Klass \(label\), CSCv2_RA \(RA\)"):
        compare_catalog(ours, catalog.drop(columns="CSCv2_RA"), CatalogColumns(label="True_Klass"))


def test_missing_source_columns_are_named():
    ours, catalog = synthetic_tables()
    with pytest.raises(InputError, match="missing required columns: master_class, ra"):
        compare_catalog(ours.drop(columns=["master_class", "ra"]), catalog)


def test_name_only_matching_needs_no_positions():
    ours, catalog = synthetic_tables()
    comparison = compare_catalog(
        ours.drop(columns=["ra", "dec"]), catalog.drop(columns=["CSCv2_RA", "CSCv2_DEC"]), match="name"
    )
    assert (comparison.summary["by_name"], comparison.summary["unmatched"]) == (7, 3)


# -- the command line on SYNTHETIC files -------------------------------------------------


@pytest.fixture
def synthetic_files(tmp_path):
    ours, catalog = synthetic_tables()
    ours_path, catalog_path = tmp_path / "synthetic_uniquely.csv", tmp_path / "synthetic_catalog.csv"
    ours.to_csv(ours_path, index=False)
    catalog.rename(columns={"CSCv2_name": "src", "CSCv2_RA": "RAdeg", "CSCv2_DEC": "DEdeg", "Class": "type"}).to_csv(
        catalog_path, index=False
    )
    return ours_path, catalog_path


def test_cli_with_column_and_class_mapping(synthetic_files, tmp_path):
    ours_path, catalog_path = synthetic_files
    output = tmp_path / "out" / "comparison.csv"
    result = run_script(
        "analysis.py",
        "compare",
        "--catalog",
        catalog_path,
        "--uniquely",
        ours_path,
        "--output",
        output,
        "--name-column",
        "src",
        "--ra-column",
        "RAdeg",
        "--dec-column",
        "DEdeg",
        "--label-column",
        "type",
        "--map",
        "AGN+Seyfert=AGN",
        "--map",
        "XB=HMXB,LMXB",
        "--map",
        "YSO=YSO",
    )
    assert result.returncode == 0, result.stderr
    assert "8 of 10 uniquely classified sources matched, 7 by name, 1 by position only" in result.stdout
    assert "YSO        0        NaN          NaN    0.00" in result.stdout
    table = pd.read_csv(output)
    assert list(table.columns) == list(RESULT_COLUMNS)
    assert table["precision"].tolist()[:2] == [0.4, 1 / 3] and math.isnan(table["precision"].iloc[2])
    assert "NaN" in output.read_text()


def test_cli_bad_input_is_one_line_and_writes_nothing(synthetic_files, tmp_path):
    ours_path, catalog_path = synthetic_files
    output = tmp_path / "comparison.csv"
    cases = [
        (
            ["--label-column", "Klass"],
            "missing required columns: Klass (label), CSCv2_name (name), CSCv2_RA (RA), CSCv2_DEC (Dec); "
            "the catalog has: src, RAdeg, DEdeg, type",
        ),
        (
            ["--name-column", "src", "--ra-column", "RAdeg", "--dec-column", "DEdeg", "--label-column", "Klass"],
            "missing required columns: Klass (label)",
        ),
        (
            [
                "--name-column",
                "src",
                "--ra-column",
                "RAdeg",
                "--dec-column",
                "DEdeg",
                "--label-column",
                "type",
                "--map",
                "Galaxy=GAL",
            ],
            "unknown class 'Galaxy'",
        ),
    ]
    for options, message in cases:
        result = run_script(
            "analysis.py", "compare", "--catalog", catalog_path, "--uniquely", ours_path, "--output", output, *options
        )
        assert result.returncode == 2
        errors = result.stderr.strip().splitlines()
        assert len(errors) == 1 and message in errors[0] and errors[0].startswith("analysis.py compare: error:")
        assert not output.exists()


def test_cli_help_lists_compare():
    result = run_script("analysis.py", "--help")
    assert result.returncode == 0 and "compare" in result.stdout
    result = run_script("analysis.py", "compare", "--help")
    assert result.returncode == 0 and "--label-column" in result.stdout and "--map" in result.stdout
