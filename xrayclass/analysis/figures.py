"""The paper's figures, drawn from the pipeline's tables.

Every function takes DataFrames and returns a fresh :class:`matplotlib.figure.Figure`
(no pyplot, no GUI backend); :func:`xrayclass.io.figures.save_figure` writes it. Categories
use the Okabe-Ito palette :data:`PALETTE`, continuous values viridis (cividis for confusion
matrices). Sky maps are Mollweide in galactic coordinates, l increasing to the LEFT. Text
from the tables is drawn with ``parse_math=False`` (a ``$`` in a name stays a dollar).
"""

import contextlib
import contextvars
import textwrap
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib import patheffects
from matplotlib.axes import Axes
from matplotlib.colors import LogNorm, Normalize, PowerNorm, to_rgb
from matplotlib.figure import Figure
from matplotlib.ticker import FormatStrFormatter, LogLocator
from matplotlib.typing import ColorType
from numpy.typing import ArrayLike

from xrayclass.constants import AGGREGATE_CLASS, AGGREGATE_CLASSES, CLASSES, CLUSTER, MAIN_TYPE, NAME
from xrayclass.text import plural

__all__ = [
    "COMPARISON_PANELS",
    "DENSITY_CMAP",
    "DENSITY_KINDS",
    "HARDNESS_LABELS",
    "LATITUDE_LABEL",
    "LONGITUDE_LABEL",
    "MARKERS",
    "MATRIX_CMAP",
    "PALETTE",
    "SEQUENTIAL_CMAP",
    "TITLE_NAME_LINES",
    "TITLE_NAME_WIDTH",
    "bic_figure",
    "class_density_maps",
    "class_sky_density",
    "cluster_sky_map",
    "comparison_figure",
    "confusion_heatmap",
    "galactic",
    "hardness_by_cluster",
    "method_comparison_figure",
    "reliability_figure",
    "source_probability_plot",
    "synthetic_marking",
]

#: Okabe & Ito (2008) colour-blind-safe palette, ordered so the low-contrast yellow
#: comes last: blue, orange, bluish green, vermillion, reddish purple, sky blue,
#: black, yellow.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000", "#F0E442")

#: Markers cycled with the colours, so that categories stay distinct in grey scale.
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")

#: Continuous colour maps: values and counts; densities (dark = dense, light = sparse,
#: as in the paper's Figs. 6 and 7); confusion matrices.
SEQUENTIAL_CMAP = "viridis"
DENSITY_CMAP = "viridis_r"
MATRIX_CMAP = "cividis"

#: Axes of the per-class density maps (Figs. 6 and 7): x column, y column, range, labels.
#: The variability pair is the paper's Fig. 7: var_prob_b (y) against var_prob_s (x).
DENSITY_KINDS = {
    "hardness": (
        "hard_hm",
        "hard_hs",
        (-1.0, 1.0),
        "hard_hm, hardness ratio (H−M)/(H+M)",
        "hard_hs, hardness ratio (H−S)/(H+S)",
    ),
    "variability": (
        "var_prob_s",
        "var_prob_b",
        (0.0, 1.0),
        "var_prob_s, soft-band (0.5–1.2 keV) variability probability",
        "var_prob_b, broad-band (0.5–7 keV) variability probability",
    ),
}

HARDNESS_LABELS = {"hard_hm": DENSITY_KINDS["hardness"][3], "hard_hs": DENSITY_KINDS["hardness"][4]}
#: A source name in a title: lines of at most this many characters, at most
#: TITLE_NAME_LINES of them (a longer name is cut, ending in "…").
TITLE_NAME_WIDTH = 80
TITLE_NAME_LINES = 4

LONGITUDE_LABEL = "Galactic longitude l (deg, increasing to the left)"
LATITUDE_LABEL = "Galactic latitude b (deg)"


# ----------------------------------------------------------------------------- helpers

#: True while figures of a SYNTHETIC (mock) run are drawn: each is marked.
_SYNTHETIC = contextvars.ContextVar("xrayclass_synthetic_figures", default=False)


@contextlib.contextmanager
def synthetic_marking(synthetic: bool = True) -> Iterator[None]:
    """Within this block every figure drawn carries a large SYNTHETIC mark (mock runs)."""
    token = _SYNTHETIC.set(bool(synthetic))
    try:
        yield
    finally:
        _SYNTHETIC.reset(token)


def _mark_synthetic(figure: Figure) -> None:
    figure.text(
        0.5,
        0.5,
        "SYNTHETIC",
        transform=figure.transFigure,
        ha="center",
        va="center",
        rotation=20,
        fontsize=min(72, 9 * figure.get_figwidth()),
        fontweight="bold",
        color=(0.7, 0.0, 0.1, 0.15),
        zorder=1000,
    )
    figure.text(
        0.995,
        0.005,
        "SYNTHETIC mock data: not real sources",
        transform=figure.transFigure,
        ha="right",
        va="bottom",
        fontsize=7,
        color=(0.7, 0.0, 0.1),
    )


def _finished(figure: Figure) -> Figure:
    """The figure as drawn, with the SYNTHETIC mark inside :func:`synthetic_marking`."""
    if _SYNTHETIC.get():
        _mark_synthetic(figure)
    return figure


def _require(table: pd.DataFrame, columns: Sequence[str], what: str, nonempty: bool = False) -> None:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(f"{what}: missing required columns: {', '.join(missing)}")
    if nonempty and table.empty:
        raise ValueError(f"{what}: the table has no rows")


def _title_name(name: object) -> str:
    """A source name wrapped for a title (see :data:`TITLE_NAME_WIDTH`)."""
    return textwrap.fill(
        str(name), width=TITLE_NAME_WIDTH, max_lines=TITLE_NAME_LINES, placeholder=" …", break_on_hyphens=False
    )


def _plain_legend(legend: Any) -> None:
    """Draw a legend's entries as plain text (they name values of the tables)."""
    for text in legend.get_texts():
        text.set_parse_math(False)


def _style(k: int) -> tuple[str, str]:
    """Colour and marker of the k-th category."""
    return PALETTE[k % len(PALETTE)], MARKERS[(k // len(PALETTE) + k) % len(MARKERS)]


def _panels(figure: Figure, n: int, ncols: int, sharex: bool = True, sharey: bool = True) -> list[Axes]:
    """``n`` axes on a grid of ``ncols`` columns; unused cells are removed."""
    ncols = max(1, min(ncols, n))
    nrows = int(np.ceil(n / ncols))
    axes = figure.subplots(nrows, ncols, sharex=sharex, sharey=sharey, squeeze=False).ravel()
    for ax in axes[n:]:
        ax.remove()
    return list(axes[:n])


def galactic(ra: ArrayLike, dec: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Galactic (l, b) in degrees of ICRS (ra, dec) in degrees, l wrapped to [-180, 180)."""
    from astropy import units as u
    from astropy.coordinates import SkyCoord

    coordinates = SkyCoord(np.asarray(ra, float) * u.deg, np.asarray(dec, float) * u.deg, frame="icrs").galactic
    return coordinates.l.wrap_at(180 * u.deg).deg, coordinates.b.deg


def _sky_xy(table: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Mollweide plot coordinates (radians) of a table's positions: x = -l, y = b."""
    _require(table, ("ra", "dec"), "sky map")
    table = table.dropna(subset=["ra", "dec"])
    longitude, latitude = galactic(table["ra"].to_numpy(), table["dec"].to_numpy())
    return table, -np.radians(longitude), np.radians(latitude)


def _mollweide(
    figure: Figure, position: tuple[int, int, int], title: str | None = None, tick_step: int = 30, labels: bool = True
) -> Axes:
    """A Mollweide axes whose longitude ticks read l increasing to the left.

    Tick labels get a white outline so that they stay readable over the data.
    """
    ax = figure.add_subplot(*position, projection="mollweide")
    ticks = np.arange(-180 + tick_step, 180, tick_step)
    ax.set_xticks(np.radians(ticks))
    ax.set_xticklabels([f"{-t:d}°" for t in ticks])
    latitudes = np.arange(-60, 61, 30)
    ax.set_yticks(np.radians(latitudes))
    ax.set_yticklabels([f"{t:d}°" for t in latitudes])
    outline: list[patheffects.AbstractPathEffect] = [patheffects.withStroke(linewidth=2.5, foreground="white")]
    for label in (*ax.get_xticklabels(), *ax.get_yticklabels()):
        label.set_fontsize(7)
        label.set_path_effects(outline)
        label.set_zorder(5)
    ax.grid(True, color="0.6", linewidth=0.5, alpha=0.7)
    if labels:
        ax.set_xlabel(LONGITUDE_LABEL)
        ax.set_ylabel(LATITUDE_LABEL)
    if title:
        ax.set_title(title, pad=10)
    return ax


# ----------------------------------------------------------------------------- figures


def bic_figure(bic_table: pd.DataFrame, chosen_k: int | None = None) -> Figure:
    """Fig. 1: the BIC of the Gaussian mixture and its gradient against K."""
    _require(bic_table, ("k", "bic_mean", "bic_std", "gradient"), "BIC table", nonempty=True)
    table = bic_table.sort_values("k")
    k = table["k"].to_numpy(float)
    mean, std = table["bic_mean"].to_numpy(float), table["bic_std"].to_numpy(float)

    figure = Figure(figsize=(7, 6), layout="constrained")
    top, bottom = figure.subplots(2, 1, sharex=True)
    top.fill_between(k, mean - std, mean + std, color="0.75", label="±1 std over fits")
    top.plot(k, mean, "o-", color=PALETTE[0], markersize=4, label="mean BIC")
    top.set_ylabel("BIC (dimensionless)")
    top.set_title("Bayesian information criterion of the Gaussian mixture")
    bottom.plot(
        k, table["gradient"].to_numpy(float), "o-", color=PALETTE[0], markersize=4, label="gradient of the mean BIC"
    )
    bottom.axhline(0, color="0.5", linewidth=0.8)
    bottom.set_ylabel("dBIC / dK (per component)")
    bottom.set_xlabel("Number of mixture components K")
    bottom.set_xticks(k[:: max(1, int(np.ceil(len(k) / 20)))])
    for ax in (top, bottom):
        if chosen_k is not None:
            ax.axvline(chosen_k, color=PALETTE[3], linestyle="--", label=f"chosen K = {chosen_k}")
        ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 4))
        ax.grid(True, alpha=0.3)
        ax.legend(loc="best", fontsize=8)
    return _finished(figure)


def cluster_sky_map(clustered: pd.DataFrame) -> Figure:
    """Fig. 2: detections on the sky (Mollweide, galactic), one colour per cluster."""
    _require(clustered, ("ra", "dec", CLUSTER), "cluster sky map", nonempty=True)
    table, x, y = _sky_xy(clustered)
    clusters = table[CLUSTER].to_numpy()
    figure = Figure(figsize=(10, 5.6), layout="constrained")
    ax = _mollweide(figure, (1, 1, 1))
    figure.suptitle("Detections by cluster (Mollweide projection, galactic coordinates)")
    size = 4 if len(table) < 5000 else 1.5
    for k, cluster in enumerate(np.unique(clusters)):
        colour, marker = _style(k)
        chosen = clusters == cluster
        ax.scatter(
            x[chosen],
            y[chosen],
            s=size,
            color=colour,
            marker=marker,
            alpha=0.7,
            linewidths=0,
            rasterized=True,
            label=f"cluster {cluster} (n = {int(chosen.sum()):,})",
        )
    legend = figure.legend(
        loc="outside lower center",
        ncols=min(3, len(np.unique(clusters))),
        markerscale=3,
        fontsize=8,
        title=f"{len(table):,} detections",
    )
    _plain_legend(legend)
    return _finished(figure)


def hardness_by_cluster(clustered: pd.DataFrame) -> Figure:
    """Fig. 3: hard_hs against hard_hm per cluster, coloured by hard-band variability."""
    _require(clustered, (CLUSTER, "hard_hm", "hard_hs", "var_prob_h"), "hardness by cluster", nonempty=True)
    clusters = np.unique(clustered[CLUSTER].dropna().to_numpy())
    ncols = 3
    nrows = int(np.ceil(len(clusters) / ncols))
    figure = Figure(figsize=(11, 3.3 * nrows + 0.6), layout="constrained")
    axes = _panels(figure, len(clusters), ncols)
    norm = Normalize(0, 1)
    for ax, cluster in zip(axes, clusters, strict=False):
        rows = clustered[clustered[CLUSTER] == cluster]
        points = ax.scatter(
            rows["hard_hm"],
            rows["hard_hs"],
            c=rows["var_prob_h"],
            cmap=SEQUENTIAL_CMAP,
            norm=norm,
            s=4,
            linewidths=0,
            rasterized=True,
        )
        ax.set_title(f"Cluster {cluster} (n = {len(rows):,})", fontsize=10, parse_math=False)
        ax.set_xlim(-1.05, 1.05)
        ax.set_ylim(-1.05, 1.05)
        ax.set_aspect("equal")
        ax.set_facecolor("0.9")  # the light end of viridis stays visible
        ax.grid(True, color="white", linewidth=0.6)
        ax.set_axisbelow(True)
    _label_outer(axes, ncols, HARDNESS_LABELS["hard_hm"], HARDNESS_LABELS["hard_hs"])
    figure.colorbar(points, ax=axes, label="var_prob_h, hard-band variability probability", shrink=0.8)
    figure.suptitle("Hardness ratios of the detections in each cluster")
    return _finished(figure)


def _label_outer(axes: Sequence[Axes], ncols: int, xlabel: str, ylabel: str) -> None:
    """x labels on the lowest panel of each column, y labels on the first column."""
    n = len(axes)
    for i, ax in enumerate(axes):
        if i + ncols >= n:
            ax.set_xlabel(xlabel, fontsize=8)
            ax.xaxis.set_tick_params(labelbottom=True)
        if i % ncols == 0:
            ax.set_ylabel(ylabel, fontsize=8)


def _density(
    x: ArrayLike, y: ArrayLike, limits: tuple[float, float], bins: int = 50, smooth: float = 1.5
) -> tuple[np.ndarray, np.ndarray | None]:
    """Smoothed 2-D histogram on [limits]^2, scaled so that its peak is 1 (None if empty)."""
    from scipy.ndimage import gaussian_filter

    edges = np.linspace(limits[0], limits[1], bins + 1)
    counts, _, _ = np.histogram2d(np.asarray(x, dtype=float), np.asarray(y, dtype=float), bins=[edges, edges])
    if counts.sum() == 0:
        return edges, None
    density = gaussian_filter(counts, smooth, mode="constant")
    return edges, density.T / density.max()


def class_density_maps(classified: pd.DataFrame, kind: str = "hardness", aggregated: bool = True) -> Figure:
    """Figs. 6 (hardness) and 7 (variability): feature density of each predicted class.

    Each panel is a 2-D histogram of the detections predicted in one class (stage-3
    ``main_type``), 50 x 50 bins smoothed with a Gaussian of 1.5 bins and scaled to peak 1, so
    panels of very different sizes share one colour scale. For the ten classes, the
    density of the class's aggregated group is overlaid as grey contours, as in the
    paper. Detections that could not be classified are left out. ``kind`` is "hardness"
    (hard_hs against hard_hm) or "variability" (var_prob_b against var_prob_s);
    ``aggregated`` draws one panel per aggregated class, else one per class.
    """
    if kind not in DENSITY_KINDS:
        raise ValueError(f"kind must be one of {', '.join(DENSITY_KINDS)}, got {kind!r}")
    xcol, ycol, limits, xlabel, ylabel = DENSITY_KINDS[kind]
    _require(classified, (MAIN_TYPE, xcol, ycol), f"{kind} density maps")
    table = classified[classified[MAIN_TYPE].isin(CLASSES)].dropna(subset=[xcol, ycol])
    family = table[MAIN_TYPE].map(AGGREGATE_CLASS)
    groups = AGGREGATE_CLASSES if aggregated else CLASSES
    group_of = family if aggregated else table[MAIN_TYPE]
    ncols = 4 if aggregated else 5
    nrows = int(np.ceil(len(groups) / ncols))
    figure = Figure(figsize=(3.0 * ncols + 1.2, 3.0 * nrows + 1.3), layout="constrained")
    axes = _panels(figure, len(groups), ncols)
    mesh = None
    for ax, group in zip(axes, groups, strict=False):
        chosen = (group_of == group).to_numpy()
        edges, density = _density(table.loc[chosen, xcol], table.loc[chosen, ycol], limits)
        if density is not None:
            mesh = ax.imshow(
                np.ma.masked_less(density, 0.01),
                cmap=DENSITY_CMAP,
                norm=PowerNorm(0.5, 0, 1),
                origin="lower",
                extent=(*limits, *limits),
                interpolation="nearest",
            )
        else:
            ax.text(0.5, 0.5, "no detections", ha="center", va="center", transform=ax.transAxes, color="0.4")
        if not aggregated:
            parent = AGGREGATE_CLASS[group]
            _, outline = _density(table.loc[family == parent, xcol], table.loc[family == parent, ycol], limits)
            if outline is not None:
                centres = (edges[:-1] + edges[1:]) / 2
                ax.contour(centres, centres, outline, levels=(0.1, 0.3, 0.6), colors="0.3", linewidths=0.8)
        title = f"{group} (n = {int(chosen.sum()):,})"
        if not aggregated:
            title = f"{group} [{AGGREGATE_CLASS[group]}], n = {int(chosen.sum()):,}"
        ax.set_title(title, fontsize=10)
        ax.set_xlim(*limits)
        ax.set_ylim(*limits)
        ax.set_aspect("equal")
    _label_outer(axes, ncols, xlabel.split(",")[0], ylabel.split(",")[0])
    if mesh is not None:
        figure.colorbar(mesh, ax=axes, label="density / panel peak (sqrt scale)", shrink=0.85)
    what = "Hardness ratios" if kind == "hardness" else "Variability probabilities"
    contours = "" if aggregated else "; grey contours: density of the aggregated class [in brackets]"
    figure.suptitle(
        f"{what} of the classified detections by predicted class{contours}\nx: {xlabel}; y: {ylabel}", fontsize=10
    )
    return _finished(figure)


def class_sky_density(uniquely: pd.DataFrame, bins: tuple[int, int] = (36, 18)) -> Figure:
    """Fig. 8: sky density of the uniquely classified sources, per aggregated class.

    Counts in equal-area cells (uniform in l and in sin b), on a log colour scale
    shared by the four panels. The paper maps the uniquely classified sources that
    had no SIMBAD class before; pass that subset to reproduce it exactly.
    """
    _require(uniquely, ("ra", "dec", "agg_master_class"), "class sky density")
    table, x, y = _sky_xy(uniquely)
    x_edges = np.linspace(-np.pi, np.pi, bins[0] + 1)
    y_edges = np.arcsin(np.linspace(-1, 1, bins[1] + 1))
    cell_deg2 = 4 * np.pi * np.degrees(1) ** 2 / (bins[0] * bins[1])
    counts = {
        group: np.histogram2d(
            x[(table["agg_master_class"] == group).to_numpy()],
            y[(table["agg_master_class"] == group).to_numpy()],
            bins=(x_edges, y_edges),
        )[0].T
        for group in AGGREGATE_CLASSES
    }
    norm = LogNorm(1, max(2.0, max(c.max() for c in counts.values())))
    figure = Figure(figsize=(11, 6.6), layout="constrained")
    axes = []
    for i, group in enumerate(AGGREGATE_CLASSES):
        ax = _mollweide(
            figure, (2, 2, i + 1), f"{group} (n = {int(counts[group].sum()):,} sources)", tick_step=60, labels=False
        )
        ax.set_facecolor("0.93")  # empty cells (no source) show grey, outside the sky white
        if i >= 2:
            ax.set_xlabel("Galactic longitude l (deg)", fontsize=9)
        if i % 2 == 0:
            ax.set_ylabel("Galactic latitude b (deg)", fontsize=9)
        mesh = ax.pcolormesh(
            x_edges, y_edges, np.ma.masked_less(counts[group], 1), cmap=SEQUENTIAL_CMAP, norm=norm, rasterized=True
        )
        axes.append(ax)
    bar = figure.colorbar(
        mesh, ax=axes, label=f"sources per cell (equal-area cells of {cell_deg2:.0f} deg²)", shrink=0.8
    )
    bar.ax.yaxis.set_major_locator(LogLocator(subs=(1, 2, 5)))
    bar.ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
    figure.suptitle(
        "Uniquely classified sources by aggregated master class (Mollweide, galactic; l increases to the left)",
        fontsize=11,
    )
    return _finished(figure)


def source_probability_plot(classified: pd.DataFrame, name: str, master_class: str | None = None) -> Figure:
    """Fig. 10: class probabilities of one source's detections.

    For each of the ten classes: every detection's probability (light points), their
    mean (black dotted line) and the 95% confidence interval of that mean (grey band),
    taken as mean ± 1.96 std / sqrt(n) (sample std, ddof = 1) and clipped to [0, 1];
    with a single detection there is no interval. The master class is a vermillion
    square and is named in the title; without ``master_class``, the soft vote (class of
    highest mean probability).
    """
    _require(classified, (NAME, *CLASSES), "source probability plot")
    rows = classified[classified[NAME] == name]
    if rows.empty:
        raise ValueError(f"source {name!r} has no detection in the classified table")
    probabilities = rows[list(CLASSES)].to_numpy(float)
    n = len(rows)
    mean = probabilities.mean(axis=0)
    if n > 1:
        half = 1.96 * probabilities.std(axis=0, ddof=1) / np.sqrt(n)
    else:
        half = np.zeros(len(CLASSES))
    vote = "soft vote" if master_class is None else "master class"
    if master_class is None:
        master_class = CLASSES[int(np.argmax(mean))]
    if master_class not in CLASSES:
        raise ValueError(f"master class {master_class!r} is not one of {', '.join(CLASSES)}")
    best = CLASSES.index(master_class)

    positions = np.arange(len(CLASSES))
    track_columns = [c for c in rows.columns if c.startswith("track_")]
    if track_columns:
        figure = Figure(figsize=(11, 4.8), layout="constrained")
        ax, track_ax = figure.subplots(1, 2, width_ratios=(3, 1.2))
        _probability_track(track_ax, rows, track_columns)
    else:
        figure = Figure(figsize=(8, 4.8), layout="constrained")
        ax = figure.subplots()
    band = "95% confidence interval of the mean" + (" (none with 1 detection)" if n == 1 else "")
    ax.fill_between(positions, np.clip(mean - half, 0, 1), np.clip(mean + half, 0, 1), color="0.8", label=band)
    jitter = np.random.default_rng(0).uniform(-0.12, 0.12, probabilities.shape)
    ax.scatter(
        (positions + jitter).ravel(),
        probabilities.ravel(),
        s=12,
        color=PALETTE[5],
        alpha=0.45,
        linewidths=0,
        label=f"detections (n = {n})",
    )
    ax.plot(positions, mean, ":", color="black", marker="o", markersize=4, label="mean probability")
    ax.plot(
        positions[best],
        mean[best],
        "s",
        color=PALETTE[3],
        markersize=11,
        markeredgecolor="black",
        label=f"{vote}: {master_class}",
    )
    ax.set_xticks(positions)
    ax.set_xticklabels(CLASSES, rotation=30, ha="right")
    ax.get_xticklabels()[best].set_fontweight("bold")
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel("Class")
    ax.set_ylabel("Class probability")
    ax.grid(True, axis="y", alpha=0.3)
    figure.legend(loc="outside lower center", ncols=2, fontsize=8)
    shown = _title_name(name)
    # A name that needed wrapping gets lines of its own; the rest of the title follows.
    ax.set_title(
        f"{shown}{chr(10) if shown != str(name) else ': '}{vote} {master_class} ({AGGREGATE_CLASS[master_class]}), "
        + plural(n, "detection"),
        fontsize=10,
        parse_math=False,
    )
    return _finished(figure)


def _probability_track(ax: Axes, rows: pd.DataFrame, track_columns: Sequence[str]) -> None:
    """Posterior of each detection's predicted class as feature categories are added."""
    steps = [c.removeprefix("track_") for c in track_columns]
    values = rows[track_columns].to_numpy(float)
    x = np.arange(len(steps))
    for line in values:
        ax.plot(x, line, color=PALETTE[5], alpha=0.35, linewidth=0.8)
    ax.plot(x, np.nanmean(values, axis=0), color="black", marker="o", markersize=4, label="mean")
    ax.set_xticks(x)
    ax.set_xticklabels(["prior", *[f"+ {step}" for step in steps[1:]]], rotation=30, ha="right")
    ax.set_ylim(-0.03, 1.03)
    ax.set_ylabel("Posterior of the predicted class (naive Bayes)")
    ax.grid(True, axis="y", alpha=0.3)
    # The track and driven_by answer different questions: the track's steps are the
    # naive Bayes posterior of the class as categories are added in a fixed order
    # (so a step depends on what came before), while driven_by is the category whose
    # evidence alone favours the class most over the runner-up. Both are naive Bayes
    # quantities beside the Mahalanobis probabilities of the left panel; the title
    # names both and does not present one as the other.
    title = "Naive Bayes probability track\n(not the Mahalanobis probabilities)"
    finite = np.isfinite(values).all(axis=1)
    if finite.any() and len(steps) > 1:
        largest = np.argmax(np.abs(np.diff(values[finite], axis=1)), axis=1) + 1
        step_names, counts = np.unique(np.asarray(steps)[largest], return_counts=True)
        title += f"\nlargest step: {step_names[np.argmax(counts)]} ({counts.max()}/{int(finite.sum())})"
    if "driven_by" in rows.columns:
        drivers = rows["driven_by"].replace("", np.nan).dropna()
        if len(drivers):
            top = drivers.value_counts()
            title += f"\ndriven_by: {top.index[0]} ({top.iloc[0]}/{len(drivers)})"
    ax.set_title(title, fontsize=9, parse_math=False)


def method_comparison_figure(table: pd.DataFrame) -> Figure:
    """Per-class F1 of several classifiers validated on the same splits (grouped bars)."""
    _require(table, ("method", "level"), "method comparison", nonempty=True)
    figure = Figure(figsize=(11, 4.2), layout="constrained")
    axes = figure.subplots(1, 2, width_ratios=(len(CLASSES), len(AGGREGATE_CLASSES) + 1))
    methods = list(dict.fromkeys(table["method"]))
    width = 0.8 / len(methods)
    for ax, level, labels in zip(axes, ("classes", "aggregated"), (CLASSES, AGGREGATE_CLASSES), strict=False):
        rows = table[table["level"] == level].set_index("method")
        x = np.arange(len(labels))
        for m, method in enumerate(methods):
            values = [rows.loc[method, f"f1_{label}"] for label in labels]
            ax.bar(
                x + (m - (len(methods) - 1) / 2) * width,
                values,
                width,
                color=_style(m)[0],
                label=f"{method} (macro F1 {rows.loc[method, 'macro_f1']:.2f})",
            )
        ax.set_xticks(x)
        ax.set_xticklabels(labels, rotation=30, ha="right")
        ax.set_ylim(0, 1)
        ax.set_ylabel("F1 (mean over splits)")
        ax.set_title("Ten classes" if level == "classes" else "Aggregated classes", fontsize=10)
        ax.grid(True, axis="y", alpha=0.3)
        ax.legend(fontsize=7, loc="upper right")
    figure.suptitle("Validation of the classifiers on the same seeded 70/30 splits")
    return _finished(figure)


#: Panels of the method-comparison figure: column of the table, label, whether higher is better.
COMPARISON_PANELS = (
    ("classes", "accuracy", "accuracy (10 classes)"),
    ("classes", "macro_f1", "macro F1 (10 classes)"),
    *(("aggregated", f"diag_{label}", f"{label} recovered (aggregated)") for label in AGGREGATE_CLASSES),
    ("classes", "ece", "ECE (10 classes, lower is better)"),
    ("classes", "brier", "Brier score (10 classes, lower is better)"),
)


#: How a panel says why it has nothing to draw.
_NOTE_STYLE: dict[str, Any] = {"ha": "center", "va": "center", "fontsize": 9, "color": "0.35"}


def comparison_figure(table: pd.DataFrame, synthetic: bool = False) -> Figure:
    """Every method's accuracy, macro F1, aggregated diagonal and calibration, on both splits.

    One panel per quantity; for each method a bar per split (mean over the seeds, with
    the standard deviation over the seeds as an error bar).
    """
    _require(table, ("split", "method", "level"), "method comparison", nonempty=True)
    figure = Figure(figsize=(13, 6.5), layout="constrained")
    axes = _panels(figure, len(COMPARISON_PANELS), 4, sharex=True, sharey=False)
    methods = list(dict.fromkeys(table["method"]))
    splits = list(dict.fromkeys(table["split"]))
    width = 0.8 / len(splits)
    x = np.arange(len(methods))
    for ax, (level, column, title) in zip(axes, COMPARISON_PANELS, strict=False):
        shown: list[float] = []
        for s_index, split_name in enumerate(splits):
            rows = table[(table["split"] == split_name) & (table["level"] == level)].set_index("method")
            values = [rows.loc[m, column] if m in rows.index else np.nan for m in methods]
            shown += [float(v) for v in values]
            errors = [
                rows.loc[m, f"{column}_std"] if m in rows.index and f"{column}_std" in rows.columns else 0
                for m in methods
            ]
            ax.bar(
                x + (s_index - (len(splits) - 1) / 2) * width,
                values,
                width,
                yerr=errors,
                capsize=2,
                color=PALETTE[s_index],
                label=split_name,
            )
        ax.set_title(title, fontsize=9)
        # An empty panel would look like a drawing error: say why it is empty.
        if np.all(np.isnan(shown)):
            ax.text(
                0.5,
                0.5,
                "undefined: no labeled detection\nof this class in the data",
                transform=ax.transAxes,
                **_NOTE_STYLE,
            )
        elif np.nanmax(shown) == 0:
            ax.text(0.5, 0.5, "0 for every method", transform=ax.transAxes, **_NOTE_STYLE)
        ax.set_xticks(x)
        ax.set_xticklabels(methods, rotation=40, ha="right", fontsize=7)
        ax.set_ylim(0, 1 if column != "brier" else max(1.0, float(np.nanmax(table[column])) * 1.1))
        ax.grid(True, axis="y", alpha=0.3)
    axes[0].legend(fontsize=7, loc="upper right")
    figure.suptitle(
        ("SYNTHETIC (mock catalog): " if synthetic else "")
        + "Validation of the methods on the same seeded 70/30 splits (mean ± std over seeds)"
    )
    return _finished(figure)


def reliability_figure(curves: Mapping[str, Mapping[str, ArrayLike]], synthetic: bool = False) -> Figure:
    """Reliability diagram: top-class confidence against accuracy, one line per method."""
    if not curves:
        raise ValueError("reliability diagram: no curves")
    figure = Figure(figsize=(6.5, 5.5), layout="constrained")
    ax = figure.subplots()
    ax.plot([0, 1], [0, 1], color="0.6", linestyle="--", linewidth=1, label="perfectly calibrated")
    for k, (name, curve) in enumerate(curves.items()):
        filled = np.asarray(curve["count"]) > 0
        colour, marker = _style(k)
        ax.plot(
            np.asarray(curve["confidence"])[filled],
            np.asarray(curve["accuracy"])[filled],
            color=colour,
            marker=marker,
            markersize=4,
            linewidth=1.2,
            label=name,
        )
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("confidence (top-class probability, bin mean)")
    ax.set_ylabel("accuracy in the bin")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    ax.set_title(
        ("SYNTHETIC (mock catalog): " if synthetic else "") + "Reliability of the ten-class probabilities", fontsize=10
    )
    return _finished(figure)


def _text_colour(rgba: ColorType | np.ndarray) -> str:
    """Black or white, whichever contrasts more with a cell colour (WCAG luminance)."""
    channels = np.asarray(rgba if isinstance(rgba, np.ndarray) else to_rgb(rgba), dtype=float)[:3]
    linear = np.where(channels <= 0.03928, channels / 12.92, ((channels + 0.055) / 1.055) ** 2.4)
    luminance = float(linear @ (0.2126, 0.7152, 0.0722))
    return "black" if luminance > 0.179 else "white"


def confusion_heatmap(matrix: ArrayLike | pd.DataFrame, labels: Sequence[str], title: str) -> Figure:
    """Figs. 4 and 5: annotated heat map of a row-normalized confusion matrix."""
    values = np.asarray(matrix.to_numpy() if isinstance(matrix, pd.DataFrame) else matrix, dtype=float)
    labels = list(labels)
    if values.shape != (len(labels), len(labels)):
        raise ValueError(f"confusion matrix of shape {values.shape} does not match {len(labels)} labels")
    totals = values.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        fractions = np.where(totals > 0, values / totals, np.nan)

    n = len(labels)
    side = max(4.5, 0.62 * n + 2.2)
    figure = Figure(figsize=(side + 1.2, side), layout="constrained")
    ax = figure.subplots()
    image = ax.imshow(np.ma.masked_invalid(fractions), cmap=MATRIX_CMAP, vmin=0, vmax=1)
    cmap = image.get_cmap()
    for i in range(n):
        for j in range(n):
            value = fractions[i, j]
            text = "–" if np.isnan(value) else f"{value:.2f}"
            colour = "black" if np.isnan(value) else _text_colour(cmap(image.norm(value)))
            ax.text(j, i, text, ha="center", va="center", color=colour, fontsize=9 if n <= 6 else 8)
    ax.set_xticks(range(n))
    ax.set_xticklabels(labels, rotation=45, ha="right")
    ax.set_yticks(range(n))
    ax.set_yticklabels(labels)
    ax.set_xlabel("Predicted class")
    ax.set_ylabel("True class")
    # Wrapped to the figure's width: a long title on the small 4-class matrix (Fig. 5)
    # would otherwise run past both edges.
    ax.set_title(textwrap.fill(title, width=max(30, int(7.5 * (side + 1.2)))), fontsize=10)
    figure.colorbar(image, ax=ax, label="Fraction of the true class", shrink=0.8)
    return _finished(figure)
