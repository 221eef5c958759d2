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
from .progress import chunks

log = logging.getLogger(__name__)

MODEL_FORMAT = "xrayclass.clustering-model"
MODEL_FORMAT_VERSION = 1

#: Rows placed in clusters at once (bounded memory at any catalog size).
CHUNK_ROWS = 200_000

#: Detections the mixture is fitted on at most; larger catalogs are fitted on a seeded
#: random subsample of this size and every detection is then assigned. Chosen by
#: measurement (benchmarks/subsample.py): see README, "Scaling up".
FIT_SAMPLE = 100_000

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
        features = detections[list(FEATURES)].to_numpy(dtype="float64")
        probabilities = np.empty((len(features), self.mixture.n_components))
        for rows in chunks(len(features), CHUNK_ROWS, "assigning clusters"):
            probabilities[rows] = self.mixture.predict_proba(self.scaler.transform(features[rows]))
        # The most probable component: what GaussianMixture.predict returns (the same
        # argmax of the same per-row ordering), without computing it twice.
        return probabilities.argmax(axis=1), probabilities

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
        from .checks import validate_model_document

        validate_model_document(document, path, MODEL_FORMAT, MODEL_FORMAT_VERSION)
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


def fit_rows(n_rows, fit_sample, random_state):
    """Indices of the rows the mixture is fitted on: all, or a seeded sorted subsample."""
    if fit_sample is None or n_rows <= fit_sample:
        return np.arange(n_rows)
    return np.sort(np.random.default_rng(random_state).choice(n_rows, size=fit_sample, replace=False))


def cluster_detections(detections, path, n_components=N_COMPONENTS, random_state=RANDOM_STATE,
                       fit_sample=FIT_SAMPLE):
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
    fit_sample : int or None
        Fit the mixture on at most this many detections (a subsample seeded by
        ``random_state``); every detection is then assigned. ``None``: all.

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
    from .checks import require_log_features_usable

    require_log_features_usable(features, path)
    # The preprocessing uses every detection (ranges and shifts); only the mixture is
    # fitted on a subsample when the catalog is large.
    scaler = LogMinMaxScaler().fit(features)
    rows = fit_rows(len(features), fit_sample, random_state)
    X = scaler.transform(features[rows])
    if len(rows) < len(features):
        log.info("fitting on a seeded subsample of %s of the %s detections (--fit-sample)",
                 f"{len(rows):,}", f"{len(features):,}")
    log.info("fitting a %d-component full-covariance Gaussian mixture to %s detections (seed %s)",
             n_components, f"{len(X):,}", random_state)
    mixture = fit_mixture(X, n_components=n_components, random_state=random_state)
    if not mixture.converged_:
        log.warning("the Gaussian mixture did not converge in %d iterations", mixture.n_iter_)
    model = ClusteringModel(
        scaler=scaler,
        mixture=mixture,
        training={"input": str(path), "n_input_rows": n_total, "n_detections": len(kept),
                  "n_fitted": len(rows), "fit_sample": fit_sample},
    )
    clusters, probabilities = model.assign(kept)
    clustered = kept.assign(
        **{CLUSTER: clusters},
        **dict(zip(probability_columns(n_components), probabilities.T)),
    )
    sizes = np.bincount(clusters, minlength=n_components)
    log.info("cluster sizes: %s", ", ".join(f"{k}: {n:,}" for k, n in enumerate(sizes)))
    # A full covariance in 12 dimensions needs at least 13 points to be more than the
    # regularization: a smaller cluster's shape is not measured, only assumed.
    small = [k for k, n in enumerate(sizes) if n <= len(FEATURES)]
    if small:
        log.warning("clusters %s have %d or fewer detections, too few to estimate a %d-feature covariance; "
                    "their shape is unreliable (use more detections or fewer --n-components)",
                    ", ".join(map(str, small)), len(FEATURES), len(FEATURES))
    return clustered, model
