"""SIMBAD's renamed object types: the taxonomy, and stage 3 on today's labels."""

import json
import re

import numpy as np
import pandas as pd
import pytest
from conftest import reference_path, run_script

from xrayclass.constants import CLASSES, UNINFORMATIVE_TYPES
from xrayclass.core.classifier import ClassifierModel
from xrayclass.core.taxonomy import CANDIDATE, CLASS, TYPES, UNINFORMATIVE, lookup, normalize_types, spellings
from xrayclass.io.tables import read_table
from xrayclass.stages.classification import ClassificationConfig, LabelError, detection_roles, run_classification
from xrayclass.workflow.report import Report, references_section
from xrayclass.workflow.steps import RunFiles

LABEL_FILE = "simbad_otype_labels.txt"


def read_label_table(path):
    """SIMBAD's table in the reference file: {code: (old label, new label)}, and its header text."""
    rows, header = {}, []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            header.append(line)
        elif line.startswith("| ") and not line.startswith("| otype"):
            code, old, new = (cell.strip() for cell in line.strip().strip("|").split("|"))
            rows[code] = (old, new)
    return rows, "\n".join(header)


@pytest.fixture(scope="module")
def label_table(reference_dir):
    return read_label_table(reference_path(reference_dir, LABEL_FILE))


def todays_label(code, rows, header):
    """A crossmatch made today: the new label, and for candidates the later form the file's
    header names (e.g. XB*_Candidate -> XrayBin_Candidate: the base type's new label)."""
    _, new = rows[code]
    if new.endswith("_Candidate"):
        base = new[: -len("_Candidate")]
        for other, (other_old, other_new) in rows.items():
            if base in (other, other_old) and f"{other_new}_Candidate" in header:
                return f"{other_new}_Candidate"
    return new


# -- the table against SIMBAD's -------------------------------------------------------------


def test_package_table_agrees_with_simbads(label_table):
    rows, header = label_table
    for kind in TYPES:
        assert kind.code in rows, f"{kind.code} is not a SIMBAD code"
        assert (kind.old_label, kind.new_label) == rows[kind.code], kind
    # Every type of the ten classes and the uninformative types in SIMBAD's table is covered,
    # with the role the paper gives it; and every SIMBAD type is known at all.
    for code, (old, new) in rows.items():
        if old in CLASSES or new in CLASSES:
            assert lookup(code).role == CLASS and lookup(old) is lookup(new) is lookup(code)
        if old in UNINFORMATIVE_TYPES or new in UNINFORMATIVE_TYPES:
            assert lookup(code).role == UNINFORMATIVE and lookup(old) is lookup(new) is lookup(code)
        assert lookup(code) is not None and lookup(old).code == lookup(new).code == code
    assert len(TYPES) == len(rows)
    # The later candidate labels the header names are known, as candidates of a class.
    later = set(re.findall(r"[\w*]+_Candidate", header))
    assert {"XrayBin_Candidate", "HighMassXBin_Candidate", "TTauri*_Candidate"} <= later
    for label in later:
        assert lookup(label) is not None and lookup(label).role == CANDIDATE, label


def test_every_class_and_uninformative_type_has_one_entry():
    assert [k.canonical for k in TYPES if k.role == CLASS] == list(CLASSES)
    assert [k.canonical for k in TYPES if k.role == UNINFORMATIVE] == list(UNINFORMATIVE_TYPES)


@pytest.mark.parametrize(
    "spelling, canonical",
    [
        ("Seyfert1", "Seyfert_1"),
        ("Seyfert2", "Seyfert_2"),
        ("HighMassXBin", "HMXB"),
        ("LowMassXBin", "LMXB"),
        ("XrayBin", "XB"),
        ("TTauri*", "TTau*"),
        ("OrionV*", "Orion_V*"),
        ("Infrared", "IR"),
        ("blue", "Blue"),
        ("Sy1", "Seyfert_1"),
        ("HXB", "HMXB"),
        ("Candidate_XB*", "Candidate_XB*"),
        ("XB*_Candidate", "Candidate_XB*"),
        ("XrayBin_Candidate", "Candidate_XB*"),
        ("HMXB_Candidate", "Candidate_HMXB"),
        ("HighMassXBin_Candidate", "Candidate_HMXB"),
        ("TTau*_Candidate", "Candidate_TTau*"),
        ("TTauri*_Candidate", "Candidate_TTau*"),
        ("YSO_Candidate", "Candidate_YSO"),
        ("LongPeriodV*", "LPV*"),
        ("GlobCluster", "GlCl"),
    ],
)
def test_spellings_map_to_the_papers_names(spelling, canonical):
    types, report = normalize_types([spelling])
    assert types.tolist() == [canonical]
    assert report.n_unknown == 0 and not report.case_fixed
    assert spelling in spellings(canonical) or lookup(spelling).code == spelling


def test_whitespace_case_and_missing_values():
    types, report = normalize_types([" QSO", "qso", "QSO ", None, np.nan, "NaN", "Quasar", "Quasar", "hmxb", "QSO"])
    assert types.tolist() == ["QSO", "QSO", "QSO", "NaN", "NaN", "NaN", "Quasar", "Quasar", "HMXB", "QSO"]
    assert report.n_matched == 7 and report.unknown == {"Quasar": 2}
    assert report.unknown_share == pytest.approx(2 / 7)
    assert report.case_fixed == {"qso": ("QSO", 1), "hmxb": ("HMXB", 1)}
    assert sum(report.trimmed.values()) == 2
    warnings = [text for level, text in report.messages() if level == "warning"]
    assert any("'qso'" in text and "another case" in text for text in warnings)
    assert any("' QSO'" in text and "whitespace" in text for text in warnings)


def test_the_short_code_is_preferred_when_present():
    types, report = normalize_types(["Foo", "AGN", "HighMassXBin", None, "Galaxy"], ["Sy1", "QSO", None, "TT*", "  "])
    # Unknown label fixed by its code; a disagreeing label loses to its code; no code: the label.
    assert types.tolist() == ["Seyfert_1", "QSO", "HMXB", "TTau*", "Galaxy"]
    assert report.n_from_code == 3 and report.n_unknown == 0
    assert report.disagreements == {("AGN", "QSO"): 1}
    assert any("disagree" in text for level, text in report.messages() if level == "warning")


def test_roles_on_todays_labels():
    roles = detection_roles(["Seyfert1", "HighMassXBin", "Infrared", "blue", "XrayBin_Candidate", "Foo", "NaN"])
    assert roles.tolist() == [
        "reference",
        "reference",
        "to_classify",
        "to_classify",
        "other_type",
        "other_type",
        "to_classify",
    ]
    assert detection_roles(["Foo"], otypes=["Y*O"]).tolist() == ["reference"]


# -- stage 3 on today's labels ---------------------------------------------------------------


@pytest.fixture(scope="module")
def original(crossmatch_sample):
    table = read_table(crossmatch_sample)
    return table, *run_classification(table, ClassificationConfig(explain=False))


def test_stage3_on_todays_labels_equals_the_original(original, label_table, caplog):
    table, expected, expected_model = original
    rows, header = label_table
    code_of = {old: code for code, (old, _) in rows.items()}
    today = table.copy()
    today["main_type"] = table["main_type"].map(lambda t: todays_label(code_of[t], rows, header) if t in code_of else t)
    changed = (today["main_type"] != table["main_type"]) & table["main_type"].notna()
    # The rewrite matters: under its raw labels only QSO and AGN would have references.
    assert set(today.loc[table["main_type"] == "Seyfert_1", "main_type"]) == {"Seyfert1"}
    assert int(today["main_type"].isin(CLASSES).sum()) == 1000 + 48
    caplog.set_level("INFO")
    result, model = run_classification(today, ClassificationConfig(explain=False))
    assert "1,319 references" in caplog.text
    assert model.census["references"] == expected_model.census["references"] == 1319
    assert model.census["classes"] == expected_model.census["classes"]
    assert {k: v["total"] for k, v in model.census["classes"].items() if v["total"]} == {
        "QSO": 1000,
        "AGN": 48,
        "Seyfert_1": 219,
        "Seyfert_2": 51,
        "XB": 1,
    }
    assert model.census["labels"]["renamed"] == int(changed.sum()) and model.census["labels"]["unknown"] == {}
    assert result[["name", "obsid", "main_type", "simbad_main_type"]].equals(
        expected[["name", "obsid", "main_type", "simbad_main_type"]]
    )
    np.testing.assert_array_equal(result[list(CLASSES)].to_numpy(), expected[list(CLASSES)].to_numpy())


def test_stage3_with_the_short_code_column(original, label_table):
    table, expected, _ = original
    rows, _ = label_table
    code_of = {old: code for code, (old, _) in rows.items()}
    coded = table.assign(otype=table["main_type"].map(code_of))
    # Labels garbled, codes right (as X-Match returns them: padded to three characters).
    coded["main_type"] = coded["main_type"].where(coded["main_type"].isna(), "garbled")
    coded["otype"] = coded["otype"].where(coded["otype"].isna(), coded["otype"].str.ljust(3))
    result, model = run_classification(coded, ClassificationConfig(explain=False))
    assert model.census["references"] == 1319 and model.census["labels"]["unknown"] == {}
    np.testing.assert_array_equal(result[list(CLASSES)].to_numpy(), expected[list(CLASSES)].to_numpy())


def test_stray_whitespace_and_case_keep_every_reference_and_warn(original, caplog):
    table, expected, _ = original
    damaged = table.copy()
    qso = np.flatnonzero(table["main_type"] == "QSO")
    damaged.loc[qso[::2], "main_type"] = " QSO"
    damaged.loc[qso[1::2], "main_type"] = "qso"
    caplog.set_level("INFO")
    result, model = run_classification(damaged, ClassificationConfig(explain=False))
    assert model.census["classes"]["QSO"]["total"] == 1000
    np.testing.assert_array_equal(result[list(CLASSES)].to_numpy(), expected[list(CLASSES)].to_numpy())
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("'qso' (500 rows) matches 'QSO' only in another case" in w for w in warnings)
    assert any("500 SIMBAD types had surrounding whitespace (e.g. ' QSO')" in w for w in warnings)


def test_a_class_without_references_warns(original, caplog):
    table, _, _ = original
    caplog.set_level("WARNING")
    run_classification(table, ClassificationConfig(explain=False))
    assert "5 of 10 classes have no reference in any cluster (HMXB, LMXB, YSO, TTau*, Orion_V*)" in caplog.text
    relabeled = table.assign(main_type=table["main_type"].replace("Seyfert_2", "Seyfert 2"))
    caplog.clear()
    run_classification(relabeled, ClassificationConfig(explain=False))
    assert "(HMXB, LMXB, YSO, TTau*, Orion_V*)" not in caplog.text  # Seyfert_2 is now missing too
    assert "6 of 10 classes have no reference in any cluster (Seyfert_2, HMXB" in caplog.text


def test_unknown_labels_above_five_percent_warn_with_the_most_common(original, caplog):
    table, _, _ = original
    qso = np.flatnonzero(table["main_type"] == "QSO")
    unknown = table.copy()
    unknown.loc[qso[:100], "main_type"] = "Quasar"
    unknown.loc[qso[100:110], "main_type"] = "Sy 1"
    caplog.set_level("WARNING")
    run_classification(unknown, ClassificationConfig(explain=False))
    assert (
        "7.3% of the 1,517 matched detections carry a SIMBAD type the taxonomy does not know "
        "(most common: 'Quasar' 100, 'Sy 1' 10)" in caplog.text
    )
    caplog.clear()
    unknown.loc[qso[:100], "main_type"] = "QSO"
    run_classification(unknown, ClassificationConfig(explain=False))
    assert "does not know" not in caplog.text  # 10 of 1,517: below 5%
    with pytest.raises(LabelError, match=r"^5 of 10 classes have no reference"):
        run_classification(unknown, ClassificationConfig(explain=False, strict_labels=True))


def _complete_sample(table):
    """The sample with one detection relabeled to each class it lacks (so no class is missing)."""
    complete = table.copy()
    others = np.flatnonzero(complete["main_type"] == "BLLac")
    for row, label in zip(others, ["HighMassXBin", "LMXB", "YSO", "TTauri*", "OrionV*"], strict=False):
        complete.loc[row, "main_type"] = label
    return complete


def test_strict_labels_exits_2_and_writes_nothing(crossmatch_sample, tmp_path):
    outputs = {
        "--output": tmp_path / "detections.csv",
        "--model-output": tmp_path / "classifier.json",
        "--outliers-output": tmp_path / "outliers.csv",
    }
    args = ["--input", crossmatch_sample, "--no-outliers", "-q", *[v for pair in outputs.items() for v in pair]]
    strict = run_script("classification.py", *args, "--strict-labels")
    assert strict.returncode == 2
    err = strict.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("classification.py: error: ")
    assert "no reference in any cluster (HMXB, LMXB, YSO, TTau*, Orion_V*)" in err[0] and "--strict-labels" in err[0]
    assert not any(path.exists() for path in outputs.values())
    # Without the option the same input is classified, with the warning.
    lenient = run_script("classification.py", *args)
    assert lenient.returncode == 0 and "no reference in any cluster" in lenient.stderr
    # With every class present, --strict-labels has nothing to object to.
    complete = tmp_path / "complete.csv"
    _complete_sample(read_table(crossmatch_sample)).to_csv(complete, index=False)
    for path in outputs.values():
        path.unlink()
    args[1] = complete
    assert run_script("classification.py", *args, "--strict-labels").returncode == 0
    assert all(path.exists() for path in outputs.values())


# -- the census in the artifact and the report ------------------------------------------------


def test_census_in_the_artifact_and_old_artifacts_still_load(original, tmp_path):
    _, result, model = original
    document = json.loads(json.dumps(model.to_dict()))
    census = document["reference_census"]
    assert census["classes"]["Seyfert_1"]["total"] == 219
    assert sum(census["classes"]["QSO"]["per_cluster"].values()) == 1000
    assert census["classes_without_references"] == ["HMXB", "LMXB", "YSO", "TTau*", "Orion_V*"]
    assert ClassifierModel.from_dict(document).census == census
    del document["reference_census"]  # an artifact from before the census
    old = ClassifierModel.from_dict(document)
    assert old.census is None
    np.testing.assert_array_equal(
        old.predict_proba(result, result["cluster"].to_numpy()), result[list(CLASSES)].to_numpy()
    )


def test_report_shows_the_census(original, tmp_path):
    _, _, model = original
    document = model.to_dict()
    (tmp_path / "classifier.json").write_text(json.dumps(document))
    report = Report("test")
    assert references_section(report, RunFiles(tmp_path)) == []
    table = next(block[1] for block in report.blocks if block[0] == "table").set_index("class")
    assert table.loc["QSO", "total"] == 1000 and table.loc["HMXB", "total"] == 0
    assert table.loc["Seyfert_1", [c for c in table.columns if c.startswith("cluster")]].sum() == 219
    text = report.markdown(tmp_path)
    assert "Classes without any reference: HMXB, LMXB, YSO, TTau*, Orion_V*." in text
    # An artifact without the census: the same counts from its per-cluster references.
    del document["reference_census"]
    (tmp_path / "classifier.json").write_text(json.dumps(document))
    old = Report("old")
    references_section(old, RunFiles(tmp_path))
    old_table = next(block[1] for block in old.blocks if block[0] == "table")
    pd.testing.assert_frame_equal(old_table.set_index("class"), table)


def test_table3_census_and_validation_read_todays_labels(original):
    from xrayclass.analysis.census import type_census
    from xrayclass.analysis.validation import labeled_detections

    table = pd.DataFrame({"cluster": [0, 0, 0, 1], "main_type": ["Seyfert1", "Seyfert_1", "Infrared", None]})
    census = type_census(table)
    assert census[["cluster", "main_type", "detections"]].values.tolist() == [
        [0, "Seyfert_1", 2],
        [0, "IR", 1],
        [1, "NaN", 1],
    ]
    table, _, _ = original
    labeled = labeled_detections(table.assign(main_type=table["main_type"].replace("Seyfert_1", "Seyfert1")))
    assert pd.Series(labeled.labels).value_counts()["Seyfert_1"] == 219
