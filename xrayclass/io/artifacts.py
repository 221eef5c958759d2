"""Reading the run's artifacts: the stage-1 model, the stage-3 classifier and feature-set files.

File access for the science, which takes in-memory tables and fitted artifacts.
"""

from __future__ import annotations

import logging
import os
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from xrayclass.constants import UNCLASSIFIED
from xrayclass.core.checks import PHYSICAL_RANGES, preprocessing_differences
from xrayclass.core.classifier import ClassifierModel
from xrayclass.core.featuresets import FeatureSet, require_transforms_apply
from xrayclass.core.mixture import ClusteringModel
from xrayclass.exceptions import InputError, input_files
from xrayclass.io.files import require_regular_file
from xrayclass.io.tables import read_json
from xrayclass.text import one_line

T = TypeVar("T")

__all__ = [
    "FEATURE_SET_MAX_BYTES",
    "FEATURE_SET_MAX_DEPTH",
    "load_artifacts",
    "read_classifier_model",
    "read_clustering_model",
    "read_feature_set",
    "sources_path",
]

log = logging.getLogger(__name__)


def read_clustering_model(path: str | os.PathLike[str]) -> ClusteringModel:
    """The stage-1 model that clustering.py wrote (``model.json``); an :class:`InputError` naming the file if it is not one."""
    with input_files(path):
        return ClusteringModel.from_dict(read_json(path))


def read_classifier_model(path: str | os.PathLike[str]) -> ClassifierModel:
    """The stage-3 classifier that classification.py wrote (``classifier.json``); an :class:`InputError` if not one."""
    with input_files(path):
        return ClassifierModel.from_dict(read_json(path))


def _load(
    loader: Callable[[str | os.PathLike[str]], T],
    path: str | os.PathLike[str],
    what: str,
    option: str,
    stage: str,
    writes: str,
) -> T:
    """Load one artifact; a missing or unusable file becomes a one-line :class:`InputError`."""
    if not Path(path).exists():
        raise InputError(f"{path}: file not found; run {stage} (it writes {writes}) or pass {option} PATH")
    try:
        return loader(path)
    except InputError:
        raise
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        raise InputError(
            f"{path}: not a usable {what} ({type(exc).__name__}: {exc}); if another version "
            f"of xrayclass wrote it, run {stage} again"
        ) from None


def load_artifacts(
    model_path: str | os.PathLike[str], classifier_path: str | os.PathLike[str]
) -> tuple[ClusteringModel, ClassifierModel]:
    """The stage-1 model and the stage-3 classifier, warning where they do not fit together.

    A missing file, or one that is not the artifact it should be, is an :class:`InputError`.
    """
    clustering = _load(read_clustering_model, model_path, "clustering model", "--model", "clustering.py", "--model")
    classifier = _load(
        read_classifier_model,
        classifier_path,
        "classifier model",
        "--classifier",
        "classification.py",
        "--model-output",
    )
    differences = preprocessing_differences(clustering.scaler, classifier.scaler)
    if differences:
        log.warning(
            "the preprocessing of %s and %s differ (%s); they should be equal when both come "
            "from one run of the pipeline",
            model_path,
            classifier_path,
            ", ".join(differences[:6]),
        )
    known = set(classifier.references.classifiers_)
    absent = [k for k in range(clustering.mixture.n_components) if k not in known]
    if absent:
        log.warning(
            "%s has no class references for clusters %s of %s; detections there stay %s",
            classifier_path,
            ", ".join(map(str, absent)),
            model_path,
            UNCLASSIFIED,
        )
    return clustering, classifier


def sources_path(output: str | os.PathLike[str]) -> Path:
    """Where the per-source table goes beside ``output``: ``<stem>_sources<suffix>``."""
    output = Path(output)
    return output.with_name(f"{output.stem}_sources{output.suffix}")


#: Largest feature-set file read: a set is a few hundred bytes; more is not a feature set.
FEATURE_SET_MAX_BYTES = 1 << 20
#: Deepest nesting of tables and lists a feature-set file may have (a set has 3 levels:
#: the file, ``[naive_bayes]``, its lists). The TOML parser recurses once per level and
#: would otherwise end in a RecursionError a few hundred levels down.
FEATURE_SET_MAX_DEPTH = 16


def _depth(document: object) -> int:
    """How deeply tables and lists nest in a parsed TOML document (iteratively: no recursion to exhaust)."""
    deepest, pending = 0, [(document, 0)]
    while pending:
        node, level = pending.pop()
        if isinstance(node, dict):
            node = list(node.values())
        if isinstance(node, list):
            level += 1
            deepest = max(deepest, level)
            if level <= FEATURE_SET_MAX_DEPTH:  # deeper is refused: no need to walk it all
                pending.extend((child, level) for child in node)
    return deepest


def read_feature_set(path: str | os.PathLike[str]) -> FeatureSet:
    """Read and validate a feature set from a TOML file, refusing in one line what is not one.

    The file must be a regular file of at most :data:`FEATURE_SET_MAX_BYTES`, UTF-8 (TOML's
    encoding), valid TOML nested at most :data:`FEATURE_SET_MAX_DEPTH` levels, and a feature
    set whose transforms suit its features' physical ranges.
    """
    if not Path(path).exists():
        raise InputError(f"{path}: no such feature-set file")
    require_regular_file(path)
    try:
        with open(path, "rb") as handle:
            data = handle.read(FEATURE_SET_MAX_BYTES + 1)  # one byte more says it is larger
    except OSError as exc:
        raise InputError(f"{path}: cannot read the feature-set file ({exc.strerror or exc})") from None
    if len(data) > FEATURE_SET_MAX_BYTES:
        raise InputError(f"{path}: larger than {FEATURE_SET_MAX_BYTES:,} bytes: too large for a feature-set file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{path}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
            "save it as UTF-8, the encoding TOML requires"
        ) from None
    too_deep = f"{path}: nested more than {FEATURE_SET_MAX_DEPTH} levels deep; a feature set has 3"
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path}: not valid TOML ({one_line(exc)})") from None
    except RecursionError:
        raise InputError(too_deep) from None
    if _depth(document) > FEATURE_SET_MAX_DEPTH:
        raise InputError(too_deep)
    feature_set = FeatureSet.from_dict(document, str(path))
    require_transforms_apply(feature_set, PHYSICAL_RANGES, str(path))
    return feature_set
