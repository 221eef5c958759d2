"""Stages 3 and 4 streamed in batches write the in-memory results, byte for byte (SYNTHETIC mock data)."""

import filecmp
import json

import numpy as np
import pandas as pd
import pytest
from conftest import run_script, run_stage_into

from xrayclass.analysis.mock import generate
from xrayclass.core.featuresets import builtin
from xrayclass.io.streaming import ExternalSort, iter_batches, name_boundaries
from xrayclass.io.tables import read_table, write_table
from xrayclass.stages.clustering import cluster_detections
from xrayclass.stages.crossmatch import crossmatch_local


@pytest.fixture(scope="module")
def stage2_files(tmp_path_factory):
    """A SYNTHETIC stage-2 table, as CSV (shuffled rows: the stream must sort) and Parquet."""
    detections, simbad = (pd.concat(parts, ignore_index=True) for parts in zip(*generate(9_000, 31), strict=False))
    stage1, _ = cluster_detections(detections)
    stage2 = crossmatch_local(stage1, simbad, 1.0)
    stage2 = stage2.sample(frac=1.0, random_state=4).reset_index(drop=True)
    folder = tmp_path_factory.mktemp("stage2")
    write_table(stage2, folder / "synthetic_stage2.csv")
    write_table(stage2, folder / "synthetic_stage2.parquet")
    return folder


def _stage3(folder, source, name, *extra):
    outputs = [
        ("--output", "detections.csv"),
        ("--model-output", "classifier.json"),
        ("--outliers-output", "outliers.csv"),
    ]
    # cwd: no stage-1 model at the default path, so --features is not checked against one.
    return run_stage_into(folder, name, "classification.py", source, outputs, *extra, cwd=folder)


def _same_files(expected, got):
    for name in ("detections.csv", "outliers.csv", "classifier.json"):
        assert filecmp.cmp(expected / name, got / name, shallow=False), name


@pytest.mark.parametrize("source", ["synthetic_stage2.csv", "synthetic_stage2.parquet"])
def test_streamed_stage3_writes_the_in_memory_files(stage2_files, source):
    memory = _stage3(stage2_files, source, f"memory_{source}")
    streamed = _stage3(stage2_files, source, f"streamed_{source}", "--engine", "streaming", "--batch-rows", "997")
    for name in ("detections.csv", "outliers.csv", "classifier.json"):
        assert filecmp.cmp(memory / name, streamed / name, shallow=False), name


#: Stage-3 choices beyond the paper's method (issue 13), each honoured by the streamed run.
BEYOND_THE_PAPER = {
    "features": ("--features", builtin("no_var_newq_b")),
    "gaussian": ("--likelihood", "gaussian"),
    "priors": ("--priors", "references"),
    "calibrate": ("--calibrate",),
    "naive_bayes": ("--method", "naive-bayes"),
    "log_floor": ("--log-floor", "1e-3"),
}


@pytest.fixture(scope="module")
def paper_method(stage2_files):
    """Stage 3 in memory with the paper's method, to see that each choice changes something."""
    return _stage3(stage2_files, "synthetic_stage2.parquet", "memory_paper_method")


@pytest.mark.slow
@pytest.mark.parametrize("choice", sorted(BEYOND_THE_PAPER))
def test_streamed_stage3_honours_each_choice_beyond_the_paper(stage2_files, paper_method, choice):
    extra = BEYOND_THE_PAPER[choice]
    memory = _stage3(stage2_files, "synthetic_stage2.parquet", f"memory_{choice}", *extra)
    streamed = _stage3(
        stage2_files,
        "synthetic_stage2.parquet",
        f"streamed_{choice}",
        *extra,
        "--engine",
        "streaming",
        "--batch-rows",
        "997",
    )
    _same_files(memory, streamed)
    # The choice took effect: the classifier differs from the paper's method's.
    assert not filecmp.cmp(paper_method / "classifier.json", streamed / "classifier.json", shallow=False)


def test_streamed_stage3_honours_the_choices_beyond_the_paper_together(stage2_files):
    # One run of every choice at once (the parametrized test above takes them one by one).
    extra = (*BEYOND_THE_PAPER["features"], "--likelihood", "gaussian", "--priors", "references", "--calibrate")
    memory = _stage3(stage2_files, "synthetic_stage2.csv", "memory_together", *extra)
    streamed = _stage3(
        stage2_files,
        "synthetic_stage2.csv",
        "streamed_together",
        *extra,
        "--engine",
        "streaming",
        "--batch-rows",
        "1201",
    )
    _same_files(memory, streamed)
    model = json.loads((streamed / "classifier.json").read_text())
    assert "var_newq_b" not in model["features"]
    assert model["calibration"]["for_method"] == "mahalanobis"
    assert (model["references"]["likelihood"], model["references"]["priors"]) == ("gaussian", "references")


@pytest.mark.parametrize("option", [("--labels", "labels.csv"), ("--allow-duplicates",)])
def test_what_needs_the_whole_table_still_refuses_to_stream(stage2_files, option):
    (stage2_files / "labels.csv").write_text("name,class,comment,labeler,time\n")
    result = run_script(
        "classification.py",
        "--input",
        stage2_files / "synthetic_stage2.parquet",
        "--output",
        stage2_files / "refused.csv",
        "--engine",
        "streaming",
        *option,
        cwd=stage2_files,
    )
    assert result.returncode == 2
    message = result.stderr.strip().splitlines()
    assert len(message) == 1 and option[0] in message[0] and "--engine memory" in message[0], result.stderr
    assert not (stage2_files / "refused.csv").exists()


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_streamed_stage4_writes_the_in_memory_tables(stage2_files, fmt, tmp_path):
    stage3 = _stage3(stage2_files, "synthetic_stage2.parquet", "for_stage4")
    outputs = {}
    for engine in ("memory", "streaming"):
        out = stage2_files / f"stage4_{engine}_{fmt}"
        result = run_script(
            "master_classification.py",
            "--input",
            stage3 / "detections.csv",
            "--out-dir",
            out,
            "--engine",
            engine,
            "--batch-rows",
            "500",
            "--format",
            fmt,
            env={"TMPDIR": str(tmp_path)},  # where the streamed tables wait on disk
        )
        assert result.returncode == 0, result.stderr
        outputs[engine] = (out, result.stdout)
    assert outputs["memory"][1] == outputs["streaming"][1]  # the printed summary
    for name in (f"uniquely_classified.{fmt}", f"ambiguous_classification.{fmt}", "master_summary.json"):
        assert filecmp.cmp(outputs["memory"][0] / name, outputs["streaming"][0] / name, shallow=False), name
    assert list(tmp_path.iterdir()) == [], "the spilled tables are removed"


@pytest.mark.parametrize("buffer_rows", [1_000, 1_000_000])  # several flushes to disk; none
def test_spill_by_key_gives_the_rows_as_a_stable_sort_would(tmp_path, buffer_rows):
    from xrayclass.io.streaming import SpillByKey

    rng = np.random.default_rng(1)
    names = np.array([f"J{k:04d}" for k in range(3_000)])  # in name order, as stage 4's parts come
    frame = pd.DataFrame(
        {"name": names, "detection_count": rng.integers(1, 8, len(names)), "p": rng.random(len(names))}
    )
    with SpillByKey("detection_count", tmp_path, buffer_rows=buffer_rows) as spill:
        for start in range(0, len(frame), 701):
            spill.add(frame.iloc[start : start + 701])
        assert len(spill) == len(frame)
        got = pd.concat(list(spill.batches()), ignore_index=True)
        pd.testing.assert_frame_equal(spill.empty(), frame.iloc[:0])
    expected = frame.sort_values(["detection_count", "name"], ascending=[False, True], kind="stable")
    pd.testing.assert_frame_equal(got, expected.reset_index(drop=True))
    assert list(tmp_path.iterdir()) == []


def test_external_sort_equals_a_stable_sort(tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "name": rng.choice([f"J{k:03d}" for k in range(60)], 5_000),
            "obsid": rng.integers(0, 4, 5_000),
            "value": np.arange(5_000),
        }
    )
    with ExternalSort(name_boundaries(frame["name"][::7], 6), tmp_path) as sorter:
        for start in range(0, len(frame), 701):
            sorter.add(frame.iloc[start : start + 701])
        streamed = pd.concat(list(sorter.sorted_batches()), ignore_index=True)
    expected = frame.sort_values(["name", "obsid"], kind="stable").reset_index(drop=True)
    pd.testing.assert_frame_equal(streamed, expected)


def test_batches_have_the_whole_files_column_types(tmp_path):
    # An integer column with a gap only in the last batch, and a text column that
    # looks numeric in the first batch: each batch gets the whole file's types.
    frame = pd.DataFrame({"n": [1.0] * 10 + [np.nan], "t": ["1"] * 10 + ["x"]})
    for suffix in ("csv", "parquet"):
        path = tmp_path / f"t.{suffix}"
        frame.to_csv(path, index=False) if suffix == "csv" else frame.astype({"n": "Int64"}).to_parquet(
            path, index=False
        )
        whole = read_table(path)
        for batch in iter_batches(path, batch_rows=4):
            assert list(batch.dtypes) == list(whole.dtypes), suffix
    # Parquet written without pandas metadata (e.g. by Arrow or Spark): an integer column
    # with a null reads as float, in every batch.
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "arrow.parquet"
    pq.write_table(pa.table({"n": pa.array([1] * 10 + [None], pa.int64())}), path)
    whole = read_table(path)
    for batch in iter_batches(path, batch_rows=4):
        assert list(batch.dtypes) == list(whole.dtypes)


def _classify_on_dask(source, out, **options):
    """Stage 3 on a local two-worker Dask cluster (threads), the three files written in ``out``."""
    from xrayclass.engine import EngineConfig
    from xrayclass.engine.dask import classify_dataset
    from xrayclass.stages.classification import ClassificationConfig

    return classify_dataset(
        source,
        out / "detections.csv",
        out / "classifier.json",
        out / "outliers.csv",
        ClassificationConfig(**options),
        EngineConfig("dask", batch_rows=1_500, workers=2, processes=False),
    )


def test_dask_on_a_two_worker_local_cluster_gives_the_single_process_results(stage2_files, tmp_path, caplog):
    pytest.importorskip("distributed")
    import re

    from xrayclass.engine import EngineConfig
    from xrayclass.engine.dask import master_classification_dataset
    from xrayclass.stages.master_classification import master_classification

    memory = _stage3(stage2_files, "synthetic_stage2.parquet", "memory_for_dask")
    with caplog.at_level("INFO", logger="xrayclass.engine.dask"):
        _classify_on_dask(stage2_files / "synthetic_stage2.parquet", tmp_path)
    _same_files(memory, tmp_path)
    # The workers' own peak memory is logged (what a cluster's jobs must be given).
    peaks = re.findall(r"Dask workers' peak memory \(this stage\): largest ([\d,]+) MB of (\d+) workers", caplog.text)
    assert peaks and float(peaks[-1][0].replace(",", "")) > 50 and peaks[-1][1] == "2"
    # Stage 4: partitions shuffled by source name, votes combined.
    write_table(read_table(memory / "detections.csv"), tmp_path / "detections.parquet")
    expected = master_classification(read_table(memory / "detections.csv"))
    got = master_classification_dataset(
        tmp_path / "detections.parquet", engine=EngineConfig("dask", workers=2, processes=False)
    )
    pd.testing.assert_frame_equal(got[0], expected[0])
    pd.testing.assert_frame_equal(got[1], expected[1])
    assert got[2] == expected[2]


def test_dask_honours_the_choices_beyond_the_paper(stage2_files, tmp_path):
    pytest.importorskip("distributed")
    from xrayclass.io.artifacts import read_feature_set

    extra = (
        *BEYOND_THE_PAPER["features"],
        "--likelihood",
        "gaussian",
        "--priors",
        "references",
        "--calibrate",
        "--method",
        "naive-bayes",
        "--log-floor",
        "1e-3",
    )
    memory = _stage3(stage2_files, "synthetic_stage2.parquet", "memory_for_dask_choices", *extra)
    _classify_on_dask(
        stage2_files / "synthetic_stage2.parquet",
        tmp_path,
        feature_set=read_feature_set(builtin("no_var_newq_b")),
        likelihood="gaussian",
        priors="references",
        calibrate=True,
        method="naive-bayes",
        log_floor=1e-3,
    )
    _same_files(memory, tmp_path)
