"""Stages 1 and 2 streamed in batches (and stage 1 on Dask) write the in-memory files, byte for byte.

All tables here are SYNTHETIC (the mock catalog of xrayclass.analysis.mock).
"""

import filecmp

import pandas as pd
import pytest
from conftest import run_script, run_stage_into

from xrayclass.analysis.mock import generate
from xrayclass.io.tables import write_table


@pytest.fixture(scope="module")
def mock_files(tmp_path_factory):
    """SYNTHETIC mock detections as CSV and Parquet (Parquet in row groups of 997), and a mock SIMBAD."""
    detections, simbad = (pd.concat(parts, ignore_index=True) for parts in zip(*generate(9_000, 31), strict=False))
    folder = tmp_path_factory.mktemp("stages12")
    write_table(detections, folder / "synthetic_detections.csv")
    detections.to_parquet(folder / "synthetic_detections.parquet", index=False, row_group_size=997)
    write_table(simbad, folder / "synthetic_simbad.parquet")
    return folder


def _stage1(folder, source, name, *extra):
    outputs = [("--output", "clustered.csv"), ("--model", "model.json")]
    return run_stage_into(folder, name, "clustering.py", source, outputs, *extra)


@pytest.mark.parametrize("source", ["synthetic_detections.csv", "synthetic_detections.parquet"])
@pytest.mark.parametrize("fit_sample", ["3000", "100000"])
def test_streamed_stage1_writes_the_in_memory_files(mock_files, source, fit_sample):
    memory = _stage1(mock_files, source, f"memory_{source}_{fit_sample}", "--fit-sample", fit_sample)
    streamed = _stage1(
        mock_files,
        source,
        f"streamed_{source}_{fit_sample}",
        "--fit-sample",
        fit_sample,
        "--engine",
        "streaming",
        "--batch-rows",
        "997",
    )
    for name in ("clustered.csv", "model.json"):
        assert filecmp.cmp(memory / name, streamed / name, shallow=False), name


def test_streamed_stage1_scores_the_in_memory_chunks(mock_files, tmp_path, monkeypatch):
    # Several scoring chunks that do not line up with the batches: same bytes.
    from xrayclass.engine import EngineConfig
    from xrayclass.engine.clustering import cluster_file
    from xrayclass.io.tables import write_outputs
    from xrayclass.stages import clustering
    from xrayclass.stages.clustering import ClusteringConfig, cluster_detections

    monkeypatch.setattr(clustering, "CHUNK_ROWS", 1_500)
    source = mock_files / "synthetic_detections.parquet"
    clustered, model = cluster_detections(pd.read_parquet(source), fit_sample=3_000)
    model.training["input"] = str(source)
    write_outputs([(clustered, tmp_path / "memory.csv"), (model.to_dict(), tmp_path / "memory.json")])
    _, n_rows = cluster_file(
        source,
        tmp_path / "streamed.csv",
        tmp_path / "streamed.json",
        ClusteringConfig(6, 42, 3_000),
        EngineConfig("streaming", batch_rows=613),
    )
    assert n_rows == len(clustered)
    assert filecmp.cmp(tmp_path / "memory.csv", tmp_path / "streamed.csv", shallow=False)
    assert filecmp.cmp(tmp_path / "memory.json", tmp_path / "streamed.json", shallow=False)


def test_dask_stage1_on_a_two_worker_local_cluster_gives_the_single_process_files(mock_files, tmp_path, monkeypatch):
    pytest.importorskip("distributed")
    from xrayclass.engine import EngineConfig
    from xrayclass.engine.dask import cluster_dataset
    from xrayclass.io.tables import write_outputs
    from xrayclass.stages import clustering
    from xrayclass.stages.clustering import ClusteringConfig, cluster_detections

    monkeypatch.setattr(clustering, "CHUNK_ROWS", 1_500)  # chunks spanning several partitions
    source = mock_files / "synthetic_detections.parquet"
    clustered, model = cluster_detections(pd.read_parquet(source), fit_sample=3_000)
    model.training["input"] = str(source)
    write_outputs([(clustered, tmp_path / "memory.csv"), (model.to_dict(), tmp_path / "memory.json")])
    _, n_rows = cluster_dataset(
        source,
        tmp_path / "dask.csv",
        tmp_path / "dask.json",
        ClusteringConfig(6, 42, 3_000),
        EngineConfig("dask", workers=2, processes=False),
    )
    assert n_rows == len(clustered)
    assert filecmp.cmp(tmp_path / "memory.csv", tmp_path / "dask.csv", shallow=False)
    assert filecmp.cmp(tmp_path / "memory.json", tmp_path / "dask.json", shallow=False)


@pytest.mark.parametrize(
    "case",
    ["missing_column", "empty_file", "header_only", "blank_name", "bad_position", "repeated_row"],
)
def test_streamed_stage1_refuses_bad_inputs_as_in_memory(mock_files, tmp_path, case):
    detections = pd.read_csv(mock_files / "synthetic_detections.csv", nrows=3_000)
    path = tmp_path / "synthetic_bad.csv"
    if case == "missing_column":
        write_table(detections.drop(columns=["hard_hs"]), path)
    elif case == "empty_file":
        path.write_text("")
    elif case == "header_only":
        write_table(detections.iloc[:0], path)
    elif case == "blank_name":
        detections.loc[[1700, 2900], "name"] = " "
        write_table(detections, path)
    elif case == "bad_position":
        detections.loc[[2100, 2200], "dec"] = 95.0
        write_table(detections, path)
    else:
        detections = pd.concat([detections, detections.iloc[[5, 2500]]], ignore_index=True)
        write_table(detections, path)
    results = {}
    for engine in ("memory", "streaming"):
        out = tmp_path / engine
        out.mkdir()
        result = run_script(
            "clustering.py",
            "--input",
            path,
            "--output",
            out / "clustered.csv",
            "--model",
            out / "model.json",
            "--engine",
            engine,
            "--batch-rows",
            "500",
        )
        assert result.returncode == 2, result.stderr
        assert not list(out.iterdir())  # nothing written
        results[engine] = result.stderr.strip().splitlines()[-1]
    assert results["streaming"] == results["memory"]
    assert str(path) in results["memory"]


@pytest.fixture(scope="module")
def stage1_files(mock_files):
    """The SYNTHETIC stage-1 table (in memory) as CSV and Parquet, and its model."""
    out = _stage1(mock_files, "synthetic_detections.parquet", "stage1_for_stage2", "--fit-sample", "3000")
    write_table(pd.read_csv(out / "clustered.csv"), out / "clustered.parquet")
    return out


def _stage2(stage1_files, mock_files, source, name, *extra):
    out = stage1_files / name
    out.mkdir(exist_ok=True)
    return out, run_script(
        "crossmatch.py",
        "--input",
        stage1_files / source,
        "--catalog",
        mock_files / "synthetic_simbad.parquet",
        "--model",
        stage1_files / "model.json",
        "--output",
        out / "crossmatched.csv",
        *extra,
    )


@pytest.mark.parametrize("source", ["clustered.csv", "clustered.parquet"])
def test_streamed_stage2_writes_the_in_memory_file(stage1_files, mock_files, source):
    memory, result = _stage2(stage1_files, mock_files, source, f"memory_{source}")
    assert result.returncode == 0, result.stderr
    streamed, result = _stage2(
        stage1_files, mock_files, source, f"streamed_{source}", "--engine", "streaming", "--batch-rows", "613"
    )
    assert result.returncode == 0, result.stderr
    assert "distinct positions have an object" in result.stderr
    assert filecmp.cmp(memory / "crossmatched.csv", streamed / "crossmatched.csv", shallow=False)


@pytest.mark.parametrize("mode", [(), ("--online",)])
def test_streamed_stage2_refuses_frozen_and_online(stage1_files, tmp_path, mode):
    result = run_script(
        "crossmatch.py",
        "--input",
        stage1_files / "clustered.csv",
        *mode,
        "--output",
        tmp_path / "out.csv",
        "--engine",
        "streaming",
    )
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .endswith("not available with --engine streaming yet; use --engine memory")
    )
    assert not (tmp_path / "out.csv").exists()


@pytest.mark.parametrize("case", ["missing_column", "bad_position"])
def test_streamed_stage2_refuses_bad_inputs_as_in_memory(stage1_files, mock_files, tmp_path, case):
    table = pd.read_csv(stage1_files / "clustered.csv", nrows=2_000)
    if case == "missing_column":
        table = table.drop(columns=["dec"])
    else:
        table.loc[[1500, 1900], "ra"] = float("nan")
    path = tmp_path / "synthetic_bad_stage1.csv"
    write_table(table, path)
    lines = {}
    for engine in ("memory", "streaming"):
        result = run_script(
            "crossmatch.py",
            "--input",
            path,
            "--catalog",
            mock_files / "synthetic_simbad.parquet",
            "--model",
            stage1_files / "model.json",
            "--output",
            tmp_path / f"{engine}.csv",
            "--engine",
            engine,
            "--batch-rows",
            "500",
        )
        assert result.returncode == 2, result.stderr
        assert not (tmp_path / f"{engine}.csv").exists()
        lines[engine] = result.stderr.strip().splitlines()[-1]
    assert lines["streaming"] == lines["memory"]
