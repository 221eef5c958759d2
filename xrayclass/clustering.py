"""Stage 1: features, preprocessing and Gaussian-mixture clusters of CSC detections."""

import logging
from dataclasses import dataclass, field

import numpy as np
import sklearn

from . import __version__
from .constants import CLUSTER, FEATURES, N_COMPONENTS, NAME, OBSID, RANDOM_STATE
from .features import complete_rows, describe_dropped, prepare_features
from .io import InputError, canonical_names, read_json, require_columns, require_numeric
from .mixture import fit_mixture, mixture_from_dict, mixture_to_dict
from .preprocessing import LogMinMaxScaler

log = logging.getLogger(__name__)

MODEL_FORMAT = "xrayclass.clustering-model"
MODEL_FORMAT_VERSION = 1

#: Columns stage 1 needs besides the raw feature columns.
IDENTITY_COLUMNS = (NAME, OBSID, "ra", "dec")


def probability_columns(n_components):
    """Names of the cluster-membership probability columns: prob_0, prob_1, ..."""
    return [f"prob_{k}" for k in range(n_components)]


@dataclass
class ClusteringModel:
    """The fitted preprocessing and mixture, enough to place new detections in clusters."""

    scaler: LogMinMaxScaler
    mixture: object
    training: dict = field(default_factory=dict)

    def assign(self, detections):
        """Cluster labels and membership probabilities of complete feature rows.

        Parameters
        ----------
        detections : pandas.DataFrame
            Rows with all 12 features (see :func:`~xrayclass.features.complete_rows`).

        Returns
        -------
        clusters : numpy.ndarray of int
        probabilities : numpy.ndarray of shape (n_rows, n_components)
        """
        X = self.scaler.transform(detections[list(FEATURES)].to_numpy(dtype="float64"))
        return self.mixture.predict(X), self.mixture.predict_proba(X)

    def to_dict(self):
        return {
            "format": MODEL_FORMAT,
            "format_version": MODEL_FORMAT_VERSION,
            "software": {"xrayclass": __version__, "scikit-learn": sklearn.__version__, "numpy": np.__version__},
            "features": list(FEATURES),
            "training": self.training,
            "preprocessing": self.scaler.to_dict(),
            "mixture": mixture_to_dict(self.mixture),
        }

    @classmethod
    def from_dict(cls, document, path="model"):
        if document.get("format") != MODEL_FORMAT:
            raise InputError(f"{path}: not a clustering model (format {document.get('format')!r})")
        if document.get("format_version") != MODEL_FORMAT_VERSION:
            raise InputError(
                f"{path}: model format version {document.get('format_version')} is not "
                f"supported (this is version {MODEL_FORMAT_VERSION})"
            )
        if list(document["features"]) != list(FEATURES):
            raise InputError(f"{path}: the model's features differ from this pipeline's")
        return cls(
            scaler=LogMinMaxScaler.from_dict(document["preprocessing"]),
            mixture=mixture_from_dict(document["mixture"]),
            training=document.get("training", {}),
        )

    @classmethod
    def load(cls, path):
        return cls.from_dict(read_json(path), path)


def cluster_detections(detections, path, n_components=N_COMPONENTS, random_state=RANDOM_STATE):
    """Stage 1 on a table of CSC detections.

    Derives the variability features, drops the detections that lack any of the 12
    features (logging how many and which), fits the log/MinMax preprocessing and the
    Gaussian mixture, and labels every kept detection with its most probable cluster.

    Parameters
    ----------
    detections : pandas.DataFrame
        CSC per-observation detections (``name`` or ``name_1``, ``obsid``, ``ra``,
        ``dec`` and the raw feature columns).
    path : str
        Where the table came from, for messages.
    n_components, random_state : int
        Mixture size and seed.

    Returns
    -------
    clustered : pandas.DataFrame
        The kept detections: every input column, the derived features, ``cluster`` and
        ``prob_0`` .. ``prob_{K-1}``.
    model : ClusteringModel
    """
    detections = canonical_names(detections, path)
    require_columns(detections, IDENTITY_COLUMNS, path)
    detections = require_numeric(detections, ("ra", "dec"), path)
    detections = prepare_features(detections, path)
    n_total = len(detections)
    log.info("%s: %s detections read", path, f"{n_total:,}")

    replaced = [c for c in (CLUSTER, *probability_columns(n_components)) if c in detections.columns]
    if replaced:
        log.warning("%s: the input already has %s; they are replaced by this run's clusters",
                    path, ", ".join(replaced))
        detections = detections.drop(columns=replaced)

    complete, reasons = complete_rows(detections)
    kept = detections.loc[complete].reset_index(drop=True)
    log.info(describe_dropped(reasons, n_total - len(kept), n_total))
    if len(kept) < max(n_components, 2):
        raise InputError(
            f"{path}: only {len(kept)} detections have all 12 features; "
            f"at least {n_components} are needed for {n_components} clusters"
        )

    features = kept[list(FEATURES)].to_numpy(dtype="float64")
    scaler = LogMinMaxScaler().fit(features)
    X = scaler.transform(features)
    log.info("fitting a %d-component full-covariance Gaussian mixture to %s detections (seed %s)",
             n_components, f"{len(X):,}", random_state)
    mixture = fit_mixture(X, n_components=n_components, random_state=random_state)
    if not mixture.converged_:
        log.warning("the Gaussian mixture did not converge in %d iterations", mixture.n_iter_)
    model = ClusteringModel(
        scaler=scaler,
        mixture=mixture,
        training={"input": str(path), "n_input_rows": n_total, "n_detections": len(kept)},
    )
    clusters, probabilities = model.assign(kept)
    clustered = kept.assign(
        **{CLUSTER: clusters},
        **dict(zip(probability_columns(n_components), probabilities.T)),
    )
    sizes = np.bincount(clusters, minlength=n_components)
    log.info("cluster sizes: %s", ", ".join(f"{k}: {n:,}" for k, n in enumerate(sizes)))
    return clustered, model
