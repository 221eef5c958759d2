"""Classify new CSC detections with the artifacts of a pipeline run (``classify_source.py``).

With the stage-1 model (``model.json``: preprocessing and Gaussian mixture) and the
stage-3 classifier (``classifier.json``: preprocessing and each cluster's class
references), any detection with the 12 features is classified without refitting:

1. the derived features are computed from the raw CSC columns, as in stage 1;
2. the mixture gives the detection's cluster and its membership probability;
3. the cluster's class references give the ten class probabilities and the class, as in stage 3;
4. the detections of each source vote, hard and soft, as in stage 4.

For a detection of the training table this is exactly what stage 3 gave with the run's
own clusters; a mixture estimated from a frozen crossmatch's clusters reproduces them only
as often as stage 2 measured, and :func:`cluster_caveats` says so. A detection lacking a
feature is skipped, naming the raw columns that are null; values beyond the training
range are flagged, not clipped; a log feature at or below ``-shift`` has no logarithm,
and that detection is skipped.
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
    MAIN_TYPE,
    NAME,
    NAME_ALIASES,
    OBSID,
    UNCLASSIFIED,
)
from xrayclass.core.checks import describe_range, out_of_range, require_numeric, require_possible_positions
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
    "Classification",
    "classify",
    "cluster_caveats",
    "csc_source_name",
    "format_report",
    "identify",
    "missing_features",
    "output_tables",
    "source_table",
]

log = logging.getLogger(__name__)

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

    Returns the table with ``name`` (``'row N'`` where the input has none) and ``_row``
    (the 1-based input row), sorted by name and obsid (input order without names or
    obsid), and whether the input had source names.
    """
    if NAME not in table.columns:
        alias = next((a for a in NAME_ALIASES if a in table.columns), None)
        if alias is not None:
            table = table.rename(columns={alias: NAME})
    table = require_numeric(table, [c for c in (OBSID, "ra", "dec") if c in table.columns])
    if "ra" in table.columns and "dec" in table.columns:
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
    """Per row, the ``labels`` whose column of ``mask`` is True, joined by ``separator`` (``''`` for none)."""
    joined = np.full(mask.shape[0], "", dtype=object)
    for j, label in enumerate(labels):
        rows = mask[:, j]
        if rows.any():
            current = joined[rows]
            joined[rows] = np.where(current == "", label, current + separator + label)
    return joined


def _joined(first: np.ndarray, second: np.ndarray, separator: str = "; ") -> np.ndarray:
    """Per row, ``first`` and ``second`` joined by ``separator`` where both are given."""
    return np.where((first != "") & (second != ""), first + separator + second, first + second)


def missing_features(detections: pd.DataFrame, feature_set: FeatureSet = PAPER) -> np.ndarray:
    """Why each detection (of :func:`~xrayclass.core.features.prepare_features`) lacks some of the
    features; ``''`` where it has all of them.

    Named by the raw CSC columns that are null (``'missing powlaw_gamma, bb_kt'``), which a
    user can look up; a derived feature that is not finite although its inputs are there (a
    zero ``var_mean``) is named as such, and so is a value outside its physical range.
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
    reasons = _joined(missing, others)
    outside = out_of_range(detections, columns)
    if outside.shape[1] and outside.to_numpy().any():
        named = join_where(outside.to_numpy(), [f"{c} outside {describe_range(c)}" for c in outside.columns], ", ")
        reasons = _joined(reasons, named)
    return reasons.astype(object)


# -- classification -----------------------------------------------------------------------------


@dataclass
class Classification:
    """The result of :func:`classify`.

    ``detections``: one row per classified detection, sorted by name and obsid;
    ``sources``: one row per source of the input, in the same order; ``skipped``: the
    ``name``, ``detection`` (``'obsid N'`` or ``'row N'``) and ``reason`` of each detection
    that could not be classified; ``caveats``: what the summary must say about the
    clusters; ``input_name``: how the summary names the input (the file or the source).
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
) -> tuple[np.ndarray, np.ndarray]:
    """Why each detection cannot be classified (``''`` where it can), and where it leaves the
    training range of any of ``scalers`` (``'bb_kt>max; var_ratio_b<min'``, ``''`` if nowhere).

    A value is out of range by the scaler's :meth:`~LogMinMaxScaler.out_of_range`, on the
    side of its transformed value; one without a logarithm makes the detection unclassifiable.
    """
    reasons = missing_features(prepared, feature_set)
    complete = reasons == ""
    features = prepared[list(feature_set.features)].to_numpy(dtype="float64")
    features[~complete] = 1.0  # placeholders, only to keep the shapes; never reported
    undefined, below, above = (np.zeros(features.shape, dtype=bool) for _ in range(3))
    for scaler in scalers:
        flagged = scaler.out_of_range(features) & complete[:, None]
        scaled = scaler.transform(features)
        undefined |= flagged & ~np.isfinite(scaled)
        below |= flagged & (scaled < 0)
        above |= flagged & (scaled > 1)
    names, shifts = scalers[0].features, scalers[0].shift_
    no_log = join_where(
        undefined, [f"{f} at or below -{shifts.get(f, float('nan')):.3g} (log undefined)" for f in names], ", "
    )
    reasons = np.where(complete & (no_log != ""), no_log, reasons).astype(object)
    sides = np.stack([below, above], axis=2).reshape(len(features), -1)  # each feature's <min, then >max
    return reasons, join_where(sides, [f"{f}{side}" for f in names for side in ("<min", ">max")])


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
        Per-observation detections with the raw CSC feature columns (or the 12 features);
        ``name``, ``obsid``, ``ra``, ``dec`` where present.
    clustering, classifier : ClusteringModel, ClassifierModel
        The stage-1 and stage-3 artifacts (``model.json``, ``classifier.json``).
    method : {"mahalanobis", "naive-bayes"}, optional
        The classifier giving the probabilities (default: the one stage 3 used).
    calibrate : bool
        Apply the temperature calibration stored by ``classification.py --calibrate``.

    Raises
    ------
    InputError
        Feature columns absent or not numeric, or no detection can be classified (the
        message names the detections and what each lacks).
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
    reasons, outside = unclassifiable(prepared, (clustering.scaler, classifier.scaler), feature_set)
    ok = reasons == ""
    labels = detection_labels(prepared)
    skipped = pd.DataFrame(
        {NAME: prepared.loc[~ok, NAME].to_numpy(dtype=object), "detection": labels[~ok], "reason": reasons[~ok]}
    )
    if not ok.any():
        listed = "; ".join(full_labels(skipped[NAME], skipped["detection"]) + ": " + skipped["reason"])
        listed = listed if len(listed) <= 600 else listed[:597] + "..."
        raise InputError(f"no detection can be classified (each needs all {len(feature_set)} features): {listed}")
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
    predicted = result[MAIN_TYPE].to_numpy(dtype=object)
    outside = outside[ok]
    no_class = np.where(
        predicted == UNCLASSIFIED, "no class with enough references in cluster " + clusters.astype(str), ""
    )
    columns = {
        CLUSTER: clusters,
        MEMBERSHIP: memberships[np.arange(len(clusters)), clusters],
        **{name: result[name].to_numpy() for name in classes},
        MAIN_TYPE: predicted,
        OUTSIDE: outside != "",
        OUT_OF_RANGE: outside,
        FLAGS: _joined(np.where(outside != "", "outside training range: " + outside, "").astype(object), no_class),
        _ROW: chosen[_ROW].to_numpy(),
    }
    identity = chosen[[c for c in (NAME, OBSID, "ra", "dec") if c in chosen.columns]]
    explanation = result.drop(columns=[MAIN_TYPE, *classes])
    detections = pd.concat([identity, pd.DataFrame(columns), explanation], axis=1)
    sources = source_table(prepared, detections, skipped, classes)
    if not named:
        log.info("the input has no source names: each row is its own source ('row 1', 'row 2', ...)")
    return Classification(detections, sources, skipped, n_input, cluster_caveats(clustering))


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
    """One row per source of ``prepared`` (every input detection): counts, main cluster, the two votes, flags.

    ``detections`` are the classified ones, ``skipped`` the others with their reasons.
    Columns: ``name, detection_count, classified_count, skipped_count, voting_count,
    main_cluster, main_cluster_count, hard_master_class, soft_master_class,
    soft_mean_probability, votes_agree, master_class, agg_master_class, status,
    outside_training_range_count, skipped``, the outlier summary where the classifier
    explains, then ``ra, dec`` of the first detection. Classes are ``'Unclassified'`` and
    the mean probability NaN where no detection voted.
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
    """The printed summary: one headline per source, at most ``MAX_FLAG_LINES`` flag lines under it, the totals."""
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
