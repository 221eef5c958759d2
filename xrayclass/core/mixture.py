"""The Gaussian mixture that defines the clusters, and its JSON form."""

import numpy as np
from sklearn.mixture import GaussianMixture

from xrayclass.constants import N_COMPONENTS, RANDOM_STATE

#: GaussianMixture settings of the published run (scikit-learn's defaults, stated here
#: so that a change of defaults in a later scikit-learn cannot change the clusters).
MIXTURE_SETTINGS = {
    "covariance_type": "full",
    "init_params": "kmeans",
    "n_init": 1,
    "max_iter": 100,
    "tol": 1e-3,
    "reg_covar": 1e-6,
}


def fit_mixture(X, n_components=N_COMPONENTS, random_state=RANDOM_STATE):
    """Fit the full-covariance Gaussian mixture of the published pipeline.

    Parameters
    ----------
    X : array of shape (n_detections, n_features)
        Preprocessed features.
    n_components : int
        Number of clusters (6 in the paper, chosen from the BIC).
    random_state : int
        Seed of the k-means initialisation (42 in the paper).

    Returns
    -------
    sklearn.mixture.GaussianMixture
    """
    if len(X) < n_components:
        raise ValueError(
            f"{len(X)} detections cannot be split into {n_components} clusters"
        )
    mixture = GaussianMixture(n_components=n_components, random_state=random_state, **MIXTURE_SETTINGS)
    return mixture.fit(X)


def mixture_to_dict(mixture):
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


def mixture_from_dict(document):
    """Rebuild a fitted :class:`~sklearn.mixture.GaussianMixture` from its dict form.

    Only fitted attributes are set; the result predicts exactly as the original did
    (JSON keeps every float exactly).
    """
    settings = {key: document[key] for key in MIXTURE_SETTINGS if key in document}
    settings["covariance_type"] = document.get("covariance_type", "full")
    if settings["covariance_type"] != "full":
        raise ValueError("only full-covariance mixtures are supported")
    mixture = GaussianMixture(
        n_components=int(document["n_components"]),
        random_state=document.get("random_state"),
        **settings,
    )
    mixture.weights_ = np.asarray(document["weights"], dtype="float64")
    mixture.means_ = np.asarray(document["means"], dtype="float64")
    mixture.covariances_ = np.asarray(document["covariances"], dtype="float64")
    mixture.precisions_cholesky_ = np.asarray(document["precisions_cholesky"], dtype="float64")
    mixture.precisions_ = np.einsum(
        "kij,klj->kil", mixture.precisions_cholesky_, mixture.precisions_cholesky_
    )
    mixture.converged_ = bool(document.get("converged", True))
    mixture.n_iter_ = int(document.get("n_iter", 0))
    mixture.lower_bound_ = float(document.get("lower_bound", np.nan))
    mixture.n_features_in_ = mixture.means_.shape[1]
    return mixture
