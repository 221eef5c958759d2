"""Stage 3: class probabilities for the unlabeled detections of each cluster."""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
import sklearn
from numpy.typing import ArrayLike

from xrayclass import __version__
from xrayclass.constants import (
    CLASSES,
    CLUSTER,
    LIKELIHOODS,
    LOCATION_FEATURE,
    MAIN_TYPE,
    NAME,
    NB_SCORES,
    OBSID,
    OUTLIER_FRACTION,
    PRIORS,
    UNCLASSIFIED,
    UNINFORMATIVE_TYPES,
)
from xrayclass.constants import CLASSIFIER_METHODS as METHODS
from xrayclass.core.checks import require_choice
from xrayclass.core.classifier import ClusterwiseMahalanobis
from xrayclass.core.featuresets import PAPER, FeatureSet, from_artifact
from xrayclass.core.naive_bayes import NaiveBayesClassifier
from xrayclass.core.preprocessing import LogMinMaxScaler
from xrayclass.core.progress import map_chunks
from xrayclass.core.sampling import content_order, seeded_subsample
from xrayclass.core.taxonomy import normalize_types
from xrayclass.io.tables import InputError
from xrayclass.stages.classification_input import (
    OTHER_TYPE,
    REFERENCE,
    REQUIRED_COLUMNS,
    TO_CLASSIFY,
    UNKNOWN_LABEL_SHARE,
    LabelError,
    PreparedDetections,
    absolute_galactic_latitude,
    census_table,
    detection_roles,
    input_columns,
    passthrough_columns,
    prepare_detections,
    reference_census,
    roles_of_canonical,
)

__all__ = [
    "CHUNK_ROWS",
    "CLASSIFIER_FORMAT",
    "CLASSIFIER_FORMAT_VERSION",
    "METHODS",
    "OTHER_TYPE",
    "OUTLIER_COLUMNS",
    "OUTLIER_FRACTION",
    "OUTLIER_PERCENTILES",
    "REFERENCE",
    "REQUIRED_COLUMNS",
    "SIMBAD_TYPE",
    "TO_CLASSIFY",
    "UNKNOWN_LABEL_SHARE",
    "YARDSTICK_SAMPLE",
    "ClassificationConfig",
    "ClassifiedDetections",
    "ClassifierModel",
    "LabelError",
    "PreparedDetections",
    "absolute_galactic_latitude",
    "assemble_classified",
    "census_table",
    "classify_detections",
    "classify_detections_in_parts",
    "classify_prepared",
    "detection_roles",
    "fit_calibration",
    "fit_classifier",
    "input_columns",
    "naive_bayes_categories",
    "outlier_table",
    "passthrough_columns",
    "prepare_detections",
    "reference_census",
    "run_classification",
    "weights_needed",
    "yardstick_rows",
]

log = logging.getLogger(__name__)

CLASSIFIER_FORMAT = "xrayclass.classifier-model"
CLASSIFIER_FORMAT_VERSION = 1
# Version 1 artifacts made before the reference census lack the optional "reference_census"
# field; they load and classify the same (the census is for reading, not for predicting).

#: Name of the input's SIMBAD type in the output (``main_type`` becomes the prediction).
SIMBAD_TYPE = "simbad_main_type"


#: Rows classified at once, by each thread (bounded memory at any catalog size; small
#: enough that the threads share the work of a 1M-detection catalog evenly).
CHUNK_ROWS = 50_000
#: Percentiles at which the training distribution of the outlier measure is kept.
OUTLIER_PERCENTILES = np.linspace(0, 100, 1001)
#: References whose outlier measures make the yardstick at most (a seeded subsample
#: beyond): 50,000 still put 50 above the 99.9th percentile, and explaining every
#: reference of a 1M-detection catalog (238,295) was a sixth of stage 3. The paper's
#: catalog has fewer references, so its yardstick uses them all.
YARDSTICK_SAMPLE = 50_000


@dataclass(frozen=True)
class ClassificationConfig:
    """Stage 3's choices; the defaults are the paper's.

    Parameters
    ----------
    method : {"mahalanobis", "naive-bayes"}
        The classifier giving the probabilities: the paper's per-cluster softmin of
        squared Mahalanobis distances, or the optimized naive Bayes.
    likelihood : {"distance", "gaussian"}
        Mahalanobis scoring: softmin of squared distances (the paper's) or the
        class-conditional Gaussian log-density.
    priors : {"none", "references"}
        Class priors of the Mahalanobis scoring: none (the paper's) or each class's
        share of its cluster's references.
    log_floor : float or None
        Lower bound on the shift of the log features (``None``: the paper's rule).
    calibrate : bool
        Fit a temperature out of fold on the references and apply it.
    location : bool
        Naive Bayes with the location category (|galactic latitude|).
    nb_score : {"macro_f1", "rarest_f1"}
        What the naive-Bayes category weights are tuned to maximize.
    outlier_fraction : float
        Flag detections whose outlier measure is in this top share of the references'.
    explain : bool
        Compute the outlier measures and probability tracks.
    strict_labels : bool
        Stop instead of warning on missing classes or many unknown SIMBAD types.
    feature_set : FeatureSet
        The features and their preprocessing; must be the stage-1 model's.
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
        require_choice("method", self.method, METHODS)
        require_choice("likelihood", self.likelihood, LIKELIHOODS)
        require_choice("priors", self.priors, PRIORS)
        require_choice("nb_score", self.nb_score, NB_SCORES)
        if not 0 < self.outlier_fraction < 1:
            raise InputError(f"outlier_fraction must be between 0 and 1, got {self.outlier_fraction}")
        if self.log_floor is not None and not self.log_floor > 0:
            raise InputError(f"log_floor must be positive, got {self.log_floor}")


def yardstick_rows(n_references: int, random_state: int | None) -> np.ndarray:
    """Indices of the references the outlier yardstick is made of: all, or a seeded sorted subsample."""
    return seeded_subsample(n_references, YARDSTICK_SAMPLE, random_state)


def naive_bayes_categories(location: bool = True, feature_set: FeatureSet = PAPER) -> dict[str, tuple[str, ...]]:
    """The naive Bayes feature categories of ``feature_set``, optionally with location (|b|)."""
    categories = dict(feature_set.categories())
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
    uninformative: tuple[str, ...] = UNINFORMATIVE_TYPES
    #: What stage 3 learned from (see :func:`reference_census`); None for old artifacts.
    census: dict[str, Any] | None = None
    #: Temperature scaling fitted out of fold (see :mod:`xrayclass.core.calibration`), or None.
    calibration: dict[str, Any] | None = None
    #: The features the model was fitted on (old artifacts without a record: the paper's).
    feature_set: FeatureSet = PAPER

    @property
    def classes(self) -> tuple[str, ...]:
        return self.references.classes

    def preprocess(self, detections: pd.DataFrame) -> np.ndarray:
        """The preprocessed features of the model's set (rows must have all of them)."""
        return self.scaler.transform(detections[list(self.feature_set.features)].to_numpy(dtype="float64"))

    def _naive_bayes_input(self, X: np.ndarray, latitude: np.ndarray | None) -> np.ndarray:
        if not self.location:
            return X
        if latitude is None:
            raise ValueError("this model uses location: the detections' latitudes are needed")
        return np.column_stack([X, latitude])

    def predict_proba(
        self, detections: pd.DataFrame, clusters: ArrayLike, method: str | None = None, calibrate: bool = False
    ) -> np.ndarray:
        """Ten class probabilities from the chosen method (default: the model's)."""
        method = method or self.method
        X = self.preprocess(detections)
        if method == "mahalanobis":
            return self._calibrated(self.references.predict_proba(X, clusters), method, calibrate)
        if method == "naive-bayes":
            latitude = absolute_galactic_latitude(detections) if self.location else None
            return self._calibrated(
                self.naive_bayes.predict_proba(self._naive_bayes_input(X, latitude)), method, calibrate
            )
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")

    def check_calibration(self, method: str | None = None) -> None:
        """Raise :class:`InputError` unless the model holds a calibration for ``method``."""
        method = method or self.method
        if self.calibration is None:
            raise InputError("the classifier model has no calibration; run classification.py with --calibrate")
        if self.calibration.get("for_method") != method:
            raise InputError(
                f"the classifier model's calibration is for {self.calibration.get('for_method')}, not {method}"
            )

    def _calibrated(self, probabilities: np.ndarray, method: str, calibrate: bool) -> np.ndarray:
        if not calibrate:
            return probabilities
        from xrayclass.core.calibration import apply_temperature

        self.check_calibration(method)
        assert self.calibration is not None  # check_calibration raised otherwise
        return apply_temperature(probabilities, self.calibration["temperature"])

    def outlier_percentile(self, measure: np.ndarray) -> np.ndarray:
        """Percentile of each outlier measure in the training distribution (NaN stays NaN)."""
        return np.interp(measure, self.outlier_quantiles, OUTLIER_PERCENTILES)

    def classify(
        self,
        detections: pd.DataFrame,
        clusters: ArrayLike,
        method: str | None = None,
        outlier_fraction: float = OUTLIER_FRACTION,
        explain: bool = True,
        calibrate: bool = False,
        latitude: np.ndarray | None = None,
        threads: int | None = None,
    ) -> pd.DataFrame:
        """Probabilities, predicted class, outlier measure and probability track.

        Rows are processed in chunks (bounded memory at any catalog size) on ``threads``
        threads (default: every processor available); the result depends on neither.

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
            With ``calibrate=True`` the probabilities are temperature-scaled by the
            model's calibration (the predicted class does not change). ``latitude``
            is :func:`absolute_galactic_latitude` of ``detections`` when the caller has it
            already (computed here otherwise, if the model uses location).
        """
        method = method or self.method
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
        if calibrate:
            self.check_calibration(method)
        clusters = np.asarray(clusters)
        if self.location and latitude is None and (explain or method == "naive-bayes"):
            latitude = absolute_galactic_latitude(detections)
        # The threads see arrays only: the table's columns are read once, here, and the
        # result is made a table once, after (pandas holds the GIL for much of its work).
        X = self.preprocess(detections)
        # Each chunk's results are written in place into arrays for all rows, made when
        # the first chunk is done (no copies to join them after). Columns of a 2-D result
        # are contiguous (Fortran order): each becomes a table column as it is.
        arrays: dict[str, np.ndarray] = {}
        made = threading.Lock()

        def classify_rows(rows: slice) -> None:
            part = self._classify_arrays(
                X[rows],
                clusters[rows],
                method,
                outlier_fraction,
                explain,
                calibrate,
                None if latitude is None else latitude[rows],
            )
            with made:
                if not arrays:
                    arrays.update(
                        {key: np.empty((len(X), *v.shape[1:]), v.dtype, order="F") for key, v in part.items()}
                    )
            for key, values in part.items():
                arrays[key][rows] = values

        if len(X):
            map_chunks(classify_rows, len(X), CHUNK_ROWS, "classifying", threads)
        else:
            classify_rows(slice(0, 0))
        result = pd.DataFrame(arrays.pop("probabilities"), columns=list(self.classes), copy=False)
        # A class (-1: none) by its position: the text is made once, by Arrow.
        result.insert(0, MAIN_TYPE, _text([*self.classes, UNCLASSIFIED], arrays.pop("predicted")))
        if not explain:
            return result
        for name in ("outlier_measure", "outlier_percentile", "outlier_flag"):
            result[name] = arrays[name]
        result["driven_by"] = _text([*self.naive_bayes.categories_, ""], arrays["driven_by"])
        for k, step in enumerate(["prior", *self.naive_bayes.categories_]):
            result[f"track_{step}"] = arrays["track"][:, k]
        return result

    def _classify_arrays(
        self,
        X: np.ndarray,
        clusters: np.ndarray,
        method: str,
        outlier_fraction: float,
        explain: bool,
        calibrate: bool = False,
        latitude: np.ndarray | None = None,
    ) -> dict[str, np.ndarray]:
        """:meth:`classify` of preprocessed rows ``X``, as arrays."""
        probabilities = (
            self.references.predict_proba(X, clusters)
            if method == "mahalanobis"
            else self.naive_bayes.predict_proba(self._naive_bayes_input(X, latitude))
        )
        probabilities = self._calibrated(probabilities, method, calibrate)
        # labels_from_probabilities, as positions in classes (-1 where no class is scored).
        predicted = np.where((probabilities > 0).any(axis=1), np.argmax(probabilities, axis=1), -1)
        arrays = {"probabilities": probabilities, "predicted": predicted}
        if not explain:
            return arrays
        # The same classes at their positions in the naive Bayes model's (-1 stays -1).
        positions = np.append(pd.Index(self.naive_bayes.classes_).get_indexer(list(self.classes)), -1)
        explained = self.naive_bayes.explain_columns(self._naive_bayes_input(X, latitude), positions[predicted])
        percentile = self.outlier_percentile(explained["outlier_measure"])
        return {
            **arrays,
            "outlier_measure": explained["outlier_measure"],
            "outlier_percentile": percentile,
            "outlier_flag": percentile >= 100 * (1 - outlier_fraction),
            "driven_by": explained["driven_by_category"],
            "track": explained["track"],
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": CLASSIFIER_FORMAT,
            "format_version": CLASSIFIER_FORMAT_VERSION,
            "software": {"xrayclass": __version__, "scikit-learn": sklearn.__version__, "numpy": np.__version__},
            "features": list(self.feature_set.features),
            "feature_set": self.feature_set.to_dict(),
            "uninformative_types": list(self.uninformative),
            "method": self.method,
            "location": self.location,
            "preprocessing": self.scaler.to_dict(),
            "references": self.references.to_dict(),
            "naive_bayes": self.naive_bayes.to_dict(),
            "outlier_quantiles": self.outlier_quantiles.tolist(),
            **({"reference_census": self.census} if self.census is not None else {}),
            "calibration": self.calibration,
        }

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> ClassifierModel:
        from xrayclass.io.checks import validate_classifier_document

        validate_classifier_document(document, CLASSIFIER_FORMAT, CLASSIFIER_FORMAT_VERSION, METHODS)
        if document.get("format") != CLASSIFIER_FORMAT:
            raise InputError(f"not a classifier model (format {document.get('format')!r})")
        if document.get("format_version") != CLASSIFIER_FORMAT_VERSION:
            raise InputError(f"classifier format version {document.get('format_version')} is not supported")
        return cls(
            scaler=LogMinMaxScaler.from_dict(document["preprocessing"]),
            references=ClusterwiseMahalanobis.from_dict(document["references"]),
            naive_bayes=NaiveBayesClassifier.from_dict(document["naive_bayes"]),
            outlier_quantiles=np.asarray(document["outlier_quantiles"], dtype=float),
            location=bool(document["location"]),
            method=document["method"],
            uninformative=tuple(document["uninformative_types"]),
            census=document.get("reference_census"),
            calibration=document.get("calibration"),  # absent before issue 13
            feature_set=from_artifact(document),
        )


def _text(names: Sequence[str], positions: np.ndarray) -> pd.Series:
    """A text column of ``names[position]`` for each position (-1: the last name)."""
    import pyarrow as pa

    positions = np.where(positions < 0, len(names) - 1, positions)
    return pd.Series(pd.array(pa.array(list(names), pa.large_string()).take(pa.array(positions)), dtype="str"))


def _log_references(model: ClassifierModel, classes: Sequence[str]) -> None:
    # A class is scored in a cluster with at least as many references as features.
    # The counts themselves are in the census logged before the fit.
    for cluster, classifier in model.references.classifiers_.items():
        unscored = [c for c, ok in zip(classes, classifier.scored_, strict=False) if not ok]
        if unscored:
            log.info(
                "cluster %s: probability 0 for %s (fewer than %d references)",
                cluster,
                ", ".join(unscored),
                len(model.feature_set),
            )


def weights_needed(method: str, explain: bool) -> bool:
    """Whether stage 3 uses the naive Bayes category weights, and so must tune them.

    The weights shape the naive Bayes probabilities, and the outlier measures and
    probability tracks (whatever classifier gives the probabilities). Mahalanobis
    probabilities without outlier measures use none of them: tuning would be wasted
    (it is the largest cost of stage 3 after the scoring itself).
    """
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

    ``table`` must already have complete features and a ``main_type`` without gaps. The
    naive Bayes model is fitted whatever ``method`` is: it provides the outlier
    measures and probability tracks, and lets new sources be classified either way.
    With ``tune=False`` its category weights are left equal (see :func:`weights_needed`).
    A ``scaler`` fitted beforehand (e.g. by a streaming pass over every complete row)
    replaces the fit on ``table``, which may then hold only the references; then
    ``all_clusters`` names every cluster of the catalog (default: those of ``table``).
    ``feature_set`` says which features (default: the paper's 12). ``latitude`` is
    :func:`absolute_galactic_latitude` of ``table``'s rows when the caller has it already;
    ``roles`` likewise :func:`detection_roles` of its rows, whose ``main_type`` is then
    taken as already read as the paper's names.

    Everything seeded (the naive Bayes tuning, the outlier yardstick's subsample, the
    calibration folds) and the Mahalanobis sums run on the references in the order of
    their content, so the model does not depend on the order of ``table``'s rows. Returns
    the model and the references' preprocessed features, in the content order.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
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
    # Both are row-wise, so the values are those of the whole table's rows.
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
    # Every fit runs on the references in the order of their content, not the table's:
    # the naive Bayes tuning folds and subsample, the yardstick's subsample, the
    # calibration folds and the sums of the Mahalanobis means and covariances then depend
    # on which references there are, not on their order.
    order = _reference_order(X_nb, reference_types, reference_clusters, sources)
    X, X_nb = X[order], X_nb[order]
    reference_types, reference_clusters = reference_types[order], reference_clusters[order]
    sources = None if sources is None else sources[order]
    # The two classifiers are fitted at once, the Mahalanobis references on a second
    # thread (each fit is the same alone; NumPy's loops release the GIL).
    pool = ThreadPoolExecutor(1, thread_name_prefix="xrayclass-fit")
    fitting = pool.submit(
        ClusterwiseMahalanobis(classes, min_references, likelihood, priors).fit,
        X,
        reference_types,
        reference_clusters,
        all_clusters=np.unique(clusters) if all_clusters is None else all_clusters,
    )
    pool.shutdown(wait=False)
    naive_bayes = NaiveBayesClassifier(
        categories=naive_bayes_categories(location, feature_set),
        feature_names=[*feature_set.features, LOCATION_FEATURE][: X_nb.shape[1]],
        classes=classes,
        scoring=score,
        random_state=random_state,
        tune=tune,
    ).fit(X_nb, reference_types)
    references = fitting.result()
    # The references' own outlier measures (for their SIMBAD class) are the yardstick;
    # beyond YARDSTICK_SAMPLE references a seeded subsample of them (see its comment).
    yardstick = yardstick_rows(len(X_nb), random_state)
    training = naive_bayes.explain(X_nb[yardstick], assigned=reference_types[yardstick])["outlier_measure"]
    quantiles = np.percentile(training, OUTLIER_PERCENTILES)
    model = ClassifierModel(
        scaler, references, naive_bayes, quantiles, location, method, tuple(uninformative), feature_set=feature_set
    )
    if calibrate:
        assert sources is not None  # read above when calibrating
        model.calibration = fit_calibration(
            model,
            X,
            X_nb,
            reference_types,
            reference_clusters,
            sources,
            min_references,
            score,
            random_state,
        )
    return model, X


def _reference_order(
    X_nb: np.ndarray, types: np.ndarray, clusters: np.ndarray, sources: np.ndarray | None
) -> np.ndarray:
    """:func:`~xrayclass.core.sampling.content_order` of the references by what the fits read of them.

    The sources (read for the calibration folds) only order references equal in all
    else, so that ``--calibrate`` leaves the other fits as they are without it.
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
    """Temperature of ``model.method`` fitted on out-of-fold probabilities of the references.

    Three folds that keep each source whole: a reference is scored by a model fitted
    without any detection of its source.
    """
    from xrayclass.core.calibration import temperature_out_of_fold

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
            f"{v:.3f}" if v is not None else "undefined"
            for v in (
                calibration["ece_before"],
                calibration["ece_after"],
                calibration["brier_before"],
                calibration["brier_after"],
            )
        ),
    )
    return calibration


def _log_naive_bayes(model: ClassifierModel) -> None:
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


def log_fit(model: ClassifierModel, classes: Sequence[str], likelihood: str, priors: str) -> None:
    """Log what the fit of stage 3 chose (every engine says it so)."""
    _log_references(model, classes)
    _log_naive_bayes(model)
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


def classify_detections_in_parts(
    table: pd.DataFrame,
    classes: Sequence[str] = CLASSES,
    uninformative: Sequence[str] = UNINFORMATIVE_TYPES,
    min_references: int | str = "n_features",
    method: str = "mahalanobis",
    location: bool = True,
    score: str = "macro_f1",
    outlier_fraction: float = OUTLIER_FRACTION,
    explain: bool = True,
    strict_labels: bool = False,
    likelihood: str = "distance",
    priors: str = "none",
    log_floor: float | None = None,
    calibrate: bool = False,
    feature_set: FeatureSet = PAPER,
) -> ClassifiedDetections:
    """Stage 3 on a crossmatched table, its output in parts (see :class:`ClassifiedDetections`).

    :func:`classify_detections` gives the same as one table; the parameters are the same.

    Parameters
    ----------
    table : pandas.DataFrame
        Detections with ``name`` (or ``name_1``), ``obsid``, ``cluster``, ``ra``,
        ``dec``, ``main_type`` (SIMBAD type, old or today's label; missing means no
        match), optionally ``otype`` (SIMBAD's short code, preferred where present)
        and the features (or the raw columns they derive from).
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
    strict_labels : bool
        Raise :class:`LabelError` instead of warning when a class has no reference in
        any cluster, or when more than 5% of the matched detections carry a SIMBAD type
        the taxonomy does not know.
    likelihood : {"distance", "gaussian"}
        Mahalanobis scoring: the paper's softmin of squared distances, or the Gaussian
        log-density (see :class:`~xrayclass.classifier.MahalanobisClassifier`).
    priors : {"none", "references"}
        Class priors of the Mahalanobis scoring: none (the paper's) or the class shares
        among each cluster's references.
    log_floor : float, optional
        Shift of the log features (default: the paper's rule, smallest non-zero / 10).
    calibrate : bool
        Fit a temperature out of fold on the references (stored in the model) and apply
        it to the probabilities.

    Returns
    -------
    ClassifiedDetections
        What stage 3 computed, the table's other columns for the same rows, the
        position of each row in ``table``, and the model.
    """
    prepared = prepare_detections(table, classes, uninformative, strict_labels, location, feature_set)
    return classify_prepared(
        prepared,
        min_references=min_references,
        method=method,
        score=score,
        outlier_fraction=outlier_fraction,
        explain=explain,
        likelihood=likelihood,
        priors=priors,
        log_floor=log_floor,
        calibrate=calibrate,
    )


def classify_prepared(
    prepared: PreparedDetections,
    min_references: int | str = "n_features",
    method: str = "mahalanobis",
    score: str = "macro_f1",
    outlier_fraction: float = OUTLIER_FRACTION,
    explain: bool = True,
    likelihood: str = "distance",
    priors: str = "none",
    log_floor: float | None = None,
    calibrate: bool = False,
) -> ClassifiedDetections:
    """The model's part of :func:`classify_detections_in_parts`: fit, classification, output.

    ``prepared`` is :func:`prepare_detections` of the table (which took the keywords
    ``classes``, ``uninformative``, ``strict_labels``, ``location`` and ``feature_set``);
    the other keywords are those of :func:`classify_detections_in_parts`. The command
    line prepares the input while scikit-learn and SciPy are still loading.
    """
    classes, uninformative, location, feature_set = (
        prepared.classes,
        prepared.uninformative,
        prepared.location,
        prepared.feature_set,
    )
    work, roles, census, latitude = prepared.work, prepared.roles, prepared.census, prepared.latitude
    kept, chosen, ordering, to_classify = prepared.kept, prepared.chosen, prepared.ordering, prepared.to_classify

    model, _ = fit_classifier(
        work,
        classes,
        uninformative,
        min_references,
        method,
        location,
        score,
        tune=weights_needed(method, explain),
        likelihood=likelihood,
        priors=priors,
        log_floor=log_floor,
        calibrate=calibrate,
        feature_set=feature_set,
        latitude=latitude,
        roles=roles,
    )
    model.census = census
    log_fit(model, classes, likelihood, priors)

    # Classified in the output's order (each row's result depends on that row alone), so
    # that the results need no reordering after.
    order, passthrough = ordering.result()
    del work
    chosen = chosen.take(order).reset_index(drop=True)
    result = model.classify(
        chosen,
        chosen[CLUSTER].to_numpy(),
        method,
        outlier_fraction,
        explain,
        calibrate,
        latitude=None if latitude is None else latitude[to_classify][order],
    )
    unclassified = (result[MAIN_TYPE] == UNCLASSIFIED).to_numpy()
    log_classified(
        int(unclassified.sum()),
        np.unique(chosen[CLUSTER].to_numpy()[unclassified]),
        int(result["outlier_flag"].sum()) if explain else 0,
        method,
        outlier_fraction,
        explain,
        feature_set,
    )

    computed = assemble_classified(chosen, result, classes, feature_set, passthrough.iloc[:, :0])
    log.info("%s detections of %s sources classified", f"{len(computed):,}", f"{_count_runs(computed[NAME]):,}")
    return ClassifiedDetections(
        computed=computed,
        passthrough=passthrough[[c for c in passthrough.columns if c not in computed.columns]],
        rows=kept[to_classify][order],
        model=model,
    )


def _count_runs(values: pd.Series) -> int:
    """``values.nunique()`` of sorted ``values`` without gaps (the output's names): the
    number of runs of equal values, found by comparing neighbours (Arrow), not hashing."""
    import pyarrow as pa
    import pyarrow.compute as pc

    array = pa.array(values)
    if len(array) < 2:
        return len(array)
    changes = pc.not_equal(array.slice(1), array.slice(0, len(array) - 1))
    return 1 + int(pc.sum(changes).as_py() or 0)


def classify_detections(table: pd.DataFrame, **options: Any) -> tuple[pd.DataFrame, ClassifierModel]:
    """Stage 3 on a crossmatched table (the stage-2 output or a frozen crossmatch file).

    ``options`` are the keywords of :func:`classify_detections_in_parts` (the method's
    choices; the paper's by default).

    Returns
    -------
    classified : pandas.DataFrame
        One row per classified detection, sorted by name then obsid: ``name, obsid,
        cluster, ra, dec, main_type`` (the predicted class), the class probabilities,
        the 12 features, ``simbad_main_type`` (the input's SIMBAD type under its
        canonical, paper name, whatever spelling came in), the outlier measure,
        percentile and flag, ``driven_by`` and the probability track, then the other
        input columns.
    model : ClassifierModel
        With its ``census`` (:func:`reference_census`).
    """
    parts = classify_detections_in_parts(table, **options)
    return parts.table(), parts.model


@dataclass
class ClassifiedDetections:
    """Stage 3's output in parts: what it computed, and the input's other columns.

    ``table()`` joins them: the table :func:`classify_detections` returns. A caller that
    left some input columns unread (the command line, until it writes) joins them
    through ``rows``.
    """

    #: The columns stage 3 writes first (identity, prediction, probabilities, features,
    #: SIMBAD type, outlier measures and tracks), one row per classified detection.
    computed: pd.DataFrame
    #: The input's other columns, same rows (those named like a computed column left out).
    passthrough: pd.DataFrame
    #: The position in the input table of each row.
    rows: np.ndarray
    model: ClassifierModel

    def table(self) -> pd.DataFrame:
        return pd.concat([self.computed, self.passthrough], axis=1)


def assemble_classified(
    chosen: pd.DataFrame,
    result: pd.DataFrame,
    classes: Sequence[str] = CLASSES,
    feature_set: FeatureSet = PAPER,
    passthrough: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The stage-3 output columns of the classified rows ``chosen``, in their order.

    ``result`` is :meth:`ClassifierModel.classify` of ``chosen`` (same row order). The
    other input columns come last: those of ``chosen`` beyond the ones the output
    puts first, or ``passthrough`` (the same rows, same order) when given.
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
    """The flagged detections, most outlying first, with their features, for follow-up.

    Empty (with its columns) when the outlier measures were not computed.
    """
    if "outlier_flag" not in classified.columns:
        return pd.DataFrame(columns=[*OUTLIER_COLUMNS, *feature_set.features])
    flagged = classified[classified["outlier_flag"].astype(bool)]
    flagged = flagged.sort_values("outlier_measure", ascending=False, kind="stable")
    return flagged[[*OUTLIER_COLUMNS, *feature_set.features]].reset_index(drop=True)


def run_classification(
    crossmatched: pd.DataFrame, config: ClassificationConfig = ClassificationConfig()
) -> tuple[pd.DataFrame, ClassifierModel]:
    """Stage 3 on an in-memory stage-2 table: ``(classified, classifier)``.

    See :func:`classify_detections`, which this is, with ``config``'s choices.
    """
    options = dataclasses.asdict(config)
    options["score"] = options.pop("nb_score")
    options["feature_set"] = config.feature_set
    return classify_detections(crossmatched, **options)
