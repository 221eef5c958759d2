"""Stage 3's input: the columns it reads, and its preparation of them before any model.

Kept apart from :mod:`.classification` and its scientific libraries (scikit-learn,
SciPy), so that the command line can read and prepare the input while those load.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from xrayclass.constants import (
    CLASSES,
    CLUSTER,
    MAIN_TYPE,
    NAME,
    NAME_ALIASES,
    NO_MATCH,
    OBSID,
    UNINFORMATIVE_TYPES,
)
from xrayclass.core.features import complete_rows, describe_dropped, prepare_features
from xrayclass.core.featuresets import PAPER, FeatureSet
from xrayclass.core.taxonomy import OTYPE, LabelReport, normalize_types
from xrayclass.io.tables import InputError, canonical_names, require_columns, require_numeric

__all__ = [
    "OTHER_TYPE",
    "PREPARATION_OPTIONS",
    "REFERENCE",
    "REQUIRED_COLUMNS",
    "TO_CLASSIFY",
    "UNKNOWN_LABEL_SHARE",
    "LabelError",
    "PreparedDetections",
    "absolute_galactic_latitude",
    "census_table",
    "checked_input",
    "detection_roles",
    "input_columns",
    "passthrough_columns",
    "prepare_detections",
    "reference_census",
]

# The stage's logger: these steps log as part of stage 3.
log = logging.getLogger("xrayclass.stages.classification")

REQUIRED_COLUMNS = (NAME, OBSID, CLUSTER, "ra", "dec")


def input_columns(feature_set: FeatureSet = PAPER) -> tuple[str, ...]:
    """The input columns stage 3 reads, where the table has them (the others only pass through)."""
    return (*REQUIRED_COLUMNS, *NAME_ALIASES, MAIN_TYPE, OTYPE, *feature_set.features, *feature_set.raw_columns)


def passthrough_columns(columns: Sequence[str], feature_set: FeatureSet = PAPER) -> list[str]:
    """The input columns stage 3 passes through to its output, in their order.

    All but the identity, the SIMBAD type and the features, which the output puts first.
    """
    return [c for c in columns if c not in (*REQUIRED_COLUMNS, MAIN_TYPE, *feature_set.features)]


#: What stage 3 does with a detection, from its SIMBAD type.
REFERENCE, TO_CLASSIFY, OTHER_TYPE = "reference", "to_classify", "other_type"

#: Above this share of matched detections with a SIMBAD type the taxonomy does not
#: know, stage 3 warns (the crossmatch probably speaks another vocabulary).
UNKNOWN_LABEL_SHARE = 0.05


class LabelError(InputError):
    """The SIMBAD types cannot support the classification (``--strict-labels``)."""


def detection_roles(
    main_types: ArrayLike,
    classes: Sequence[str] = CLASSES,
    uninformative: Sequence[str] = UNINFORMATIVE_TYPES,
    otypes: ArrayLike | None = None,
) -> np.ndarray:
    """Role of each detection given its SIMBAD ``main_type`` (and short code ``otype``).

    The types are first read as the paper's names (:func:`xrayclass.taxonomy.normalize_types`:
    today's labels, codes, stray whitespace or case). Detections of one of ``classes``
    are references; unmatched ones (``'NaN'``) and those of an uninformative type are
    classified; any other type is left out.
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


def absolute_galactic_latitude(detections: pd.DataFrame) -> np.ndarray:
    """|b| / 90 deg of each detection, from ``ra``/``dec`` (ICRS, deg), in [0, 1].

    By ERFA's ``icrs2g`` (the IAU SOFA routine, in the package astropy itself is built
    on): within 3e-6 deg of astropy's ``SkyCoord(...).galactic`` (the two orient the
    Galactic frame through different realizations of the ICRS: Hipparcos, and FK5 with
    the frame bias), a hundred times finer than the location category's 1.8-deg bins.
    Importing ``astropy.coordinates`` for it took 0.4 s of every stage-3 run, the
    transformation itself 0.13-0.18 s for 800,000 detections (ERFA: 0.06-0.08 s).
    """
    import erfa

    ra = np.radians(detections["ra"].to_numpy(dtype="float64"))
    dec = np.radians(detections["dec"].to_numpy(dtype="float64"))
    _, latitude = erfa.icrs2g(ra, dec)
    return np.abs(np.degrees(latitude)) / 90.0


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
    """How many references of each class stage 3 has, in total and per cluster.

    ``types`` are canonical names, ``roles`` from :func:`detection_roles`; every
    cluster of ``clusters`` (or of ``all_clusters``, when the rows given are only some of
    the table's) appears, with zeros where it has no reference.
    """
    is_reference = np.asarray(roles) == REFERENCE
    clusters = np.asarray(clusters)
    all_clusters = [int(c) for c in np.unique(clusters if all_clusters is None else all_clusters)]
    # Rows in the order of classes, columns in that of all_clusters; a pair (class,
    # cluster) counted as one index (a type or cluster outside those is not counted).
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


#: The keywords of :func:`~xrayclass.stages.classification.classify_detections_in_parts`
#: that :func:`prepare_detections` takes (the others are the model's).
PREPARATION_OPTIONS = ("classes", "uninformative", "strict_labels", "location", "feature_set")


@dataclass
class PreparedDetections:
    """A crossmatched table checked and read for stage 3's model (:func:`prepare_detections`).

    ``work``: the complete rows' columns the method reads, ``main_type`` under the paper's
    names; ``roles``, ``latitude`` (|b| / 90, or None without location) and ``kept`` (each
    row's position in the table) for the same rows; ``chosen``: the rows to classify;
    ``ordering``: their output order and pass-through columns in that order, computed on
    a second thread.
    """

    work: pd.DataFrame
    roles: np.ndarray
    census: dict[str, Any]
    latitude: np.ndarray | None
    kept: np.ndarray
    chosen: pd.DataFrame
    ordering: Future[tuple[np.ndarray, pd.DataFrame]]
    classes: tuple[str, ...]
    uninformative: tuple[str, ...]
    location: bool
    feature_set: FeatureSet

    @property
    def to_classify(self) -> np.ndarray:
        return self.roles == TO_CLASSIFY


def checked_input(table: pd.DataFrame, feature_set: FeatureSet = PAPER) -> pd.DataFrame:
    """Stage 3's checks of a table's columns, with the feature set's derived features added.

    The identity, position and cluster columns present, numeric (and a cluster for
    every row), ``main_type`` present (the crossmatch was run), and the features
    (:func:`~xrayclass.core.features.prepare_features`). The whole table in memory, or
    each batch when streamed.
    """
    table = canonical_names(table)
    require_columns(table, REQUIRED_COLUMNS)
    if MAIN_TYPE not in table.columns:
        raise InputError(f"missing required columns: {MAIN_TYPE} (run the crossmatch stage first)")
    table = require_numeric(table, (OBSID, CLUSTER, "ra", "dec"))
    if table[CLUSTER].isna().any():
        raise InputError(f"column 'cluster' is empty in {int(table[CLUSTER].isna().sum()):,} rows")
    return prepare_features(table, feature_set)


def prepare_detections(
    table: pd.DataFrame,
    classes: Sequence[str] = CLASSES,
    uninformative: Sequence[str] = UNINFORMATIVE_TYPES,
    strict_labels: bool = False,
    location: bool = True,
    feature_set: FeatureSet = PAPER,
) -> PreparedDetections:
    """Stage 3's preparation of a crossmatched table, before any model.

    The checks of the columns, the complete rows, the SIMBAD types read as the paper's
    names and each detection's role, the reference census (and its warnings, or
    :class:`LabelError` with ``strict_labels``), the latitudes, and the output's order.
    The keywords are :func:`~xrayclass.stages.classification.classify_detections_in_parts`'s.
    """
    table = checked_input(table, feature_set)
    n_total = len(table)
    log.info("%s detections read", f"{n_total:,}")

    complete, reasons = complete_rows(table, feature_set=feature_set)
    kept = np.flatnonzero(complete)
    log.info(describe_dropped(reasons, n_total - len(kept), n_total, len(feature_set)))
    # The method reads a few columns; the others (about 60 in a CSC table) only pass through
    # to the output. They are gathered once, for the classified rows in output order:
    # copying every column at each step was a third of the stage on a million detections.
    used = [c for c in (*REQUIRED_COLUMNS, MAIN_TYPE, OTYPE, *feature_set.features) if c in table.columns]
    work = table[used].take(kept).reset_index(drop=True)
    # The latitudes (naive Bayes' location category, for the fit and the classification)
    # on a second thread while the types are read: ERFA's loops release the GIL. Later,
    # the same thread sorts the output.
    pool = ThreadPoolExecutor(1, thread_name_prefix="xrayclass-prepare")
    latitudes = pool.submit(absolute_galactic_latitude, work[["ra", "dec"]]) if location else None
    # Types read as the paper's names before anything else (today's SIMBAD labels,
    # short codes, stray whitespace or case); the report covers every complete row.
    types, labels = normalize_types(work[MAIN_TYPE], work[OTYPE] if OTYPE in work.columns else None)
    for level, message in labels.messages():
        getattr(log, level)("%s", message)
    # Kept as Python strings: made pandas text, they would be converted back for the fit.
    work = work.assign(
        **{MAIN_TYPE: pd.Series(types, index=work.index, dtype=object)}, **{CLUSTER: work[CLUSTER].astype(int)}
    )
    roles = roles_of_canonical(types, classes, uninformative, log_them=True)
    census = reference_census(types, roles, work[CLUSTER].to_numpy(), classes, labels)
    log_census(census)
    check_labels(census, labels, strict_labels)
    from xrayclass.io.checks import require_log_features_usable, require_roles

    require_roles(roles, REFERENCE, TO_CLASSIFY)
    log_features = list(feature_set.log_features)
    require_log_features_usable(work, log_features, log_features)
    latitude = None if latitudes is None else latitudes.result()
    to_classify = roles == TO_CLASSIFY
    chosen = work.loc[to_classify].reset_index(drop=True)
    passing = passthrough_columns(list(table.columns), feature_set)

    def output_order() -> tuple[np.ndarray, pd.DataFrame]:
        # Sorted by name then obsid (stable: input order among equals), the order found on
        # those two columns alone and applied to each part once. Arrow sorts the names as
        # pandas does (by code point, missing last) in a fifth of the time.
        import pyarrow as pa
        import pyarrow.compute as pc

        keys = pa.table({NAME: pa.array(chosen[NAME]), OBSID: pa.array(chosen[OBSID])})
        order = pc.sort_indices(keys, sort_keys=[(NAME, "ascending"), (OBSID, "ascending")]).to_numpy()
        return order, table[passing].take(kept[to_classify][order]).reset_index(drop=True)

    # The output's order and its pass-through columns do not depend on the model: they
    # are sorted and gathered on the second thread while the model is fitted (Arrow's
    # sort and pandas' take release the GIL).
    ordering = pool.submit(output_order)
    pool.shutdown(wait=False)  # its one task still runs; the thread ends with it

    return PreparedDetections(
        work=work,
        roles=roles,
        census=census,
        latitude=latitude,
        kept=kept,
        chosen=chosen,
        ordering=ordering,
        classes=tuple(classes),
        uninformative=tuple(uninformative),
        location=location,
        feature_set=feature_set,
    )
