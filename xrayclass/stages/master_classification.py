"""Stage 4: a master class per source from its detections' classes.

Two votes, as in the paper:

* **soft**: the class of highest mean probability over the source's detections;
* **hard**: the most common predicted class among them (a tie goes to the class met
  first in name/obsid order, as ``collections.Counter.most_common`` does).

A source whose two votes agree is *uniquely classified*; the others are *ambiguous*.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow
import pyarrow.compute
from numpy.typing import ArrayLike

from xrayclass.constants import AGGREGATE_CLASS, CLASSES, FEATURES, MAIN_TYPE, NAME, OBSID, UNCLASSIFIED
from xrayclass.core.checks import canonical_names, require_columns, require_numeric, require_probabilities
from xrayclass.exceptions import InputError

__all__ = [
    "DECIMALS",
    "DETECTION_BINS",
    "FLAG_VALUES",
    "STAGE4_COLUMNS",
    "MasterClassificationConfig",
    "Votes",
    "cohen_kappa",
    "defined_kappa",
    "format_kappa",
    "format_mean_std",
    "format_summary",
    "master_classification",
    "outlier_flags",
    "require_known_classes",
    "run_master_classification",
    "summarize",
    "tables_kappa",
    "vote",
]

log = logging.getLogger(__name__)

#: Histogram bins of detections per source in the printed summary.
DETECTION_BINS = (("1", 1, 1), ("2", 2, 2), ("3-10", 3, 10), (">10", 11, np.inf))

#: The detection-level columns stage 4 reads (the others are not needed).
STAGE4_COLUMNS = (
    NAME,
    "name_1",
    OBSID,
    MAIN_TYPE,
    *CLASSES,
    "ra",
    "dec",
    *FEATURES,
    "outlier_percentile",
    "outlier_flag",
)

#: Decimals of the "mean±std" strings of the published tables.
DECIMALS = 3


@dataclass(frozen=True)
class MasterClassificationConfig:
    """Stage 4's choices: the ``classes`` voted over (the paper's ten)."""

    classes: tuple[str, ...] = CLASSES


def format_mean_std(means: np.ndarray, stds: np.ndarray, decimals: int = DECIMALS) -> Any:
    """``"mean±std"`` strings as the published tables print ``round(numpy.float64, 3)`` (``0.04``, not ``0.040``).

    Values in [0, 1] make at most 1001 x 1001 pairs: each distinct string is made once and
    gathered by Arrow. A string array, or a list of them (one per column) for 2-D input.
    """
    means = np.asarray(means, dtype="float64")
    stds = np.asarray(stds, dtype="float64")
    if means.ndim == 2:
        return [format_mean_std(means[:, k], stds[:, k], decimals) for k in range(means.shape[1])]
    scale = 10.0**decimals
    steps = np.stack([np.rint(means * scale), np.rint(stds * scale)])
    inside = (np.isfinite(steps) & (steps >= 0) & (steps <= scale)).all(axis=0)
    codes = np.where(inside, steps[0] * (scale + 1) + steps[1], -1).astype(np.int64)
    inverse, unique = pd.factorize(codes)  # hashing: linear time
    lookup = np.array([repr(k / scale) for k in range(int(scale) + 1)])
    pairs = np.where(unique >= 0, unique, 0)
    labels = np.strings.add(np.strings.add(lookup[pairs // int(scale + 1)], "±"), lookup[pairs % int(scale + 1)])
    if inside.all():
        return pd.array(pyarrow.compute.take(pyarrow.array(labels), pyarrow.array(inverse)), dtype="str")
    # Outside [0, 1] (never for probabilities): format those few one by one.
    strings = labels.astype(object)[inverse]
    strings[~inside] = [
        f"{float(np.round(m, decimals))!r}±{float(np.round(d, decimals))!r}"
        for m, d in zip(means[~inside], stds[~inside], strict=False)
    ]
    return pd.array(strings, dtype="str")


def cohen_kappa(first: Collection[Any], second: Collection[Any]) -> float | None:
    """Cohen's kappa of two label arrays (as scikit-learn's); ``None`` without labels or if chance agreement is certain."""
    if len(first) == 0:
        return None
    codes, uniques = pd.factorize(np.concatenate([np.asarray(first, dtype=object), np.asarray(second, dtype=object)]))
    n, k = len(first), len(uniques)
    observed = np.bincount(codes[:n] * k + codes[n:], minlength=k * k).reshape(k, k) / n
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0))
    agreement, chance = np.trace(observed), np.trace(expected)
    return float((agreement - chance) / (1 - chance)) if chance < 1 else None


@dataclass
class Votes:
    """Per-source results of the two votes, in source-name order."""

    names: np.ndarray
    detection_count: np.ndarray
    means: np.ndarray
    stds: np.ndarray
    soft: np.ndarray
    hard: np.ndarray
    first_row: np.ndarray  # index into the sorted detections of each source's first detection


def vote(
    names: ArrayLike, predicted: ArrayLike, probabilities: ArrayLike, classes: Sequence[str] | np.ndarray = CLASSES
) -> Votes:
    """Hard and soft votes of every source; ``names`` sorted so that each source's detections are contiguous.

    ``predicted`` is each detection's class (one of ``classes``), ``probabilities`` its row of them.
    """
    names = np.asarray(names, dtype=object)
    n = len(names)
    if n == 0:  # nobody votes: no source, defined and empty
        classes = np.asarray(classes, dtype=object)
        empty = np.zeros((0, len(classes)))
        return Votes(
            names, np.zeros(0, dtype=int), empty, empty.copy(), classes[:0], classes[:0], np.zeros(0, dtype=int)
        )
    starts = np.flatnonzero(np.r_[True, names[1:] != names[:-1]])
    counts = np.diff(np.r_[starts, n])
    source_of_row = np.repeat(np.arange(len(starts)), counts)

    probabilities = np.asarray(probabilities, dtype="float64")
    means = np.add.reduceat(probabilities, starts, axis=0) / counts[:, None]
    deviations = probabilities - means[source_of_row]
    stds = np.sqrt(np.add.reduceat(deviations * deviations, starts, axis=0) / counts[:, None])
    classes = np.asarray(classes, dtype=object)
    soft = classes[np.argmax(means, axis=1)]

    class_index = {label: k for k, label in enumerate(classes)}
    codes: Any = pd.Series(predicted, dtype=object).map(class_index)
    if codes.isna().any():
        unknown = sorted(set(pd.Series(predicted)[codes.isna()].astype(str)))
        raise ValueError(f"predicted classes not among the classes: {unknown[:5]}")
    codes = codes.to_numpy(dtype=np.int64)
    pair = source_of_row * len(classes) + codes
    pairs, first_seen, votes = np.unique(pair, return_index=True, return_counts=True)
    pair_source = pairs // len(classes)
    # Most votes first, then the class met first in the source's detections.
    order = np.lexsort((first_seen, -votes, pair_source))
    winners = order[np.r_[True, pair_source[order][1:] != pair_source[order][:-1]]]
    hard = classes[pairs[winners] % len(classes)]
    return Votes(names[starts], counts, means, stds, soft, hard, starts)


def master_classification(
    detections: pd.DataFrame, classes: Sequence[str] = CLASSES
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Stage 4 on a detection-level classification table.

    Returns
    -------
    uniquely : pandas.DataFrame
        Sources whose votes agree: ``name, agg_master_class, master_class,
        detection_count``, each class's ``"mean±std"``, ``ra, dec`` and the features of
        the first detection (lowest obsid), then ``outlier_percentile_max`` and
        ``outlier_flag`` where the input has outlier measures; most detections first, then name.
    ambiguous : pandas.DataFrame
        The other sources, with ``hard_master_class, soft_master_class`` instead.
    summary : dict
        Counts, Cohen's kappa of the two votes and the detections-per-source histogram.
    """
    detections = canonical_names(detections)
    require_columns(detections, (NAME, OBSID, MAIN_TYPE, *classes))
    detections = require_numeric(detections, (OBSID, *classes))
    require_known_classes(detections[MAIN_TYPE], classes)
    n_total = len(detections)
    log.info("%s classified detections read", f"{n_total:,}")
    detections = detections.sort_values([NAME, OBSID], kind="stable").reset_index(drop=True)
    n_sources_in = int(detections[NAME].nunique())

    probabilities = detections[list(classes)].to_numpy(dtype="float64")
    if np.isnan(probabilities).any():
        rows = int(np.isnan(probabilities).any(axis=1).sum())
        raise InputError(f"{rows:,} detections have missing class probabilities")
    require_probabilities(probabilities, classes)
    unscored = (detections[MAIN_TYPE].astype(str) == UNCLASSIFIED).to_numpy() | ~(probabilities > 0).any(axis=1)
    if unscored.any():
        log.warning(
            "%s detections are '%s' (no class could be scored in their cluster) and do not vote",
            f"{int(unscored.sum()):,}",
            UNCLASSIFIED,
        )
        detections = detections.loc[~unscored].reset_index(drop=True)
        probabilities = probabilities[~unscored]

    votes = vote(
        detections[NAME].to_numpy(dtype=object), detections[MAIN_TYPE].to_numpy(dtype=object), probabilities, classes
    )
    strings = format_mean_std(votes.means, votes.stds)
    first = detections.iloc[votes.first_row].reset_index(drop=True)
    sources = pd.DataFrame(
        {NAME: votes.names, "detection_count": votes.detection_count, **dict(zip(classes, strings, strict=False))}
    )
    extra = [c for c in ("ra", "dec", *FEATURES) if c in first.columns]
    missing_features = [c for c in FEATURES if c not in first.columns]
    if missing_features:
        log.info(
            "no feature columns (%s); the tables leave them out",
            "none of the 12" if len(missing_features) == len(FEATURES) else ", ".join(missing_features),
        )
    for column in extra:
        sources[column] = first[column].to_numpy()

    outlier_columns = []
    if "outlier_percentile" in detections.columns:
        # A source is as unusual as its most unusual detection (a single flare counts).
        percentile = detections["outlier_percentile"].to_numpy(dtype="float64")
        sources["outlier_percentile_max"] = np.fmax.reduceat(percentile, votes.first_row)
        flags = (
            outlier_flags(detections["outlier_flag"])
            if "outlier_flag" in detections.columns
            else np.zeros(len(detections), dtype=bool)
        )
        sources["outlier_flag"] = np.logical_or.reduceat(flags, votes.first_row)
        outlier_columns = ["outlier_percentile_max", "outlier_flag"]

    agree = votes.hard == votes.soft
    order_columns = ["detection_count", NAME]
    uniquely = sources.loc[agree].assign(master_class=votes.soft[agree])
    uniquely["agg_master_class"] = uniquely["master_class"].map(AGGREGATE_CLASS)
    uniquely = uniquely[
        [NAME, "agg_master_class", "master_class", "detection_count", *classes, *extra, *outlier_columns]
    ]
    ambiguous = sources.loc[~agree].assign(hard_master_class=votes.hard[~agree], soft_master_class=votes.soft[~agree])
    ambiguous = ambiguous[
        [NAME, "hard_master_class", "soft_master_class", "detection_count", *classes, *extra, *outlier_columns]
    ]
    uniquely = uniquely.sort_values(order_columns, ascending=[False, True], kind="stable").reset_index(drop=True)
    ambiguous = ambiguous.sort_values(order_columns, ascending=[False, True], kind="stable").reset_index(drop=True)

    n_silent = n_sources_in - len(votes.names)
    if n_silent:
        log.warning("%s sources have no classified detection and appear in neither table", f"{n_silent:,}")
    summary = summarize(votes, n_total, int(unscored.sum()))
    summary["sources_unclassified"] = n_silent
    return uniquely, ambiguous, summary


def require_known_classes(predicted: pd.Series, classes: Sequence[str] = CLASSES) -> None:
    """Each detection's class is one of ``classes`` or ``Unclassified``, case included (SIMBAD's types are)."""
    allowed = [*classes, UNCLASSIFIED]
    unknown = ~predicted.isin(allowed).to_numpy()
    if unknown.any():
        # No row number: the streaming and Dask engines check a batch at a time.
        value = predicted.iloc[int(np.flatnonzero(unknown)[0])]
        raise InputError(
            f"column '{MAIN_TYPE}' holds {str(value)!r}, which is not one of the classes "
            f"{', '.join(allowed)} (case matters)"
        )


#: How an ``outlier_flag`` cell may read: stage 3 writes True and False (CSV: as text).
FLAG_VALUES = {"true": True, "false": False, "1": True, "0": False, "1.0": True, "0.0": False}


def outlier_flags(flags: pd.Series) -> np.ndarray:
    """A detection's ``outlier_flag`` as True or False, also when read as text; a blank cell is not flagged."""
    if pd.api.types.is_bool_dtype(flags.dtype) and not flags.isna().any():
        return flags.to_numpy(dtype=bool)
    blank = flags.isna().to_numpy()
    read = flags.astype("string").str.strip().str.lower().map(FLAG_VALUES)
    unknown = read.isna().to_numpy() & ~blank
    if unknown.any():
        # No row number: the streaming and Dask engines check a batch at a time.
        value = flags.iloc[int(np.flatnonzero(unknown)[0])]
        raise InputError(f"column 'outlier_flag' holds {str(value)!r}, which is neither True nor False")
    return read.fillna(False).to_numpy(dtype=bool)


def defined_kappa(first: Collection[Any], second: Collection[Any]) -> float | None:
    """Cohen's kappa, or None where it is undefined (no rows, or one class only on both sides)."""
    if len(first) == 0 or len(set(first) | set(second)) < 2:
        return None
    return cohen_kappa(first, second)


def tables_kappa(uniquely: pd.DataFrame, ambiguous: pd.DataFrame, min_detections: int = 1) -> float | None:
    """Kappa of the votes read back from the stage-4 tables, of sources with ``min_detections`` or more."""
    u = uniquely[uniquely["detection_count"] >= min_detections]
    a = ambiguous[ambiguous["detection_count"] >= min_detections]
    hard = np.concatenate([u["master_class"].to_numpy(dtype=object), a["hard_master_class"].to_numpy(dtype=object)])
    soft = np.concatenate([u["master_class"].to_numpy(dtype=object), a["soft_master_class"].to_numpy(dtype=object)])
    return defined_kappa(hard, soft)


def format_kappa(value: float | None) -> str:
    """Kappa to 3 decimals, or "undefined" (None or NaN)."""
    return "undefined" if value is None or not np.isfinite(value) else f"{value:.3f}"


def summarize(votes: Votes, n_detections: int, n_unscored: int) -> dict[str, Any]:
    """Counts, agreement and multiplicity of the votes, as plain numbers."""
    n_sources = len(votes.names)
    n_unique = int((votes.hard == votes.soft).sum())
    hard_family, soft_family = (pd.Series(v, dtype=object).map(AGGREGATE_CLASS) for v in (votes.hard, votes.soft))
    # Ambiguous only in the detailed class: e.g. hard Seyfert_1, soft Seyfert_2.
    same_family = int(((votes.hard != votes.soft) & (hard_family == soft_family).to_numpy()).sum())
    # A source with one detection agrees with itself: the kappa of the sources with two or
    # more detections is the one that measures the votes (issue 13).
    multiple = votes.detection_count >= 2
    histogram = {
        label: int(((votes.detection_count >= low) & (votes.detection_count <= high)).sum())
        for label, low, high in DETECTION_BINS
    }
    return {
        "detections": n_detections,
        "detections_unclassified": n_unscored,
        "sources": n_sources,
        "uniquely_classified": n_unique,
        "ambiguous": n_sources - n_unique,
        "ambiguous_same_aggregated_class": same_family,
        "cohen_kappa": defined_kappa(votes.hard, votes.soft),
        "sources_multiple_detections": int(multiple.sum()),
        "cohen_kappa_multiple_detections": defined_kappa(votes.hard[multiple], votes.soft[multiple]),
        "detections_per_source": histogram,
    }


def format_summary(summary: Mapping[str, Any]) -> str:
    """The printed stage-4 summary."""
    sources = summary["sources"]
    share = summary["ambiguous"] / sources if sources else 0.0
    lines = [
        f"detections voting:      {summary['detections'] - summary['detections_unclassified']:,}"
        + (
            f" ({summary['detections_unclassified']:,} unclassified left out)"
            if summary["detections_unclassified"]
            else ""
        ),
        f"sources:                {sources:,}"
        + (
            f" ({summary['sources_unclassified']:,} more with no classified detection)"
            if summary.get("sources_unclassified")
            else ""
        ),
        f"uniquely classified:    {summary['uniquely_classified']:,}",
        f"ambiguous:              {summary['ambiguous']:,} ({share:.1%})"
        + (
            f", of which {summary['ambiguous_same_aggregated_class']:,} with both votes in the same aggregated "
            "class (e.g. hard Seyfert_1, soft Seyfert_2)"
            if summary.get("ambiguous_same_aggregated_class")
            else ""
        ),
        f"Cohen's kappa (hard vs soft): {format_kappa(summary['cohen_kappa'])} all sources, "
        f"{format_kappa(summary.get('cohen_kappa_multiple_detections'))} sources with 2 or more detections"
        f" ({summary.get('sources_multiple_detections', 0):,})",
        "detections per source:  "
        + ", ".join(f"{label}: {n:,}" for label, n in summary["detections_per_source"].items()),
    ]
    if not sources:
        lines.insert(0, "no source has a classified detection: both tables are empty")
    return "\n".join(lines)


def run_master_classification(
    classified: pd.DataFrame, config: MasterClassificationConfig = MasterClassificationConfig()
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Stage 4 on an in-memory stage-3 table: :func:`master_classification` with ``config``."""
    return master_classification(classified, config.classes)
