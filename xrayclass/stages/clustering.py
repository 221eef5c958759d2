"""Stage 1: features, preprocessing and Gaussian-mixture clusters of CSC detections."""

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import sklearn
from sklearn.mixture import GaussianMixture

from xrayclass import __version__
from xrayclass.constants import CLUSTER, FEATURES, N_COMPONENTS, NAME, OBSID, RANDOM_STATE
from xrayclass.core.features import complete_rows, describe_dropped, prepare_features
from xrayclass.core.featuresets import PAPER, FeatureSet, from_artifact
from xrayclass.core.mixture import (
    compare_mixtures,
    fit_mixture,
    mixture_from_dict,
    mixture_from_memberships,
    mixture_to_dict,
)
from xrayclass.core.preprocessing import LogMinMaxScaler
from xrayclass.core.progress import chunks
from xrayclass.core.sampling import content_sample
from xrayclass.io.tables import InputError, canonical_names, require_columns, require_numeric

__all__ = [
    "CHUNK_ROWS",
    "FIT_SAMPLE",
    "IDENTITY_COLUMNS",
    "MODEL_FORMAT",
    "MODEL_FORMAT_VERSION",
    "PUBLISHED_CAVEAT",
    "STAGE1_CLUSTERS",
    "ClusteringConfig",
    "ClusteringModel",
    "check_model_fits_table",
    "cluster_detections",
    "compare_with_published",
    "describe_frozen_clusters",
    "fit_model",
    "fit_rows",
    "frozen_memberships",
    "probability_columns",
    "run_clustering",
    "stage1_model",
]

log = logging.getLogger(__name__)

MODEL_FORMAT = "xrayclass.clustering-model"
MODEL_FORMAT_VERSION = 1

#: Rows placed in clusters at once (bounded memory at any catalog size).
CHUNK_ROWS = 200_000

#: Detections the mixture is fitted on at most; larger catalogs are fitted on a seeded
#: random subsample of this size and every detection is then assigned. Chosen by
#: measurement (benchmarks/subsample.py): see README, "Scaling up".
FIT_SAMPLE = 100_000

#: Provenance of a mixture that is stage 1's own fit.
STAGE1_CLUSTERS = {"source": "stage 1"}

#: Columns stage 1 needs besides the raw feature columns.
IDENTITY_COLUMNS = (NAME, OBSID, "ra", "dec")


@dataclass(frozen=True)
class ClusteringConfig:
    """Stage 1's choices; the defaults are the paper's.

    Parameters
    ----------
    n_components : int
        Gaussian components (clusters) of the mixture.
    random_state : int
        Seed of the mixture's initialisation and of the fit subsample.
    fit_sample : int or None
        Fit on at most this many detections (a subsample chosen by content), then
        assign every detection; ``None`` fits on all.
    log_floor : float or None
        Lower bound on the shift of the log features (``None``: the paper's rule).
    feature_set : FeatureSet
        The features and their preprocessing (the paper's 12 by default).
    """

    n_components: int = N_COMPONENTS
    random_state: int = RANDOM_STATE
    fit_sample: int | None = FIT_SAMPLE
    log_floor: float | None = None
    feature_set: FeatureSet = PAPER

    def __post_init__(self) -> None:
        if self.n_components < 1:
            raise InputError(f"n_components must be at least 1, got {self.n_components}")
        if self.fit_sample is not None and self.fit_sample < self.n_components:
            raise InputError(
                f"fit_sample {self.fit_sample} is fewer detections than the {self.n_components} clusters need"
            )
        if self.log_floor is not None and not self.log_floor > 0:
            raise InputError(f"log_floor must be positive, got {self.log_floor}")


def probability_columns(n_components: int) -> list[str]:
    """Names of the cluster-membership probability columns: prob_0, prob_1, ..."""
    return [f"prob_{k}" for k in range(n_components)]


@dataclass
class ClusteringModel:
    """The fitted preprocessing and mixture, enough to place new detections in clusters."""

    scaler: LogMinMaxScaler
    mixture: GaussianMixture
    training: dict = field(default_factory=dict)
    #: Whose clusters ``mixture`` describes: ``{"source": "stage 1"}`` (its own fit), or
    #: ``{"source": "frozen", "file": ..., "agreement": ...}`` (see :func:`describe_frozen_clusters`).
    clusters: dict = field(default_factory=lambda: dict(STAGE1_CLUSTERS))
    #: The stage-1 fit, kept for the record when ``mixture`` describes other clusters.
    stage1_mixture: GaussianMixture | None = None
    #: The features the model was fitted on (old artifacts without a record: the paper's).
    feature_set: FeatureSet = PAPER

    def assign(self, detections: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Cluster labels and membership probabilities of complete feature rows.

        Parameters
        ----------
        detections : pandas.DataFrame
            Rows with all the model's features (see :func:`~xrayclass.features.complete_rows`).

        Returns
        -------
        clusters : numpy.ndarray of int
        probabilities : numpy.ndarray of shape (n_rows, n_components)
        """
        features = detections[list(self.feature_set.features)].to_numpy(dtype="float64")
        probabilities = np.empty((len(features), self.mixture.n_components))
        for rows in chunks(len(features), CHUNK_ROWS, "assigning clusters"):
            probabilities[rows] = self.mixture.predict_proba(self.scaler.transform(features[rows]))
        # The most probable component: what GaussianMixture.predict returns (the same
        # argmax of the same per-row ordering), without computing it twice.
        return probabilities.argmax(axis=1), probabilities

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": MODEL_FORMAT,
            "format_version": MODEL_FORMAT_VERSION,
            "software": {"xrayclass": __version__, "scikit-learn": sklearn.__version__, "numpy": np.__version__},
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
        from xrayclass.io.checks import validate_model_document

        validate_model_document(document, MODEL_FORMAT, MODEL_FORMAT_VERSION)
        if document.get("format") != MODEL_FORMAT:
            raise InputError(f"not a clustering model (format {document.get('format')!r})")
        if document.get("format_version") != MODEL_FORMAT_VERSION:
            raise InputError(
                f"model format version {document.get('format_version')} is not "
                f"supported (this is version {MODEL_FORMAT_VERSION})"
            )
        feature_set = from_artifact(document)
        if list(document["features"]) != list(feature_set.features):
            raise InputError("the model's features differ from its feature set's")
        return cls(
            scaler=LogMinMaxScaler.from_dict(document["preprocessing"]),
            mixture=mixture_from_dict(document["mixture"]),
            training=document.get("training", {}),
            clusters=document.get("clusters", dict(STAGE1_CLUSTERS)),
            stage1_mixture=mixture_from_dict(document["stage1_mixture"]) if "stage1_mixture" in document else None,
            feature_set=feature_set,
        )


def fit_rows(features: np.ndarray, fit_sample: int | None, random_state: int | None) -> np.ndarray:
    """Positions of the rows of ``features`` the mixture is fitted on, in the order it sees them.

    All rows, or ``fit_sample`` of them, chosen and ordered by their values and the seed
    (:func:`~xrayclass.core.sampling.content_sample`): the k-means start picks rows by
    position, so the same detections in another order are fitted in this one order.
    """
    return content_sample(pd.DataFrame(features, copy=False), fit_sample, random_state)


def fit_model(
    X: np.ndarray,
    scaler: LogMinMaxScaler,
    n_components: int,
    random_state: int,
    fit_sample: int | None,
    feature_set: FeatureSet,
    n_input_rows: int,
    n_detections: int,
) -> ClusteringModel:
    """The mixture fitted on ``X`` (the preprocessed fit rows) and the model with its training record.

    ``n_detections`` are the complete rows of the ``n_input_rows`` read; ``X`` holds all
    of them or the ``--fit-sample`` subsample.
    """
    if len(X) < n_detections:
        log.info(
            "fitting on a seeded subsample of %s of the %s detections (--fit-sample)",
            f"{len(X):,}",
            f"{n_detections:,}",
        )
    log.info(
        "fitting a %d-component full-covariance Gaussian mixture to %s detections (seed %s)",
        n_components,
        f"{len(X):,}",
        random_state,
    )
    mixture = fit_mixture(X, n_components=n_components, random_state=random_state)
    if not mixture.converged_:
        log.warning("the Gaussian mixture did not converge in %d iterations", mixture.n_iter_)
    return ClusteringModel(
        scaler=scaler,
        mixture=mixture,
        # "input" (the file) is filled in by the caller that read it.
        training={
            "input": None,
            "n_input_rows": n_input_rows,
            "n_detections": n_detections,
            "n_fitted": len(X),
            "fit_sample": fit_sample,
        },
        feature_set=feature_set,
    )


def cluster_detections(
    detections: pd.DataFrame,
    n_components: int = N_COMPONENTS,
    random_state: int = RANDOM_STATE,
    fit_sample: int | None = FIT_SAMPLE,
    log_floor: float | None = None,
    feature_set: FeatureSet = PAPER,
) -> tuple[pd.DataFrame, ClusteringModel]:
    """Stage 1 on a table of CSC detections.

    Derives the variability features, drops the detections that lack any of the 12
    features (logging how many and which), fits the log/MinMax preprocessing and the
    Gaussian mixture, and labels every kept detection with its most probable cluster.

    Parameters
    ----------
    detections : pandas.DataFrame
        CSC per-observation detections (``name`` or ``name_1``, ``obsid``, ``ra``,
        ``dec`` and the raw feature columns).
    n_components, random_state : int
        Mixture size and seed.
    fit_sample : int or None
        Fit the mixture on at most this many detections (a subsample seeded by
        ``random_state``); every detection is then assigned. ``None``: all.
    log_floor : float, optional
        Shift of the log features (default: the paper's rule); see
        :class:`~xrayclass.preprocessing.LogMinMaxScaler`.
    feature_set : FeatureSet
        The features (default: the paper's 12); a row is dropped only for lacking one of these.

    Returns
    -------
    clustered : pandas.DataFrame
        The kept detections: every input column, the derived features, ``cluster`` and
        ``prob_0`` .. ``prob_{K-1}``.
    model : ClusteringModel
    """
    detections = canonical_names(detections)
    require_columns(detections, IDENTITY_COLUMNS)
    detections = require_numeric(detections, ("ra", "dec"))
    detections = prepare_features(detections, feature_set)
    n_total = len(detections)
    log.info("%s detections read", f"{n_total:,}")

    replaced = [c for c in (CLUSTER, *probability_columns(n_components)) if c in detections.columns]
    warn_replaced(replaced)
    detections = detections.drop(columns=replaced)

    complete, reasons = complete_rows(detections, feature_set=feature_set)
    kept = detections.loc[complete].reset_index(drop=True)
    log.info(describe_dropped(reasons, n_total - len(kept), n_total, len(feature_set)))
    require_enough_rows(len(kept), n_components, len(feature_set))

    features = kept[list(feature_set.features)].to_numpy(dtype="float64")
    from xrayclass.io.checks import require_log_features_usable

    require_log_features_usable(features, feature_set.features, feature_set.log_features)
    # The preprocessing uses every detection (ranges and shifts); only the mixture is
    # fitted on a subsample when the catalog is large.
    scaler = feature_set.scaler(log_floor=log_floor).fit(features)
    rows = fit_rows(features, fit_sample, random_state)
    X = scaler.transform(features[rows])
    model = fit_model(X, scaler, n_components, random_state, fit_sample, feature_set, n_total, len(kept))
    clusters, probabilities = model.assign(kept)
    clustered = kept.assign(
        **{CLUSTER: clusters},
        **dict(zip(probability_columns(n_components), probabilities.T, strict=False)),
    )
    log_cluster_sizes(np.bincount(clusters, minlength=n_components), len(feature_set))
    return clustered, model


def warn_replaced(replaced: Sequence[str]) -> None:
    """Warn that the input's own cluster columns ``replaced`` give way to this run's."""
    if replaced:
        log.warning("the input already has %s; they are replaced by this run's clusters", ", ".join(replaced))


def require_enough_rows(n_kept: int, n_components: int, n_features: int) -> None:
    """Raise :class:`InputError` when too few complete detections are left for the mixture."""
    if n_kept < max(n_components, 2):
        raise InputError(
            f"only {n_kept} detections have all {n_features} features; "
            f"at least {n_components} are needed for {n_components} clusters"
        )


def log_cluster_sizes(sizes: np.ndarray, n_features: int) -> None:
    """Log each cluster's size; warn of those too small to measure their covariance."""
    log.info("cluster sizes: %s", ", ".join(f"{k}: {n:,}" for k, n in enumerate(sizes)))
    # A full covariance in 12 dimensions needs at least 13 points to be more than the
    # regularization: a smaller cluster's shape is not measured, only assumed.
    small = [k for k, n in enumerate(sizes) if n <= n_features]
    if small:
        log.warning(
            "clusters %s have %d or fewer detections, too few to estimate a %d-feature covariance; "
            "their shape is unreliable (use more detections or fewer --n-components)",
            ", ".join(map(str, small)),
            n_features,
            n_features,
        )


# -- the clusters stage 3 uses ------------------------------------------------------------------


def check_model_fits_table(model: ClusteringModel, detections: pd.DataFrame) -> None:
    """Raise :class:`InputError` unless ``model`` was fitted on the stage-1 table ``detections``.

    The error's ``table`` is ``"model"`` or ``"stage1"``: the input it is about.

    Checked by its number of detections and by refitting the preprocessing on the
    table: the log shifts and ranges must be the ones in the model (stage 1 fits them
    on every detection it keeps).
    """
    expected = model.training.get("n_detections")
    if expected is not None and int(expected) != len(detections):
        raise InputError(
            f"was fitted on {int(expected):,} detections but the stage-1 table "
            f"has {len(detections):,}; it is not this table's model",
            table="model",
        )
    feature_set = model.feature_set
    try:
        require_columns(detections, feature_set.features)
    except InputError as exc:
        exc.table = "stage1"
        raise
    features = detections[list(feature_set.features)].to_numpy(dtype="float64")
    try:
        refitted = feature_set.scaler(log_floor=model.scaler.log_floor).fit(features).to_dict()
    except ValueError as exc:
        raise InputError(f"features unusable for the preprocessing: {exc}", table="stage1") from None
    saved = model.scaler.to_dict()
    differs = [
        f"{key} of {feature}"
        for key in ("log_shift", "data_min", "data_max")
        for feature in saved[key]
        if not np.isclose(saved[key][feature], refitted[key][feature], rtol=1e-12, atol=0)
    ]
    if differs:
        raise InputError(
            f"its preprocessing differs from that of the stage-1 table "
            f"({', '.join(differs[:4])}); it is not this table's model",
            table="model",
        )


def stage1_model(model: ClusteringModel) -> ClusteringModel:
    """``model`` with its stage-1 fit as the mixture (as clustering.py wrote it)."""
    if model.stage1_mixture is None:
        return model
    return ClusteringModel(
        scaler=model.scaler,
        mixture=model.stage1_mixture,
        training=model.training,
        clusters=dict(STAGE1_CLUSTERS),
        feature_set=model.feature_set,
    )


def frozen_memberships(detections: pd.DataFrame, clusters: np.ndarray) -> tuple[np.ndarray, str]:
    """The membership of each detection in each frozen cluster, and how it was obtained.

    The frozen file's ``prob_0..prob_{K-1}`` when it has them, complete, finite and
    consistent with its ``cluster`` (their argmax); otherwise the hard assignments.

    Returns
    -------
    memberships : numpy.ndarray of shape (n_detections, K)
    method : str
        ``'membership probabilities'`` or ``'cluster assignments'``.
    """
    n_components = int(clusters.max()) + 1
    columns = probability_columns(n_components)
    hard = np.zeros((len(clusters), n_components))
    hard[np.arange(len(clusters)), clusters] = 1.0
    extra = [c for c in detections.columns if c.startswith("prob_") and c[5:].isdigit() and c not in columns]
    if all(c in detections.columns for c in columns) and not extra:
        probabilities = detections[columns].apply(pd.to_numeric, errors="coerce").to_numpy(dtype="float64")
        usable = (
            np.isfinite(probabilities).all()
            and (probabilities >= 0).all()
            and np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-6)
        )
        if usable and (probabilities.argmax(axis=1) == clusters).all():
            return probabilities / probabilities.sum(axis=1, keepdims=True), "membership probabilities"
        log.info(
            "the frozen clusters' %s do not match their clusters; the mixture is estimated from the "
            "cluster assignments alone",
            ", ".join(columns),
        )
    return hard, "cluster assignments"


def describe_frozen_clusters(model: ClusteringModel, detections: pd.DataFrame) -> ClusteringModel:
    """A mixture model of the frozen clusters that stage 3 will use, in this run's space.

    Each component is estimated from the detections of one frozen cluster, in the
    preprocessed space of ``model`` (this run's stage-1 scaler): weight, mean and full
    covariance (plus scikit-learn's ``reg_covar``), weighting each detection by its
    frozen membership probability where the frozen file has them (the M-step of the
    EM that made them), else by its hard assignment. How often the result places a
    training detection in its frozen cluster is measured: such a mixture reproduces
    clusters that came from another preprocessing only approximately.

    Parameters
    ----------
    model : ClusteringModel
        This run's stage-1 model (a previous re-estimate is replaced, not stacked).
    detections : pandas.DataFrame
        The stage-2 table: the 12 features and the frozen ``cluster`` (and ``prob_*``).

    Returns
    -------
    ClusteringModel
        Same preprocessing; ``mixture`` describes the frozen clusters; ``clusters`` says
        so (method, agreement overall and per cluster); ``stage1_mixture`` keeps
        the stage-1 fit.
    """
    base = stage1_model(model)
    labels = detections[CLUSTER].to_numpy(dtype="float64")
    if not (np.isfinite(labels).all() and (labels >= 0).all() and (labels == np.round(labels)).all()):
        raise InputError("its 'cluster' column is not made of non-negative integers")
    labels = labels.astype(int)
    memberships, method = frozen_memberships(detections, labels)
    sizes = np.bincount(labels, minlength=memberships.shape[1])
    if (sizes == 0).any():
        raise InputError(
            f"cluster(s) {', '.join(map(str, np.flatnonzero(sizes == 0)))} have no "
            "detection, so no mixture component can describe them; use --clusters ours"
        )
    X = base.scaler.transform(detections[list(base.feature_set.features)].to_numpy(dtype="float64"))
    try:
        mixture = mixture_from_memberships(X, memberships, reg_covar=base.mixture.reg_covar, chunk_rows=CHUNK_ROWS)
    except ValueError as exc:
        raise InputError(f"the frozen clusters cannot be described by a mixture: {exc}") from None
    estimated = ClusteringModel(
        scaler=base.scaler,
        mixture=mixture,
        training=base.training,
        stage1_mixture=base.mixture,
        feature_set=base.feature_set,
    )
    assigned, _ = estimated.assign(detections)
    same = assigned == labels
    per_cluster = np.bincount(labels, weights=same, minlength=len(sizes)) / sizes
    estimated.clusters = {
        "source": "frozen",
        "file": None,  # the frozen file, filled in by the caller that read it
        "estimated_from": method,
        "n_detections": len(labels),
        "agreement": float(same.mean()),
        "agreement_per_cluster": {str(k): float(a) for k, a in enumerate(per_cluster)},
    }
    log.info(
        "model of the frozen clusters: %d components estimated from the %s of %s detections in this run's "
        "preprocessed space; it places %.1f%% of them in their frozen cluster (per cluster: %s)",
        len(sizes),
        method,
        f"{len(labels):,}",
        100 * same.mean(),
        ", ".join(f"{k}: {100 * a:.1f}%" for k, a in enumerate(per_cluster)),
    )
    return estimated


#: What a comparison with the published mixture cannot tell (stored with it).
PUBLISHED_CAVEAT = (
    "the published mixture lives in the published run's preprocessed space, whose MinMax "
    "constants were not published; this run's constants come from its own input, so the "
    "distances also reflect any difference of preprocessing"
)


def compare_with_published(model: ClusteringModel, published: Mapping[str, Any]) -> dict[str, Any]:
    """How ``model``'s mixture compares with the published one (``paper_gmm.json``'s content).

    Returns
    -------
    dict
        See :func:`~xrayclass.mixture.compare_mixtures`, plus ``caveat``.
    """
    if list(published.get("features", FEATURES)) != list(model.feature_set.features):
        raise InputError("the published mixture's features differ from this pipeline's")
    comparison = compare_mixtures(model.mixture, published)
    comparison["caveat"] = PUBLISHED_CAVEAT
    log.info(
        "against the published mixture (components paired by nearest means): weights differ by at most "
        "%.3f, means lie %.3f apart at most (our own means lie a median %.3f apart); %s",
        comparison["max_weight_difference"],
        comparison["max_mean_distance"],
        comparison["median_separation"],
        PUBLISHED_CAVEAT,
    )
    return comparison


def run_clustering(
    detections: pd.DataFrame, config: ClusteringConfig = ClusteringConfig()
) -> tuple[pd.DataFrame, ClusteringModel]:
    """Stage 1 on an in-memory table of CSC detections: ``(clustered, model)``.

    See :func:`cluster_detections`, which this is, with ``config``'s choices.
    """
    return cluster_detections(
        detections,
        n_components=config.n_components,
        random_state=config.random_state,
        fit_sample=config.fit_sample,
        log_floor=config.log_floor,
        feature_set=config.feature_set,
    )
