"""classify_source.py: new detections through a run's artifacts, without refitting.

The artifacts come from the SYNTHETIC mock catalog (xrayclass.analysis.mock; not real data);
the CSC TAP service is replaced at the HTTP transport by the hand-made answers of
tests/data/ (made-up values). The real CSC row ``example_source.vot`` is read from the
shared reference directory (skipped when absent).
"""

import json

import numpy as np
import pandas as pd
import pytest
from conftest import library_warnings, reference_path, run_script
from fake_http import REFUSED, TIMEOUT, server, votable, waits  # noqa: F401
from numpy.testing import assert_allclose, assert_array_equal

from xrayclass.cli import stages as cli
from xrayclass.cli.classify_source import main
from xrayclass.constants import CLASSES, FEATURES, RAW_FEATURE_COLUMNS, UNCLASSIFIED
from xrayclass.core.features import prepare_features
from xrayclass.io.artifacts import load_artifacts, sources_path
from xrayclass.io.tables import InputError, read_table
from xrayclass.services.csc_tap import build_source_query
from xrayclass.stages.new_sources import (
    classify,
    csc_source_name,
    format_report,
    missing_features,
)
from xrayclass.workflow.mock import write_mock

SEED = 11
N_MOCK = 4000
FIXTURE_SOURCE = "2CXO J100000.0+020000"  # made up, see tests/data/make_source_fixture.py
IDENTITY = ["name", "obsid", "ra", "dec"]


# -- artifacts ----------------------------------------------------------------------------------


def _mock_chain(directory, run):
    """Stages 1-3 on a SYNTHETIC mock catalog; ``run(stage_main_or_script, args)`` runs a stage."""
    catalog, simbad = directory / "catalog.parquet", directory / "simbad.parquet"
    write_mock(N_MOCK, SEED, catalog, simbad)
    stages = [
        ("clustering", ["--input", catalog, "--output", directory / "s1.parquet", "--model", directory / "model.json"]),
        (
            "crossmatch",
            ["--input", directory / "s1.parquet", "--catalog", simbad, "--output", directory / "s2.parquet"],
        ),
        (
            "classification",
            [
                "--input",
                directory / "s2.parquet",
                "--output",
                directory / "s3.parquet",
                "--model-output",
                directory / "classifier.json",
                "--outliers-output",
                directory / "outliers.csv",
            ],
        ),
    ]
    for stage, args in stages:
        run(stage, [str(a) for a in args])
    return directory


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    """model.json, classifier.json and the stage tables of a SYNTHETIC mock, made in this process."""

    def run(stage, args):
        assert getattr(cli, f"{stage}_main")(args + ["-q"]) == 0

    import logging

    logger = logging.getLogger("xrayclass")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    try:
        return _mock_chain(tmp_path_factory.mktemp("artifacts"), run)
    finally:
        logger.handlers[:], logger.level, logger.propagate = saved


@pytest.fixture(scope="module")
def models(artifacts):
    return load_artifacts(artifacts / "model.json", artifacts / "classifier.json")


@pytest.fixture(scope="module")
def stage3(artifacts):
    return pd.read_parquet(artifacts / "s3.parquet")


def raw_rows(stage3, n_sources=2, per_source=3):
    """The raw CSC columns of the detections of ``n_sources`` mock sources with ``per_source`` detections."""
    counts = stage3.groupby("name").size()
    names = counts[counts == per_source].index[:n_sources]
    rows = stage3.loc[stage3["name"].isin(names), [*IDENTITY, *RAW_FEATURE_COLUMNS]]
    return rows.sort_values(["name", "obsid"]).reset_index(drop=True)


def args_for(artifacts, *extra):
    return ["--model", str(artifacts / "model.json"), "--classifier", str(artifacts / "classifier.json"), *extra]


def error_line(capsys):
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[-1].startswith("classify_source.py: error: ")
    return lines[-1]


# -- names and the by-name query -------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, name",
    [
        ("2CXO J004307.5-092302", "2CXO J004307.5-092302"),
        ("  2cxo   j004307.5-092302 ", "2CXO J004307.5-092302"),
        ("2CXOJ004307.5+092302X", "2CXO J004307.5+092302X"),
        ("J004307.5-092302", "2CXO J004307.5-092302"),
        ("sources.csv", None),
        ("2CXO J004307-092302", None),
    ],
)
def test_csc_names_are_recognised(text, name):
    assert csc_source_name(text) == name


def test_by_name_query_has_no_selection_and_quotes_safely():
    query = " ".join(build_source_query("2CXO J004307.5-092302", schema="csc2").split())
    assert query.startswith("SELECT DISTINCT m.name, o.obsid, o.region_id, o.theta, m.ra, m.dec")
    assert "FROM csc2.master_source m, csc2.master_stack_assoc a, csc2.observation_source o" in query
    assert "WHERE (m.name = '2CXO J004307.5-092302') AND m.name = a.name AND" in query
    assert "o.obi = b.obi AND o.region_id = b.region_id ORDER BY o.obsid" in query
    assert "flux_significance" not in query and "IS NOT NULL" not in query
    assert "(m.name = 'x'' OR ''1''=''1')" in build_source_query("x' OR '1'='1")
    with pytest.raises(InputError, match="not a source name"):
        build_source_query("2CXO J1\n; DROP")


# -- missing features ------------------------------------------------------------------------------


def test_example_source_names_its_missing_features(artifacts, reference_dir, tmp_path, capsys):
    example = reference_path(reference_dir, "example_source.vot")
    output = tmp_path / "out.csv"
    assert main([str(example), *args_for(artifacts, "--output", str(output))]) == 2
    message = error_line(capsys)
    assert "no detection can be classified" in message
    assert "2CXO J004307.5-092302 obsid 4884: missing powlaw_gamma, bb_kt" in message
    assert not output.exists() and not sources_path(output).exists()


def test_missing_raw_columns_and_zero_means_are_named(stage3):
    rows = prepare_features(raw_rows(stage3, 1).assign(hard_hm=[np.nan, 0.1, 0.1], var_mean_b=[0.2, 0.0, np.nan]))
    assert missing_features(rows).tolist() == [
        "missing hard_hm",
        "var_ratio_b not finite, var_newq_b not finite",
        "missing var_mean_b",
    ]


def test_some_detections_missing_are_skipped_and_listed(artifacts, stage3, tmp_path, capsys):
    rows = raw_rows(stage3, 3)
    names = rows["name"].unique()
    rows.loc[1, ["powlaw_gamma", "bb_kt"]] = np.nan  # one detection of the first source
    rows.loc[rows["name"] == names[2], "var_sigma_h"] = np.nan  # every detection of the third
    path, output = tmp_path / "partial.csv", tmp_path / "partial_out.parquet"
    rows.to_csv(path, index=False)
    assert main([str(path), *args_for(artifacts, "--output", str(output))]) == 0
    out = capsys.readouterr().out

    detections, sources = pd.read_parquet(output), pd.read_parquet(sources_path(output))
    assert len(detections) == 5 and set(detections["name"]) == set(names[:2])
    assert sources["name"].tolist() == list(names)
    first, _, third = sources.to_dict("records")
    assert (first["detection_count"], first["classified_count"], first["skipped_count"]) == (3, 2, 1)
    assert first["skipped"] == f"obsid {rows.loc[1, 'obsid']}: missing powlaw_gamma, bb_kt"
    assert third["status"] == "not classifiable" and third["classified_count"] == 0
    assert third["hard_master_class"] == UNCLASSIFIED and np.isnan(third["soft_mean_probability"])
    assert f"  skipped obsid {rows.loc[1, 'obsid']}: missing powlaw_gamma, bb_kt" in out
    assert f"{names[2]}: not classified: none of its 3 detections can be classified" in out
    assert "5 of 9 detections classified, 4 skipped" in out


# -- the training range ----------------------------------------------------------------------------


def test_out_of_range_values_are_flagged_not_clipped(models, stage3):
    clustering, classifier = models
    scaler = classifier.scaler
    bb_kt_max = np.exp(scaler.data_max_["bb_kt"]) - scaler.shift_["bb_kt"]
    rows = raw_rows(stage3, 1)
    rows.loc[0, "bb_kt"] = 100 * bb_kt_max
    rows.loc[[0, 1], "powlaw_gamma"] = scaler.data_min_["powlaw_gamma"] - 1
    result = classify(rows, clustering, classifier)
    detections = result.detections

    assert detections["outside_training_range"].tolist() == [True, True, False]
    assert detections["out_of_range"].tolist() == ["powlaw_gamma<min; bb_kt>max", "powlaw_gamma<min", ""]
    assert "outside training range: powlaw_gamma<min; bb_kt>max" in detections.loc[0, "flags"]

    features = prepare_features(rows)[list(FEATURES)].to_numpy(dtype="float64")
    X = clustering.scaler.transform(features)
    assert X[0, FEATURES.index("bb_kt")] > 1  # the value is extrapolated, not clipped to 1
    expected = clustering.mixture.predict_proba(X)
    assert_array_equal(detections["cluster"], expected.argmax(axis=1))
    assert_allclose(detections["cluster_probability"], expected.max(axis=1), rtol=1e-12)
    assert result.sources.loc[0, "outside_training_range_count"] == 2
    assert "obsid" in format_report(result) and "bb_kt>max" in format_report(result)


def test_undefined_log_is_skipped_by_name(models, stage3):
    rows = raw_rows(stage3, 1)
    rows.loc[2, "bb_kt"] = -1.0
    result = classify(rows, *models)
    assert len(result.detections) == 2
    (reason,) = result.skipped["reason"]
    # A negative temperature is outside bb_kt's physical range (issue 11), which is why its
    # log is undefined: the reason names the range.
    assert reason == "bb_kt outside [0, 1000]"
    assert result.sources.loc[0, "skipped_count"] == 1
    with pytest.raises(InputError, match=r"no detection can be classified .*: row 1: bb_kt outside"):
        classify(rows.loc[[2], RAW_FEATURE_COLUMNS], *models)


# -- inputs ----------------------------------------------------------------------------------------


def test_csv_without_name_or_obsid(artifacts, stage3, tmp_path, capsys):
    rows = raw_rows(stage3, 1)[list(RAW_FEATURE_COLUMNS)]
    path, output = tmp_path / "anonymous.csv", tmp_path / "anonymous_out.csv"
    rows.to_csv(path, index=False)
    assert main([str(path), *args_for(artifacts, "--output", str(output))]) == 0
    out = capsys.readouterr().out
    detections, sources = pd.read_csv(output), pd.read_csv(sources_path(output))
    assert detections["name"].tolist() == ["row 1", "row 2", "row 3"]
    assert "obsid" not in detections.columns and "ra" not in detections.columns
    assert list(detections.columns[:3]) == ["name", "cluster", "cluster_probability"]
    assert sources["detection_count"].tolist() == [1, 1, 1]
    assert out.splitlines()[0].startswith("row 1: 1 detection, cluster ")


def test_by_name_fetches_from_the_csc_and_lists_what_is_missing(artifacts, server, tmp_path, capsys, waits):
    server.add("POST", r"/csc2tap/sync$", votable("csc_tap_source.vot"))
    output = tmp_path / "fetched.csv"
    assert main([FIXTURE_SOURCE, *args_for(artifacts, "--output", str(output))], sleep=waits.append) == 0
    (request,) = server.requests
    query = " ".join(request.form()["QUERY"].split())
    assert f"WHERE (m.name = '{FIXTURE_SOURCE}') AND m.name = a.name" in query
    assert "csc2.observation_source o" in query and "flux_significance" not in query
    out = capsys.readouterr().out
    assert "skipped obsid 90003: missing powlaw_gamma, bb_kt" in out
    assert f"from CSC 2.0 source {FIXTURE_SOURCE}" in out
    detections = pd.read_csv(output)
    assert detections["obsid"].tolist() == [90001, 90002]
    assert_allclose(detections[list(CLASSES)].sum(axis=1)[detections["main_type"] != UNCLASSIFIED], 1.0)


def test_by_name_without_network_says_to_pass_a_file(artifacts, server, tmp_path, capsys, waits):
    server.add("POST", r"/sync$", REFUSED)
    output = tmp_path / "none.csv"
    status = main([FIXTURE_SOURCE, *args_for(artifacts, "--retries", "1", "--output", str(output))], sleep=waits.append)
    assert status == 3
    message = error_line(capsys)
    assert "cannot connect to the CSC TAP service at https://cda.cfa.harvard.edu/csc2tap after 2 attempts" in message
    assert "pass a local file of the source's detections instead" in message
    assert "clustering.py" not in message
    assert len(server.requests) == 2 and not output.exists()


def test_unknown_source_is_an_input_error(artifacts, server, capsys):
    server.add("POST", r"/sync$", votable("csc_tap_empty.vot"))
    assert main([FIXTURE_SOURCE, *args_for(artifacts)]) == 2
    assert f"has no source named '{FIXTURE_SOURCE}'" in error_line(capsys)


def test_neither_file_nor_name(artifacts, server, capsys):
    assert main(["no_such_source", *args_for(artifacts)]) == 2
    assert "no such file, and not a CSC source name" in error_line(capsys)
    assert main(["no_such_file.csv", *args_for(artifacts)]) == 2
    assert "no_such_file.csv: file not found" in error_line(capsys)
    assert server.requests == []


def test_missing_model_is_one_line(artifacts, stage3, tmp_path, capsys):
    path = tmp_path / "one.csv"
    raw_rows(stage3, 1).to_csv(path, index=False)
    assert (
        main([str(path), "--model", str(tmp_path / "absent.json"), "--classifier", str(artifacts / "classifier.json")])
        == 2
    )
    assert error_line(capsys).endswith(
        "absent.json: file not found; run clustering.py (it writes --model) or pass --model PATH"
    )
    damaged = tmp_path / "damaged.json"
    damaged.write_text(json.dumps({"format": "xrayclass.classifier-model", "format_version": 1}))
    assert main([str(path), "--model", str(artifacts / "model.json"), "--classifier", str(damaged)]) == 2
    assert "damaged.json: field 'features' is missing" in error_line(capsys)
    assert (
        main(
            [
                str(path),
                "--model",
                str(artifacts / "classifier.json"),
                "--classifier",
                str(artifacts / "classifier.json"),
            ]
        )
        == 2
    )
    assert "not a clustering model" in error_line(capsys)


def test_artifacts_default_to_the_run_make_run_made(artifacts, stage3, tmp_path, monkeypatch, capsys):
    run = tmp_path / "out_data" / "mock"
    run.mkdir(parents=True)
    for name in ("model.json", "classifier.json"):
        (run / name).write_bytes((artifacts / name).read_bytes())
    (tmp_path / "out_data" / "model.json").write_text("{}")  # an unfinished run: no classifier.json
    path = tmp_path / "one.csv"
    raw_rows(stage3, 1).to_csv(path, index=False)
    monkeypatch.chdir(tmp_path)
    assert main([str(path)]) == 0
    assert "reading the run in out_data/mock/" in capsys.readouterr().err
    assert main([str(path), "--run-dir", "out_data"]) == 2
    assert "out_data/model.json: not a clustering model" in error_line(capsys)


def test_differing_preprocessing_is_warned(artifacts, stage3, tmp_path, capsys):
    document = json.loads((artifacts / "classifier.json").read_text())
    document["preprocessing"]["data_max"]["bb_kt"] += 0.5
    changed = tmp_path / "classifier.json"
    changed.write_text(json.dumps(document))
    path = tmp_path / "one.csv"
    raw_rows(stage3, 1).to_csv(path, index=False)
    assert main([str(path), "--model", str(artifacts / "model.json"), "--classifier", str(changed)]) == 0
    err = capsys.readouterr().err
    assert "warning: the preprocessing of" in err and "differ (data_max of bb_kt)" in err


def test_output_may_not_overwrite_the_input(artifacts, stage3, tmp_path, capsys):
    path = tmp_path / "one.csv"
    raw_rows(stage3, 1).to_csv(path, index=False)
    assert main([str(path), *args_for(artifacts, "--output", str(path))]) == 2
    assert "would overwrite an input" in error_line(capsys)


# -- the scripts, end to end (subprocesses) ---------------------------------------------------------


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    """Stages 1-3 as a user runs them, on a SYNTHETIC mock catalog."""

    def run(stage, args):
        result = run_script(f"{stage}.py", *args)
        assert result.returncode == 0, result.stderr

    return _mock_chain(tmp_path_factory.mktemp("chain"), run)


@pytest.mark.slow
def test_training_detections_get_exactly_the_stage_3_probabilities(chain):
    stage3 = pd.read_parquet(chain / "s3.parquet")
    clustering, classifier = load_artifacts(chain / "model.json", chain / "classifier.json")
    result = classify(stage3[[*IDENTITY, *RAW_FEATURE_COLUMNS]], clustering, classifier)
    expected = stage3.sort_values(["name", "obsid"], kind="stable").reset_index(drop=True)
    detections = result.detections
    assert len(result.skipped) == 0 and len(detections) == len(expected) > 1000
    assert_array_equal(detections["name"], expected["name"])
    assert_array_equal(detections["obsid"], expected["obsid"])
    assert_array_equal(detections["cluster"], expected["cluster"])
    assert_allclose(detections[list(CLASSES)].to_numpy(), expected[list(CLASSES)].to_numpy(), rtol=1e-12, atol=0)
    assert_array_equal(detections["main_type"], expected["main_type"])
    memberships = expected[[f"prob_{k}" for k in range(clustering.mixture.n_components)]].to_numpy()
    assert_allclose(
        detections["cluster_probability"],
        memberships[np.arange(len(expected)), expected["cluster"]],
        rtol=1e-12,
        atol=0,
    )
    # The outlier measures, their percentiles and the tracks are the stage-3 ones too.
    for column in ("outlier_measure", "outlier_percentile", "track_prior", "track_spectrum", "track_location"):
        assert_allclose(detections[column], expected[column], rtol=1e-12, atol=0)
    assert_array_equal(detections["driven_by"], expected["driven_by"])
    assert_array_equal(detections["outlier_flag"], expected["outlier_flag"])


@pytest.mark.slow
def test_script_on_a_csv_writes_both_tables(chain, tmp_path):
    rows = raw_rows(pd.read_parquet(chain / "s3.parquet"), 1)
    path, output = tmp_path / "source.csv", tmp_path / "result.csv"
    rows.to_csv(path, index=False)
    result = run_script("classify_source.py", path, *args_for(chain, "--output", output))
    assert result.returncode == 0, result.stderr
    assert not library_warnings(result.stderr)
    sources = read_table(sources_path(output))
    assert len(read_table(output)) == 3 and len(sources) == 1
    assert result.stdout.startswith(f"{rows['name'][0]}: 3 detections")
    assert "3 of 3 detections classified; 1 source from" in result.stdout


@pytest.mark.slow
def test_script_on_the_example_source_exits_2(chain, reference_dir, tmp_path):
    example = reference_path(reference_dir, "example_source.vot")
    result = run_script("classify_source.py", example, *args_for(chain, "--output", tmp_path / "x.csv"))
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("classify_source.py: error: ") and "missing powlaw_gamma, bb_kt" in last
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_script_without_a_model_exits_2(tmp_path):
    result = run_script("classify_source.py", "2CXO J004307.5-092302", "--model", tmp_path / "model.json", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"classify_source.py: error: {tmp_path / 'model.json'}: file not found; run clustering.py (it writes "
        "--model) or pass --model PATH"
    ]


def test_the_artifacts_likelihood_and_priors_are_honoured(models, stage3):
    from xrayclass.core.classifier import ClassifierModel

    clustering, classifier = models
    document = classifier.to_dict()
    assert (document["references"]["likelihood"], document["references"]["priors"]) == ("distance", "none")
    document["references"].update(likelihood="gaussian", priors="references")
    gaussian = ClassifierModel.from_dict(json.loads(json.dumps(document)))
    rows = raw_rows(stage3, 2)
    paper = classify(rows, clustering, classifier).detections
    result = classify(rows, clustering, gaussian).detections
    X = clustering.scaler.transform(prepare_features(rows)[list(FEATURES)].to_numpy(dtype="float64"))
    expected = gaussian.references.predict_proba(X, result["cluster"].to_numpy())
    assert_allclose(result[list(CLASSES)].to_numpy(), expected, rtol=1e-12, atol=0)
    assert not np.allclose(result[list(CLASSES)].to_numpy(), paper[list(CLASSES)].to_numpy())


def test_calibrate_applies_the_artifacts_temperature_or_says_there_is_none(models, stage3):
    from xrayclass.core.calibration import apply_temperature
    from xrayclass.core.classifier import ClassifierModel

    clustering, classifier = models
    rows = raw_rows(stage3, 2)
    with pytest.raises(InputError, match="no calibration"):
        classify(rows, clustering, classifier, calibrate=True)
    document = classifier.to_dict()
    document["calibration"] = {"method": "temperature", "temperature": 2.5, "for_method": "mahalanobis"}
    calibrated = ClassifierModel.from_dict(json.loads(json.dumps(document)))
    plain = classify(rows, clustering, calibrated).detections
    result = classify(rows, clustering, calibrated, calibrate=True).detections
    assert_allclose(
        result[list(CLASSES)].to_numpy(),
        apply_temperature(plain[list(CLASSES)].to_numpy(), 2.5),
        rtol=1e-12,
        atol=1e-15,
    )
    with pytest.raises(InputError, match="calibration is for mahalanobis"):
        classify(rows, clustering, calibrated, method="naive-bayes", calibrate=True)


def test_a_wide_csv_table_is_identified_without_a_pandas_warning(tmp_path):
    """pandas' CSV reader gives each column its own block; adding the name and row columns
    to a table of over 100 blocks made pandas print a fragmentation warning to the user."""
    import warnings

    from xrayclass.stages.new_sources import identify

    extra = {f"extra_{k}": [float(k), float(k)] for k in range(120)}
    wide = pd.DataFrame({"name": ["SRC B", "SRC A"], "obsid": [2, 1], **extra})
    path = tmp_path / "wide.csv"
    wide.to_csv(path, index=False)
    table = read_table(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        identified, named = identify(table)
    assert named and identified["name"].tolist() == ["SRC A", "SRC B"]
    assert identified["obsid"].tolist() == [1, 2]
