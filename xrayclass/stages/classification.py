"""Stage 3: class probabilities for the unlabeled detections of each cluster.

:func:`run_classification` reads top to bottom: :func:`checked_input`, each detection's
role and the :func:`reference_census`, :func:`fit_classifier`,
:meth:`~xrayclass.core.classifier.ClassifierModel.classify` and :func:`assemble_classified`.
The engines call the same functions on batches and partitions.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import ArrayLike

from xrayclass.constants import (
    CLASSES,
    CLASSIFIER_METHODS,
    CLUSTER,
    LIKELIHOODS,
    LOCATION_FEATURE,
    MAIN_TYPE,
    NAME,
    NB_SCORES,
    NO_MATCH,
    OBSID,
    OUTLIER_FRACTION,
    OUTLIER_PERCENTILES,
    PRIORS,
    UNCLASSIFIED,
    UNINFORMATIVE_TYPES,
)
from xrayclass.core.calibration import temperature_out_of_fold
from xrayclass.core.checks import (
    canonical_names,
    require_choice,
    require_columns,
    require_log_features_usable,
    require_numeric,
    require_roles,
)
from xrayclass.core.classifier import (
    ClassifierModel,
    ClusterwiseMahalanobis,
    absolute_galactic_latitude,
)
from xrayclass.core.features import complete_rows, describe_dropped, prepare_features
from xrayclass.core.featuresets import PAPER, FeatureSet
from xrayclass.core.naive_bayes import NaiveBayesClassifier
from xrayclass.core.parallel import map_row_blocks
from xrayclass.core.preprocessing import LogMinMaxScaler
from xrayclass.core.sampling import content_order, seeded_subsample
from xrayclass.core.taxonomy import OTYPE, LabelReport, normalize_types
from xrayclass.exceptions import InputError

__all__ = [
    "OTHER_TYPE",
    "OUTLIER_COLUMNS",
    "OUTLIER_FRACTION",
    "REFERENCE",
    "REQUIRED_COLUMNS",
    "SIMBAD_TYPE",
    "TO_CLASSIFY",
    "UNKNOWN_LABEL_SHARE",
    "YARDSTICK_SAMPLE",
    "ClassificationConfig",
    "ClassifierModel",
    "LabelError",
    "absolute_galactic_latitude",
    "assemble_classified",
    "census_table",
    "check_labels",
    "checked_input",
    "detection_roles",
    "fit_calibration",
    "fit_classifier",
    "log_census",
    "log_classified",
    "log_fit",
    "log_naive_bayes",
    "log_references",
    "log_roles",
    "naive_bayes_categories",
    "outlier_table",
    "output_order",
    "passthrough_columns",
    "reference_census",
    "roles_of_canonical",
    "run_classification",
    "weights_needed",
]

log = logging.getLogger(__name__)

#: Name of the input's SIMBAD type in the output (``main_type`` becomes the prediction).
SIMBAD_TYPE = "simbad_main_type"
#: References whose outlier measures make the yardstick at most (a seeded subsample
#: beyond; the paper's catalog has fewer).
YARDSTICK_SAMPLE = 50_000


@dataclass(frozen=True)
class ClassificationConfig:
    """Stage 3's choices; the defaults are the paper's.

    ``method``: the paper's per-cluster Mahalanobis softmin or the naive Bayes;
    ``likelihood`` and ``priors``: the Mahalanobis scoring (softmin of distances or
    Gaussian log-density; no priors or each class's share of the references);
    ``log_floor``: lower bound on the log shift (``None``: the paper's rule);
    ``calibrate``: a temperature fitted out of fold; ``location``: naive Bayes with
    |galactic latitude|; ``nb_score``: what its weights are tuned for;
    ``outlier_fraction``: the top share of the references' outlier measure flagged;
    ``explain``: outlier measures and tracks; ``strict_labels``: stop instead of warning
    on missing classes or unknown SIMBAD types; ``feature_set``: the stage-1 model's.
    """

    method: Literal["mahalanobis", "naive-bayes"] = "mahalanobis"
    likelihood: Literal["distance", "gaussian"] = "distance"
    priors: Literal["none", "references"] = "none"
    log_floor: float | None = None
    calibrate: bool = False
    location: bool = True
    nb_score: Literal["macro_f1", "rarest_f1"] = "macro_f1"
    outlier_fraction: float = OUTLIER_FRACTION
    explain: bool = True
    strict_labels: bool = False
    feature_set: FeatureSet = PAPER

    def __post_init__(self) -> None:
        require_choice("method", self.method, CLASSIFIER_METHODS)
        require_choice("likelihood", self.likelihood, LIKELIHOODS)
        require_choice("priors", self.priors, PRIORS)
        require_choice("nb_score", self.nb_score, NB_SCORES)
        if not 0 < self.outlier_fraction < 1:
            raise InputError(f"outlier_fraction must be between 0 and 1, got {self.outlier_fraction}")
        if self.log_floor is not None and not self.log_floor > 0:
            raise InputError(f"log_floor must be positive, got {self.log_floor}")


# -- the input ------------------------------------------------------------------------

REQUIRED_COLUMNS = (NAME, OBSID, CLUSTER, "ra", "dec")


def passthrough_columns(columns: Sequence[str], feature_set: FeatureSet = PAPER) -> list[str]:
    """The input columns stage 3 passes through to its output in their order: all but those it puts first."""
    return [c for c in columns if c not in (*REQUIRED_COLUMNS, MAIN_TYPE, *feature_set.features)]


def checked_input(table: pd.DataFrame, feature_set: FeatureSet = PAPER) -> pd.DataFrame:
    """Stage 3's checks of a table (or batch): identity, position, cluster and ``main_type`` columns, features.

    Returns the table with the feature set's derived features added.
    """
    table = canonical_names(table)
    require_columns(table, REQUIRED_COLUMNS)
    if MAIN_TYPE not in table.columns:
        raise InputError(f"missing required columns: {MAIN_TYPE} (run the crossmatch stage first)")
    table = require_numeric(table, (OBSID, CLUSTER, "ra", "dec"))
    if table[CLUSTER].isna().any():
        raise InputError(f"column 'cluster' is empty in {int(table[CLUSTER].isna().sum()):,} rows")
    return prepare_features(table, feature_set)


# -- roles and census -----------------------------------------------------------------

#: What stage 3 does with a detection, from its SIMBAD type.
REFERENCE, TO_CLASSIFY, OTHER_TYPE = "reference", "to_classify", "other_type"

#: Share of matched detections with a SIMBAD type the taxonomy does not know above which stage 3 warns.
UNKNOWN_LABEL_SHARE = 0.05


class LabelError(InputError):
    """The SIMBAD types cannot support the classification (``--strict-labels``)."""


def detection_roles(
    main_types: ArrayLike,
    classes: Sequence[str] = CLASSES,
    uninformative: Sequence[str] = UNINFORMATIVE_TYPES,
    otypes: ArrayLike | None = None,
) -> np.ndarray:
    """Role of each detection from its SIMBAD ``main_type`` (and ``otype``), read as the paper's names.

    One of ``classes``: a reference; unmatched (``'NaN'``) or uninformative: to classify;
    any other type: left out.
    """
    types, _ = normalize_types(main_types, otypes)
    return roles_of_canonical(types, classes, uninformative)


def roles_of_canonical(
    types: np.ndarray, classes: Sequence[str], uninformative: Sequence[str], log_them: bool = False
) -> np.ndarray:
    """:func:`detection_roles` of types already read as the paper's names (logged, with ``log_them``)."""
    # Decided per distinct type (a catalog has few), then given to the rows.
    codes, distinct = pd.factorize(types)
    roles = np.full(len(distinct), OTHER_TYPE, dtype=object)
    roles[np.isin(distinct, list(classes))] = REFERENCE
    roles[np.isin(distinct, [NO_MATCH, *uninformative])] = TO_CLASSIFY
    if log_them:
        log_roles(np.asarray(distinct, dtype=object), roles, np.bincount(codes[codes >= 0], minlength=len(distinct)))
    return roles[codes]


def log_roles(distinct: np.ndarray, roles: np.ndarray, counts: np.ndarray) -> None:
    """Log the roles of the rows, given per distinct type: its role and how many rows have it."""
    to_classify = roles == TO_CLASSIFY
    n_to_classify = int(counts[to_classify].sum())
    n_unmatched = int(counts[to_classify & (distinct == NO_MATCH)].sum())
    log.info(
        "%s references of the %d classes; %s to classify (%s without a SIMBAD match, %s of an "
        "uninformative type); %s of other SIMBAD types left out",
        f"{int(counts[roles == REFERENCE].sum()):,}",
        len(CLASSES),
        f"{n_to_classify:,}",
        f"{n_unmatched:,}",
        f"{n_to_classify - n_unmatched:,}",
        f"{int(counts[roles == OTHER_TYPE].sum()):,}",
    )
    # The most common first; among equal counts, the first seen (as value_counts orders them).
    other = np.flatnonzero(roles == OTHER_TYPE)
    common = other[np.argsort(-counts[other], kind="stable")][:8]
    if len(common):
        log.info("most common left-out types: %s", ", ".join(f"{distinct[k]} {counts[k]:,}" for k in common))


def reference_census(
    types: ArrayLike,
    roles: ArrayLike,
    clusters: ArrayLike,
    classes: Sequence[str] = CLASSES,
    labels: LabelReport | None = None,
    all_clusters: ArrayLike | None = None,
) -> dict[str, Any]:
    """How many references of each class stage 3 has, in total and per cluster (every cluster, zeros too).

    ``types`` are canonical names, ``roles`` from :func:`detection_roles`; ``all_clusters``
    when the rows given are only some of the table's.
    """
    is_reference = np.asarray(roles) == REFERENCE
    clusters = np.asarray(clusters)
    all_clusters = [int(c) for c in np.unique(clusters if all_clusters is None else all_clusters)]
    # (class, cluster) pairs counted as one index; a type or cluster outside those is not counted.
    class_codes = pd.Index(list(classes)).get_indexer(np.asarray(types, dtype=object)[is_reference])
    cluster_codes = pd.Index(all_clusters).get_indexer(clusters[is_reference].astype(int))
    counted = (class_codes >= 0) & (cluster_codes >= 0)
    matrix = np.bincount(
        class_codes[counted] * len(all_clusters) + cluster_codes[counted], minlength=len(classes) * len(all_clusters)
    ).reshape(len(classes), len(all_clusters))
    census: dict[str, Any] = {
        "references": int(is_reference.sum()),
        "clusters": all_clusters,
        "classes": {
            label: {
                "total": int(matrix[i].sum()),
                "per_cluster": {str(c): int(matrix[i, j]) for j, c in enumerate(all_clusters)},
            }
            for i, label in enumerate(classes)
        },
        "classes_without_references": [label for i, label in enumerate(classes) if int(matrix[i].sum()) == 0],
    }
    if labels is not None:
        census["labels"] = labels.to_dict()
    return census


def census_table(census: Mapping[str, Any]) -> pd.DataFrame:
    """The census as a table: one row per class, its total and one column per cluster."""
    rows = [
        {"class": label, "total": entry["total"], **{f"cluster {c}": n for c, n in entry["per_cluster"].items()}}
        for label, entry in census["classes"].items()
    ]
    return pd.DataFrame(rows)


def check_labels(census: Mapping[str, Any], labels: LabelReport, strict: bool) -> None:
    """Warn (or, if ``strict``, stop) when the types cannot support the classification."""
    problems = []
    missing = census["classes_without_references"]
    if missing:
        problems.append(
            f"{len(missing)} of {len(census['classes'])} classes have no reference in any cluster "
            f"({', '.join(missing)})"
        )
    if labels.unknown_share > UNKNOWN_LABEL_SHARE:
        problems.append(
            f"{100 * labels.unknown_share:.1f}% of the {labels.n_matched:,} matched detections carry "
            f"a SIMBAD type the taxonomy does not know (most common: {labels.most_common_unknown()})"
        )
    if not problems:
        return
    if strict:
        raise LabelError("; ".join(problems) + " (--strict-labels)")
    for problem in problems:
        log.warning("%s", problem)


def log_census(census: Mapping[str, Any]) -> None:
    table = census_table(census).set_index("class")
    log.info(
        "reference census (SIMBAD-labeled detections stage 3 learns from), per class and cluster:\n%s",
        table.to_string(),
    )


# -- the fit --------------------------------------------------------------------------


def naive_bayes_categories(location: bool = True, feature_set: FeatureSet = PAPER) -> dict[str, tuple[str, ...]]:
    """The naive Bayes feature categories of ``feature_set``, optionally with location (|b|)."""
    categories = dict(feature_set.categories())
    if location:
        categories["location"] = (LOCATION_FEATURE,)
    return categories


def weights_needed(method: str, explain: bool) -> bool:
    """Whether stage 3 uses the naive Bayes category weights (its probabilities, or the outlier measures)."""
    return method == "naive-bayes" or bool(explain)


def fit_classifier(
    table: pd.DataFrame,
    classes: Sequence[str] = CLASSES,
    uninformative: Sequence[str] = UNINFORMATIVE_TYPES,
    min_references: int | str = "n_features",
    method: str = "mahalanobis",
    location: bool = True,
    score: str = "macro_f1",
    random_state: int = 0,
    tune: bool = True,
    scaler: LogMinMaxScaler | None = None,
    all_clusters: Sequence[int] | np.ndarray | None = None,
    likelihood: str = "distance",
    priors: str = "none",
    log_floor: float | None = None,
    calibrate: bool = False,
    feature_set: FeatureSet = PAPER,
    latitude: np.ndarray | None = None,
    roles: np.ndarray | None = None,
) -> tuple[ClassifierModel, np.ndarray]:
    """Fit the preprocessing on every complete row, then both classifiers on the references.

    ``table`` has complete features and a ``main_type`` without gaps. The naive Bayes is
    fitted whatever ``method`` is (it gives the outlier measures; ``tune=False`` leaves
    its weights equal). A ``scaler`` fitted beforehand replaces the fit on ``table``,
    which may then hold only the references, ``all_clusters`` naming every cluster.
    ``latitude`` and ``roles`` (then ``main_type`` holds the paper's names) when the
    caller has them. Every fit runs on the references in the order of their content, so
    the model does not depend on the row order. Returns the model and the references'
    preprocessed features, in that order.
    """
    if method not in CLASSIFIER_METHODS:
        raise ValueError(f"method must be one of {CLASSIFIER_METHODS}, got {method!r}")
    if roles is None:
        types, _ = normalize_types(table[MAIN_TYPE])
        roles = roles_of_canonical(types, classes, uninformative)
    else:
        types = table[MAIN_TYPE].to_numpy(dtype=object)
    is_reference = roles == REFERENCE
    clusters = table[CLUSTER].to_numpy()
    if scaler is None:
        scaler = feature_set.scaler(log_floor=log_floor).fit(table[list(feature_set.features)])
    elif list(scaler.features) != list(feature_set.features):
        raise ValueError(f"the scaler's features {list(scaler.features)} are not the feature set's")
    # Only the references are fitted on: transform (and place on the sky) those alone.
    X = scaler.transform(table.loc[is_reference, list(feature_set.features)].to_numpy(dtype="float64"))
    # Fixed-width text: the estimators' label checks sort these, far faster than objects.
    reference_types, reference_clusters = types[is_reference].astype(str), clusters[is_reference]
    if location:
        reference_latitude = (
            absolute_galactic_latitude(table.loc[is_reference, ["ra", "dec"]])
            if latitude is None
            else np.asarray(latitude)[is_reference]
        )
        X_nb = np.column_stack([X, reference_latitude])
    else:
        X_nb = X
    sources = table.loc[is_reference, NAME].to_numpy(dtype=object) if calibrate else None
    order = _reference_order(X_nb, reference_types, reference_clusters, sources)
    X, X_nb = X[order], X_nb[order]
    reference_types, reference_clusters = reference_types[order], reference_clusters[order]
    sources = None if sources is None else sources[order]
    references = ClusterwiseMahalanobis(classes, min_references, likelihood, priors).fit(
        X,
        reference_types,
        reference_clusters,
        all_clusters=np.unique(clusters) if all_clusters is None else all_clusters,
    )
    naive_bayes = NaiveBayesClassifier(
        categories=naive_bayes_categories(location, feature_set),
        feature_names=[*feature_set.features, LOCATION_FEATURE][: X_nb.shape[1]],
        classes=classes,
        scoring=score,
        random_state=random_state,
        tune=tune,
    ).fit(X_nb, reference_types)
    # The references' own outlier measures (for their SIMBAD class) are the yardstick.
    yardstick = seeded_subsample(len(X_nb), YARDSTICK_SAMPLE, random_state)
    training = naive_bayes.explain(X_nb[yardstick], assigned=reference_types[yardstick])["outlier_measure"]
    quantiles = np.percentile(training, OUTLIER_PERCENTILES)
    model = ClassifierModel(
        scaler, references, naive_bayes, quantiles, location, method, tuple(uninformative), feature_set=feature_set
    )
    if calibrate:
        assert sources is not None  # read above when calibrating
        model.calibration = fit_calibration(
            model, X, X_nb, reference_types, reference_clusters, sources, min_references, score, random_state
        )
    return model, X


def _reference_order(
    X_nb: np.ndarray, types: np.ndarray, clusters: np.ndarray, sources: np.ndarray | None
) -> np.ndarray:
    """:func:`~xrayclass.core.sampling.content_order` of the references; ``sources`` only break ties.

    So ``--calibrate`` leaves the other fits as they are without it.
    """
    content = pd.DataFrame(X_nb, copy=False)
    content.columns = [f"x{j}" for j in range(X_nb.shape[1])]
    content["type"], content["cluster"] = types, clusters
    return content_order(content, None if sources is None else pd.DataFrame({"source": sources}))


def fit_calibration(
    model: ClassifierModel,
    X: np.ndarray,
    X_nb: np.ndarray,
    labels: np.ndarray,
    clusters: np.ndarray,
    sources: np.ndarray,
    min_references: int | str = "n_features",
    score: str = "macro_f1",
    random_state: int = 0,
) -> dict[str, Any]:
    """Temperature of ``model.method`` fitted on the references' out-of-fold probabilities (folds by source)."""
    classes = model.classes
    references = model.references

    def fit_predict(train: np.ndarray, test: np.ndarray) -> np.ndarray:
        if model.method == "mahalanobis":
            fold = ClusterwiseMahalanobis(classes, min_references, references.likelihood, references.priors)
            fold.fit(X[train], labels[train], clusters[train], all_clusters=np.unique(clusters))
            return fold.predict_proba(X[test], clusters[test])
        nb = model.naive_bayes
        fold = NaiveBayesClassifier(
            categories=nb.categories,
            feature_names=nb.feature_names,
            classes=classes,
            scoring=score,
            random_state=random_state,
        ).fit(X_nb[train], labels[train])
        return fold.predict_proba(X_nb[test])

    calibration = temperature_out_of_fold(fit_predict, labels, sources, classes, seed=random_state)
    calibration["for_method"] = model.method
    if model.method == "mahalanobis":
        calibration.update(likelihood=references.likelihood, priors=references.priors)
    log.info(
        "calibration of %s: temperature %.3f (out of fold, 3 folds by source); ECE %s -> %s, Brier %s -> %s",
        model.method,
        calibration["temperature"],
        *(
            "undefined" if calibration[key] is None else f"{calibration[key]:.3f}"
            for key in ("ece_before", "ece_after", "brier_before", "brier_after")
        ),
    )
    return calibration


def log_naive_bayes(model: ClassifierModel) -> None:
    nb = model.naive_bayes
    weights = ", ".join(f"{name} {weight:g}" for name, weight in nb.alpha_.items())
    if not nb.tune:
        log.info(
            "naive Bayes category weights left equal (%s): not used by Mahalanobis probabilities "
            "without outlier measures",
            weights,
        )
    elif nb.tuning_:
        log.info(
            "naive Bayes category weights %s (tuned for %s: %.3f out-of-fold, %.3f with equal weights)",
            weights,
            nb.scoring,
            nb.tuning_[0][1],
            nb.equal_weight_score_,
        )
    else:
        log.info("naive Bayes category weights %s", weights)


def log_references(model: ClassifierModel) -> None:
    """Log, per cluster, the classes that get probability 0 there."""
    for cluster, classifier in model.references.classifiers_.items():
        unscored = [c for c, ok in zip(model.classes, classifier.scored_, strict=False) if not ok]
        if unscored:
            log.info(
                "cluster %s: probability 0 for %s (fewer than %d references)",
                cluster,
                ", ".join(unscored),
                len(model.feature_set),
            )


# -- the output and the stage ---------------------------------------------------------


def assemble_classified(
    chosen: pd.DataFrame,
    result: pd.DataFrame,
    classes: Sequence[str] = CLASSES,
    feature_set: FeatureSet = PAPER,
    passthrough: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The stage-3 output of the classified rows ``chosen`` and their :meth:`ClassifierModel.classify` ``result``.

    The other input columns come last: those of ``passthrough`` (the same rows) or of ``chosen``.
    """
    explanation = [c for c in result.columns if c not in (MAIN_TYPE, *classes)]
    front = [NAME, OBSID, CLUSTER, "ra", "dec", MAIN_TYPE, *classes, *feature_set.features, SIMBAD_TYPE, *explanation]
    others = chosen if passthrough is None else passthrough
    rest = [c for c in others.columns if c not in front]
    return pd.concat(
        [
            chosen[[NAME, OBSID, CLUSTER, "ra", "dec"]].reset_index(drop=True),
            result[[MAIN_TYPE, *classes]],
            chosen[list(feature_set.features)].reset_index(drop=True),
            pd.DataFrame({SIMBAD_TYPE: chosen[MAIN_TYPE].to_numpy()}),
            result[explanation],
            others[rest].reset_index(drop=True),
        ],
        axis=1,
    )


#: Columns of the outlier table, before the features.
OUTLIER_COLUMNS = (
    NAME,
    OBSID,
    "ra",
    "dec",
    CLUSTER,
    MAIN_TYPE,
    SIMBAD_TYPE,
    "outlier_measure",
    "outlier_percentile",
    "driven_by",
)


def outlier_table(classified: pd.DataFrame, feature_set: FeatureSet = PAPER) -> pd.DataFrame:
    """The flagged detections, most outlying first, with their features (empty without outlier measures)."""
    if "outlier_flag" not in classified.columns:
        return pd.DataFrame(columns=[*OUTLIER_COLUMNS, *feature_set.features])
    flagged = classified[classified["outlier_flag"].astype(bool)]
    flagged = flagged.sort_values("outlier_measure", ascending=False, kind="stable")
    return flagged[[*OUTLIER_COLUMNS, *feature_set.features]].reset_index(drop=True)


def output_order(chosen: pd.DataFrame) -> np.ndarray:
    """The positions of ``chosen``'s rows sorted by name then obsid (stable; names by code point, missing last)."""
    keys = pa.table({NAME: pa.array(chosen[NAME]), OBSID: pa.array(chosen[OBSID])})
    return pc.sort_indices(keys, sort_keys=[(NAME, "ascending"), (OBSID, "ascending")]).to_numpy()


def run_classification(
    crossmatched: pd.DataFrame, config: ClassificationConfig = ClassificationConfig()
) -> tuple[pd.DataFrame, ClassifierModel]:
    """Stage 3 on a crossmatched table (the stage-2 output or a frozen crossmatch file).

    ``crossmatched`` has ``name`` (or ``name_1``), ``obsid``, ``cluster``, ``ra``, ``dec``,
    ``main_type`` (SIMBAD type, any spelling; missing means no match), optionally ``otype``,
    and the features (or their raw columns).

    Returns
    -------
    classified : pandas.DataFrame
        One row per classified detection, sorted by name then obsid: identity, the
        predicted ``main_type``, the probabilities, the features, ``simbad_main_type``
        (the paper's name), the outlier columns and track, then the other input columns.
    model : ClassifierModel
        With its ``census`` (:func:`reference_census`).

    Raises
    ------
    InputError
        Unusable columns, no reference or nothing to classify, a log feature without a
        shift; :class:`LabelError` with ``strict_labels``.
    """
    feature_set = config.feature_set
    table = checked_input(crossmatched, feature_set)
    log.info("%s detections read", f"{len(table):,}")
    complete, reasons = complete_rows(table, feature_set=feature_set)
    kept = np.flatnonzero(complete)
    log.info(describe_dropped(reasons, len(table) - len(kept), len(table), len(feature_set)))
    # The method reads a few columns; the others only pass through, gathered once at the end.
    used = [c for c in (*REQUIRED_COLUMNS, MAIN_TYPE, OTYPE, *feature_set.features) if c in table.columns]
    work = table[used].take(kept).reset_index(drop=True)

    # Roles and census of the SIMBAD types read as the paper's names, kept as Python strings.
    types, labels = normalize_types(work[MAIN_TYPE], work[OTYPE] if OTYPE in work.columns else None)
    for level, message in labels.messages():
        getattr(log, level)("%s", message)
    work = work.assign(
        **{MAIN_TYPE: pd.Series(types, index=work.index, dtype=object)}, **{CLUSTER: work[CLUSTER].astype(int)}
    )
    roles = roles_of_canonical(types, CLASSES, UNINFORMATIVE_TYPES, log_them=True)
    census = reference_census(types, roles, work[CLUSTER].to_numpy(), CLASSES, labels)
    log_census(census)
    check_labels(census, labels, config.strict_labels)
    require_roles(roles, REFERENCE, TO_CLASSIFY)
    require_log_features_usable(work, list(feature_set.log_features), list(feature_set.log_features))
    latitude = absolute_galactic_latitude(work) if config.location else None

    model, _ = fit_classifier(
        work,
        method=config.method,
        location=config.location,
        score=config.nb_score,
        tune=weights_needed(config.method, config.explain),
        likelihood=config.likelihood,
        priors=config.priors,
        log_floor=config.log_floor,
        calibrate=config.calibrate,
        feature_set=feature_set,
        latitude=latitude,
        roles=roles,
    )
    model.census = census
    log_fit(model, CLASSES, config.likelihood, config.priors)

    # Classified in the output's order (each row's result depends on that row alone).
    to_classify = np.flatnonzero(roles == TO_CLASSIFY)
    order = to_classify[output_order(work.iloc[to_classify])]
    chosen = work.take(order).reset_index(drop=True)
    clusters = chosen[CLUSTER].to_numpy()
    chosen_latitude = None if latitude is None else latitude[order]

    def classify_rows(rows: slice) -> pd.DataFrame:
        return model.classify(
            chosen.iloc[rows],
            clusters[rows],
            config.method,
            config.outlier_fraction,
            config.explain,
            config.calibrate,
            latitude=None if chosen_latitude is None else chosen_latitude[rows],
        )

    result = pd.concat(map_row_blocks(classify_rows, len(chosen)), ignore_index=True)
    unclassified = (result[MAIN_TYPE] == UNCLASSIFIED).to_numpy()
    log_classified(
        int(unclassified.sum()),
        np.unique(chosen[CLUSTER].to_numpy()[unclassified]),
        int(result["outlier_flag"].sum()) if config.explain else 0,
        config.method,
        config.outlier_fraction,
        config.explain,
        feature_set,
    )
    passthrough = table[passthrough_columns(list(table.columns), feature_set)].take(kept[order])
    classified = assemble_classified(chosen, result, CLASSES, feature_set, passthrough)
    log.info("%s detections of %s sources classified", f"{len(classified):,}", f"{classified[NAME].nunique():,}")
    return classified, model


def log_fit(model: ClassifierModel, classes: Sequence[str], likelihood: str, priors: str) -> None:
    """Log what the fit of stage 3 chose (every engine says it so)."""
    log_references(model)
    log_naive_bayes(model)
    log.info("Mahalanobis scoring: likelihood %s, priors %s", likelihood, priors)


def log_classified(
    n_unclassified: int,
    clusters_hit: Sequence[int] | np.ndarray,
    n_flagged: int,
    method: str,
    outlier_fraction: float,
    explain: bool,
    feature_set: FeatureSet = PAPER,
) -> None:
    """Log the classification's outcome: the rows left unclassified, the outliers flagged."""
    if n_unclassified:
        log.warning(
            "%s detections in clusters %s cannot be classified: no class there has %d "
            "references; they get main_type '%s' and all-zero probabilities",
            f"{n_unclassified:,}",
            ", ".join(map(str, clusters_hit)),
            len(feature_set),
            UNCLASSIFIED,
        )
    if explain:
        log.info(
            "probabilities by %s; %s detections flagged as outliers (top %g%% of the references' outlier measure)",
            method,
            f"{n_flagged:,}",
            100 * outlier_fraction,
        )
    else:
        log.info("probabilities by %s; outlier measures and tracks skipped", method)
