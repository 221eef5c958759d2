"""Validation of the per-cluster classifier on held-out SIMBAD labels (Figs. 4 and 5).

The labeled detections of the ten classes are split 70/30, stratified by class and
seeded; the 30% are classified as if they had no label, with references from the 70%
only, and the predictions are compared with their SIMBAD classes. The preprocessing
is fitted on every detection, as in stage 3 (it uses no labels). Repeating the split
over several seeds gives the spread of every number.

Detections of one source are correlated, so a detection-level split (the paper's)
lets a source sit on both sides; ``group_by_source=True`` keeps each source on one
side for a stricter estimate.
"""

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support
from sklearn.model_selection import StratifiedGroupKFold, train_test_split

from xrayclass.core.classifier import ClusterwiseMahalanobis, labels_from_probabilities
from xrayclass.constants import AGGREGATE_CLASS, AGGREGATE_CLASSES, CLASSES, CLUSTER, FEATURES, MAIN_TYPE, NAME, UNCLASSIFIED
from xrayclass.core.features import complete_rows, prepare_features
from xrayclass.io.tables import InputError, canonical_names, require_columns
from xrayclass.core.preprocessing import LogMinMaxScaler
from xrayclass.core.progress import steps
from xrayclass.core.taxonomy import OTYPE, normalize_types

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


def mahalanobis_method(labeled, train, test, classes=CLASSES):
    """The paper's per-cluster classifier: probabilities of the test rows from the train rows."""
    model = ClusterwiseMahalanobis(classes).fit(labeled.X[train], labeled.labels[train], labeled.clusters[train],
                                                all_clusters=np.unique(labeled.clusters[test]))
    return model.predict_proba(labeled.X[test], labeled.clusters[test])


def naive_bayes_method(location=True, score="macro_f1"):
    """The optimized naive Bayes as a validation method (weights tuned on the train rows only)."""
    from xrayclass.stages.classification import naive_bayes_categories
    from xrayclass.constants import LOCATION_FEATURE
    from xrayclass.core.naive_bayes import NaiveBayesClassifier

    def method(labeled, train, test, classes=CLASSES):
        X = np.column_stack([labeled.X, labeled.latitude]) if location else labeled.X
        model = NaiveBayesClassifier(categories=naive_bayes_categories(location),
                                     feature_names=[*FEATURES, LOCATION_FEATURE][: X.shape[1]],
                                     classes=classes, scoring=score).fit(X[train], labeled.labels[train])
        return model.predict_proba(X[test])

    return method


#: Validation methods by name, as the command line offers them.
METHODS = {"mahalanobis": lambda: mahalanobis_method, "naive-bayes": naive_bayes_method}


def labeled_detections(table, path, classes=CLASSES):
    """Preprocess every complete detection and keep those labeled with one of ``classes``."""
    from xrayclass.stages.classification import absolute_galactic_latitude

    table = canonical_names(table, path)
    require_columns(table, (NAME, CLUSTER, MAIN_TYPE, "ra", "dec"), path)
    table = prepare_features(table, path)
    complete, _ = complete_rows(table)
    table = table.loc[complete].reset_index(drop=True)
    features = table[list(FEATURES)].to_numpy(dtype="float64")
    X = LogMinMaxScaler().fit(features).transform(features)
    # The same reading of SIMBAD's types as stage 3 (today's labels, codes, case).
    types, _ = normalize_types(table[MAIN_TYPE], table[OTYPE] if OTYPE in table.columns else None)
    labeled = np.isin(types, list(classes))
    if labeled.sum() < 10:
        raise InputError(f"{path}: only {int(labeled.sum())} detections carry one of the ten classes; "
                         "validation needs labeled detections")
    chosen = table.loc[labeled]
    return LabeledSet(X[labeled], types[labeled], chosen[CLUSTER].to_numpy(dtype=int),
                      chosen[NAME].to_numpy(dtype=object), absolute_galactic_latitude(chosen))


def split(labeled, seed, group_by_source=False):
    """Indices of a stratified 70/30 split (by detection, or keeping sources whole)."""
    index = np.arange(len(labeled.labels))
    if not group_by_source:
        return train_test_split(index, test_size=TEST_SIZE, stratify=labeled.labels, random_state=seed)
    # Three folds of ten give 30% test sets; take the first, shuffled by the seed.
    folds = StratifiedGroupKFold(n_splits=10, shuffle=True, random_state=seed)
    test = np.concatenate([t for _, (_, t) in zip(range(3), folds.split(index, labeled.labels, labeled.sources))])
    return np.setdiff1d(index, test), np.sort(test)


def evaluate(true, predicted, labels):
    """Row-normalized confusion matrix, per-class precision/recall/F1 and accuracy.

    Predictions outside ``labels`` (``Unclassified``) appear as an extra column of
    the confusion matrix when they occur, and count as wrong.
    """
    columns = list(labels) + ([UNCLASSIFIED] if (predicted == UNCLASSIFIED).any() else [])
    counts = confusion_matrix(true, predicted, labels=columns)[: len(labels)]
    rows = counts.sum(axis=1, keepdims=True)
    normalized = np.divide(counts, rows, out=np.full(counts.shape, np.nan), where=rows > 0)
    precision, recall, f1, support = precision_recall_fscore_support(
        true, predicted, labels=list(labels), zero_division=0)
    metrics = pd.DataFrame({"precision": precision, "recall": recall, "f1": f1, "support": support},
                           index=pd.Index(labels, name="class"))
    return {
        "confusion": pd.DataFrame(normalized, index=pd.Index(labels, name="true"),
                                  columns=pd.Index(columns, name="predicted")),
        "metrics": metrics,
        "accuracy": float(np.mean(true == predicted)),
    }


def validate_once(labeled, seed, method=mahalanobis_method, classes=CLASSES, group_by_source=False):
    """One split: evaluations at the class and aggregated-class level."""
    train, test = split(labeled, seed, group_by_source)
    probabilities = method(labeled, train, test, classes)
    predicted = labels_from_probabilities(probabilities, classes).astype(object)
    true = labeled.labels[test]
    aggregate = np.vectorize(lambda c: AGGREGATE_CLASS.get(c, c), otypes=[object])
    return {
        "classes": evaluate(true, predicted, classes),
        "aggregated": evaluate(aggregate(true), aggregate(predicted), AGGREGATE_CLASSES),
        "n_train": len(train),
        "n_test": len(test),
    }


def validate(labeled, seeds, method=mahalanobis_method, classes=CLASSES, group_by_source=False, name=""):
    """Repeat :func:`validate_once` over ``seeds``; mean and spread of every number.

    ``name`` (of the method) labels the progress shown, one log line per seed.

    Returns
    -------
    dict
        For ``"classes"`` and ``"aggregated"``: ``confusion_mean``/``confusion_std``
        (DataFrames), ``metrics_mean``/``metrics_std`` (precision, recall, F1, support
        per class), ``accuracy_mean``/``accuracy_std``; plus the per-seed accuracies
        and the split sizes.
    """
    runs = []
    seeds = list(seeds)
    for seed in steps(seeds, len(seeds), f"validation ({name})" if name else "validation", " seeds"):
        runs.append(validate_once(labeled, seed, method, classes, group_by_source))
        log.info("%sseed %d (%d of %d): accuracy %.3f, aggregated %.3f", f"{name}, " if name else "", seed,
                 len(runs), len(seeds), runs[-1]["classes"]["accuracy"], runs[-1]["aggregated"]["accuracy"])
    summary = {"seeds": list(seeds), "n_train": runs[0]["n_train"], "n_test": runs[0]["n_test"],
               "group_by_source": group_by_source}
    for level in ("classes", "aggregated"):
        confusions = [run[level]["confusion"] for run in runs]
        unclassified = [UNCLASSIFIED] if any(UNCLASSIFIED in m.columns for m in confusions) else []
        columns = list(confusions[0].index) + unclassified
        stacked = np.stack([m.reindex(columns=columns, fill_value=0.0).to_numpy() for m in confusions])
        metrics = np.stack([run[level]["metrics"].to_numpy() for run in runs])
        index = confusions[0].index
        metric_columns = runs[0][level]["metrics"].columns
        accuracies = [run[level]["accuracy"] for run in runs]
        summary[level] = {
            "confusion_mean": pd.DataFrame(np.nanmean(stacked, axis=0), index=index, columns=columns),
            "confusion_std": pd.DataFrame(np.nanstd(stacked, axis=0), index=index, columns=columns),
            "metrics_mean": pd.DataFrame(metrics.mean(axis=0), index=index, columns=metric_columns),
            "metrics_std": pd.DataFrame(metrics.std(axis=0), index=index, columns=metric_columns),
            "accuracy_mean": float(np.mean(accuracies)),
            "accuracy_std": float(np.std(accuracies)),
            "accuracies": accuracies,
        }
    return summary


def compare_methods(labeled, seeds, methods, group_by_source=False):
    """Validate several methods on the same seeded splits; results and a summary table.

    Returns
    -------
    results : dict
        Method name -> :func:`validate` result.
    table : pandas.DataFrame
        One row per method and level: accuracy (mean, std), macro F1 (mean), and the
        F1 of each class (mean).
    """
    results = {name: validate(labeled, seeds, method, group_by_source=group_by_source, name=name)
               for name, method in methods.items()}
    rows = []
    for name, result in results.items():
        for level in ("classes", "aggregated"):
            part = result[level]
            f1 = part["metrics_mean"]["f1"]
            rows.append({"method": name, "level": level, "accuracy": part["accuracy_mean"],
                         "accuracy_std": part["accuracy_std"], "macro_f1": float(f1.mean()),
                         **{f"f1_{label}": float(value) for label, value in f1.items()}})
    return results, pd.DataFrame(rows)
