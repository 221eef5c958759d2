"""Stage 3: class probabilities for the unlabeled detections of each cluster."""

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
import sklearn

from . import __version__
from .classifier import ClusterwiseMahalanobis, labels_from_probabilities
from .constants import (
    CLASSES, CLUSTER, FEATURES, LOCATION_FEATURE, MAIN_TYPE, NAME, NO_MATCH, OBSID, SPECTRUM_FEATURES, UNCLASSIFIED,
    UNINFORMATIVE_TYPES, VARIABILITY_FEATURES,
)
from .features import complete_rows, describe_dropped, prepare_features
from .io import InputError, canonical_names, read_json, require_columns, require_numeric
from .naive_bayes import NaiveBayesClassifier
from .preprocessing import LogMinMaxScaler
from .progress import chunks

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


#: Classifiers stage 3 can use.
METHODS = ("mahalanobis", "naive-bayes")
#: Share of detections flagged as outliers by default: those above this top fraction of
#: the training (reference) distribution of the outlier measure.
OUTLIER_FRACTION = 0.01
#: Rows classified at once (bounded memory at any catalog size).
CHUNK_ROWS = 200_000
#: Percentiles at which the training distribution of the outlier measure is kept.
OUTLIER_PERCENTILES = np.linspace(0, 100, 1001)


def absolute_galactic_latitude(detections):
    """|b| / 90 deg of each detection, from ``ra``/``dec`` (ICRS, deg), in [0, 1]."""
    from astropy import units as u
    from astropy.coordinates import SkyCoord

    coordinates = SkyCoord(detections["ra"].to_numpy(dtype="float64") * u.deg,
                           detections["dec"].to_numpy(dtype="float64") * u.deg)
    return np.abs(coordinates.galactic.b.deg) / 90.0


def naive_bayes_categories(location=True):
    """The naive Bayes feature categories, optionally with location (|b|)."""
    categories = {"spectrum": SPECTRUM_FEATURES, "variability": VARIABILITY_FEATURES}
    if location:
        categories["location"] = (LOCATION_FEATURE,)
    return categories


@dataclass
class ClassifierModel:
    """Everything needed to classify new detections, without the training table.

    The preprocessing, each cluster's class references (Mahalanobis), and the naive
    Bayes model with the training distribution of its outlier measure.
    """

    scaler: LogMinMaxScaler
    references: ClusterwiseMahalanobis
    naive_bayes: NaiveBayesClassifier
    outlier_quantiles: np.ndarray
    location: bool = True
    method: str = "mahalanobis"
    uninformative: tuple = UNINFORMATIVE_TYPES

    @property
    def classes(self):
        return self.references.classes

    def preprocess(self, detections):
        """The preprocessed 12 features (rows must have all of them)."""
        return self.scaler.transform(detections[list(FEATURES)].to_numpy(dtype="float64"))

    def _naive_bayes_input(self, detections, X):
        return np.column_stack([X, absolute_galactic_latitude(detections)]) if self.location else X

    def predict_proba(self, detections, clusters, method=None):
        """Ten class probabilities from the chosen method (default: the model's)."""
        method = method or self.method
        X = self.preprocess(detections)
        if method == "mahalanobis":
            return self.references.predict_proba(X, clusters)
        if method == "naive-bayes":
            return self.naive_bayes.predict_proba(self._naive_bayes_input(detections, X))
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")

    def outlier_percentile(self, measure):
        """Percentile of each outlier measure in the training distribution (NaN stays NaN)."""
        return np.interp(measure, self.outlier_quantiles, OUTLIER_PERCENTILES)

    def classify(self, detections, clusters, method=None, outlier_fraction=OUTLIER_FRACTION, explain=True):
        """Probabilities, predicted class, outlier measure and probability track.

        Rows are processed in chunks (bounded memory at any catalog size); the result
        does not depend on the chunk size.

        Returns
        -------
        pandas.DataFrame
            ``main_type`` (predicted; ``Unclassified`` if no class can be scored), the
            ten probabilities, ``outlier_measure`` (naive Bayes, for the predicted
            class), ``outlier_percentile`` (in the references' distribution),
            ``outlier_flag`` (percentile above ``100 (1 - outlier_fraction)``),
            ``driven_by`` (the category that most favours the class) and
            ``track_prior``, ``track_<category>``...: the class's posterior as the
            categories are added in turn. With ``explain=False`` (e.g. detections
            without positions for a model using location) only the class columns.
        """
        method = method or self.method
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
        clusters = np.asarray(clusters)
        parts = [self._classify_chunk(detections.iloc[rows], clusters[rows], method, outlier_fraction, explain)
                 for rows in chunks(len(detections), CHUNK_ROWS, "classifying")]
        if not parts:
            return self._classify_chunk(detections, clusters, method, outlier_fraction, explain)
        return pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]

    def _classify_chunk(self, detections, clusters, method, outlier_fraction, explain):
        X = self.preprocess(detections)
        probabilities = (self.references.predict_proba(X, clusters) if method == "mahalanobis"
                         else self.naive_bayes.predict_proba(self._naive_bayes_input(detections, X)))
        predicted = labels_from_probabilities(probabilities, self.classes)
        result = pd.DataFrame(probabilities, columns=list(self.classes))
        result.insert(0, MAIN_TYPE, predicted)
        if not explain:
            return result
        explained = self.naive_bayes.explain(self._naive_bayes_input(detections, X), assigned=predicted)
        percentile = self.outlier_percentile(explained["outlier_measure"])
        result["outlier_measure"] = explained["outlier_measure"]
        result["outlier_percentile"] = percentile
        result["outlier_flag"] = percentile >= 100 * (1 - outlier_fraction)
        result["driven_by"] = explained["driven_by"]
        for k, step in enumerate(["prior", *self.naive_bayes.categories_]):
            result[f"track_{step}"] = explained["track"][:, k]
        return result

    def to_dict(self):
        return {
            "format": CLASSIFIER_FORMAT,
            "format_version": CLASSIFIER_FORMAT_VERSION,
            "software": {"xrayclass": __version__, "scikit-learn": sklearn.__version__, "numpy": np.__version__},
            "features": list(FEATURES),
            "uninformative_types": list(self.uninformative),
            "method": self.method,
            "location": self.location,
            "preprocessing": self.scaler.to_dict(),
            "references": self.references.to_dict(),
            "naive_bayes": self.naive_bayes.to_dict(),
            "outlier_quantiles": self.outlier_quantiles.tolist(),
        }

    @classmethod
    def from_dict(cls, document, path="classifier"):
        from .checks import validate_classifier_document

        validate_classifier_document(document, path, CLASSIFIER_FORMAT, CLASSIFIER_FORMAT_VERSION, METHODS)
        if document.get("format") != CLASSIFIER_FORMAT:
            raise InputError(f"{path}: not a classifier model (format {document.get('format')!r})")
        if document.get("format_version") != CLASSIFIER_FORMAT_VERSION:
            raise InputError(f"{path}: classifier format version {document.get('format_version')} is not supported")
        return cls(
            scaler=LogMinMaxScaler.from_dict(document["preprocessing"]),
            references=ClusterwiseMahalanobis.from_dict(document["references"]),
            naive_bayes=NaiveBayesClassifier.from_dict(document["naive_bayes"]),
            outlier_quantiles=np.asarray(document["outlier_quantiles"], dtype=float),
            location=bool(document["location"]),
            method=document["method"],
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


def fit_classifier(table, classes=CLASSES, uninformative=UNINFORMATIVE_TYPES, min_references="n_features",
                   method="mahalanobis", location=True, score="macro_f1", random_state=0):
    """Fit the preprocessing on every complete row, then both classifiers on the references.

    ``table`` must already have complete features and a ``main_type`` without gaps. The
    naive Bayes model is fitted whatever ``method`` is: it provides the outlier
    measures and probability tracks, and lets new sources be classified either way.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    features = table[list(FEATURES)].to_numpy(dtype="float64")
    scaler = LogMinMaxScaler().fit(features)
    X = scaler.transform(features)
    types = table[MAIN_TYPE].to_numpy(dtype=object)
    is_reference = detection_roles(types, classes, uninformative) == REFERENCE
    clusters = table[CLUSTER].to_numpy()
    references = ClusterwiseMahalanobis(classes, min_references).fit(
        X[is_reference], types[is_reference], clusters[is_reference], all_clusters=np.unique(clusters)
    )
    X_nb = np.column_stack([X, absolute_galactic_latitude(table)]) if location else X
    naive_bayes = NaiveBayesClassifier(
        categories=naive_bayes_categories(location), feature_names=[*FEATURES, LOCATION_FEATURE][: X_nb.shape[1]],
        classes=classes, scoring=score, random_state=random_state,
    ).fit(X_nb[is_reference], types[is_reference])
    # The references' own outlier measures (for their SIMBAD class) are the yardstick.
    training = naive_bayes.explain(X_nb[is_reference], assigned=types[is_reference])["outlier_measure"]
    quantiles = np.percentile(training, OUTLIER_PERCENTILES)
    model = ClassifierModel(scaler, references, naive_bayes, quantiles, location, method, tuple(uninformative))
    return model, X


def _log_naive_bayes(model):
    nb = model.naive_bayes
    weights = ", ".join(f"{name} {weight:g}" for name, weight in nb.alpha_.items())
    if nb.tuning_:
        log.info("naive Bayes category weights %s (tuned for %s: %.3f out-of-fold, %.3f with equal weights)",
                 weights, nb.scoring, nb.tuning_[0][1], nb.equal_weight_score_)
    else:
        log.info("naive Bayes category weights %s", weights)


def classify_detections(table, path, classes=CLASSES, uninformative=UNINFORMATIVE_TYPES,
                        min_references="n_features", method="mahalanobis", location=True, score="macro_f1",
                        outlier_fraction=OUTLIER_FRACTION, explain=True):
    """Stage 3 on a crossmatched table (the stage-2 output or a frozen crossmatch file).

    Parameters
    ----------
    table : pandas.DataFrame
        Detections with ``name`` (or ``name_1``), ``obsid``, ``cluster``, ``ra``,
        ``dec``, ``main_type`` (SIMBAD class; missing means no match) and the
        features (or the raw columns they derive from).
    path : str
        Where the table came from, for messages.
    method : {"mahalanobis", "naive-bayes"}
        The classifier giving the probabilities (the paper's: Mahalanobis).
    location : bool
        Whether naive Bayes uses |galactic latitude| as a feature category.
    score : {"macro_f1", "rarest_f1"}
        What the naive Bayes category weights are tuned for.
    outlier_fraction : float
        Top share of the references' outlier measures above which a detection is flagged.
    explain : bool
        Compute the outlier measures and probability tracks (about four times the cost
        of the probabilities alone on large catalogs).

    Returns
    -------
    classified : pandas.DataFrame
        One row per classified detection, sorted by name then obsid: ``name, obsid,
        cluster, ra, dec, main_type`` (the predicted class), the class probabilities,
        the 12 features, ``simbad_main_type`` (the input's type), the outlier measure,
        percentile and flag, ``driven_by`` and the probability track, then the other
        input columns.
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
    from .checks import require_roles

    require_roles(roles, path, REFERENCE, TO_CLASSIFY)
    from .checks import require_log_features_usable

    require_log_features_usable(table[list(FEATURES)].to_numpy(dtype="float64"), path)

    model, _ = fit_classifier(table, classes, uninformative, min_references, method, location, score)
    _log_references(model, classes)
    _log_naive_bayes(model)

    chosen = table.loc[roles == TO_CLASSIFY].reset_index(drop=True)
    result = model.classify(chosen, chosen[CLUSTER].to_numpy(), method, outlier_fraction, explain)
    unclassified = (result[MAIN_TYPE] == UNCLASSIFIED).to_numpy()
    if unclassified.any():
        clusters_hit = np.unique(chosen[CLUSTER].to_numpy()[unclassified])
        log.warning("%s detections in clusters %s cannot be classified: no class there has %d "
                    "references; they get main_type '%s' and all-zero probabilities",
                    f"{int(unclassified.sum()):,}", ", ".join(map(str, clusters_hit)), len(FEATURES), UNCLASSIFIED)
    if explain:
        log.info("probabilities by %s; %s detections flagged as outliers (top %g%% of the references' "
                 "outlier measure)", method, f"{int(result['outlier_flag'].sum()):,}", 100 * outlier_fraction)
    else:
        log.info("probabilities by %s; outlier measures and tracks skipped", method)

    explanation = [c for c in result.columns if c not in (MAIN_TYPE, *classes)]
    front = [NAME, OBSID, CLUSTER, "ra", "dec", MAIN_TYPE, *classes, *FEATURES, SIMBAD_TYPE, *explanation]
    rest = [c for c in chosen.columns if c not in front]
    classified = pd.concat(
        [
            chosen[[NAME, OBSID, CLUSTER, "ra", "dec"]],
            result[[MAIN_TYPE, *classes]],
            chosen[list(FEATURES)],
            pd.DataFrame({SIMBAD_TYPE: chosen[MAIN_TYPE].to_numpy()}),
            result[explanation],
            chosen[rest],
        ],
        axis=1,
    )
    classified = classified.sort_values([NAME, OBSID], kind="stable").reset_index(drop=True)
    log.info("%s detections of %s sources classified", f"{len(classified):,}",
             f"{classified[NAME].nunique():,}")
    return classified, model


#: Columns of the outlier table, before the features.
OUTLIER_COLUMNS = (NAME, OBSID, "ra", "dec", CLUSTER, MAIN_TYPE, SIMBAD_TYPE, "outlier_measure",
                   "outlier_percentile", "driven_by")


def outlier_table(classified):
    """The flagged detections, most outlying first, with their features, for follow-up.

    Empty (with its columns) when the outlier measures were not computed.
    """
    if "outlier_flag" not in classified.columns:
        return pd.DataFrame(columns=[*OUTLIER_COLUMNS, *FEATURES])
    flagged = classified[classified["outlier_flag"].astype(bool)]
    flagged = flagged.sort_values("outlier_measure", ascending=False, kind="stable")
    return flagged[[*OUTLIER_COLUMNS, *FEATURES]].reset_index(drop=True)
