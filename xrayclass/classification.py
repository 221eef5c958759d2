"""Stage 3: class probabilities for the unlabeled detections of each cluster."""

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
import sklearn

from . import __version__
from .classifier import ClusterwiseMahalanobis, labels_from_probabilities
from .constants import (
    CLASSES, CLUSTER, FEATURES, MAIN_TYPE, NAME, NO_MATCH, OBSID, UNCLASSIFIED, UNINFORMATIVE_TYPES,
)
from .features import complete_rows, describe_dropped, prepare_features
from .io import InputError, canonical_names, read_json, require_columns, require_numeric
from .preprocessing import LogMinMaxScaler

log = logging.getLogger(__name__)

CLASSIFIER_FORMAT = "xrayclass.classifier-model"
CLASSIFIER_FORMAT_VERSION = 1

#: What stage 3 does with a detection, from its SIMBAD type.
REFERENCE, TO_CLASSIFY, OTHER_TYPE = "reference", "to_classify", "other_type"

#: Name of the input's SIMBAD type in the output (``main_type`` becomes the prediction).
SIMBAD_TYPE = "simbad_main_type"

REQUIRED_COLUMNS = (NAME, OBSID, CLUSTER, "ra", "dec")


def detection_roles(main_types, classes=CLASSES, uninformative=UNINFORMATIVE_TYPES):
    """Role of each detection given its SIMBAD ``main_type``.

    Detections of one of ``classes`` are references; unmatched ones (``'NaN'``) and
    those of an uninformative type are classified; any other type is left out.
    """
    types = np.asarray(main_types, dtype=object)
    roles = np.full(len(types), OTHER_TYPE, dtype=object)
    roles[np.isin(types, list(classes))] = REFERENCE
    roles[np.isin(types, [NO_MATCH, *uninformative])] = TO_CLASSIFY
    return roles


@dataclass
class ClassifierModel:
    """Preprocessing plus per-cluster class references: enough to classify new detections."""

    scaler: LogMinMaxScaler
    references: ClusterwiseMahalanobis
    uninformative: tuple = UNINFORMATIVE_TYPES

    @property
    def classes(self):
        return self.references.classes

    def predict_proba(self, detections, clusters):
        X = self.scaler.transform(detections[list(FEATURES)].to_numpy(dtype="float64"))
        return self.references.predict_proba(X, clusters)

    def to_dict(self):
        return {
            "format": CLASSIFIER_FORMAT,
            "format_version": CLASSIFIER_FORMAT_VERSION,
            "software": {"xrayclass": __version__, "scikit-learn": sklearn.__version__, "numpy": np.__version__},
            "features": list(FEATURES),
            "uninformative_types": list(self.uninformative),
            "preprocessing": self.scaler.to_dict(),
            "references": self.references.to_dict(),
        }

    @classmethod
    def from_dict(cls, document, path="classifier"):
        if document.get("format") != CLASSIFIER_FORMAT:
            raise InputError(f"{path}: not a classifier model (format {document.get('format')!r})")
        if document.get("format_version") != CLASSIFIER_FORMAT_VERSION:
            raise InputError(f"{path}: classifier format version {document.get('format_version')} is not supported")
        return cls(
            scaler=LogMinMaxScaler.from_dict(document["preprocessing"]),
            references=ClusterwiseMahalanobis.from_dict(document["references"]),
            uninformative=tuple(document["uninformative_types"]),
        )

    @classmethod
    def load(cls, path):
        return cls.from_dict(read_json(path), path)


def _log_roles(types, roles):
    to_classify = types[roles == TO_CLASSIFY]
    n_unmatched = int((to_classify == NO_MATCH).sum())
    log.info("%s references of the %d classes; %s to classify (%s without a SIMBAD match, %s of an "
             "uninformative type); %s of other SIMBAD types left out",
             f"{int((roles == REFERENCE).sum()):,}", len(CLASSES), f"{len(to_classify):,}",
             f"{n_unmatched:,}", f"{len(to_classify) - n_unmatched:,}", f"{int((roles == OTHER_TYPE).sum()):,}")
    others = pd.Series(types[roles == OTHER_TYPE]).value_counts().head(8)
    if len(others):
        log.info("most common left-out types: %s", ", ".join(f"{t} {n:,}" for t, n in others.items()))


def _log_references(model, classes):
    counts = pd.DataFrame(model.references.reference_counts()).T.reindex(columns=list(classes)).fillna(0)
    counts.index.name = CLUSTER
    log.info("references per cluster and class:\n%s", counts.astype(int).to_string())
    for cluster, classifier in model.references.classifiers_.items():
        unscored = [c for c, ok in zip(classes, classifier.scored_) if not ok]
        if unscored:
            log.info("cluster %s: probability 0 for %s (fewer than %d references)",
                     cluster, ", ".join(unscored), len(FEATURES))


def fit_classifier(table, classes=CLASSES, uninformative=UNINFORMATIVE_TYPES, min_references="n_features"):
    """Fit the preprocessing on every complete row and the per-cluster references.

    ``table`` must already have complete features and a ``main_type`` without gaps.
    """
    features = table[list(FEATURES)].to_numpy(dtype="float64")
    scaler = LogMinMaxScaler().fit(features)
    X = scaler.transform(features)
    types = table[MAIN_TYPE].to_numpy(dtype=object)
    is_reference = detection_roles(types, classes, uninformative) == REFERENCE
    clusters = table[CLUSTER].to_numpy()
    references = ClusterwiseMahalanobis(classes, min_references).fit(
        X[is_reference], types[is_reference], clusters[is_reference], all_clusters=np.unique(clusters)
    )
    return ClassifierModel(scaler, references, tuple(uninformative)), X


def classify_detections(table, path, classes=CLASSES, uninformative=UNINFORMATIVE_TYPES,
                        min_references="n_features"):
    """Stage 3 on a crossmatched table (the stage-2 output or a frozen crossmatch file).

    Parameters
    ----------
    table : pandas.DataFrame
        Detections with ``name`` (or ``name_1``), ``obsid``, ``cluster``, ``ra``,
        ``dec``, ``main_type`` (SIMBAD class; missing means no match) and the
        features (or the raw columns they derive from).
    path : str
        Where the table came from, for messages.

    Returns
    -------
    classified : pandas.DataFrame
        One row per classified detection, sorted by name then obsid: ``name, obsid,
        cluster, ra, dec, main_type`` (the predicted class), the class probabilities,
        the 12 features, ``simbad_main_type`` (the input's type) and the other input
        columns.
    model : ClassifierModel
    """
    table = canonical_names(table, path)
    require_columns(table, REQUIRED_COLUMNS, path)
    if MAIN_TYPE not in table.columns:
        raise InputError(f"{path}: missing required columns: {MAIN_TYPE} (run the crossmatch stage first)")
    table = require_numeric(table, (OBSID, CLUSTER, "ra", "dec"), path)
    if table[CLUSTER].isna().any():
        raise InputError(f"{path}: column 'cluster' is empty in {int(table[CLUSTER].isna().sum()):,} rows")
    table = prepare_features(table, path)
    n_total = len(table)
    log.info("%s: %s detections read", path, f"{n_total:,}")

    complete, reasons = complete_rows(table)
    table = table.loc[complete].reset_index(drop=True)
    log.info(describe_dropped(reasons, n_total - len(table), n_total))
    types = table[MAIN_TYPE]
    types = types.astype(object).where(types.notna(), NO_MATCH).astype(str).to_numpy(dtype=object)
    table = table.assign(**{MAIN_TYPE: types, CLUSTER: table[CLUSTER].astype(int)})
    roles = detection_roles(types, classes, uninformative)
    _log_roles(types, roles)

    model, X = fit_classifier(table, classes, uninformative, min_references)
    _log_references(model, classes)

    targets = roles == TO_CLASSIFY
    probabilities = model.references.predict_proba(X[targets], table[CLUSTER].to_numpy()[targets])
    predicted = labels_from_probabilities(probabilities, classes)
    unclassified = predicted == UNCLASSIFIED
    if unclassified.any():
        clusters_hit = np.unique(table[CLUSTER].to_numpy()[targets][unclassified])
        log.warning("%s detections in clusters %s cannot be classified: no class there has %d "
                    "references; they get main_type '%s' and all-zero probabilities",
                    f"{int(unclassified.sum()):,}", ", ".join(map(str, clusters_hit)), len(FEATURES), UNCLASSIFIED)

    chosen = table.loc[targets].reset_index(drop=True)
    front = [NAME, OBSID, CLUSTER, "ra", "dec", MAIN_TYPE, *classes, *FEATURES, SIMBAD_TYPE]
    rest = [c for c in chosen.columns if c not in front and c != MAIN_TYPE]
    classified = pd.concat(
        [
            chosen[[NAME, OBSID, CLUSTER, "ra", "dec"]],
            pd.DataFrame({MAIN_TYPE: predicted}),
            pd.DataFrame(probabilities, columns=list(classes)),
            chosen[list(FEATURES)],
            pd.DataFrame({SIMBAD_TYPE: chosen[MAIN_TYPE].to_numpy()}),
            chosen[rest],
        ],
        axis=1,
    )
    classified = classified.sort_values([NAME, OBSID], kind="stable").reset_index(drop=True)
    log.info("%s detections of %s sources classified", f"{len(classified):,}",
             f"{classified[NAME].nunique():,}")
    return classified, model

