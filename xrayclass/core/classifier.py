"""Per-cluster Mahalanobis classification of unlabeled detections (stage 3).

Inside a cluster each class is represented by its reference detections. A detection is
scored by its **squared** Mahalanobis distance ``d = (x - mean)^T pinv(cov) (x - mean)``
to each class (sample covariance, ddof 1, Moore-Penrose pseudo-inverse), and a softmin
``exp(-d) / sum exp(-d)`` turns distances into probabilities; a class with fewer
references than features gets probability 0. This is the published code; the paper's
prose speaks of the unsquared distance.

Beyond the paper (issue 13), ``likelihood="gaussian"`` scores the Gaussian log-density
``-d/2 - log pdet(cov)/2 - rank/2 log(2 pi)`` and ``priors="references"`` adds the log of
each class's share of the cluster's references. :class:`ClassifierModel` is stage 3's
stored model with its JSON document.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import erfa
import numpy as np
import pandas as pd
import pyarrow as pa
import scipy.linalg
import scipy.special
import sklearn
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from xrayclass.constants import (
    CLASSIFIER_METHODS,
    LIKELIHOODS,
    MAIN_TYPE,
    OUTLIER_FRACTION,
    OUTLIER_PERCENTILES,
    PRIORS,
    UNCLASSIFIED,
    UNINFORMATIVE_TYPES,
    VERSION,
)
from xrayclass.core.calibration import apply_temperature, softmax_log
from xrayclass.core.checks import validate_classifier_document
from xrayclass.core.featuresets import PAPER, FeatureSet, from_artifact
from xrayclass.core.naive_bayes import NaiveBayesClassifier
from xrayclass.core.preprocessing import LogMinMaxScaler
from xrayclass.exceptions import InputError

__all__ = [
    "CHUNK_ROWS",
    "CLASSIFIER_FORMAT",
    "CLASSIFIER_FORMAT_VERSION",
    "LIKELIHOODS",
    "PRIORS",
    "ClassifierModel",
    "ClusterwiseMahalanobis",
    "MahalanobisClassifier",
    "absolute_galactic_latitude",
    "labels_from_probabilities",
    "pseudo_log_determinant",
    "softmax_log",
    "softmin",
    "squared_mahalanobis",
]

#: Rows scored at once, to bound memory at any catalog size.
CHUNK_ROWS = 65_536
CLASSIFIER_FORMAT = "xrayclass.classifier-model"
#: Version 1 documents without "reference_census" load and classify the same.
CLASSIFIER_FORMAT_VERSION = 1


def softmin(distances: ArrayLike) -> np.ndarray:
    """Probabilities ``exp(-|d|) / sum exp(-|d|)`` of each row of distances (the published arithmetic).

    ``scipy.special.softmax`` subtracts each row's smallest distance first, so a row
    where every ``exp(-d)`` underflows stays defined (the published code gave NaN); a
    row without a finite distance gets all zeros.
    """
    negated = np.negative(np.abs(np.asarray(distances, dtype="float64")))
    # A row without any finite distance would give inf - inf = NaN inside softmax.
    defined = np.isfinite(negated.max(axis=1))
    if defined.all():
        return scipy.special.softmax(negated, axis=1)
    probabilities = np.zeros_like(negated)
    probabilities[defined] = scipy.special.softmax(negated[defined], axis=1)
    return probabilities


def pseudo_log_determinant(covariance: np.ndarray) -> tuple[float, int]:
    """Log pseudo-determinant and rank of a covariance, over the singular values ``scipy.linalg.pinv`` keeps.

    So that ``(pinv, pdet)`` make the Gaussian density on the subspace the references span.
    """
    values = scipy.linalg.svdvals(covariance)
    if values.size == 0 or values[0] <= 0:
        return -np.inf, 0
    cutoff = max(covariance.shape) * np.finfo(values.dtype).eps * values[0]
    kept = values[values > cutoff]
    return float(np.sum(np.log(kept))), int(kept.size)


def squared_mahalanobis(X: np.ndarray, mean: np.ndarray, inverse_covariance: np.ndarray) -> np.ndarray:
    """Squared Mahalanobis distance of each row of ``X`` to ``mean``, linear in memory.

    ``einsum`` sums in a fixed order for every row, unlike BLAS, whose last bit can
    change with the rows sharing a block: a detection's probabilities do not depend on
    the batch or partition it is scored in.
    """
    centered = X - mean
    return np.einsum("ij,ij->i", np.einsum("ij,jk->ik", centered, inverse_covariance), centered)


class MahalanobisClassifier(ClassifierMixin, BaseEstimator):
    """Classify by squared Mahalanobis distance to each class's references, with softmin.

    Parameters
    ----------
    classes : sequence, optional
        The probability columns' order (ties go to the first); default the sorted labels of ``fit``.
    min_references : int or "n_features", default "n_features"
        Fewer references than this (a singular covariance) and a class gets probability 0.
    unclassified_label : object, default "Unclassified"
        What :meth:`predict` returns for a row no class can score (its probabilities are all 0).
    likelihood : {"distance", "gaussian"}, default "distance"
        Softmin of the squared distances (the paper's), or softmax of the Gaussian log-densities.
    priors : {"none", "references"}, default "none"
        ``references`` weights each class by its share of the references seen in ``fit``.

    Attributes ``classes_``, ``n_references_``, ``scored_``, ``means_``, ``inverse_covariances_``,
    ``log_pseudo_determinants_`` and ``ranks_`` hold one entry per class (NaN or 0 where not scored).
    """

    def __init__(
        self,
        classes: Sequence[str] | None = None,
        min_references: int | str = "n_features",
        unclassified_label: str = UNCLASSIFIED,
        likelihood: str = "distance",
        priors: str = "none",
    ) -> None:
        self.classes = classes
        self.min_references = min_references
        self.unclassified_label = unclassified_label
        self.likelihood = likelihood
        self.priors = priors

    def _check_scoring(self) -> None:
        if self.likelihood not in LIKELIHOODS:
            raise ValueError(f"likelihood must be one of {LIKELIHOODS}, got {self.likelihood!r}")
        if self.priors not in PRIORS:
            raise ValueError(f"priors must be one of {PRIORS}, got {self.priors!r}")

    def _min_references(self, n_features: int) -> int:
        if self.min_references == "n_features":
            return n_features
        if isinstance(self.min_references, (int, np.integer)) and self.min_references >= 2:
            return int(self.min_references)
        raise ValueError(f"min_references must be 'n_features' or an integer >= 2, got {self.min_references!r}")

    def _allocate(self, classes: ArrayLike, n_features: int) -> MahalanobisClassifier:
        """Set the fitted attributes of a model that scores no class yet."""
        n_classes = len(classes)  # type: ignore[arg-type]
        self.classes_ = np.asarray(classes)
        self.n_references_ = np.zeros(n_classes, dtype=int)
        self.scored_ = np.zeros(n_classes, dtype=bool)
        self.means_ = np.full((n_classes, n_features), np.nan)
        self.inverse_covariances_ = np.full((n_classes, n_features, n_features), np.nan)
        self.log_pseudo_determinants_ = np.full(n_classes, np.nan)
        self.ranks_ = np.zeros(n_classes, dtype=int)
        self.n_features_in_ = n_features
        return self

    def fit(self, X: np.ndarray, y: np.ndarray) -> MahalanobisClassifier:
        """Learn each class's reference mean and pseudo-inverse covariance from preprocessed ``X``."""
        self._check_scoring()
        X, y = validate_data(self, X, y, dtype="float64")
        check_classification_targets(y)
        if self.classes is None:
            classes = np.unique(y)
        else:
            classes = np.asarray(list(self.classes))
            unknown = sorted(set(np.unique(y).tolist()) - set(classes.tolist()))
            if unknown:
                raise ValueError(f"labels {unknown} are not among classes {classes.tolist()}")
        minimum = self._min_references(X.shape[1])
        self._allocate(classes, X.shape[1])
        for k, label in enumerate(classes):
            references = X[y == label]
            self.n_references_[k] = len(references)
            if len(references) < minimum:
                continue
            self.means_[k] = references.mean(axis=0)
            covariance = np.atleast_2d(np.cov(references, rowvar=False, ddof=1))
            self.inverse_covariances_[k] = scipy.linalg.pinv(covariance)
            self.log_pseudo_determinants_[k], self.ranks_[k] = pseudo_log_determinant(covariance)
        self.scored_ = self.n_references_ >= minimum
        return self

    def squared_distances(self, X: np.ndarray) -> np.ndarray:
        """Squared Mahalanobis distance of each row to each class (inf where not scored)."""
        check_is_fitted(self, "scored_")
        X = validate_data(self, X, dtype="float64", reset=False)
        distances = np.full((len(X), len(self.classes_)), np.inf)
        for start in range(0, len(X), CHUNK_ROWS):
            rows = slice(start, start + CHUNK_ROWS)
            for k in np.flatnonzero(self.scored_):
                distances[rows, k] = squared_mahalanobis(X[rows], self.means_[k], self.inverse_covariances_[k])
        return distances

    def log_prior(self) -> np.ndarray:
        """Log prior of each class: 0 with ``priors="none"``, else log of its share of the references."""
        if getattr(self, "priors", "none") == "none":
            return np.zeros(len(self.classes_))
        total = self.n_references_.sum()
        with np.errstate(divide="ignore"):
            return np.log(self.n_references_ / total) if total else np.full(len(self.classes_), -np.inf)

    def log_likelihood(self, X: np.ndarray) -> np.ndarray:
        """Gaussian log-density of each row under each class (-inf where not scored).

        On a full-rank covariance this is ``scipy.stats.multivariate_normal.logpdf``.
        """
        distances = self.squared_distances(X)
        constants = np.where(
            self.scored_, 0.5 * (self.log_pseudo_determinants_ + self.ranks_ * np.log(2 * np.pi)), np.inf
        )
        return -(0.5 * distances + constants)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities, columns in ``classes_`` order; all zero where no class can score a row."""
        self._check_scoring()
        if self.likelihood == "distance" and self.priors == "none":
            return softmin(self.squared_distances(X))
        scores = -self.squared_distances(X) if self.likelihood == "distance" else self.log_likelihood(X)
        return softmax_log(scores + self.log_prior())

    def predict(self, X: np.ndarray) -> np.ndarray:
        """The most probable class (the first in ``classes_`` on a tie)."""
        return labels_from_probabilities(self.predict_proba(X), self.classes_, self.unclassified_label)


def labels_from_probabilities(
    probabilities: np.ndarray, classes: Sequence[str] | np.ndarray, unclassified_label: str = UNCLASSIFIED
) -> np.ndarray:
    """Argmax class of each row (first class on a tie); ``unclassified_label`` where a row is all zero."""
    labels = np.asarray(classes)[np.argmax(probabilities, axis=1)]
    unscored = ~(probabilities > 0).any(axis=1)
    if unscored.any():
        labels = labels.astype(object)
        labels[unscored] = unclassified_label
    return labels


class ClusterwiseMahalanobis:
    """One :class:`MahalanobisClassifier` per cluster (``classifiers_``), fitted on that cluster's references."""

    def __init__(
        self,
        classes: Sequence[str],
        min_references: int | str = "n_features",
        likelihood: str = "distance",
        priors: str = "none",
    ) -> None:
        self.classes = tuple(classes)
        self.min_references = min_references
        self.likelihood = likelihood
        self.priors = priors

    def _classifier(self) -> MahalanobisClassifier:
        return MahalanobisClassifier(
            classes=self.classes, min_references=self.min_references, likelihood=self.likelihood, priors=self.priors
        )

    def fit(
        self, X: np.ndarray, y: np.ndarray, clusters: ArrayLike, all_clusters: Iterable[object] = ()
    ) -> ClusterwiseMahalanobis:
        """Fit each cluster's classifier on its references; ``all_clusters`` without any score no class."""
        X = np.asarray(X, dtype="float64")
        y = np.asarray(y)
        clusters = np.asarray(clusters)
        self.classifiers_ = {}
        for cluster in np.unique(clusters):
            members = clusters == cluster
            self.classifiers_[_cluster_key(cluster)] = self._classifier().fit(X[members], y[members])
        for cluster in all_clusters:
            if _cluster_key(cluster) not in self.classifiers_:
                self.classifiers_[_cluster_key(cluster)] = self._classifier()._allocate(self.classes, X.shape[1])
        return self

    def predict_proba(self, X: np.ndarray, clusters: ArrayLike) -> np.ndarray:
        """Probabilities from each row's own cluster; all zero for a cluster never fitted."""
        if not hasattr(self, "classifiers_"):
            raise ValueError("ClusterwiseMahalanobis is not fitted yet; call fit first")
        X = np.asarray(X, dtype="float64")
        clusters = np.asarray(clusters)
        # Rows grouped by cluster once (a stable sort), then scored in contiguous slices.
        order = np.argsort(clusters, kind="stable")
        grouped, X_grouped = clusters[order], X[order]
        bounds = np.flatnonzero(np.r_[True, grouped[1:] != grouped[:-1], True]) if len(X) else np.array([0])
        probabilities = np.zeros((len(X), len(self.classes)))
        for start, stop in itertools.pairwise(bounds):
            classifier = self.classifiers_.get(_cluster_key(grouped[start]))
            if classifier is not None:
                probabilities[order[start:stop]] = classifier.predict_proba(X_grouped[start:stop])
        return probabilities

    def predict(self, X: np.ndarray, clusters: ArrayLike) -> np.ndarray:
        """The most probable class of each row, ``Unclassified`` where none can be scored."""
        return labels_from_probabilities(self.predict_proba(X, clusters), self.classes)

    def reference_counts(self) -> dict[int, dict[str, int]]:
        """Table (dict of dicts) cluster -> class -> number of references."""
        return {
            cluster: dict(zip(self.classes, classifier.n_references_.tolist(), strict=False))
            for cluster, classifier in self.classifiers_.items()
        }

    def to_dict(self) -> dict[str, Any]:
        """Per-cluster, per-class references summary: count, mean and pseudo-inverse."""
        clusters = {}
        for cluster, classifier in self.classifiers_.items():
            per_class = {}
            for k, label in enumerate(classifier.classes_):
                entry: dict[str, Any] = {
                    "n_references": int(classifier.n_references_[k]),
                    "scored": bool(classifier.scored_[k]),
                }
                if classifier.scored_[k]:
                    entry["mean"] = classifier.means_[k].tolist()
                    entry["inverse_covariance"] = classifier.inverse_covariances_[k].tolist()
                    entry["log_pseudo_determinant"] = float(classifier.log_pseudo_determinants_[k])
                    entry["rank"] = int(classifier.ranks_[k])
                per_class[str(label)] = entry
            clusters[str(cluster)] = per_class
        n_features = {int(c.n_features_in_) for c in self.classifiers_.values()}
        return {
            "classes": list(self.classes),
            "min_references": self.min_references,
            "likelihood": self.likelihood,
            "priors": self.priors,
            "n_features": n_features.pop() if len(n_features) == 1 else None,
            "clusters": clusters,
        }

    @classmethod
    def from_dict(cls, document: Mapping[str, Any]) -> ClusterwiseMahalanobis:
        """Rebuild from :meth:`to_dict` output, predicting exactly as the original."""
        # Artifacts without likelihood or priors (before issue 13) score as the paper.
        model = cls(
            document["classes"],
            document["min_references"],
            document.get("likelihood", "distance"),
            document.get("priors", "none"),
        )
        model.classifiers_ = {}
        for cluster, per_class in document["clusters"].items():
            classifier = model._classifier()._allocate(model.classes, int(document["n_features"]))
            classifier.n_references_ = np.array([per_class[c]["n_references"] for c in model.classes])
            classifier.scored_ = np.array([per_class[c]["scored"] for c in model.classes])
            for k, label in enumerate(model.classes):
                if per_class[label]["scored"]:
                    classifier.means_[k] = per_class[label]["mean"]
                    classifier.inverse_covariances_[k] = per_class[label]["inverse_covariance"]
                    classifier.log_pseudo_determinants_[k] = per_class[label].get("log_pseudo_determinant", np.nan)
                    classifier.ranks_[k] = per_class[label].get("rank", 0)
            model.classifiers_[_cluster_key(cluster)] = classifier
        return model


def _cluster_key(cluster: Any) -> int:
    """Cluster labels as Python ints (they come as numpy ints, floats or JSON strings)."""
    return int(float(cluster))


def absolute_galactic_latitude(detections: pd.DataFrame) -> np.ndarray:
    """|b| / 90 deg of each detection, from ``ra``/``dec`` (ICRS, deg), in [0, 1].

    ERFA's ``icrs2g`` (under astropy) agrees with ``SkyCoord(...).galactic`` within 3e-6 deg,
    far finer than the location category's 1.8-deg bins, without importing ``astropy.coordinates``.
    """
    ra = np.radians(detections["ra"].to_numpy(dtype="float64"))
    dec = np.radians(detections["dec"].to_numpy(dtype="float64"))
    _, latitude = erfa.icrs2g(ra, dec)
    return np.abs(np.degrees(latitude)) / 90.0


def _text(names: Sequence[str], positions: np.ndarray) -> pd.Series:
    """A text column of ``names[position]`` for each position (-1: the last name)."""
    positions = np.where(positions < 0, len(names) - 1, positions)
    return pd.Series(pd.array(pa.array(list(names), pa.large_string()).take(pa.array(positions)), dtype="str"))


@dataclass
class ClassifierModel:
    """Everything needed to classify new detections: preprocessing, references, naive Bayes, outlier yardstick."""

    scaler: LogMinMaxScaler
    references: ClusterwiseMahalanobis
    naive_bayes: NaiveBayesClassifier
    outlier_quantiles: np.ndarray
    location: bool = True
    method: str = "mahalanobis"
    uninformative: tuple[str, ...] = UNINFORMATIVE_TYPES
    #: What stage 3 learned from (its reference census); None for old artifacts.
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
        method = self._method(method)
        X = self.preprocess(detections)
        if method == "mahalanobis":
            return self._calibrated(self.references.predict_proba(X, clusters), method, calibrate)
        latitude = absolute_galactic_latitude(detections) if self.location else None
        return self._calibrated(self.naive_bayes.predict_proba(self._naive_bayes_input(X, latitude)), method, calibrate)

    def _method(self, method: str | None) -> str:
        method = method or self.method
        if method not in CLASSIFIER_METHODS:
            raise ValueError(f"method must be one of {CLASSIFIER_METHODS}, got {method!r}")
        return method

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
    ) -> pd.DataFrame:
        """Probabilities, predicted class, outlier measure and probability track; each row on its own.

        Columns: ``main_type`` (``Unclassified`` if no class can be scored), the ten
        probabilities (temperature-scaled with ``calibrate``), and unless ``explain`` is
        False: ``outlier_measure``, ``outlier_percentile``, ``outlier_flag`` (percentile
        above ``100 (1 - outlier_fraction)``), ``driven_by`` (the category that most
        favours the class) and ``track_prior``, ``track_<category>``... (the posterior as
        the categories are added in turn). ``latitude``: :func:`absolute_galactic_latitude`
        of ``detections`` when the caller has it.
        """
        method = self._method(method)
        if calibrate:
            self.check_calibration(method)
        clusters = np.asarray(clusters)
        if self.location and latitude is None and (explain or method == "naive-bayes"):
            latitude = absolute_galactic_latitude(detections)
        X = self.preprocess(detections)
        probabilities = self._calibrated(
            self.references.predict_proba(X, clusters)
            if method == "mahalanobis"
            else self.naive_bayes.predict_proba(self._naive_bayes_input(X, latitude)),
            method,
            calibrate,
        )
        # labels_from_probabilities, as positions in classes (-1 where no class is scored),
        # made text once, by Arrow.
        predicted = np.where((probabilities > 0).any(axis=1), np.argmax(probabilities, axis=1), -1)
        result = pd.DataFrame(probabilities, columns=list(self.classes), copy=False)
        result.insert(0, MAIN_TYPE, _text([*self.classes, UNCLASSIFIED], predicted))
        if not explain:
            return result
        # The same classes at their positions in the naive Bayes model's (-1 stays -1).
        positions = np.append(pd.Index(self.naive_bayes.classes_).get_indexer(list(self.classes)), -1)
        explained = self.naive_bayes.explain_columns(self._naive_bayes_input(X, latitude), positions[predicted])
        percentile = self.outlier_percentile(explained["outlier_measure"])
        result["outlier_measure"] = explained["outlier_measure"]
        result["outlier_percentile"] = percentile
        result["outlier_flag"] = percentile >= 100 * (1 - outlier_fraction)
        result["driven_by"] = _text([*self.naive_bayes.categories_, ""], explained["driven_by_category"])
        for k, step in enumerate(["prior", *self.naive_bayes.categories_]):
            result[f"track_{step}"] = explained["track"][:, k]
        return result

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": CLASSIFIER_FORMAT,
            "format_version": CLASSIFIER_FORMAT_VERSION,
            "software": {"xrayclass": VERSION, "scikit-learn": sklearn.__version__, "numpy": np.__version__},
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
        validate_classifier_document(document, CLASSIFIER_FORMAT, CLASSIFIER_FORMAT_VERSION, CLASSIFIER_METHODS)
        return cls(
            scaler=LogMinMaxScaler.from_dict(document["preprocessing"]),
            references=ClusterwiseMahalanobis.from_dict(document["references"]),
            naive_bayes=NaiveBayesClassifier.from_dict(document["naive_bayes"]),
            outlier_quantiles=np.asarray(document["outlier_quantiles"], dtype=float),
            location=bool(document["location"]),
            method=document["method"],
            uninformative=tuple(document["uninformative_types"]),
            census=document.get("reference_census"),
            calibration=document.get("calibration"),
            feature_set=from_artifact(document),
        )
