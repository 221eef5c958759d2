"""model.json describes the clusters stage 3 used (issue 9).

With the frozen crossmatch's clusters (the default), stage 2 replaces the stage-1
mixture in model.json by one estimated from the frozen clusters, measures how often it
reproduces them and stores that; classify_source.py prints it. The end-to-end tests run
on the real 1,615-detection sample of the shared reference directory (its clusters come
from an earlier run, not this one); the unit tests use SYNTHETIC blobs.
"""

import json

import numpy as np
import pandas as pd
import pytest
from conftest import classify_stage3, reference_path
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.mixture import GaussianMixture

from xrayclass.cli import stages as cli
from xrayclass.constants import FEATURES
from xrayclass.core.mixture import (
    ClusteringModel,
    compare_mixtures,
    mixture_from_dict,
    mixture_from_memberships,
    mixture_to_dict,
)
from xrayclass.io import paths
from xrayclass.io.artifacts import read_clustering_model
from xrayclass.stages.clustering import PUBLISHED_CAVEAT, compare_with_published
from xrayclass.workflow import crossmatch as workflow_crossmatch

PROBABILITIES = [f"prob_{k}" for k in range(6)]


# -- the estimate -----------------------------------------------------------------------------------


def synthetic_blobs(seed=3, n=600):
    """SYNTHETIC: three overlapping Gaussian blobs in 4 dimensions."""
    rng = np.random.default_rng(seed)
    centers = rng.uniform(0, 1, size=(3, 4))
    return np.vstack([c + 0.15 * rng.standard_normal((n, 4)) for c in centers])


def test_estimate_is_the_m_step_of_scikit_learn():
    from sklearn.mixture._gaussian_mixture import _compute_precision_cholesky, _estimate_gaussian_parameters

    X = synthetic_blobs()
    fitted = GaussianMixture(3, random_state=0).fit(X)
    memberships = fitted.predict_proba(X)
    estimated = mixture_from_memberships(X, memberships, reg_covar=1e-6, chunk_rows=250)
    weights, means, covariances = _estimate_gaussian_parameters(X, memberships, 1e-6, "full")
    assert_allclose(estimated.weights_, weights / len(X), rtol=1e-12)
    assert_allclose(estimated.means_, means, rtol=1e-10, atol=1e-13)
    assert_allclose(estimated.covariances_, covariances, rtol=1e-9, atol=1e-14)
    assert_allclose(estimated.precisions_cholesky_, _compute_precision_cholesky(covariances, "full"), rtol=1e-8)
    # A converged fit is (nearly) a fixed point: its own memberships give it back.
    assert_allclose(estimated.means_, fitted.means_, atol=1e-3)
    assert (estimated.predict(X) == fitted.predict(X)).mean() >= 0.999


def test_hard_assignments_and_an_empty_component():
    X = synthetic_blobs()
    labels = np.repeat([0, 1, 2], len(X) // 3)
    hard = np.eye(3)[labels]
    estimated = mixture_from_memberships(X, hard)
    assert_allclose(estimated.means_[1], X[labels == 1].mean(axis=0), rtol=1e-12)
    assert_allclose(estimated.covariances_[2], np.cov(X[labels == 2].T, ddof=0) + 1e-6 * np.eye(4), rtol=1e-10)
    assert_allclose(estimated.weights_, [1 / 3] * 3)
    with pytest.raises(ValueError, match=r"component\(s\) 2 have no detection"):
        mixture_from_memberships(X, np.eye(3)[np.minimum(labels, 1)])


def test_estimated_mixture_survives_json():
    X = synthetic_blobs()
    estimated = mixture_from_memberships(X, GaussianMixture(3, random_state=1).fit(X).predict_proba(X))
    again = mixture_from_dict(json.loads(json.dumps(mixture_to_dict(estimated))))
    assert_array_equal(again.predict_proba(X), estimated.predict_proba(X))


def test_comparison_pairs_components_whatever_their_numbers(reference_dir):
    published = json.loads(reference_path(reference_dir, "paper_gmm.json").read_text())
    order = [3, 0, 5, 1, 4, 2]
    permuted = mixture_from_dict(
        {
            "n_components": 6,
            "weights": np.asarray(published["weights"])[order],
            "means": np.asarray(published["means"])[order],
            "covariances": np.asarray(published["covariances"])[order],
            "precisions_cholesky": np.asarray(published["precisions_cholesky"])[order],
        }
    )
    comparison = compare_mixtures(permuted, published)
    assert comparison["pairing"] == dict(enumerate(order))
    assert comparison["max_mean_distance"] == 0 and comparison["max_weight_difference"] == 0
    assert comparison["median_separation"] > 0.1


# -- stages 1-4 on the real sample, then classify_source --------------------------------------------


@pytest.fixture(scope="module")
def frozen_run(sample_csc_csv, crossmatch_sample, tmp_path_factory, run_stages):
    """The real sample, with its own earlier run's clusters as the frozen ones (the default)."""
    return run_stages(tmp_path_factory.mktemp("frozen"), csc=sample_csc_csv, frozen=crossmatch_sample)


@pytest.mark.slow
def test_model_describes_the_frozen_clusters_stage3_used(frozen_run, crossmatch_sample, capsys):
    document = json.loads((frozen_run / "model.json").read_text())
    provenance = document["clusters"]
    assert provenance["source"] == "frozen" and provenance["file"] == str(crossmatch_sample)
    assert provenance["estimated_from"] == "membership probabilities"
    # The stored agreement is what the stored mixture gives on the stage-2 table.
    model = ClusteringModel.from_dict(document)
    stage2 = pd.read_csv(frozen_run / "s2.csv")
    clusters, _ = model.assign(stage2)
    assert provenance["agreement"] == pytest.approx((clusters == stage2["cluster"]).mean(), abs=1e-15)
    assert provenance["n_detections"] == 1615
    # The stage-1 fit is kept, and still gives the stage-1 table's clusters.
    stage1 = pd.read_csv(frozen_run / "s1.csv")
    kept, _ = ClusteringModel(model.scaler, model.stage1_mixture).assign(stage1)
    assert_array_equal(kept, stage1["cluster"])

    stage3, again, printed = classify_stage3(frozen_run, capsys)
    assert again["cluster"].notna().all()
    expected = f"they reproduce stage 3's clusters for {100 * provenance['agreement']:.1f}% of its 1,615 training"
    assert "clusters: estimated from the frozen crossmatch's assignments" in printed and expected in printed
    # classify_source places each detection with the stored mixture: the model stage 3's clusters came from.
    stage3_rows = stage3.merge(stage2[["name", "obsid", *FEATURES]], on=["name", "obsid"], suffixes=("", "_2"))
    assert_array_equal(again["cluster"], model.assign(stage3_rows)[0])
    same_cluster = (again["cluster"] == stage3["cluster"]).mean()
    same_class = (again["main_type"] == stage3["main_type"]).mean()
    print(
        f"real sample, earlier run's clusters: training agreement {provenance['agreement']:.4f}; "
        f"stage-3 detections: same cluster {same_cluster:.4f}, same class {same_class:.4f}"
    )
    # Far better than the stage-1 mixture (about 15% and 42%, README); not exact.
    assert same_cluster > 0.5 and same_class > 0.7


@pytest.mark.slow
def test_own_clusters_as_frozen_reproduce_stage3(
    frozen_run, sample_csc_csv, crossmatch_sample, tmp_path, capsys, run_stages
):
    # The frozen file carries this run's own stage-1 clusters and probabilities.
    stage1 = pd.read_csv(frozen_run / "s1.csv")
    own = pd.read_csv(crossmatch_sample).assign(**{c: stage1[c] for c in ["cluster", *PROBABILITIES]})
    own.to_csv(tmp_path / "own_frozen.csv", index=False)
    (tmp_path / "own").mkdir()
    out = run_stages(tmp_path / "own", csc=sample_csc_csv, frozen=tmp_path / "own_frozen.csv")
    provenance = json.loads((out / "model.json").read_text())["clusters"]
    # One M-step from the fit's memberships is not the fit: a few boundary detections may
    # move (3 of 1,615 on this sample).
    assert provenance["source"] == "frozen" and provenance["agreement"] >= 0.995
    stage3, again, printed = classify_stage3(out, capsys)
    assert (again["cluster"] == stage3["cluster"]).mean() >= 0.999
    assert (again["main_type"] == stage3["main_type"]).mean() >= 0.999
    assert f"for {100 * provenance['agreement']:.1f}% of its 1,615" in printed


@pytest.mark.slow
def test_our_clusters_restore_the_stage1_fit_and_reproduce_stage3_exactly(
    frozen_run, crossmatch_sample, tmp_path, capsys, run_stages
):
    out = tmp_path
    for name in ("s1.csv", "model.json"):
        (out / name).write_bytes((frozen_run / name).read_bytes())  # model.json: the frozen estimate
    run_stages(out, frozen=crossmatch_sample, stages=(2, 3), crossmatch_args=("--clusters", "ours"))
    document = json.loads((out / "model.json").read_text())
    assert document["clusters"] == {"source": "stage 1"} and "stage1_mixture" not in document
    stage3, again, printed = classify_stage3(out, capsys)
    assert_array_equal(again["cluster"], stage3["cluster"])
    assert_array_equal(again["main_type"], stage3["main_type"])
    assert "clusters: estimated" not in printed


@pytest.mark.slow
def test_rerunning_stage2_does_not_stack_estimates(frozen_run, crossmatch_sample, tmp_path, run_stages):
    for name in ("s1.csv", "model.json"):
        (tmp_path / name).write_bytes((frozen_run / name).read_bytes())
    run_stages(tmp_path, frozen=crossmatch_sample, stages=(2,))
    assert (tmp_path / "model.json").read_bytes() == (frozen_run / "model.json").read_bytes()


@pytest.mark.slow
def test_a_model_of_another_table(frozen_run, crossmatch_sample, tmp_path, capsys, monkeypatch):
    # The stage-1 table of the first 1,000 rows, with the frozen file cut to match.
    pd.read_csv(frozen_run / "s1.csv").iloc[:1000].to_csv(tmp_path / "s1.csv", index=False)
    pd.read_csv(crossmatch_sample).iloc[:1000].to_csv(tmp_path / "frozen.csv", index=False)
    other = tmp_path / "other_model.json"
    other.write_bytes((frozen_run / "model.json").read_bytes())
    args = [
        "--input",
        str(tmp_path / "s1.csv"),
        "--frozen",
        str(tmp_path / "frozen.csv"),
        "--output",
        str(tmp_path / "s2.csv"),
    ]
    # Given with --model: an error, nothing written, the model untouched.
    assert cli.crossmatch_main([*args, "--model", str(other)]) == 2
    assert "was fitted on 1,615 detections but the stage-1 table" in capsys.readouterr().err
    assert not (tmp_path / "s2.csv").exists()
    assert other.read_bytes() == (frozen_run / "model.json").read_bytes()
    # Not a clustering model at all: the same.
    (tmp_path / "classifier.json").write_text(json.dumps({"format": "xrayclass.classifier-model"}))
    assert cli.crossmatch_main([*args, "--model", str(tmp_path / "classifier.json")]) == 2
    assert "not a clustering model" in capsys.readouterr().err and not (tmp_path / "s2.csv").exists()
    # At the default path: a warning, and the model is left as it is.
    monkeypatch.setattr(paths, "MODEL", other)
    assert cli.crossmatch_main(args) == 0
    assert "It is left as it is" in capsys.readouterr().err
    assert other.read_bytes() == (frozen_run / "model.json").read_bytes()
    # No model at the default path: a warning that none describes the frozen clusters.
    monkeypatch.setattr(paths, "MODEL", tmp_path / "absent.json")
    assert cli.crossmatch_main(args) == 0
    assert "no model of the frozen clusters is written" in capsys.readouterr().err


@pytest.mark.slow
def test_published_crossmatch_is_compared_with_the_published_mixture(
    frozen_run, crossmatch_sample, tmp_path, reference_dir, monkeypatch, run_stages
):
    """The published crossmatch (29,655 rows) is not in the reference directory: the real sample
    stands in for it by patching the row count that identifies it."""
    reference_path(reference_dir, "paper_gmm.json")
    for name in ("s1.csv", "model.json"):
        (tmp_path / name).write_bytes((frozen_run / name).read_bytes())
    monkeypatch.setattr(workflow_crossmatch, "PUBLISHED_DETECTIONS", 1615)
    run_stages(tmp_path, frozen=crossmatch_sample, stages=(2,))
    comparison = json.loads((tmp_path / "model.json").read_text())["clusters"]["published_comparison"]
    assert comparison["caveat"] == PUBLISHED_CAVEAT
    model = read_clustering_model(tmp_path / "model.json")
    published = json.loads((reference_dir / "paper_gmm.json").read_text())
    direct = compare_with_published(model, published)
    assert comparison["max_mean_distance"] == direct["max_mean_distance"] > 0
    assert sorted(comparison["pairing"].values()) == list(range(6))
