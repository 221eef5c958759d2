import json

import numpy as np
import pandas as pd
import pytest
from conftest import synthetic_detections

from xrayclass.constants import FEATURES
from xrayclass.core.mixture import fit_mixture, mixture_from_dict, mixture_to_dict
from xrayclass.io.artifacts import read_clustering_model
from xrayclass.io.tables import InputError
from xrayclass.stages.clustering import cluster_detections, probability_columns


def test_mixture_json_round_trip_predicts_identically():
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(m, 0.1, size=(100, 3)) for m in (0, 1, 2)])
    mixture = fit_mixture(X, n_components=3, random_state=1)
    document = json.loads(json.dumps(mixture_to_dict(mixture)))
    again = mixture_from_dict(document)
    np.testing.assert_array_equal(again.predict_proba(X), mixture.predict_proba(X))
    np.testing.assert_array_equal(again.predict(X), mixture.predict(X))


def test_cluster_detections_keeps_columns_and_drops_incomplete_rows(caplog):
    detections = synthetic_detections(300, seed=1)
    detections.loc[[3, 10], "powlaw_gamma"] = np.nan
    detections["extra"] = "kept"
    caplog.set_level("INFO")
    clustered, _model = cluster_detections(detections, n_components=3, random_state=0)
    assert len(clustered) == 298
    assert "dropped 2 of 300" in caplog.text and "powlaw_gamma missing in 2" in caplog.text
    assert {"extra", "var_ratio_b", "var_newq_b", "cluster", *probability_columns(3)} <= set(clustered.columns)
    np.testing.assert_allclose(clustered[probability_columns(3)].sum(axis=1), 1.0)
    assert (clustered["cluster"].to_numpy() == clustered[probability_columns(3)].to_numpy().argmax(axis=1)).all()


def test_model_artifact_places_detections_in_the_same_clusters(tmp_path):
    detections = synthetic_detections(300, seed=2)
    clustered, model = cluster_detections(detections, n_components=4, random_state=0)
    path = tmp_path / "model.json"
    path.write_text(json.dumps(model.to_dict()))
    loaded = read_clustering_model(path)
    clusters, probabilities = loaded.assign(clustered)
    np.testing.assert_array_equal(clusters, clustered["cluster"])
    np.testing.assert_array_equal(probabilities, clustered[probability_columns(4)].to_numpy())
    document = json.loads(path.read_text())
    assert document["format_version"] == 1 and document["features"] == list(FEATURES)
    assert set(document["preprocessing"]["log_shift"]) == {
        "bb_kt",
        "var_ratio_h",
        "var_ratio_b",
        "var_ratio_s",
        "var_newq_b",
    }


def test_same_seed_same_clusters_other_seed_may_differ():
    detections = synthetic_detections(300, seed=3)
    first, _ = cluster_detections(detections, n_components=4, random_state=7)
    second, _ = cluster_detections(detections, n_components=4, random_state=7)
    pd.testing.assert_frame_equal(first, second)


def test_existing_cluster_columns_are_replaced_with_a_warning(caplog):
    detections = synthetic_detections(200, seed=4).assign(cluster=99, prob_0=-1.0)
    clustered, _ = cluster_detections(detections, n_components=2, random_state=0)
    assert "already has cluster, prob_0" in caplog.text
    assert set(clustered["cluster"]) <= {0, 1}


def test_too_few_complete_rows_is_an_input_error():
    detections = synthetic_detections(10, seed=5)
    detections.loc[2:, "bb_kt"] = np.nan
    with pytest.raises(InputError, match=r"^only 2 detections have all 12 features"):
        cluster_detections(detections, n_components=6)


def test_model_of_another_format_is_refused(tmp_path):
    path = tmp_path / "model.json"
    path.write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(InputError, match="not a clustering model"):
        read_clustering_model(path)


def test_log_floor_option_is_written_to_model_json(tmp_path):
    from xrayclass.cli import stages as cli

    path = tmp_path / "detections.csv"
    synthetic_detections(300, seed=3).to_csv(path, index=False)
    model_path = tmp_path / "model.json"
    assert (
        cli.clustering_main(
            [
                "--input",
                str(path),
                "--output",
                str(tmp_path / "c.csv"),
                "--model",
                str(model_path),
                "--n-components",
                "3",
                "--log-floor",
                "0.001",
                "-q",
            ]
        )
        == 0
    )
    preprocessing = json.loads(model_path.read_text())["preprocessing"]
    assert preprocessing["log_floor"] == 0.001
    assert all(shift >= 0.001 for shift in preprocessing["log_shift"].values())
    loaded = read_clustering_model(model_path)
    assert loaded.scaler.log_floor == 0.001
