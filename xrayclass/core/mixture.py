"""The Gaussian mixture that defines the clusters, its JSON form, and the stored stage-1 model."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import sklearn
from numpy.typing import ArrayLike
from scipy import linalg
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist, pdist
from sklearn.mixture import GaussianMixture

from xrayclass.constants import N_COMPONENTS, RANDOM_STATE, VERSION
from xrayclass.core.checks import validate_model_document
from xrayclass.core.featuresets import PAPER, FeatureSet, from_artifact
from xrayclass.core.preprocessing import LogMinMaxScaler
from xrayclass.core.progress import chunks

__all__ = [
    "CHUNK_ROWS",
    "MIXTURE_SETTINGS",
    "MODEL_FORMAT",
    "MODEL_FORMAT_VERSION",
    "STAGE1_CLUSTERS",
    "ClusteringModel",
    "compare_mixtures",
    "fit_mixture",
    "mixture_from_dict",
    "mixture_from_memberships",
    "mixture_to_dict",
]

#: GaussianMixture settings of the published run (scikit-learn's defaults, stated here
#: so that a change of defaults in a later scikit-learn cannot change the clusters).
MIXTURE_SETTINGS: dict[str, Any] = {
    "covariance_type": "full",
    "init_params": "kmeans",
    "n_init": 1,
    "max_iter": 100,
    "tol": 1e-3,
    "reg_covar": 1e-6,
}


def fit_mixture(X: np.ndarray, n_components: int = N_COMPONENTS, random_state: int = RANDOM_STATE) -> GaussianMixture:
    """Fit the published pipeline's full-covariance Gaussian mixture to preprocessed features ``X``."""
    if len(X) < n_components:
        raise ValueError(f"{len(X)} detections cannot be split into {n_components} clusters")
    mixture = GaussianMixture(n_components=n_components, random_state=random_state, **MIXTURE_SETTINGS)
    return mixture.fit(X)


def mixture_to_dict(mixture: GaussianMixture) -> dict[str, Any]:
    """The fitted mixture's parameters as plain JSON-ready values."""
    return {
        "n_components": int(mixture.n_components),
        "random_state": mixture.random_state,
        **{key: getattr(mixture, key) for key in MIXTURE_SETTINGS},
        "converged": bool(mixture.converged_),
        "n_iter": int(mixture.n_iter_),
        "lower_bound": float(mixture.lower_bound_),
        "weights": mixture.weights_.tolist(),
        "means": mixture.means_.tolist(),
        "covariances": mixture.covariances_.tolist(),
        "precisions_cholesky": mixture.precisions_cholesky_.tolist(),
    }


def mixture_from_dict(document: Mapping[str, Any]) -> GaussianMixture:
    """Rebuild a fitted :class:`~sklearn.mixture.GaussianMixture` that predicts exactly as the original did."""
    settings = {key: document[key] for key in MIXTURE_SETTINGS if key in document}
    settings["covariance_type"] = document.get("covariance_type", "full")
    if settings["covariance_type"] != "full":
        raise ValueError("only full-covariance mixtures are supported")
    mixture = GaussianMixture(
        n_components=int(document["n_components"]), random_state=document.get("random_state"), **settings
    )
    mixture.weights_ = np.asarray(document["weights"], dtype="float64")
    mixture.means_ = np.asarray(document["means"], dtype="float64")
    mixture.covariances_ = np.asarray(document["covariances"], dtype="float64")
    mixture.precisions_cholesky_ = np.asarray(document["precisions_cholesky"], dtype="float64")
    mixture.precisions_ = np.einsum("kij,klj->kil", mixture.precisions_cholesky_, mixture.precisions_cholesky_)
    mixture.converged_ = bool(document.get("converged", True))
    mixture.n_iter_ = int(document.get("n_iter", 0))
    mixture.lower_bound_ = float(document.get("lower_bound", np.nan))
    mixture.n_features_in_ = mixture.means_.shape[1]
    return mixture


def _precisions_cholesky(covariances: np.ndarray) -> np.ndarray:
    """Cholesky factors of the precisions, computed as scikit-learn's full-covariance fit does."""
    n_features = covariances.shape[-1]
    factors = np.empty_like(covariances)
    for k, covariance in enumerate(covariances):
        try:
            lower = linalg.cholesky(covariance, lower=True)
        except linalg.LinAlgError:
            raise ValueError(f"the covariance of component {k} is not positive definite") from None
        factors[k] = linalg.solve_triangular(lower, np.eye(n_features), lower=True).T
    return factors


def mixture_from_memberships(
    X: ArrayLike, memberships: ArrayLike, reg_covar: float = MIXTURE_SETTINGS["reg_covar"], chunk_rows: int = 200_000
) -> GaussianMixture:
    """A full-covariance Gaussian mixture whose components are given groups of detections.

    The M-step of EM for the (n_detections, n_components) ``memberships``: weights, means
    and covariances of the detections weighted by membership, plus ``reg_covar`` on the
    diagonals as scikit-learn does (a converged mixture's memberships give it back).
    Sums run ``chunk_rows`` at a time; ``n_iter_`` is 0 and ``lower_bound_`` the mean
    log-likelihood of ``X``. ``ValueError`` if a component has no detection.
    """
    X = np.asarray(X, dtype="float64")
    memberships = np.asarray(memberships, dtype="float64")
    n_rows, n_features = X.shape
    n_components = memberships.shape[1]
    totals = memberships.sum(axis=0)
    empty = np.flatnonzero(totals <= 0)
    if empty.size:
        raise ValueError(f"component(s) {', '.join(map(str, empty))} have no detection")
    parts = [slice(start, start + chunk_rows) for start in range(0, n_rows, chunk_rows)]
    means = np.zeros((n_components, n_features))
    for rows in parts:
        means += memberships[rows].T @ X[rows]
    means /= totals[:, None]
    covariances = np.zeros((n_components, n_features, n_features))
    for rows in parts:
        for k in range(n_components):
            centered = X[rows] - means[k]
            covariances[k] += (memberships[rows, k, None] * centered).T @ centered
    covariances /= totals[:, None, None]
    covariances += reg_covar * np.eye(n_features)
    document = {
        "n_components": n_components,
        "random_state": None,
        **MIXTURE_SETTINGS,
        "reg_covar": reg_covar,
        "converged": True,
        "n_iter": 0,
        "lower_bound": float("nan"),
        "weights": totals / n_rows,
        "means": means,
        "covariances": covariances,
        "precisions_cholesky": _precisions_cholesky(covariances),
    }
    mixture = mixture_from_dict(document)
    mixture.lower_bound_ = float(np.mean(np.concatenate([mixture.score_samples(X[rows]) for rows in parts])))
    return mixture


def compare_mixtures(ours: GaussianMixture, published: Mapping[str, Any]) -> dict[str, Any]:
    """How a mixture compares with another's ``weights`` and ``means``, components paired by nearest means.

    Returns the ``pairing``, paired ``weights``, ``max_weight_difference``, Euclidean
    ``mean_distances`` and their ``max_mean_distance``, and ``median_separation`` (between
    two of our own means: the scale to read the distances against).
    """
    their_means = np.asarray(published["means"], dtype="float64")
    their_weights = np.asarray(published["weights"], dtype="float64")
    if their_means.shape != ours.means_.shape:
        raise ValueError(f"the mixtures differ in shape: {ours.means_.shape} and {their_means.shape}")
    distances = cdist(ours.means_, their_means)
    rows, columns = linear_sum_assignment(distances)
    paired = distances[rows, columns]
    weight_differences = np.abs(ours.weights_[rows] - their_weights[columns])
    return {
        "pairing": {int(r): int(c) for r, c in zip(rows, columns, strict=False)},
        "weights": [[float(ours.weights_[r]), float(their_weights[c])] for r, c in zip(rows, columns, strict=False)],
        "max_weight_difference": float(weight_differences.max()),
        "mean_distances": [float(d) for d in paired],
        "max_mean_distance": float(paired.max()),
        "median_separation": float(np.median(pdist(ours.means_))),
    }


# -- the stored stage-1 model (model.json) -------------------------------------------------

MODEL_FORMAT = "xrayclass.clustering-model"
MODEL_FORMAT_VERSION = 1

#: Rows placed in clusters at once (bounded memory at any catalog size).
CHUNK_ROWS = 200_000

#: Provenance of a mixture that is stage 1's own fit.
STAGE1_CLUSTERS = {"source": "stage 1"}


@dataclass
class ClusteringModel:
    """The fitted preprocessing and mixture, enough to place new detections in clusters."""

    scaler: LogMinMaxScaler
    mixture: GaussianMixture
    training: dict = field(default_factory=dict)
    #: Whose clusters ``mixture`` describes: ``{"source": "stage 1"}`` (its own fit), or
    #: ``{"source": "frozen", "file": ..., "agreement": ...}`` (see :func:`~xrayclass.stages.clustering.describe_frozen_clusters`).
    clusters: dict = field(default_factory=lambda: dict(STAGE1_CLUSTERS))
    #: The stage-1 fit, kept for the record when ``mixture`` describes other clusters.
    stage1_mixture: GaussianMixture | None = None
    #: The features the model was fitted on (old artifacts without a record: the paper's).
    feature_set: FeatureSet = PAPER

    def assign(self, detections: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Cluster labels and membership probabilities of rows with all the model's features."""
        features = detections[list(self.feature_set.features)].to_numpy(dtype="float64")
        probabilities = np.empty((len(features), self.mixture.n_components))
        for rows in chunks(len(features), CHUNK_ROWS, "assigning clusters"):
            probabilities[rows] = self.mixture.predict_proba(self.scaler.transform(features[rows]))
        # The argmax is GaussianMixture.predict, without computing it twice.
        return probabilities.argmax(axis=1), probabilities

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": MODEL_FORMAT,
            "format_version": MODEL_FORMAT_VERSION,
            "software": {"xrayclass": VERSION, "scikit-learn": sklearn.__version__, "numpy": np.__version__},
            "features": list(self.feature_set.features),
            "feature_set": self.feature_set.to_dict(),
            "training": self.training,
            "preprocessing": self.scaler.to_dict(),
            "mixture": mixture_to_dict(self.mixture),
            "clusters": self.clusters,
            **({"stage1_mixture": mixture_to_dict(self.stage1_mixture)} if self.stage1_mixture is not None else {}),
        }

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> "ClusteringModel":
        """The model a ``model.json`` document describes; :class:`InputError` if it is not one."""
        validate_model_document(document, MODEL_FORMAT, MODEL_FORMAT_VERSION)
        feature_set = from_artifact(document)
        return cls(
            scaler=LogMinMaxScaler.from_dict(document["preprocessing"]),
            mixture=mixture_from_dict(document["mixture"]),
            training=document.get("training", {}),
            clusters=document.get("clusters", dict(STAGE1_CLUSTERS)),
            stage1_mixture=mixture_from_dict(document["stage1_mixture"]) if "stage1_mixture" in document else None,
            feature_set=feature_set,
        )
