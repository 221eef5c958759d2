"""The engines' contract: the in-memory stage's classes, and its probabilities within 1e-12.

On a SYNTHETIC mock of 100,000 detections: stage 1 (in memory, streamed, Dask), stage 3
(in memory, streamed, Dask) and stage 4 (in memory, streamed, Dask), Dask on a
LocalCluster of two worker processes. The files need not be byte-identical; the science
must be the same.
"""

import numpy as np
import pandas as pd
import pytest

from xrayclass.analysis.mock import generate
from xrayclass.constants import CLASSES
from xrayclass.engine import EngineConfig
from xrayclass.io.tables import read_table, write_table
from xrayclass.stages.classification import ClassificationConfig, run_classification
from xrayclass.stages.clustering import ClusteringConfig, probability_columns, run_clustering
from xrayclass.stages.crossmatch import crossmatch_local
from xrayclass.stages.master_classification import MasterClassificationConfig, master_classification

pytestmark = pytest.mark.slow

N_DETECTIONS = 100_000
BATCH_ROWS = 20_000
TOLERANCE = 1e-12


@pytest.fixture(scope="module")
def cluster():
    """A LocalCluster of two worker processes, shared by the Dask runs; its address."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as local:
        yield local.scheduler_address


@pytest.fixture(scope="module")
def mock(tmp_path_factory):
    detections, simbad = (
        pd.concat(parts, ignore_index=True) for parts in zip(*generate(N_DETECTIONS, 23), strict=False)
    )
    # Rows out of order: the engines must sort stage 3's output as memory does.
    detections = detections.sample(frac=1.0, random_state=2).reset_index(drop=True)
    folder = tmp_path_factory.mktemp("engines")
    write_table(detections, folder / "detections.parquet")
    return folder, detections, simbad


def _engine(kind, cluster):
    return EngineConfig(kind, batch_rows=BATCH_ROWS, scheduler=cluster if kind == "dask" else None)


def _same_science(expected, got, probabilities, classes):
    """Same rows (name, obsid), same classes, probabilities within TOLERANCE."""
    assert len(got) == len(expected)
    for column in ("name", "obsid", *classes):
        np.testing.assert_array_equal(got[column].to_numpy(), expected[column].to_numpy(), err_msg=column)
    np.testing.assert_allclose(
        got[probabilities].to_numpy(dtype="float64"),
        expected[probabilities].to_numpy(dtype="float64"),
        rtol=0,
        atol=TOLERANCE,
    )


def test_stage1_engines_give_the_in_memory_clusters(mock, cluster, tmp_path):
    from xrayclass.engine.clustering import cluster_file
    from xrayclass.engine.dask import cluster_dataset

    folder, detections, _ = mock
    config = ClusteringConfig(fit_sample=20_000)
    expected, _ = run_clustering(detections, config)
    streamed = tmp_path / "streamed.parquet"
    cluster_file(folder / "detections.parquet", streamed, tmp_path / "s.json", config, _engine("streaming", cluster))
    cluster_dataset(
        folder / "detections.parquet", tmp_path / "dask.parquet", tmp_path / "d.json", config, _engine("dask", cluster)
    )
    for path in (streamed, tmp_path / "dask.parquet"):
        _same_science(expected, read_table(path), probability_columns(config.n_components), ["cluster"])


@pytest.fixture(scope="module")
def stage2(mock):
    folder, detections, simbad = mock
    clustered, _ = run_clustering(detections, ClusteringConfig(fit_sample=20_000))
    crossmatched = crossmatch_local(clustered, simbad, 1.0)
    write_table(crossmatched, folder / "stage2.parquet")
    return folder / "stage2.parquet", crossmatched


@pytest.mark.parametrize(
    "config", [ClassificationConfig(), ClassificationConfig(method="naive-bayes", likelihood="gaussian")], ids=str
)
def test_stage3_and_4_engines_give_the_in_memory_classes(stage2, cluster, tmp_path, config):
    from xrayclass.engine.dask import classify_dataset, master_classification_dataset
    from xrayclass.engine.streaming import classify_file
    from xrayclass.engine.voting import master_classification_file

    path, crossmatched = stage2
    expected, _ = run_classification(crossmatched, config)
    uniquely, ambiguous, summary = master_classification(expected)
    for kind, classify in (("streaming", classify_file), ("dask", classify_dataset)):
        out = tmp_path / kind
        out.mkdir()
        classify(path, out / "d.parquet", out / "c.json", out / "o.csv", config, _engine(kind, cluster))
        got = read_table(out / "d.parquet")
        _same_science(expected, got, list(CLASSES), ["main_type"])
        # Stage 4 on the engine's own stage-3 output.
        if kind == "streaming":
            spilled, spilled_ambiguous, got_summary = master_classification_file(
                out / "d.parquet", MasterClassificationConfig(), _engine(kind, cluster)
            )
            with spilled, spilled_ambiguous:
                got_uniquely = pd.concat(list(spilled.batches()), ignore_index=True)
                got_ambiguous = pd.concat(list(spilled_ambiguous.batches()), ignore_index=True)
        else:
            got_uniquely, got_ambiguous, got_summary = master_classification_dataset(
                out / "d.parquet", MasterClassificationConfig(), _engine(kind, cluster)
            )
        pd.testing.assert_frame_equal(got_uniquely, uniquely)
        pd.testing.assert_frame_equal(got_ambiguous, ambiguous)
        assert got_summary == summary
