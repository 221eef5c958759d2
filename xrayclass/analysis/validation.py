"""Validation of the per-cluster classifier on held-out SIMBAD labels (Figs. 4 and 5).

The labeled detections of the ten classes are split 70/30, stratified by class and
seeded; the 30% are classified with references from the 70% only and compared with
their SIMBAD classes, over several seeds. The preprocessing is fitted on every detection,
as in stage 3 (it uses no labels). A detection-level split (the paper's) lets a source sit
on both sides, which flatters every method; ``group_by_source=True`` keeps sources whole
and is the headline of :func:`compare_splits`. Besides the paper's method: the Gaussian
likelihood (with and without reference priors), the naive Bayes and a supervised
reference (HistGradientBoostingClassifier), each optionally temperature-calibrated.
"""

import logging
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support
from sklearn.model_selection import StratifiedGroupKFold, train_test_split

from xrayclass.constants import (
    AGGREGATE_CLASS,
    AGGREGATE_CLASSES,
    CLASSES,
    CLUSTER,
    LOCATION_FEATURE,
    MAIN_TYPE,
    NAME,
    UNCLASSIFIED,
)
from xrayclass.core.calibration import (
    apply_temperature,
    brier_score,
    expected_calibration_error,
    fit_temperature,
    reliability_curve,
)
from xrayclass.core.checks import canonical_names, require_columns
from xrayclass.core.classifier import ClusterwiseMahalanobis, absolute_galactic_latitude, labels_from_probabilities
from xrayclass.core.features import complete_rows, prepare_features
from xrayclass.core.featuresets import PAPER, FeatureSet
from xrayclass.core.naive_bayes import NaiveBayesClassifier
from xrayclass.core.progress import steps
from xrayclass.core.taxonomy import OTYPE, normalize_types
from xrayclass.exceptions import InputError
from xrayclass.stages.classification import naive_bayes_categories

__all__ = [
    "CALIBRATED",
    "GRADIENT_BOOSTING_MAX_ITER",
    "METHODS",
    "SPLITS",
    "TEST_SIZE",
    "LabeledSet",
    "Method",
    "aggregate_probabilities",
    "calibration_scores",
    "compare_methods",
    "compare_splits",
    "comparison_frame",
    "evaluate",
    "gaussian_method",
    "gradient_boosting_method",
    "labeled_detections",
    "mahalanobis_method",
    "method_table",
    "naive_bayes_method",
    "predict",
    "split",
    "temperature_scaled",
    "validate",
    "validate_once",
]

log = logging.getLogger(__name__)

TEST_SIZE = 0.3


@dataclass
class LabeledSet:
    """The preprocessed labeled detections that validation splits."""

    X: np.ndarray
    labels: np.ndarray
    clusters: np.ndarray
    sources: np.ndarray
    latitude: np.ndarray  # |galactic latitude| / 90 deg, for the naive Bayes location category
    #: The features of ``X`` (their naive-Bayes categories too); default: the paper's 12.
    feature_set: FeatureSet = PAPER
    #: Splits, inner folds and each method's probabilities already computed on this set
    #: (see :func:`split`, :func:`predict`): the methods compared on the same seeded
    #: splits share them instead of recomputing them (a calibrated method reuses its
    #: base method's fit). Every entry is a deterministic function of its key.
    memo: dict = field(default_factory=dict, init=False, repr=False, compare=False)


#: A validation method: ``method(labeled, train, test, classes)`` gives the probabilities
#: (one column per class of ``classes``) of the ``test`` rows from the ``train`` rows.
Method = Callable[[LabeledSet, np.ndarray, np.ndarray, Sequence[str]], np.ndarray]


def _clusterwise_method(**options: str) -> Method:
    """The per-cluster classifier of stage 3 with ``options``: probabilities of the test rows from the train rows."""

    def method(
        labeled: LabeledSet, train: np.ndarray, test: np.ndarray, classes: Sequence[str] = CLASSES
    ) -> np.ndarray:
        model = ClusterwiseMahalanobis(classes, **options).fit(
            labeled.X[train],
            labeled.labels[train],
            labeled.clusters[train],
            all_clusters=np.unique(labeled.clusters[test]),
        )
        return model.predict_proba(labeled.X[test], labeled.clusters[test])

    return method


#: The paper's per-cluster classifier: softmin of the squared Mahalanobis distances.
mahalanobis_method = _clusterwise_method()


def gaussian_method(priors: str = "none") -> Method:
    """Per-cluster Gaussian likelihood (log pseudo-determinant), with or without reference priors."""
    return _clusterwise_method(likelihood="gaussian", priors=priors)


#: Boosting iterations of the supervised reference. scikit-learn's default (100, without
#: early stopping below 10,000 rows) took three quarters of a full comparison (profiled) and, on the
#: 1,000-7,000 training rows of a validation split, fits the train rows more closely than
#: the held-out ones (on the real sample ECE 0.19 at 100 iterations, 0.15 at 50, for an
#: accuracy within the spread over seeds). Early stopping is not an option: its stratified
#: internal split fails on a class with one reference (the sample's XB).
GRADIENT_BOOSTING_MAX_ITER = 50


def gradient_boosting_method(random_state: int = 0, max_iter: int = GRADIENT_BOOSTING_MAX_ITER) -> Method:
    """Supervised reference: scikit-learn's HistGradientBoostingClassifier on the same 12 features."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from threadpoolctl import threadpool_limits

    def method(
        labeled: LabeledSet, train: np.ndarray, test: np.ndarray, classes: Sequence[str] = CLASSES
    ) -> np.ndarray:
        # One OpenMP thread: on a shared machine its busy-waiting threads slow everything
        # down by an order of magnitude, for data this small.
        with threadpool_limits(limits=1, user_api="openmp"):
            model = HistGradientBoostingClassifier(random_state=random_state, max_iter=max_iter).fit(
                labeled.X[train], labeled.labels[train]
            )
            probabilities = np.zeros((len(test), len(classes)))
            columns = pd.Index(list(classes)).get_indexer(model.classes_)
            probabilities[:, columns] = model.predict_proba(labeled.X[test])
        return probabilities

    return method


def predict(
    method: Method, labeled: LabeledSet, train: np.ndarray, test: np.ndarray, classes: Sequence[str] = CLASSES
) -> np.ndarray:
    """``method``'s probabilities of the ``test`` rows from the ``train`` rows, computed once per set.

    Methods are deterministic functions of the rows they see, so a second call with the
    same method and rows (a calibrated method's base, another table of the same splits)
    returns the stored result.
    """
    key = ("predict", method, tuple(classes), np.asarray(train).tobytes(), np.asarray(test).tobytes())
    if key not in labeled.memo:
        labeled.memo[key] = method(labeled, train, test, classes)
    return labeled.memo[key]


def _inner_folds(labeled: LabeledSet, train: np.ndarray, n_folds: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The out-of-fold folds of ``train`` (sources whole, seed 0, as ``out_of_fold_probabilities``)."""
    key = ("folds", n_folds, np.asarray(train).tobytes())
    if key not in labeled.memo:
        folds = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=0)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
            labeled.memo[key] = list(folds.split(np.zeros(len(train)), labeled.labels[train], labeled.sources[train]))
    return labeled.memo[key]


def temperature_scaled(method: Method, n_folds: int = 3) -> Method:
    """``method`` with a temperature fitted out of fold on its train rows only (folds keep sources whole)."""

    def calibrated(
        labeled: LabeledSet, train: np.ndarray, test: np.ndarray, classes: Sequence[str] = CLASSES
    ) -> np.ndarray:
        # The folds (one set per split, shared by every method) as in
        # xrayclass.core.calibration.out_of_fold_probabilities.
        oof = np.zeros((len(train), len(classes)))
        for inner_train, inner_test in _inner_folds(labeled, train, n_folds):
            oof[inner_test] = predict(method, labeled, train[inner_train], train[inner_test], classes)
        truth = pd.Index(list(classes)).get_indexer(labeled.labels[train])
        return apply_temperature(predict(method, labeled, train, test, classes), fit_temperature(oof, truth))

    return calibrated


def naive_bayes_method(location: bool = True, score: str = "macro_f1") -> Method:
    """The optimized naive Bayes as a validation method (weights tuned on the train rows only)."""

    def method(
        labeled: LabeledSet, train: np.ndarray, test: np.ndarray, classes: Sequence[str] = CLASSES
    ) -> np.ndarray:
        X = np.column_stack([labeled.X, labeled.latitude]) if location else labeled.X
        feature_set = labeled.feature_set
        model = NaiveBayesClassifier(
            categories=naive_bayes_categories(location, feature_set),
            feature_names=[*feature_set.features, LOCATION_FEATURE][: X.shape[1]],
            classes=classes,
            scoring=score,
        ).fit(X[train], labeled.labels[train])
        return model.predict_proba(X[test])

    return method


#: Validation methods by name, as the command line offers them.
METHODS: dict[str, Callable[[], Method]] = {
    "mahalanobis": lambda: mahalanobis_method,
    "gaussian": gaussian_method,
    "gaussian-priors": lambda: gaussian_method("references"),
    "naive-bayes": naive_bayes_method,
    "hist-gradient-boosting": gradient_boosting_method,
}
#: Suffix of a temperature-calibrated method's name.
CALIBRATED = "+T"


def method_table(names: Sequence[str], calibrate: bool = False) -> dict[str, Method]:
    """Validation methods by name; with ``calibrate`` each also as ``<name>+T``."""
    methods = {name: METHODS[name]() for name in names}
    if calibrate:
        methods.update({name + CALIBRATED: temperature_scaled(methods[name]) for name in names})
    return methods


def labeled_detections(
    table: pd.DataFrame, classes: Sequence[str] = CLASSES, feature_set: FeatureSet = PAPER
) -> LabeledSet:
    """Preprocess every complete detection (``feature_set``'s features); keep those labeled with one of ``classes``."""
    table = canonical_names(table)
    require_columns(table, (NAME, CLUSTER, MAIN_TYPE, "ra", "dec"))
    table = prepare_features(table, feature_set)
    complete, _ = complete_rows(table, feature_set=feature_set)
    table = table.loc[complete].reset_index(drop=True)
    features = table[list(feature_set.features)].to_numpy(dtype="float64")
    X = feature_set.scaler().fit(features).transform(features)
    # The same reading of SIMBAD's types as stage 3 (today's labels, codes, case).
    types, _ = normalize_types(table[MAIN_TYPE], table[OTYPE] if OTYPE in table.columns else None)
    labeled = np.isin(types, list(classes))
    if labeled.sum() < 10:
        raise InputError(
            f"only {int(labeled.sum())} detections carry one of the ten classes; validation needs labeled detections"
        )
    present = pd.unique(types[labeled])
    if len(present) < 2:
        # Telling classes apart needs two of them; with one, every method is right by
        # construction, and scikit-learn's classifiers refuse a single class.
        raise InputError(
            f"all {int(labeled.sum())} labeled detections are of one class ({present[0]}); "
            "validation needs detections of at least two of the ten classes"
        )
    chosen = table.loc[labeled]
    return LabeledSet(
        X[labeled],
        types[labeled],
        chosen[CLUSTER].to_numpy(dtype=int),
        chosen[NAME].to_numpy(dtype=object),
        absolute_galactic_latitude(chosen),
        feature_set,
    )


def _strata(labels: ArrayLike) -> np.ndarray:
    """Stratification labels: the classes, with those of a single detection pooled (they cannot be split).

    Identical to ``labels`` when every class has two or more detections.
    """
    labels = np.asarray(labels, dtype=object)
    counts = pd.Series(labels).value_counts()
    single = counts.index[counts < 2]
    if not len(single):
        return labels
    strata = np.where(np.isin(labels, single), "__single__", labels).astype(object)
    if len(labels[np.isin(labels, single)]) < 2:  # one lone detection: ride with the commonest class
        strata[strata == "__single__"] = counts.index[0]
    return strata


def split(labeled: LabeledSet, seed: int, group_by_source: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Indices of a stratified 70/30 split (by detection, or keeping sources whole).

    Computed once per set, seed and kind (the grouped split's fold search is the
    slow part of a comparison otherwise).
    """
    key = ("split", seed, bool(group_by_source))
    if key not in labeled.memo:
        labeled.memo[key] = _split(labeled, seed, group_by_source)
    return labeled.memo[key]


def _split(labeled: LabeledSet, seed: int, group_by_source: bool) -> tuple[np.ndarray, np.ndarray]:
    index = np.arange(len(labeled.labels))
    if not group_by_source:
        train, test = train_test_split(index, test_size=TEST_SIZE, stratify=_strata(labeled.labels), random_state=seed)
        return train, test
    # Three folds of ten give 30% test sets; take the first, shuffled by the seed.
    folds = StratifiedGroupKFold(n_splits=10, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        # Classes rarer than the folds are expected (a few references); they go where they can.
        warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
        test = np.concatenate(
            [t for _, (_, t) in zip(range(3), folds.split(index, labeled.labels, labeled.sources), strict=False)]
        )
    return np.setdiff1d(index, test), np.sort(test)


def evaluate(true: np.ndarray, predicted: np.ndarray, labels: Sequence[str]) -> dict[str, Any]:
    """Row-normalized confusion matrix, per-class precision/recall/F1 and accuracy.

    Predictions outside ``labels`` (``Unclassified``) appear as an extra column of
    the confusion matrix when they occur, and count as wrong.
    """
    columns = list(labels) + ([UNCLASSIFIED] if (predicted == UNCLASSIFIED).any() else [])
    counts = confusion_matrix(true, predicted, labels=columns)[: len(labels)]
    rows = counts.sum(axis=1, keepdims=True)
    normalized = np.divide(counts, rows, out=np.full(counts.shape, np.nan), where=rows > 0)
    precision, recall, f1, support = precision_recall_fscore_support(
        true, predicted, labels=list(labels), zero_division=0
    )
    metrics = pd.DataFrame(
        {"precision": precision, "recall": recall, "f1": f1, "support": support}, index=pd.Index(labels, name="class")
    )
    return {
        "confusion": pd.DataFrame(
            normalized, index=pd.Index(labels, name="true"), columns=pd.Index(columns, name="predicted")
        ),
        "metrics": metrics,
        "accuracy": float(np.mean(true == predicted)),
    }


def aggregate_probabilities(probabilities: np.ndarray, classes: Sequence[str] = CLASSES) -> np.ndarray:
    """Probabilities of the aggregated classes: the sum over each one's classes."""
    aggregated = np.zeros((len(probabilities), len(AGGREGATE_CLASSES)))
    for k, label in enumerate(classes):
        aggregated[:, list(AGGREGATE_CLASSES).index(AGGREGATE_CLASS[label])] += probabilities[:, k]
    return aggregated


def calibration_scores(probabilities: np.ndarray, true: np.ndarray, labels: Sequence[str]) -> dict[str, Any]:
    """Brier score, ECE and the reliability-curve sums (to pool over seeds) of one evaluation."""
    truth = pd.Index(list(labels)).get_indexer(pd.Index(true))
    curve = reliability_curve(probabilities, truth)
    return {
        "brier": brier_score(probabilities, truth),
        "ece": expected_calibration_error(probabilities, truth),
        "curve_sums": np.stack(
            [
                np.nan_to_num(curve["confidence"] * curve["count"]),
                np.nan_to_num(curve["accuracy"] * curve["count"]),
                curve["count"],
            ]
        ),
    }


def validate_once(
    labeled: LabeledSet,
    seed: int,
    method: Method = mahalanobis_method,
    classes: Sequence[str] = CLASSES,
    group_by_source: bool = False,
) -> dict[str, Any]:
    """One split: evaluations at the class and aggregated-class level, with calibration scores."""
    train, test = split(labeled, seed, group_by_source)
    probabilities = predict(method, labeled, train, test, classes)
    predicted = labels_from_probabilities(probabilities, classes).astype(object)
    true = labeled.labels[test]
    aggregate = np.vectorize(lambda c: AGGREGATE_CLASS.get(c, c), otypes=[object])
    classes_result = evaluate(true, predicted, classes)
    classes_result.update(calibration_scores(probabilities, true, classes))
    aggregated = evaluate(aggregate(true), aggregate(predicted), AGGREGATE_CLASSES)
    aggregated.update(
        calibration_scores(aggregate_probabilities(probabilities, classes), aggregate(true), AGGREGATE_CLASSES)
    )
    return {"classes": classes_result, "aggregated": aggregated, "n_train": len(train), "n_test": len(test)}


def validate(
    labeled: LabeledSet,
    seeds: Iterable[int],
    method: Method = mahalanobis_method,
    classes: Sequence[str] = CLASSES,
    group_by_source: bool = False,
    name: str = "",
) -> dict[str, Any]:
    """Repeat :func:`validate_once` over ``seeds``; mean and spread of every number.

    ``name`` (of the method) labels the progress shown, one log line per seed.
    """
    runs = []
    seeds = list(seeds)
    for seed in steps(seeds, len(seeds), f"validation ({name})" if name else "validation", " seeds"):
        runs.append(validate_once(labeled, seed, method, classes, group_by_source))
        log.info(
            "%sseed %d (%d of %d): accuracy %.3f, aggregated %.3f",
            f"{name}, " if name else "",
            seed,
            len(runs),
            len(seeds),
            runs[-1]["classes"]["accuracy"],
            runs[-1]["aggregated"]["accuracy"],
        )
    with warnings.catch_warnings():
        # A class absent from every held-out set has NaN rows: their means stay NaN, silently.
        warnings.simplefilter("ignore", RuntimeWarning)
        return _summarize_runs(runs, seeds, group_by_source)


def _summarize_runs(runs: list[dict[str, Any]], seeds: Sequence[int], group_by_source: bool) -> dict[str, Any]:
    summary = {
        "seeds": list(seeds),
        "n_train": runs[0]["n_train"],
        "n_test": runs[0]["n_test"],
        "group_by_source": group_by_source,
    }
    for level in ("classes", "aggregated"):
        confusions = [run[level]["confusion"] for run in runs]
        unclassified = [UNCLASSIFIED] if any(UNCLASSIFIED in m.columns for m in confusions) else []
        columns = list(confusions[0].index) + unclassified
        stacked = np.stack([m.reindex(columns=columns, fill_value=0.0).to_numpy() for m in confusions])
        metrics = np.stack([run[level]["metrics"].to_numpy() for run in runs])
        index = confusions[0].index
        metric_columns = runs[0][level]["metrics"].columns
        accuracies = [run[level]["accuracy"] for run in runs]
        # Macro F1 over the classes present in each held-out set (absent ones have no F1).
        macro_f1 = [float(run[level]["metrics"]["f1"][run[level]["metrics"]["support"] > 0].mean()) for run in runs]
        diagonals = np.stack([np.diag(m.reindex(columns=list(m.index)).to_numpy()) for m in confusions])
        pooled = np.sum([run[level]["curve_sums"] for run in runs], axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            reliability = {"confidence": pooled[0] / pooled[2], "accuracy": pooled[1] / pooled[2], "count": pooled[2]}
        summary[level] = {
            "confusion_mean": pd.DataFrame(np.nanmean(stacked, axis=0), index=index, columns=columns),
            "confusion_std": pd.DataFrame(np.nanstd(stacked, axis=0), index=index, columns=columns),
            "metrics_mean": pd.DataFrame(metrics.mean(axis=0), index=index, columns=metric_columns),
            "metrics_std": pd.DataFrame(metrics.std(axis=0), index=index, columns=metric_columns),
            "accuracy_mean": float(np.mean(accuracies)),
            "accuracy_std": float(np.std(accuracies)),
            "accuracies": accuracies,
            "macro_f1_mean": float(np.mean(macro_f1)),
            "macro_f1_std": float(np.std(macro_f1)),
            "diagonal_mean": pd.Series(np.nanmean(diagonals, axis=0), index=index),
            "diagonal_std": pd.Series(np.nanstd(diagonals, axis=0), index=index),
            "brier_mean": float(np.mean([run[level]["brier"] for run in runs])),
            "brier_std": float(np.std([run[level]["brier"] for run in runs])),
            "ece_mean": float(np.mean([run[level]["ece"] for run in runs])),
            "ece_std": float(np.std([run[level]["ece"] for run in runs])),
            "reliability": reliability,
        }
    return summary


def compare_methods(
    labeled: LabeledSet, seeds: Sequence[int], methods: Mapping[str, Method], group_by_source: bool = False
) -> tuple[dict[str, dict[str, Any]], pd.DataFrame]:
    """Validate several methods on the same seeded splits; results and a summary table."""
    results = {
        name: validate(labeled, seeds, method, group_by_source=group_by_source, name=name)
        for name, method in methods.items()
    }
    rows = []
    for name, result in results.items():
        for level in ("classes", "aggregated"):
            part = result[level]
            f1 = part["metrics_mean"]["f1"]
            row = {
                "method": name,
                "level": level,
                "accuracy": part["accuracy_mean"],
                "accuracy_std": part["accuracy_std"],
                "macro_f1": part["macro_f1_mean"],
                "macro_f1_std": part["macro_f1_std"],
                "brier": part["brier_mean"],
                "brier_std": part["brier_std"],
                "ece": part["ece_mean"],
                "ece_std": part["ece_std"],
                **{f"f1_{label}": float(value) for label, value in f1.items()},
            }
            if level == "aggregated":
                row.update({f"diag_{label}": float(part["diagonal_mean"][label]) for label in AGGREGATE_CLASSES})
                row.update({f"diag_{label}_std": float(part["diagonal_std"][label]) for label in AGGREGATE_CLASSES})
            rows.append(row)
    return results, pd.DataFrame(rows)


#: The two ways of splitting, headline (grouped by source) first.
SPLITS = {"by source": True, "by detection": False}


def compare_splits(
    labeled: LabeledSet, seeds: Sequence[int], methods: Mapping[str, Method]
) -> tuple[dict[str, dict[str, dict[str, Any]]], pd.DataFrame]:
    """:func:`compare_methods` on both splits; one table with a ``split`` column, grouped by source first."""
    results, tables = {}, []
    for split_name, grouped in SPLITS.items():
        results[split_name], table = compare_methods(labeled, seeds, methods, group_by_source=grouped)
        tables.append(table.assign(split=split_name))
    table = pd.concat(tables, ignore_index=True)
    return results, table[["split", *[c for c in table.columns if c != "split"]]]


def comparison_frame(table: pd.DataFrame) -> pd.DataFrame:
    """The method comparison for reading: one row per (split,) method, each quantity as "mean ± std"."""
    classes = table[table["level"] == "classes"].reset_index(drop=True)
    aggregated = table[table["level"] == "aggregated"].reset_index(drop=True)
    keys = ["split", "method"] if "split" in table.columns else ["method"]
    rows = classes[keys].copy()

    def pm(frame: pd.DataFrame, column: str) -> pd.Series:
        return frame[column].map("{:.3f}".format) + " ± " + frame[f"{column}_std"].map("{:.3f}".format)

    rows["accuracy"] = pm(classes, "accuracy")
    rows["macro F1"] = pm(classes, "macro_f1")
    for label in AGGREGATE_CLASSES:
        rows[f"{label} diag"] = pm(aggregated, f"diag_{label}")
    rows["ECE"] = pm(classes, "ece")
    rows["Brier"] = pm(classes, "brier")
    return rows
