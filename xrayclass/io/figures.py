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
    """Draw every ``(figure, stem)`` (stem: :data:`xrayclass.io.paths.FIGURES`) as PNG and PDF; write all or none.

    Every figure is rendered in memory before any file is written, so that a figure that
    fails to draw, or an error raised while ``figures`` (maybe a generator) makes the next
    one, leaves ``out_dir`` as it was. Returns the PNG and PDF files, in order.
    """
    out_dir = Path(out_dir)
    rendered: list[tuple[bytes, Path]] = []
    for figure, stem in figures:
        rendered += _rendered(figure, out_dir, stem)
    return write_outputs(rendered) if rendered else []


def save_figure(figure: Figure, out_dir: str | os.PathLike[str], stem: str) -> list[Path]:
    """Write ``figure`` as ``<out_dir>/<stem>.png`` (at :data:`DPI`) and ``.pdf``, both or neither.

    The PNG's layout is reused for the PDF: afterwards the figure's layout is frozen.
    """
    return save_figures([(figure, stem)], out_dir)
