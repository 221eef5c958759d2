"""Which run a command reads when none is named.

``make run`` writes the stages' outputs to ``out_data/`` when it has real input and to
``out_data/mock/`` when it made a synthetic catalog; the stage scripts, run by hand,
write to ``out_data/``. The commands that read a run (``analysis.py``,
``classify_source.py``) take, unless told otherwise:

1. ``out_data/`` itself, if it holds the files the command needs;
2. else the most recently written run directory below it (up to two levels down, e.g.
   ``out_data/mock/``) that holds them; a run directory is one where stage 1 wrote its
   model (``model.json``), so that ``out_data/reproduction/`` (stage 4 alone, on the
   published stage-3 output) does not count;
3. else ``out_data/``, so that the command's "file not found" message names it.

The choice is logged, so the user sees which run was read.
"""

import logging
from collections.abc import Iterable
from pathlib import Path

from xrayclass.io import paths

__all__ = [
    "RUN_MARKER",
    "STAGE_FILES",
    "default_run",
    "find_run",
    "run_directories",
]

log = logging.getLogger(__name__)

#: Stage 1 writes this in every run directory.
RUN_MARKER = paths.MODEL.name

#: Files whose modification times date a run.
STAGE_FILES = tuple(
    paths.RunLayout.NAMES[role] for role in ("clusters", "model", "crossmatch", "detections", "classifier", "uniquely")
)


def _has(directory: Path, needs: Iterable[str]) -> bool:
    return all((directory / name).is_file() for name in needs)


def _written(directory: Path) -> float:
    times = [(directory / name).stat().st_mtime for name in STAGE_FILES if (directory / name).is_file()]
    return max(times, default=0.0)


def run_directories(out_dir: Path | str = paths.OUT_DIR) -> list[Path]:
    """The run directories below ``out_dir`` (one and two levels down), newest first."""
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        return []
    found = {
        marker.parent
        for pattern in (f"*/{RUN_MARKER}", f"*/*/{RUN_MARKER}")
        for marker in out_dir.glob(pattern)
        if marker.is_file()
    }
    # Ties (same second) are broken by the path, so that the choice is deterministic.
    return sorted(found, key=lambda d: (-_written(d), str(d)))


def default_run(needs: Iterable[str] = (RUN_MARKER,), out_dir: Path | str = paths.OUT_DIR) -> Path:
    """The run directory a command reads by default (see the module's docstring), silently.

    ``needs`` are the file names the command reads from it.
    """
    needs, out_dir = tuple(needs), Path(out_dir)
    if _has(out_dir, needs):
        return out_dir
    return next((directory for directory in run_directories(out_dir) if _has(directory, needs)), out_dir)


def find_run(
    needs: Iterable[str] = (RUN_MARKER,), out_dir: Path | str = paths.OUT_DIR, option: str = "--run-dir"
) -> Path:
    """:func:`default_run`, saying which run it picked and why.

    ``option`` is the command's option that names another run, quoted in the log line.
    """
    needs, out_dir = tuple(needs), Path(out_dir)
    run = default_run(needs, out_dir)
    if run == out_dir:
        if _has(out_dir, needs):
            log.info("reading the run in %s/ (pass %s to choose another)", out_dir, option)
    else:
        missing = " and ".join(name for name in needs if not (out_dir / name).is_file())
        log.info(
            "reading the run in %s/, the most recent run below %s/, which itself lacks %s (pass %s to choose another)",
            run,
            out_dir,
            missing,
            option,
        )
    return run
