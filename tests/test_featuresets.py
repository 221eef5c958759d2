"""Feature sets as configuration: the paper's default, TOML validation, and a run without var_newq_b."""

import json
import logging

import pandas as pd
import pytest
from conftest import classify_stage3

from xrayclass.cli import stages as cli
from xrayclass.constants import (
    FEATURES,
    LOG_FEATURES,
    MINMAX_FEATURES,
    RAW_FEATURE_COLUMNS,
    SPECTRUM_FEATURES,
    VARIABILITY_FEATURES,
)
from xrayclass.core.featuresets import PAPER, FeatureSet, builtin
from xrayclass.exceptions import InputError
from xrayclass.io.artifacts import read_feature_set as load
from xrayclass.stages.classification import naive_bayes_categories

NO_NEWQ = builtin("no_var_newq_b")


@pytest.fixture(autouse=True)
def _restore_logging():
    yield
    logging.getLogger("xrayclass").handlers.clear()


def test_the_default_set_is_the_papers_constants():
    assert PAPER.features == FEATURES
    assert PAPER.log_features == LOG_FEATURES
    assert PAPER.minmax_features == MINMAX_FEATURES
    assert PAPER.raw_columns == RAW_FEATURE_COLUMNS
    assert (PAPER.spectrum, PAPER.variability) == (SPECTRUM_FEATURES, VARIABILITY_FEATURES)
    assert naive_bayes_categories(False) == {"spectrum": SPECTRUM_FEATURES, "variability": VARIABILITY_FEATURES}
    # The shipped file says the same as the built-in set.
    assert load(builtin("paper")) == PAPER


def test_the_example_set_is_the_papers_without_var_newq_b():
    example = load(NO_NEWQ)
    assert example.features == tuple(f for f in FEATURES if f != "var_newq_b")
    assert "var_min_b" not in example.raw_columns and "var_max_b" not in example.raw_columns
    assert example.variability == tuple(f for f in VARIABILITY_FEATURES if f != "var_newq_b")
    assert FeatureSet.from_dict(example.to_dict()) == example


def _edited(**changes):
    document = PAPER.to_dict()
    for key, value in changes.items():
        if value is None:
            document.pop(key)
        else:
            document[key] = value
    return document


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        (dict(features=[*FEATURES, "flux_aper_b"]), "unknown feature(s) flux_aper_b"),
        (
            dict(derived={k: v for k, v in PAPER.to_dict()["derived"].items() if k != "var_newq_b"}),
            "var_newq_b without their raw columns",
        ),
        (
            dict(derived={**PAPER.to_dict()["derived"], "var_newq_b": ["var_mean_b"]}),
            "'derived.var_newq_b' must name its raw columns",
        ),
        (dict(naive_bayes={"spectrum": [], "variability": []}), "categories are empty"),
        (dict(naive_bayes={"spectrum": list(SPECTRUM_FEATURES), "variability": []}), "'variability' is empty"),
        (dict(naive_bayes=None), "'[naive_bayes]' is missing"),
        (dict(log=["var_newq_b", "hard_xx"]), "'log' names hard_xx, not among 'features'"),
        (
            dict(naive_bayes={"spectrum": list(SPECTRUM_FEATURES), "variability": ["var_prob_b"]}),
            "every feature must be in exactly one naive_bayes category",
        ),
    ],
)
def test_invalid_sets_are_refused_with_one_line(changes, says):
    with pytest.raises(InputError) as caught:
        FeatureSet.from_dict(_edited(**changes), "mine.toml")
    message = str(caught.value)
    assert message.startswith("mine.toml: ") and says in message and "\n" not in message


def test_a_bad_toml_file_exits_2_with_one_line(sample_csc_csv, tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text(NO_NEWQ.read_text().replace('"var_ratio_s",\n]', '"var_ratio_s", "var_newq_b",\n]'))
    broken = tmp_path / "broken.toml"
    broken.write_text("features = [\n")
    for path, says in (
        (bad, "var_newq_b without their raw columns"),
        (broken, "not valid TOML"),
        (tmp_path / "absent.toml", "no such feature-set file"),
    ):
        capsys.readouterr()
        code = cli.clustering_main(
            [
                "--input",
                str(sample_csc_csv),
                "--output",
                str(tmp_path / "s1.csv"),
                "--model",
                str(tmp_path / "model.json"),
                "--features",
                str(path),
            ]
        )
        errors = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
        assert code == 2
        assert len(errors) == 1 and str(path) in errors[0] and says in errors[0], errors
        assert not (tmp_path / "s1.csv").exists() and not (tmp_path / "model.json").exists()


@pytest.mark.parametrize(
    "text",
    [
        "[" + ".".join(["naive_bayes"] * 100) + "]\n",  # a table header the parser does not recurse on
        "features = " + "{a = " * 20 + "1" + "}" * 20 + "\n",  # inline tables, 20 deep
        "features = " + "[" * 600 + "]" * 600 + "\n",  # deep enough for the parser's own recursion
    ],
)
def test_nesting_is_limited_whatever_makes_it(tmp_path, text):
    path = tmp_path / "deep.toml"
    path.write_text(text)
    with pytest.raises(InputError, match="nested more than 16 levels deep"):
        load(path)


def test_a_row_lacks_only_the_features_of_its_set(crossmatch_sample):
    from xrayclass.core.features import complete_rows, prepare_features

    table = pd.read_csv(crossmatch_sample).rename(columns={"name_1": "name"}).head(20)
    table.loc[[3, 7], "var_max_b"] = float("nan")
    table.loc[11, "var_min_b"] = -1.0  # out of its physical range
    example = load(NO_NEWQ)
    paper_complete, reasons = complete_rows(prepare_features(table, PAPER))
    assert list(paper_complete.nonzero()[0]) == [i for i in range(20) if i not in (3, 7, 11)]
    assert reasons.loc["var_newq_b", "missing"] == 2 and reasons.loc["var_min_b", "out_of_range"] == 1
    example_complete, reasons = complete_rows(prepare_features(table, example), feature_set=example)
    assert example_complete.all() and "var_min_b" not in reasons.index


# -- the pipeline without var_newq_b on the real sample -------------------------------------------


@pytest.fixture(scope="module")
def without_newq(crossmatch_sample, tmp_path_factory, run_stages):
    """Stages 1-4 with the 11-feature set on the real sample, var_newq_b's raw inputs dropped."""
    out = tmp_path_factory.mktemp("no_newq")
    sample = pd.read_csv(crossmatch_sample)
    columns = list(sample.columns)
    csc = sample[columns[: columns.index("cluster")]].drop(columns=["var_min_b", "var_max_b"])
    assert "var_newq_b" not in csc.columns
    csc.to_csv(out / "csc.csv", index=False)
    frozen = sample.drop(columns=["var_min_b", "var_max_b"])
    frozen.to_csv(out / "frozen.csv", index=False)
    run_stages(
        out, csc=out / "csc.csv", frozen=out / "frozen.csv", features=NO_NEWQ, crossmatch_args=("--clusters", "ours")
    )
    return out, len(sample)


def test_the_pipeline_runs_without_var_newq_b(without_newq):
    out, n_sample = without_newq
    example = load(NO_NEWQ)
    stage1 = pd.read_csv(out / "s1.csv")
    assert len(pd.read_csv(out / "s2.csv")) == n_sample
    assert len(stage1) == n_sample  # every row of the sample has the 11 features
    assert "var_newq_b" not in stage1.columns
    for artifact in ("model.json", "classifier.json"):
        document = json.loads((out / artifact).read_text())
        assert document["features"] == list(example.features)
        assert FeatureSet.from_dict(document["feature_set"]) == example
        assert len(document["preprocessing"]["features"]) == 11
    stage3 = pd.read_csv(out / "s3.csv")
    assert len(stage3) > 0 and "var_newq_b" not in stage3.columns
    assert stage3[["QSO", "AGN", "YSO"]].notna().all().all()
    assert any(out.glob("*.csv")) and (out / "s3.csv").exists()


def test_classify_source_uses_the_artifacts_set(without_newq, capsys):
    out, _ = without_newq
    stage3, again, _ = classify_stage3(out, capsys)
    # classify_source on stage 3's detections places them in stage 3's clusters and gives its classes.
    assert (again["cluster"].to_numpy() == stage3["cluster"].to_numpy()).all()
    assert (again["main_type"].to_numpy() == stage3["main_type"].to_numpy()).all()


def test_stage3_refuses_a_set_other_than_the_models(without_newq, tmp_path, capsys):
    out, _ = without_newq
    capsys.readouterr()
    code = cli.classification_main(
        [
            "--input",
            str(out / "s2.csv"),
            "--output",
            str(tmp_path / "s3.csv"),
            "--features",
            str(builtin("paper")),
            "--model",
            str(out / "model.json"),
            "--model-output",
            str(tmp_path / "c.json"),
            "--outliers-output",
            str(tmp_path / "o.csv"),
            "-q",
        ]
    )
    errors = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 2 and len(errors) == 1 and "differs from" in errors[0], errors
    assert not (tmp_path / "s3.csv").exists()


def test_validate_honours_the_runs_feature_set(without_newq, tmp_path):
    from xrayclass.cli.analysis import main as analysis_main

    out, _ = without_newq
    run = tmp_path / "run"
    run.mkdir()
    (run / "model.json").write_bytes((out / "model.json").read_bytes())
    # s2.csv lacks var_min_b / var_max_b: with the paper's set this would exit 2, so 0 says the model's set was used.
    assert (
        analysis_main(
            [
                "validate",
                "--run-dir",
                str(run),
                "--input",
                str(out / "s2.csv"),
                "--seeds",
                "1",
                "--method",
                "mahalanobis",
                "--method",
                "naive-bayes",
                "-q",
            ]
        )
        == 0
    )
    from xrayclass.analysis.validation import labeled_detections

    labeled = labeled_detections(pd.read_csv(out / "s2.csv"), feature_set=load(NO_NEWQ))
    assert labeled.X.shape[1] == 11
    assert any((run / "validation").iterdir())
