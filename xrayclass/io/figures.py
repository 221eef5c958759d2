"""Writing the figures of a run: PNG and PDF, atomically and reproducibly."""

from __future__ import annotations

import functools
import os
from pathlib import Path

from matplotlib.figure import Figure

from xrayclass.io.tables import write_atomic

__all__ = ["DPI", "figure_png", "save_figure"]

#: Resolution of the PNG files (dots per inch).
DPI = 150


def figure_png(out_dir: str | os.PathLike[str], stem: str) -> Path:
    """The PNG :func:`save_figure` writes for ``stem`` in ``out_dir`` (the one a report shows)."""
    return Path(out_dir) / f"{stem}.png"


def save_figure(figure: Figure, out_dir: str | os.PathLike[str], stem: str) -> list[Path]:
    """Write ``figure`` as ``<out_dir>/<stem>.png`` (at :data:`DPI`) and ``.pdf``.

    Each file is written to a temporary file in ``out_dir`` and renamed into place, so
    an interrupted run leaves no partial figure. PDF metadata carry no creation date,
    so the same figure gives the same bytes. The layout computed for the PNG is reused
    for the PDF: afterwards the figure's layout engine is off (its layout is frozen).

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
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for fmt, metadata in (("png", {"Software": "xrayclass"}), ("pdf", {"Creator": "xrayclass", "CreationDate": None})):
        path = out_dir / f"{stem}.{fmt}"
        write_atomic(path, functools.partial(figure.savefig, format=fmt, dpi=DPI, metadata=metadata))
        written.append(path)
        # The first save laid the figure out; the second reuses that layout.
        figure.set_layout_engine("none")
    return written
