"""Classify new CSC detections with the artifacts of a pipeline run (``classify_source.py``).

A run of the pipeline leaves two artifacts: the stage-1 model (``model.json``: the
log/MinMax preprocessing and the Gaussian mixture) and the stage-3 classifier
(``classifier.json``: the preprocessing and each cluster's class references). With
them, any detection that has the 12 features can be classified without refitting and
without the training table:

1. the derived features (``var_ratio_*``, ``var_newq_b``) are computed from the raw
   CSC columns, exactly as in stage 1;
2. the mixture gives the detection's cluster and its membership probability;
3. the cluster's class references give the ten class probabilities (softmin of the
   squared Mahalanobis distances) and the predicted class, as in stage 3;
4. the detections of each source vote, hard and soft, as in stage 4.

For a detection of the training table this gives exactly what stage 3 gave when stage 3
used the run's own clusters. With a frozen crossmatch's clusters, ``model.json`` holds a
mixture estimated from them by stage 2, which reproduces them only as often as stage 2
measured; :func:`cluster_caveats` says so in the printed summary. A
detection lacking a feature cannot be placed in the feature space: it is skipped and
the raw columns that are null are named. Values beyond the training range are not
clipped (the preprocessing extrapolates) but flagged, feature by feature; a value at
or below ``-shift`` of a log feature has no logarithm, and that detection is skipped.
"""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from xrayclass.constants import (
    AGGREGATE_CLASS,
    CLUSTER,
    FEATURES,
    MAIN_TYPE,
    NAME,
    NAME_ALIASES,
    OBSID,
    RAW_FEATURE_COLUMNS,
    UNCLASSIFIED,
    VARIABILITY_RATIO_BANDS,
)
from xrayclass.core.checks import require_numeric
from xrayclass.core.features import prepare_features
from xrayclass.core.featuresets import PAPER, FeatureSet
from xrayclass.io.tables import InputError
from xrayclass.stages.master_classification import vote
from xrayclass.text import plural

if TYPE_CHECKING:
    from xrayclass.core.classifier import ClassifierModel
    from xrayclass.core.mixture import ClusteringModel
    from xrayclass.core.preprocessing import LogMinMaxScaler


__all__ = [
    "CSC_NAME",
    "FEATURE_INPUTS",
    "FLAGS",
    "MAX_FLAG_LINES",
    "MEMBERSHIP",
    "OUTSIDE",
    "OUT_OF_RANGE",
    "Classification",
    "RangeFlags",
    "classify",
    "cluster_caveats",
    "csc_source_name",
    "detection_labels",
    "format_report",
    "full_labels",
    "identify",
    "join_where",
    "missing_features",
    "output_tables",
    "range_flags",
    "source_table",
    "unclassifiable",
]

log = logging.getLogger(__name__)

#: The raw CSC columns each of the 12 features is computed from.
FEATURE_INPUTS = {
    **{feature: (feature,) for feature in FEATURES if feature in RAW_FEATURE_COLUMNS},
    **{f"var_ratio_{band}": (f"var_sigma_{band}", f"var_mean_{band}") for band in VARIABILITY_RATIO_BANDS},
    "var_newq_b": ("var_max_b", "var_min_b", "var_mean_b"),
}

#: A CSC 2 master-source name, with or without the "2CXO" prefix (X: extended source).
CSC_NAME = re.compile(r"^(?:2CXO\s?)?(J\d{6}\.\d[+-]\d{6}X?)$", re.IGNORECASE)

#: Columns of the per-detection table besides the ten class probabilities.
MEMBERSHIP = "cluster_probability"
OUT_OF_RANGE = "out_of_range"
OUTSIDE = "outside_training_range"
FLAGS = "flags"

#: Most flag lines printed under one source.
MAX_FLAG_LINES = 10

#: Status of a source in the per-source table.
UNIQUE, AMBIGUOUS, NO_CLASS, NOT_CLASSIFIABLE = "uniquely classified", "ambiguous", "unclassified", "not classifiable"

_ROW = "_row"


# -- the input ------------------------------------------------------------------------------


def csc_source_name(text: str) -> str | None:
    """The CSC name ``text`` stands for (``'2CXO J...'``), or None if it is not one.

    Accepts ``'2CXO J004307.5-092302'``, ``'2CXOJ004307.5-092302'`` and
    ``'J004307.5-092302'`` (any case, surrounding blanks ignored).
    """
    match = CSC_NAME.match(" ".join(str(text).split()))
    return f"2CXO {match.group(1).upper()}" if match else None


def identify(table: pd.DataFrame) -> tuple[pd.DataFrame, bool]:
    """Give every detection a source name and a row number, and sort them.

    Parameters
    ----------
    table : pandas.DataFrame
        Detections; ``name`` (or ``name_1``), ``obsid``, ``ra`` and ``dec`` are used
        where present.
    Returns
    -------
    table : pandas.DataFrame
        With ``name`` (text; ``'row N'`` where the input has no name) and ``_row``
        (the 1-based input row), sorted by name and obsid (input order when the
        names are made up or there is no obsid).
    named : bool
        Whether the input had source names.
    """
    if NAME not in table.columns:
        alias = next((a for a in NAME_ALIASES if a in table.columns), None)
        if alias is not None:
            table = table.rename(columns={alias: NAME})
    table = require_numeric(table, [c for c in (OBSID, "ra", "dec") if c in table.columns])
    if "ra" in table.columns and "dec" in table.columns:
        from xrayclass.core.checks import require_possible_positions

        require_possible_positions(table)  # missing ones only leave out the explanations
    rows = np.arange(1, len(table) + 1)
    row_names = pd.Series(rows, index=table.index).astype(str).radd("row ")
    named = NAME in table.columns
    if named:
        names = table[NAME].astype(object).where(table[NAME].notna(), "").astype(str).str.strip()
        names = names.where(names != "", row_names)
    else:
        names = row_names
    with warnings.catch_warnings():
        # pandas' CSV reader gives each column its own block, and adding any column to a
        # frame of more than 100 blocks warns of fragmentation (a stage-3 CSV has 114
        # columns); two columns cost nothing, and consolidating would copy the table.
        warnings.simplefilter("ignore", pd.errors.PerformanceWarning)
        table = table.assign(**{NAME: names.astype(object), _ROW: rows})  # type: ignore[arg-type]
    keys = [NAME, OBSID if OBSID in table.columns else _ROW] if named else [_ROW]
    return table.sort_values(keys, kind="stable").reset_index(drop=True), named


def detection_labels(table: pd.DataFrame) -> np.ndarray:
    """How messages call each detection within its source: ``'obsid N'``, else ``'row N'``."""
    if OBSID in table.columns:
        obsid = table[OBSID]
        known = obsid.dropna()
        if (known == np.round(known)).all():
            obsid = obsid.astype("Int64")
        return obsid.astype(str).replace({"<NA>": "?", "nan": "?"}).radd("obsid ").to_numpy(dtype=object)
    return table[_ROW].astype(str).radd("row ").to_numpy(dtype=object)


def full_labels(names: pd.Series | np.ndarray, labels: pd.Series | np.ndarray) -> np.ndarray:
    """``'NAME obsid N'``; just ``'row N'`` for a row that is its own (unnamed) source."""
    names = np.asarray(names, dtype=object)
    return np.where(names == labels, names, names + " " + labels).astype(object)


# -- missing features and the training range --------------------------------------------------


def join_where(mask: np.ndarray, labels: Sequence[str], separator: str = "; ") -> np.ndarray:
    """Per row, the ``labels`` whose column of ``mask`` is True, joined by ``separator``.

    Vectorized over rows (one pass per label). Rows with no True give ``''``.
    """
    joined = np.full(mask.shape[0], "", dtype=object)
    for j, label in enumerate(labels):
        rows = mask[:, j]
        if rows.any():
            current = joined[rows]
            joined[rows] = np.where(current == "", label, current + separator + label)
    return joined


def missing_features(detections: pd.DataFrame, feature_set: FeatureSet = PAPER) -> np.ndarray:
    """Why each detection lacks some of ``feature_set``'s features; ``''`` where it has all of them.

    Named in terms of the raw CSC columns that are null (``'missing powlaw_gamma,
    bb_kt'``), which is what a user can look up; a derived feature that is not finite
    although its inputs are there (a zero ``var_mean``) is named as such.

    Parameters
    ----------
    detections : pandas.DataFrame
        Output of :func:`~xrayclass.features.prepare_features`.

    Returns
    -------
    numpy.ndarray of str (object)
    """
    features = list(feature_set.features)
    raw_present = all(c in detections.columns for c in feature_set.raw_columns)
    inputs = {f: feature_set.derived.get(f, (f,)) for f in features} if raw_present else {f: (f,) for f in features}
    columns = list(feature_set.raw_columns if raw_present else features)
    null = detections[columns].isna().to_numpy()
    not_finite = ~np.isfinite(detections[features].to_numpy(dtype="float64"))
    explained = np.column_stack([null[:, [columns.index(c) for c in inputs[f]]].any(axis=1) for f in features])
    unexplained = not_finite & ~explained
    missing = join_where(null, columns, ", ")
    missing = np.where(missing != "", "missing " + missing, "")
    others = join_where(unexplained, [f"{f} not finite" for f in features], ", ")
    both = (missing != "") & (others != "")
    reasons = np.where(both, missing + "; " + others, missing + others)
    # Values outside their physical range (a hardness ratio of 3) are unusable too.
    from xrayclass.core.checks import describe_range, out_of_range

    outside = out_of_range(detections, columns)
    if outside.shape[1] and outside.to_numpy().any():
        named = join_where(outside.to_numpy(), [f"{c} outside {describe_range(c)}" for c in outside.columns], ", ")
        reasons = np.where((reasons != "") & (named != ""), reasons + "; " + named, reasons + named)
    return reasons.astype(object)


@dataclass
class RangeFlags:
    """Where features fall outside what the training data covered, per detection and feature.

    Attributes
    ----------
    undefined, below, above : numpy.ndarray of bool, shape (n_detections, 12)
        A log feature at or below ``-shift`` (no logarithm); a rescaled value below 0
        (under the training minimum) or above 1 (over the training maximum).
    """

    undefined: np.ndarray
    below: np.ndarray
    above: np.ndarray
    #: The features of the columns, in order.
    features: tuple = FEATURES

    def outside(self) -> np.ndarray:
        """Text per detection such as ``'bb_kt>max; var_ratio_b<min'`` (``''`` if none)."""
        mask = np.column_stack([flags[:, j] for j in range(len(self.features)) for flags in (self.below, self.above)])
        labels = [f"{feature}{side}" for feature in self.features for side in ("<min", ">max")]
        return join_where(mask, labels)

    def undefined_logs(self, shifts: Mapping[str, float]) -> np.ndarray:
        """Text per detection naming the log features without a logarithm (``''`` if none)."""
        labels = [f"{f} at or below -{shifts.get(f, float('nan')):.3g} (log undefined)" for f in self.features]
        return join_where(self.undefined, labels, ", ")


def range_flags(features: np.ndarray, scalers: Sequence[LogMinMaxScaler]) -> RangeFlags:
    """Flag feature values outside the training range of any of ``scalers``.

    Uses :meth:`~xrayclass.preprocessing.LogMinMaxScaler.out_of_range` for which
    values are out of range, and the transformed value for the side.

    Parameters
    ----------
    features : numpy.ndarray of shape (n, 12)
        Finite feature values, in ``FEATURES`` order.
    scalers : sequence of LogMinMaxScaler

    Returns
    -------
    RangeFlags
    """
    shape = features.shape
    undefined, below, above = (np.zeros(shape, dtype=bool) for _ in range(3))
    for scaler in scalers:
        flagged = scaler.out_of_range(features)
        scaled = scaler.transform(features)
        undefined |= flagged & ~np.isfinite(scaled)
        below |= flagged & (scaled < 0)
        above |= flagged & (scaled > 1)
    return RangeFlags(undefined, below, above, tuple(scalers[0].features) if len(scalers) else FEATURES)


# -- the artifacts ----------------------------------------------------------------------------


# -- classification -----------------------------------------------------------------------------


@dataclass
class Classification:
    """The result of :func:`classify`.

    Attributes
    ----------
    detections : pandas.DataFrame
        One row per classified detection, sorted by name and obsid.
    sources : pandas.DataFrame
        One row per source of the input (including those with no classifiable
        detection), in the same order.
    skipped : pandas.DataFrame
        ``name``, ``detection`` (``'obsid N'``, or ``'row N'`` of the input without
        obsid) and ``reason`` of each detection that could not be classified.
    n_input : int
        Detections in the input.
    caveats : tuple of str
        What the summary must say about the clusters.
    input_name : str
        How the summary names the input (the caller that read it sets the file or
        the fetched source).
    """

    detections: pd.DataFrame
    sources: pd.DataFrame
    skipped: pd.DataFrame
    n_input: int
    caveats: tuple = ()
    input_name: str = "the input"


def cluster_caveats(clustering: ClusteringModel) -> tuple[str, ...]:
    """What the printed summary must say about the clusters ``clustering`` places detections in.

    Nothing when its mixture is stage 1's own fit (it reproduces stage 3's clusters
    exactly); when it was estimated from a frozen crossmatch's clusters, how often it
    reproduces them on the training detections, as measured by stage 2.
    """
    provenance = clustering.clusters or {}
    if provenance.get("source") != "frozen":
        return ()
    agreement = provenance.get("agreement")
    if agreement is None:
        measured = "their agreement with stage 3's clusters was not measured"
    else:
        measured = (
            f"they reproduce stage 3's clusters for {100 * agreement:.1f}% of its "
            f"{provenance.get('n_detections', 0):,} training detections"
        )
        if agreement < 1:
            measured += "; elsewhere a detection's cluster, and so possibly its class, differs from stage 3's"
    lines = [
        f"clusters: estimated from the frozen crossmatch's assignments ({provenance.get('file', '?')}); {measured}"
    ]
    comparison = provenance.get("published_comparison")
    if comparison:
        lines.append(
            f"clusters: against the published mixture, weights differ by at most "
            f"{comparison['max_weight_difference']:.3f} and means lie up to {comparison['max_mean_distance']:.3f} "
            f"apart (our means: a median {comparison['median_separation']:.3f} apart); {comparison['caveat']}"
        )
    return tuple(lines)


def unclassifiable(
    prepared: pd.DataFrame, scalers: Sequence[LogMinMaxScaler], feature_set: FeatureSet = PAPER
) -> tuple[np.ndarray, RangeFlags]:
    """Why each detection cannot be classified (``''`` where it can), and its range flags.

    Returns
    -------
    reasons : numpy.ndarray of str (object)
    flags : RangeFlags
        For every row; rows without all features are never flagged.
    """
    reasons = missing_features(prepared, feature_set)
    complete = reasons == ""
    features = prepared[list(feature_set.features)].to_numpy(dtype="float64")
    features[~complete] = 1.0  # placeholders, only to keep the shapes; never reported
    flags = range_flags(features, scalers)
    for mask in (flags.undefined, flags.below, flags.above):
        mask[~complete] = False
    undefined = flags.undefined_logs(scalers[0].shift_)
    reasons = np.where(complete & (undefined != ""), undefined, reasons).astype(object)
    return reasons, flags


def classify(
    table: pd.DataFrame,
    clustering: ClusteringModel,
    classifier: ClassifierModel,
    method: str | None = None,
    calibrate: bool = False,
) -> Classification:
    """Classify the detections of ``table`` with the artifacts of a pipeline run.

    Parameters
    ----------
    table : pandas.DataFrame
        Per-observation detections with the raw CSC feature columns (or the 12
        features); ``name``, ``obsid``, ``ra``, ``dec`` where present.
    clustering : ClusteringModel
        The stage-1 artifact (``model.json``).
    classifier : ClassifierModel
        The stage-3 artifact (``classifier.json``).
    method : {"mahalanobis", "naive-bayes"}, optional
        The classifier giving the probabilities (default: the one stage 3 used).
    calibrate : bool
        Apply the classifier's temperature calibration (stored by ``classification.py
        --calibrate``).

    Returns
    -------
    Classification

    Raises
    ------
    InputError
        Feature columns absent or not numeric, or no detection can be classified
        (the message names the detections and what each lacks).
    """
    n_input = len(table)
    if calibrate:
        classifier.check_calibration(method)
    feature_set = clustering.feature_set
    if not feature_set.same_as(classifier.feature_set):
        raise InputError(
            f"the clustering model's feature set {feature_set.name!r} ({len(feature_set)} features) and "
            f"the classifier's {classifier.feature_set.name!r} ({len(classifier.feature_set)}) differ: "
            "they are not artifacts of one run"
        )
    table, named = identify(table)
    prepared = prepare_features(table, feature_set)
    reasons, flags = unclassifiable(prepared, (clustering.scaler, classifier.scaler), feature_set)
    ok = reasons == ""
    labels = detection_labels(prepared)
    skipped = pd.DataFrame(
        {NAME: prepared.loc[~ok, NAME].to_numpy(dtype=object), "detection": labels[~ok], "reason": reasons[~ok]}
    )
    if not ok.any():
        listed = "; ".join(full_labels(skipped[NAME], skipped["detection"]) + ": " + skipped["reason"])
        raise InputError(
            f"no detection can be classified (each needs all {len(feature_set)} features): {_shorten(listed)}"
        )
    if len(skipped):
        log.warning("%d of %d detections cannot be classified and are skipped (listed below)", len(skipped), n_input)

    chosen = prepared.loc[ok].reset_index(drop=True)
    clusters, memberships = clustering.assign(chosen)
    positions = all(c in chosen.columns for c in ("ra", "dec")) and chosen[["ra", "dec"]].notna().all().all()
    explain = positions or not classifier.location
    if not explain:
        log.warning(
            "no ra/dec for every detection: outlier measures and probability tracks (which use "
            "galactic latitude in this model) are left out"
        )
    result = classifier.classify(chosen, clusters, method=method, explain=explain, calibrate=calibrate)
    classes = list(classifier.classes)
    probabilities = result[classes].to_numpy()
    predicted = result[MAIN_TYPE].to_numpy(dtype=object)
    outside = flags.outside()[ok]
    detections = _detection_table(chosen, clusters, memberships, probabilities, classes, predicted, outside)
    explanation = result.drop(columns=[MAIN_TYPE, *classes])
    detections = pd.concat([detections, explanation], axis=1)
    sources = source_table(prepared, detections, skipped, classes)
    if not named:
        log.info("the input has no source names: each row is its own source ('row 1', 'row 2', ...)")
    return Classification(detections, sources, skipped, n_input, cluster_caveats(clustering))


def _shorten(text: str, limit: int = 600) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _detection_table(
    chosen: pd.DataFrame,
    clusters: np.ndarray,
    memberships: np.ndarray,
    probabilities: np.ndarray,
    classes: Sequence[str],
    predicted: np.ndarray,
    outside: np.ndarray,
) -> pd.DataFrame:
    identity = chosen[[c for c in (NAME, OBSID, "ra", "dec") if c in chosen.columns]]
    unscored = predicted == UNCLASSIFIED
    flags = np.where(outside != "", "outside training range: " + outside, "").astype(object)
    no_class = np.where(unscored, "no class with enough references in cluster " + clusters.astype(str), "")
    flags = np.where((flags != "") & (no_class != ""), flags + "; " + no_class, flags + no_class)
    return pd.concat(
        [
            identity.reset_index(drop=True),
            pd.DataFrame(
                {
                    CLUSTER: clusters,
                    MEMBERSHIP: memberships[np.arange(len(clusters)), clusters],
                }
            ),
            pd.DataFrame(probabilities, columns=list(classes)),
            pd.DataFrame(
                {
                    MAIN_TYPE: np.asarray(predicted, dtype=object),
                    OUTSIDE: outside != "",
                    OUT_OF_RANGE: outside,
                    FLAGS: flags,
                    _ROW: chosen[_ROW].to_numpy(),
                }
            ),
        ],
        axis=1,
    )


def _main_clusters(detections: pd.DataFrame) -> pd.DataFrame:
    counts = detections.groupby([NAME, CLUSTER], sort=False).size().rename("count").reset_index()
    counts = counts.sort_values([NAME, "count", CLUSTER], ascending=[True, False, True], kind="stable")
    return counts.drop_duplicates(NAME).set_index(NAME)


def _votes(detections: pd.DataFrame, classes: Sequence[str]) -> pd.DataFrame:
    scored = detections.loc[detections[MAIN_TYPE] != UNCLASSIFIED]
    columns = ["hard_master_class", "soft_master_class", "soft_mean_probability", "voting_count"]
    if scored.empty:
        return pd.DataFrame(columns=columns, index=pd.Index([], name=NAME))
    votes = vote(
        scored[NAME].to_numpy(dtype=object),
        scored[MAIN_TYPE].to_numpy(dtype=object),
        scored[classes].to_numpy(dtype="float64"),
        classes,
    )
    best = np.argmax(votes.means, axis=1)
    return pd.DataFrame(
        {
            "hard_master_class": votes.hard,
            "soft_master_class": votes.soft,
            "soft_mean_probability": votes.means[np.arange(len(best)), best],
            "voting_count": votes.detection_count,
        },
        index=pd.Index(votes.names, name=NAME),
    )


def source_table(
    prepared: pd.DataFrame, detections: pd.DataFrame, skipped: pd.DataFrame, classes: Sequence[str]
) -> pd.DataFrame:
    """One row per source: counts, main cluster, the two votes and what was flagged.

    Parameters
    ----------
    prepared : pandas.DataFrame
        Every input detection (sorted, identified).
    detections : pandas.DataFrame
        The classified ones (per-detection table, same order).
    skipped : pandas.DataFrame
        The others, with their reasons.
    classes : list of str

    Returns
    -------
    pandas.DataFrame
        ``name, detection_count, classified_count, skipped_count, voting_count,
        main_cluster, main_cluster_count, hard_master_class, soft_master_class,
        soft_mean_probability, votes_agree, master_class, agg_master_class, status,
        outside_training_range_count, skipped``, then ``ra, dec`` of the first
        detection where the input has them. Classes are ``'Unclassified'`` and the
        mean probability NaN where no detection voted.
    """
    names = pd.Index(pd.unique(prepared[NAME]), name=NAME)
    by_source = detections.groupby(NAME, sort=False)
    main = _main_clusters(detections).reindex(names)
    votes = _votes(detections, classes).reindex(names)
    sources = pd.DataFrame(
        {
            "detection_count": prepared.groupby(NAME, sort=False).size().reindex(names),
            "classified_count": by_source.size().reindex(names, fill_value=0),
            "skipped_count": skipped.groupby(NAME, sort=False).size().reindex(names, fill_value=0),
            "voting_count": votes["voting_count"].fillna(0).astype(int),
            "main_cluster": main[CLUSTER].astype("Int64"),
            "main_cluster_count": main["count"].fillna(0).astype(int),
            "hard_master_class": votes["hard_master_class"].fillna(UNCLASSIFIED),
            "soft_master_class": votes["soft_master_class"].fillna(UNCLASSIFIED),
            "soft_mean_probability": votes["soft_mean_probability"].astype("float64"),
        },
        index=names,
    )
    voted = sources["voting_count"] > 0
    agree = voted & (sources["hard_master_class"] == sources["soft_master_class"])
    sources["votes_agree"] = agree
    sources["master_class"] = sources["soft_master_class"].where(agree, "")
    sources["agg_master_class"] = sources["master_class"].map(AGGREGATE_CLASS).fillna("")
    status = np.where(agree, UNIQUE, np.where(voted, AMBIGUOUS, NO_CLASS))
    sources["status"] = np.where(sources["classified_count"] == 0, NOT_CLASSIFIABLE, status)
    sources["outside_training_range_count"] = by_source[OUTSIDE].sum().reindex(names, fill_value=0).astype(int)
    sources["skipped"] = (
        skipped.assign(text=skipped["detection"] + ": " + skipped["reason"])
        .groupby(NAME, sort=False)["text"]
        .agg("; ".join)
        .reindex(names, fill_value="")
    )
    if "outlier_percentile" in detections.columns:
        sources["outlier_percentile_max"] = by_source["outlier_percentile"].max().reindex(names)
        sources["outlier_flag"] = by_source["outlier_flag"].any().reindex(names, fill_value=False).astype(bool)
        # The category that most often decided the detections' classes.
        decided = detections[detections["driven_by"] != ""].groupby(NAME, sort=False)["driven_by"]
        sources["driven_by"] = decided.agg(lambda s: s.value_counts().index[0]).reindex(names, fill_value="")
    first = prepared.drop_duplicates(NAME).set_index(NAME)
    for column in ("ra", "dec"):
        if column in first.columns:
            sources[column] = first[column].reindex(names)
    return sources.reset_index()


# -- the printed summary --------------------------------------------------------------------------


def _source_headline(source: Mapping[Any, Any]) -> str:
    name, n = source[NAME], int(source["classified_count"])
    if source["status"] == NOT_CLASSIFIABLE:
        return (
            f"{name}: not classified: none of its {plural(int(source['detection_count']), 'detection')} "
            "can be classified"
        )
    notes = [f"{source['voting_count']} voting"] if 0 < source["voting_count"] < n else []
    notes += [f"{source['skipped_count']} more skipped"] if source["skipped_count"] else []
    note = f" ({', '.join(notes)})" if notes else ""
    head = (
        f"{name}: {plural(n, 'detection')}{note}, cluster {source['main_cluster']} ({source['main_cluster_count']}/{n})"
    )
    if source["status"] == NO_CLASS:
        return f"{head}: {UNCLASSIFIED} (no class has enough references in the cluster of any of its detections)"
    votes = (
        f"soft class {source['soft_master_class']} (mean p {source['soft_mean_probability']:.2f}), "
        f"hard class {source['hard_master_class']}"
    )
    extra = ""
    if source.get("driven_by"):
        extra += f"; driven by {source['driven_by']}"
    if source.get("outlier_flag"):
        extra += f"; OUTLIER (up to the {source['outlier_percentile_max']:.1f}th percentile of the training detections)"
    if source["status"] == UNIQUE:
        return f"{head}, {votes}: uniquely classified {source['agg_master_class']}/{source['master_class']}" + extra
    hard, soft = source["hard_master_class"], source["soft_master_class"]
    family = AGGREGATE_CLASS.get(hard)
    if family is not None and family == AGGREGATE_CLASS.get(soft):
        return f"{head}, {votes}: ambiguous (hard {hard}, soft {soft}: both {family}){extra}"
    return f"{head}, {votes}: ambiguous (the two votes differ){extra}"


def _flag_lines(flagged: Iterable[tuple[str, str]], skipped: Iterable[tuple[str, str]]) -> list[str]:
    lines = [f"  {label}: {text}" for label, text in flagged] + [
        f"  skipped {label}: {text}" for label, text in skipped
    ]
    if len(lines) > MAX_FLAG_LINES:
        lines = lines[:MAX_FLAG_LINES] + [f"  ... and {len(lines) - MAX_FLAG_LINES} more (see the output tables)"]
    return lines


def format_report(result: Classification) -> str:
    """The printed summary: one headline per source, its flags, and the totals.

    Built per source (not per detection); flag lines are capped at
    ``MAX_FLAG_LINES`` per source.
    """
    detections = result.detections
    flagged = detections.assign(label=detection_labels(detections)).loc[detections[FLAGS] != ""]
    flagged_by_source = {
        name: list(zip(group["label"], group[FLAGS], strict=False)) for name, group in flagged.groupby(NAME, sort=False)
    }
    skipped_by_source = {
        name: list(zip(group["detection"], group["reason"], strict=False))
        for name, group in result.skipped.groupby(NAME, sort=False)
    }
    lines = []
    for source in result.sources.to_dict("records"):
        lines.append(_source_headline(source))
        lines += _flag_lines(flagged_by_source.get(source[NAME], []), skipped_by_source.get(source[NAME], []))
    n_classified, n_skipped = len(detections), len(result.skipped)
    n_outside = int(detections[OUTSIDE].sum())
    if n_outside:
        lines.append(
            f"{plural(n_outside, 'detection')} outside the training range: the preprocessing "
            "extrapolates (values are not clipped), so treat their classes with caution"
        )
    lines.append(
        f"{n_classified:,} of {plural(result.n_input, 'detection')} classified"
        + (f", {n_skipped} skipped (missing features or undefined log)" if n_skipped else "")
        + f"; {plural(len(result.sources), 'source')} from {result.input_name}"
    )
    lines += list(result.caveats)
    return "\n".join(lines)


def output_tables(result: Classification) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The per-detection and per-source tables as written (without internal columns)."""
    return result.detections.drop(columns=[_ROW]), result.sources
