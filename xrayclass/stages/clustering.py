"""Stage 1: features, preprocessing and Gaussian-mixture clusters of CSC detections."""

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from xrayclass.constants import CLUSTER, FEATURES, N_COMPONENTS, NAME, OBSID, RANDOM_STATE
from xrayclass.core.checks import canonical_names, require_columns, require_log_features_usable, require_numeric
from xrayclass.core.features import complete_rows, describe_dropped, prepare_features
from xrayclass.core.featuresets import PAPER, FeatureSet
from xrayclass.core.mixture import (
    CHUNK_ROWS,
    STAGE1_CLUSTERS,
    ClusteringModel,
    compare_mixtures,
    fit_mixture,
    mixture_from_memberships,
)
from xrayclass.core.preprocessing import LogMinMaxScaler
from xrayclass.core.sampling import content_sample
from xrayclass.exceptions import InputError

__all__ = [
    "FIT_SAMPLE",
    "IDENTITY_COLUMNS",
    "PUBLISHED_CAVEAT",
    "ClusteringConfig",
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

#: Detections the mixture is fitted on at most (a seeded subsample; every detection is
#: then assigned). Chosen by benchmarks/subsample.py: see README, "Scaling up".
FIT_SAMPLE = 100_000

#: Columns stage 1 needs besides the raw feature columns.
IDENTITY_COLUMNS = (NAME, OBSID, "ra", "dec")


@dataclass(frozen=True)
class ClusteringConfig:
    """Stage 1's choices; the defaults are the paper's.

    ``n_components`` clusters, ``random_state`` seeding the mixture and the subsample,
    ``fit_sample`` (fit on at most this many detections, then assign all; ``None``: all),
    ``log_floor`` (lower bound on the log shift; ``None``: the paper's rule) and the
    ``feature_set``.
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


def fit_rows(features: np.ndarray, fit_sample: int | None, random_state: int | None) -> np.ndarray:
    """Positions of the rows the mixture is fitted on, chosen and ordered by content and seed.

    The k-means start picks rows by position: the same detections in another order fit the same.
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
    """The model of the mixture fitted on ``X``, the preprocessed fit rows of ``n_detections`` complete ones."""
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
    """Stage 1 on a table of CSC detections (options as :class:`ClusteringConfig`).

    Derives the features, drops (and counts) the detections lacking one, fits the
    log/MinMax preprocessing on the rest and the Gaussian mixture, and labels every kept
    detection with its most probable cluster. Returns the kept detections with
    ``cluster`` and ``prob_0`` .. ``prob_{K-1}``, and the model.
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
    require_log_features_usable(features, feature_set.features, feature_set.log_features)
    # The preprocessing uses every detection; only the mixture is fitted on a subsample.
    scaler = feature_set.scaler(log_floor=log_floor).fit(features)
    rows = fit_rows(features, fit_sample, random_state)
    X = scaler.transform(features[rows])
    model = fit_model(X, scaler, n_components, random_state, fit_sample, feature_set, n_total, len(kept))
    clusters, probabilities = model.assign(kept)
    clustered = kept.assign(
        **{CLUSTER: clusters}, **dict(zip(probability_columns(n_components), probabilities.T, strict=False))
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
    """Raise :class:`InputError` (``table`` "model" or "stage1") unless ``model`` was fitted on ``detections``.

    Checked by the number of detections and by refitting the preprocessing on the table.
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
    """The (n_detections, K) memberships of the frozen clusters, and how they were obtained.

    The frozen file's ``prob_*`` when complete, finite and consistent with its ``cluster``
    (``'membership probabilities'``); otherwise the hard ``'cluster assignments'``.
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
    """A mixture of the frozen clusters of the stage-2 table ``detections``, in ``model``'s preprocessed space.

    Each component is one M-step over its cluster's detections, weighted by their frozen
    memberships (:func:`frozen_memberships`). The model keeps the stage-1 fit as
    ``stage1_mixture`` and records in ``clusters`` how often the mixture places a
    detection in its frozen cluster: clusters from another preprocessing are reproduced
    only approximately.
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
    """:func:`~xrayclass.core.mixture.compare_mixtures` of ``model``'s and the published mixture, with a ``caveat``."""
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
    """Stage 1 on an in-memory table of CSC detections: :func:`cluster_detections` with ``config``."""
    return cluster_detections(
        detections,
        n_components=config.n_components,
        random_state=config.random_state,
        fit_sample=config.fit_sample,
        log_floor=config.log_floor,
        feature_set=config.feature_set,
    )
