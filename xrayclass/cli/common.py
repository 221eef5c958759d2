"""File-level pieces the stage command lines (:mod:`.stages`) and ``make run`` (:mod:`.run`) share.

They know file names: reading a stage's input with a hint when the default file is
missing, choosing stage 3's feature set from the stage-1 model, and keeping the
stage-1 model in step with the clusters stage 3 will use.
"""

from __future__ import annotations

import atexit
import importlib
import logging
import os
import sys
import threading
from collections.abc import Callable, Mapping
from os import PathLike
from pathlib import Path
from typing import Any, NoReturn

import pandas as pd

from xrayclass.analysis.published import COMPLETE_DETECTIONS as PUBLISHED_DETECTIONS
from xrayclass.core.checks import canonical_names
from xrayclass.core.featuresets import FeatureSet
from xrayclass.exceptions import InputError, input_files
from xrayclass.io import paths
from xrayclass.io.tables import BatchedTable, read_table, write_outputs

__all__ = [
    "PUBLISHED_MIXTURE",
    "LazyStage1",
    "chosen_feature_set",
    "exit_promptly",
    "import_while_reading",
    "model_for_stage3",
    "one_line",
    "read_input",
    "stage3_feature_set",
    "write_stage2",
    "write_stage4",
]

#: The published mixture in the shared reference directory, compared with a model of the
#: published crossmatch's clusters when both are there.
PUBLISHED_MIXTURE = "paper_gmm.json"

log = logging.getLogger("xrayclass")

StrPath = str | PathLike[str]


def one_line(exc: BaseException) -> str:
    """The message of ``exc`` on one line, cut at about 200 characters."""
    text = " ".join(str(exc).split())
    return text if len(text) < 200 else text[:197] + "..."


def import_while_reading(*modules: str) -> Callable[[], None]:
    """Start importing ``modules``, in order, on a thread while this one reads the input.

    Returns ``wait()``: it returns once the thread is done. Call it before importing any
    of them here, or anything they import: two threads importing one library from
    different ends of a circular import can each get the other's module half made (an
    ImportError).

    A stage's scientific libraries take about a second to import (scikit-learn brings
    SciPy's statistics), and reading a large table runs mostly outside Python, so on
    two cores both go on at once. The calling thread imports what the reading needs
    first, so the two never wait on each other's modules. A failed import is left to
    happen again where the stage imports the module, and be reported there as usual.
    """
    import pyarrow.parquet  # noqa: F401  (what read_table uses, imported here first)

    def load() -> None:
        try:
            for module in modules:
                importlib.import_module(module)
        except Exception:  # noqa: BLE001  (raised again, and reported, by the stage's own import)
            pass

    thread = threading.Thread(target=load, name="xrayclass-imports", daemon=True)
    thread.start()
    return thread.join


def exit_promptly(status: int) -> NoReturn:
    """End the process with ``status`` now that the stage is done, without Python's teardown.

    A stage imports about 1,500 modules (pandas, scikit-learn, SciPy, astropy); taking
    them apart at exit cost 0.4-0.6 s of every run on this project's machine (a tenth of
    stage 3 on a million detections), for nothing: the process is ending. What exit does
    that matters is done first: the exit handlers run (libraries' clean-ups, temporary
    files), the log and the standard streams are flushed. The outputs are already in
    place (renamed from their temporaries) before a stage returns.
    """
    try:
        atexit._run_exitfuncs()
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(status)


def read_input(path: StrPath, default: StrPath, hint: str, **kwargs: Any) -> pd.DataFrame:
    """The table at ``path``; when it is the (missing) default file, an error with ``hint``."""
    if Path(path) == Path(default) and not Path(path).exists():
        raise InputError(f"{path}: file not found; {hint}")
    return read_table(path, **kwargs)


def chosen_feature_set(path: StrPath | None) -> FeatureSet:
    """The feature set of ``--features`` (a TOML file), or the paper's."""
    from xrayclass.core.featuresets import PAPER
    from xrayclass.io.artifacts import read_feature_set as load

    if path is None:
        return PAPER
    feature_set = load(path)
    log.info(
        "feature set %s (%s): %d features, %s",
        feature_set.name,
        path,
        len(feature_set),
        ", ".join(feature_set.features),
    )
    return feature_set


def stage3_feature_set(features_path: StrPath | None, model_path: StrPath, explicit_model: bool) -> FeatureSet:
    """The feature set stage 3 uses: ``--features``, else the stage-1 model's; they must agree."""
    from xrayclass.core.featuresets import PAPER, from_artifact
    from xrayclass.io.tables import read_json

    chosen = chosen_feature_set(features_path) if features_path is not None else None
    model_set = None
    if Path(model_path).exists():
        try:
            model_set = from_artifact(read_json(model_path), str(model_path))
        except (InputError, AttributeError, TypeError) as exc:
            if explicit_model:
                raise InputError(f"{model_path}: cannot read its feature set ({one_line(exc)})") from None
            log.warning(
                "%s: its feature set cannot be read (%s); it is not checked against stage 3's",
                model_path,
                one_line(exc),
            )
    elif explicit_model:
        raise InputError(f"{model_path}: file not found; pass the model that clustering.py wrote (--model)")
    if chosen is not None and model_set is not None and not chosen.same_as(model_set):
        raise InputError(
            f"{features_path}: feature set {chosen.name!r} ({len(chosen)} features) differs from "
            f"{model_set.name!r} ({len(model_set)} features) of the stage-1 model {model_path}; "
            "pass the same --features to clustering.py and classification.py"
        )
    if chosen is None and model_set is not None and not model_set.same_as(PAPER):
        log.info(
            "feature set %s of the stage-1 model %s: %d features, %s",
            model_set.name,
            model_path,
            len(model_set),
            ", ".join(model_set.features),
        )
    return chosen or model_set or PAPER


class LazyStage1:
    """The stage-1 table's name and feature columns, read only if the model check needs them."""

    def __init__(self, path: StrPath) -> None:
        self.path = path

    def table(self) -> pd.DataFrame:
        from xrayclass.constants import FEATURES, NAME_ALIASES

        return read_table(self.path, columns=["name", *NAME_ALIASES, *FEATURES])


def write_stage2(
    crossmatched: pd.DataFrame, output: StrPath, model: dict[str, Any] | None, model_path: StrPath
) -> None:
    """The stage-2 table and, when there is one, the updated model: both or neither."""
    write_outputs([(crossmatched, output), *([(model, model_path)] if model is not None else [])])
    log.info(
        "wrote %s (%s rows)%s",
        output,
        f"{len(crossmatched):,}",
        f" and updated {model_path}" if model is not None else "",
    )


def write_stage4(
    uniquely: pd.DataFrame | BatchedTable,
    ambiguous: pd.DataFrame | BatchedTable,
    summary: Mapping[str, Any],
    run: paths.RunLayout,
    uniquely_path: StrPath,
    ambiguous_path: StrPath,
) -> None:
    """The two stage-4 tables and the run's summary (all or none), then the summary printed."""
    from xrayclass.stages.master_classification import format_summary

    write_outputs([(uniquely, uniquely_path), (ambiguous, ambiguous_path), (summary, run.summary)])
    log.info(
        "wrote %s (%s sources), %s (%s sources) and %s",
        uniquely_path,
        f"{len(uniquely):,}",
        ambiguous_path,
        f"{len(ambiguous):,}",
        run.summary,
    )
    print(format_summary(summary))


def model_for_stage3(
    model_path: StrPath,
    explicit: bool,
    stage1: pd.DataFrame | LazyStage1,
    stage1_path: StrPath,
    frozen: tuple[pd.DataFrame, StrPath, int] | None = None,
) -> dict[str, Any] | None:
    """The model document that describes the clusters stage 3 will use, or None to leave it as it is.

    ``frozen`` is ``(stage-2 table, frozen file, its row count)`` when stage 3 uses the
    frozen file's clusters: the mixture is then estimated from them. Otherwise the
    stage-1 fit is restored where an earlier stage 2 had replaced it. A model that is
    missing or belongs to another stage-1 table is an error when ``--model`` was given,
    and a warning (the file left as it is) at the default path.
    """
    from xrayclass.io.artifacts import read_clustering_model
    from xrayclass.stages.clustering import (
        check_model_fits_table,
        compare_with_published,
        describe_frozen_clusters,
        stage1_model,
    )

    if not Path(model_path).exists():
        if explicit:
            raise InputError(f"{model_path}: file not found; pass the model that clustering.py wrote (--model)")
        if frozen is not None:
            log.warning(
                "no stage-1 model at %s: no model of the frozen clusters is written, so classify_source.py "
                "cannot place new detections in them; pass --model",
                model_path,
            )
        return None
    try:
        try:
            model = read_clustering_model(model_path)
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
            raise InputError(f"{model_path}: not a usable clustering model ({type(exc).__name__}: {exc})") from None
        if frozen is None and model.stage1_mixture is None:
            return None  # already stage 1's own fit: nothing to change
        if isinstance(stage1, LazyStage1):  # streamed: only the columns the check reads
            stage1 = stage1.table()
        with input_files(stage1_path, stage1=stage1_path, model=model_path):
            check_model_fits_table(model, canonical_names(stage1))
    except InputError as exc:
        if explicit:
            raise
        log.warning("%s. It is left as it is: it does not describe the clusters stage 3 will use; pass --model", exc)
        return None
    if frozen is None:
        log.info(
            "%s described the clusters of %s; its stage-1 fit is restored, since stage 3 will use this run's clusters",
            model_path,
            model.clusters.get("file", "another file"),
        )
        document: dict[str, Any] = stage1_model(model).to_dict()
        return document
    table, frozen_path, n_frozen = frozen
    with input_files(frozen_path):
        estimated = describe_frozen_clusters(model, table)
    estimated.clusters["file"] = str(frozen_path)
    published = paths.reference_file(PUBLISHED_MIXTURE)
    if n_frozen == PUBLISHED_DETECTIONS and published is not None:
        from xrayclass.io.tables import read_json

        log.info(
            "%s has the published run's %s detections: taking it for the published crossmatch",
            frozen_path,
            f"{PUBLISHED_DETECTIONS:,}",
        )
        comparison = compare_with_published(estimated, read_json(published))
        estimated.clusters["published_comparison"] = {"file": str(published), **comparison}
    document = estimated.to_dict()
    return document
