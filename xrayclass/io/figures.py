"""Writing the figures of a run: PNG and PDF, atomically and reproducibly."""

from __future__ import annotations

import io
import os
from collections.abc import Iterable
from pathlib import Path

from matplotlib.figure import Figure

from xrayclass.io.tables import write_outputs

__all__ = ["DPI", "figure_png", "save_figure", "save_figures"]

#: Resolution of the PNG files (dots per inch).
DPI = 150

#: The formats each figure is written in, with their metadata: no creation date, so that
#: the same figure gives the same bytes.
_FORMATS = (("png", {"Software": "xrayclass"}), ("pdf", {"Creator": "xrayclass", "CreationDate": None}))


def figure_png(out_dir: str | os.PathLike[str], stem: str) -> Path:
    """The PNG :func:`save_figure` writes for ``stem`` in ``out_dir`` (the one a report shows)."""
    return Path(out_dir) / f"{stem}.png"


def _rendered(figure: Figure, out_dir: Path, stem: str) -> list[tuple[bytes, Path]]:
    """``figure`` as PNG and PDF bytes, each with the path it is written to."""
    files = []
    for fmt, metadata in _FORMATS:
        buffer = io.BytesIO()
        figure.savefig(buffer, format=fmt, dpi=DPI, metadata=metadata)
        files.append((buffer.getvalue(), out_dir / f"{stem}.{fmt}"))
        # The first save laid the figure out; the second reuses that layout.
        figure.set_layout_engine("none")
    return files


def save_figures(figures: Iterable[tuple[Figure, str]], out_dir: str | os.PathLike[str]) -> list[Path]:
    """Draw every ``(figure, stem)`` as PNG and PDF, then write them all or none.

    Every figure is rendered (in memory) before any file is written, so that a figure that
    fails to draw, or an error raised while ``figures`` makes the next one, leaves the
    directory as it was; the files are then written as :func:`~xrayclass.io.tables.write_outputs`
    writes, to temporaries renamed into place only when all were written. ``figures`` may
    be a generator: each figure is dropped once rendered.

    Parameters
    ----------
    figures : iterable of (matplotlib.figure.Figure, str)
        Each figure with its file name without extension (:data:`xrayclass.io.paths.FIGURES`).
    out_dir : str or pathlib.Path
        Created if missing (only once every figure has been drawn).

    Returns
    -------
    list of pathlib.Path
        The PNG and PDF files, in the order of ``figures``.
    """
    out_dir = Path(out_dir)
    rendered: list[tuple[bytes, Path]] = []
    for figure, stem in figures:
        rendered += _rendered(figure, out_dir, stem)
    return write_outputs(rendered) if rendered else []


def save_figure(figure: Figure, out_dir: str | os.PathLike[str], stem: str) -> list[Path]:
    """Write ``figure`` as ``<out_dir>/<stem>.png`` (at :data:`DPI`) and ``.pdf``.

    Both files appear or neither does (see :func:`save_figures`). The layout computed for
    the PNG is reused for the PDF: afterwards the figure's layout engine is off (its layout
    is frozen).

    Parameters
    ----------
    figure : matplotlib.figure.Figure
    out_dir : str or pathlib.Path
        Created if missing.
    stem : str
        File name without extension (:data:`xrayclass.io.paths.FIGURES`).

    Returns
    -------
    list of pathlib.Path
        The PNG and the PDF.
    """
    return save_figures([(figure, stem)], out_dir)
