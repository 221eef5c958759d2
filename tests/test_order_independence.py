"""The same detections in another order give the same answers (issue 22; SYNTHETIC mock data).

Stage 3 is run on a small mock stage-2 table and on shuffled copies of it, with every
method and choice that changes what is fitted, in memory and with the streaming and Dask
engines; the outputs, put back in one order, must agree:

* classes, outlier measures, percentiles and flags, ``driven_by`` and the probability
  tracks and every other column: **identical**;
* the ten class probabilities: identical too (the Mahalanobis means and covariances are
  summed over the references in the content order as well);
* the classifier's naive Bayes model, outlier yardstick and calibration: identical.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from xrayclass.analysis.mock import generate
from xrayclass.cli import stages as cli
from xrayclass.constants import CLASSES
from xrayclass.io.tables import read_table, write_table
from xrayclass.stages.clustering import cluster_detections
from xrayclass.stages.crossmatch import crossmatch_local

#: A column added to the input to find each row again in any output (it passes through).
PROBE = "probe_row"

#: Every stage-3 choice that changes what is fitted or how the seeded steps run.
CHOICES = {
    "paper": (),
    "paper-calibrated": ("--calibrate",),
    "gaussian-priors": ("--likelihood", "gaussian", "--priors", "references"),
    "gaussian-priors-calibrated": ("--likelihood", "gaussian", "--priors", "references", "--calibrate"),
    "no-outliers": ("--no-outliers",),
    "naive-bayes": ("--method", "naive-bayes"),
    "naive-bayes-calibrated": ("--method", "naive-bayes", "--calibrate"),
    "naive-bayes-rarest-no-location": ("--method", "naive-bayes", "--nb-score", "rarest_f1", "--no-location"),
}
SHUFFLES = (1, 2)


@pytest.fixture(scope="module")
def stage2(tmp_path_factory):
    """A SYNTHETIC stage-2 table as CSV, and shuffled copies (CSV and Parquet)."""
    detections, simbad = (pd.concat(parts, ignore_index=True) for parts in zip(*generate(4_000, 22), strict=False))
    stage1, _ = cluster_detections(detections)
    table = crossmatch_local(stage1, simbad, 1.0)
    table[PROBE] = np.arange(len(table))
    folder = tmp_path_factory.mktemp("order")
    write_table(table, folder / "synthetic_stage2.csv")
    for seed in SHUFFLES:
        shuffled = table.iloc[np.random.default_rng(seed).permutation(len(table))].reset_index(drop=True)
        write_table(shuffled, folder / f"synthetic_shuffled_{seed}.csv")
        write_table(shuffled, folder / f"synthetic_shuffled_{seed}.parquet")
    return folder


def _stage3(folder, source, name, *extra):
    out = folder / name
    out.mkdir()
    code = cli.classification_main(
        [
            "--input",
            str(folder / source),
            "--output",
            str(out / "detections.csv"),
            "--model-output",
            str(out / "classifier.json"),
            "--outliers-output",
            str(out / "outliers.csv"),
            "-q",
            *extra,
        ]
    )
    assert code == 0
    return out


@pytest.fixture(scope="module")
def in_order(stage2):
    """Stage 3 in memory on the table in its own order, once per choice."""
    runs = {}

    def run(choice):
        if choice not in runs:
            runs[choice] = _stage3(stage2, "synthetic_stage2.csv", f"in_order_{choice}", *CHOICES[choice])
        return runs[choice]

    return run


def _model_parts(folder):
    document = json.loads((folder / "classifier.json").read_text())
    return {key: document[key] for key in ("naive_bayes", "outlier_quantiles", "calibration")}


def assert_same_answers(expected, got):
    """The two runs' outputs agree row by row (see the module's docstring for how closely)."""
    first = read_table(expected / "detections.csv").sort_values(PROBE, ignore_index=True)
    second = read_table(got / "detections.csv").sort_values(PROBE, ignore_index=True)
    probabilities = [c for c in CLASSES if c in first.columns]
    np.testing.assert_allclose(second[probabilities], first[probabilities], rtol=0, atol=0)
    pd.testing.assert_frame_equal(
        second.drop(columns=probabilities), first.drop(columns=probabilities), check_exact=True
    )
    # The outlier table: the same rows (its order among equal measures is the input's).
    outliers = [pd.read_csv(folder / "outliers.csv") for folder in (expected, got)]  # may have no rows
    columns = list(outliers[0].columns)
    pd.testing.assert_frame_equal(
        *(table.sort_values(columns, ignore_index=True) for table in outliers), check_exact=True
    )
    assert _model_parts(got) == _model_parts(expected)


@pytest.mark.parametrize("choice", sorted(CHOICES))
def test_stage3_in_memory_answers_do_not_depend_on_the_row_order(stage2, in_order, choice):
    expected = in_order(choice)
    for seed in SHUFFLES:
        got = _stage3(stage2, f"synthetic_shuffled_{seed}.csv", f"memory_{seed}_{choice}", *CHOICES[choice])
        assert_same_answers(expected, got)


@pytest.mark.parametrize("choice", sorted(CHOICES))
def test_streamed_stage3_answers_do_not_depend_on_the_row_order(stage2, in_order, choice):
    got = _stage3(
        stage2,
        "synthetic_shuffled_1.parquet",
        f"streamed_{choice}",
        *CHOICES[choice],
        "--engine",
        "streaming",
        "--batch-rows",
        "997",
    )
    assert_same_answers(in_order(choice), got)


@pytest.mark.parametrize("choice", ["paper", "naive-bayes-calibrated"])
def test_dask_stage3_answers_do_not_depend_on_the_row_order(stage2, in_order, choice, tmp_path):
    pytest.importorskip("distributed")
    from xrayclass.engine import EngineConfig
    from xrayclass.engine.dask import classify_dataset
    from xrayclass.stages.classification import ClassificationConfig

    options = {
        "paper": {},
        "naive-bayes-calibrated": {"method": "naive-bayes", "calibrate": True},
    }[choice]
    classify_dataset(
        stage2 / "synthetic_shuffled_2.parquet",
        tmp_path / "detections.csv",
        tmp_path / "classifier.json",
        tmp_path / "outliers.csv",
        ClassificationConfig(**options),
        EngineConfig("dask", batch_rows=1_300, workers=2, processes=False),
    )
    assert_same_answers(in_order(choice), tmp_path)


# -- stage 1 --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def detections(tmp_path_factory):
    """SYNTHETIC mock detections with a probe column, and a shuffled copy as Parquet."""
    table, _ = (pd.concat(parts, ignore_index=True) for parts in zip(*generate(3_000, 23), strict=False))
    table[PROBE] = np.arange(len(table))
    folder = tmp_path_factory.mktemp("order_stage1")
    shuffled = table.iloc[np.random.default_rng(3).permutation(len(table))].reset_index(drop=True)
    write_table(shuffled, folder / "synthetic_shuffled.parquet")
    return table, folder


def assert_same_clusters(expected, got, got_model, expected_model):
    """Stage 1's clusters row by row identical, memberships within 1e-12, the mixtures identical."""
    first = expected.sort_values(PROBE, ignore_index=True)
    second = got.sort_values(PROBE, ignore_index=True)
    memberships = [c for c in first.columns if c.startswith("prob_")]
    np.testing.assert_allclose(second[memberships], first[memberships], rtol=0, atol=1e-12)
    pd.testing.assert_frame_equal(second.drop(columns=memberships), first.drop(columns=memberships), check_exact=True)
    assert got_model.to_dict()["mixture"] == expected_model.to_dict()["mixture"]


@pytest.mark.parametrize("fit_sample", [None, 900])
def test_stage1_clusters_do_not_depend_on_the_row_order(detections, fit_sample, tmp_path):
    """In memory, with every row fitted and with a subsample; streamed and on Dask, from a shuffled file."""
    from xrayclass.engine import EngineConfig
    from xrayclass.engine.clustering import cluster_file
    from xrayclass.stages.clustering import ClusteringConfig

    table, folder = detections
    expected, expected_model = cluster_detections(table, fit_sample=fit_sample)
    for seed in SHUFFLES:
        shuffled = table.iloc[np.random.default_rng(seed).permutation(len(table))].reset_index(drop=True)
        assert_same_clusters(expected, *cluster_detections(shuffled, fit_sample=fit_sample), expected_model)
    # The engines' files against the in-memory table written the same way.
    write_table(expected, tmp_path / "memory.csv")
    expected = read_table(tmp_path / "memory.csv")
    source = folder / "synthetic_shuffled.parquet"
    streamed_model, _ = cluster_file(
        source,
        tmp_path / "streamed.csv",
        tmp_path / "streamed.json",
        ClusteringConfig(6, 42, fit_sample),
        EngineConfig("streaming", batch_rows=613),
    )
    assert_same_clusters(expected, read_table(tmp_path / "streamed.csv"), expected_model, streamed_model)
    pytest.importorskip("distributed")
    from xrayclass.engine import EngineConfig
    from xrayclass.engine.dask import cluster_dataset
    from xrayclass.stages.clustering import ClusteringConfig

    dask_model, _ = cluster_dataset(
        source,
        tmp_path / "dask.csv",
        tmp_path / "dask.json",
        ClusteringConfig(6, 42, fit_sample),
        EngineConfig("dask", workers=2, processes=False),
    )
    assert_same_clusters(expected, read_table(tmp_path / "dask.csv"), expected_model, dask_model)


def test_the_yardstick_subsample_does_not_depend_on_the_row_order(stage2, monkeypatch):
    """Beyond YARDSTICK_SAMPLE references the outlier yardstick is a subsample: chosen by content too."""
    from xrayclass.stages import classification
    from xrayclass.stages.classification import ClassificationConfig, run_classification

    monkeypatch.setattr(classification, "YARDSTICK_SAMPLE", 150)
    table = read_table(stage2 / "synthetic_stage2.csv")
    shuffled = read_table(stage2 / "synthetic_shuffled_1.csv")
    # Without the outlier columns the naive Bayes weights are not tuned: the yardstick's
    # rows alone could make a difference.
    _, expected = run_classification(table, ClassificationConfig(explain=False))
    _, got = run_classification(shuffled, ClassificationConfig(explain=False))
    assert expected.census is not None and expected.census["references"] > 150
    np.testing.assert_array_equal(got.outlier_quantiles, expected.outlier_quantiles)


def test_content_order_orders_equal_hashes_by_the_tiebreak_and_keeps_identical_rows_together():
    """Rows equal in the hashed values (here: repeated) come in one order, set by the tiebreak values."""
    from xrayclass.core.sampling import content_order

    rng = np.random.default_rng(0)
    values = pd.DataFrame({"x": rng.integers(0, 3, 60).astype(float), "type": rng.choice(["AGN", "QSO"], 60)})
    sources = pd.DataFrame({"source": rng.choice(["SYNTHETIC J1", "SYNTHETIC J2", "SYNTHETIC J3"], 60)})
    both = pd.concat([values, sources], axis=1)
    expected = both.take(content_order(values, sources)).reset_index(drop=True)
    for seed in range(5):
        permutation = np.random.default_rng(seed).permutation(60)
        shuffled_values = values.take(permutation).reset_index(drop=True)
        shuffled_sources = sources.take(permutation).reset_index(drop=True)
        got = both.take(permutation).reset_index(drop=True).take(content_order(shuffled_values, shuffled_sources))
        pd.testing.assert_frame_equal(got.reset_index(drop=True), expected)
    # Without a tiebreak, the order of the hashed values is the same (the tiebreak only breaks ties).
    without = values.take(content_order(values)).reset_index(drop=True)
    pd.testing.assert_frame_equal(expected[["x", "type"]], without)
