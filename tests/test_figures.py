"""The paper's figures, drawn from a small SYNTHETIC run of the four stages (mock catalog)."""

import re
import subprocess
import sys
from pathlib import Path

import matplotlib.image
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from xrayclass.analysis import figures
from xrayclass.analysis.mock import generate
from xrayclass.constants import AGGREGATE_CLASS, AGGREGATE_CLASSES, CLASSES
from xrayclass.io.figures import DPI, save_figure, save_figures
from xrayclass.io.paths import FIGURES, SOURCE_FIGURE_STEM_MAX, density_figure, safe_stem, source_figure
from xrayclass.stages.classification import run_classification
from xrayclass.stages.clustering import cluster_detections
from xrayclass.stages.crossmatch import crossmatch_local
from xrayclass.stages.master_classification import master_classification


@pytest.fixture(scope="module")
def stages():
    """SYNTHETIC stage outputs: 3,000 mock detections through clustering, crossmatch,
    classification and master classes."""
    detections, simbad = (pd.concat(parts, ignore_index=True) for parts in zip(*generate(3000, 7), strict=False))
    clustered, _ = cluster_detections(detections, n_components=6)
    crossmatched = crossmatch_local(clustered, simbad, 1.0)
    classified, _ = run_classification(crossmatched)
    uniquely, _, _ = master_classification(classified)
    return {"clustered": crossmatched, "classified": classified, "uniquely": uniquely}


@pytest.fixture(scope="module")
def out_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("figures")


def panels(figure):
    """The figure's data axes, without its colour bars."""
    return [ax for ax in figure.axes if ax.get_label() != "<colorbar>"]


def colorbar_labels(figure):
    return [ax.get_ylabel() for ax in figure.axes if ax.get_label() == "<colorbar>"]


def mollweide_xy(ra, dec):
    """Plot coordinates of the sky maps, computed here with astropy: x = -l, y = b (radians)."""
    import astropy.units as u
    from astropy.coordinates import SkyCoord

    coordinates = SkyCoord(np.asarray(ra, float) * u.deg, np.asarray(dec, float) * u.deg).galactic
    return -coordinates.l.wrap_at(180 * u.deg).rad, coordinates.b.rad


def bar_heights(ax, label):
    """Heights of the bars of the container labelled ``label``."""
    (container,) = [c for c in ax.containers if c.get_label() == label]
    return np.array([patch.get_height() for patch in container.patches])


def pdf_page_size(path):
    """Width and height of the PDF's page, in points (1/72 inch)."""
    box = re.search(rb"/MediaBox\s*\[\s*0\s+0\s+([\d.]+)\s+([\d.]+)\s*\]", path.read_bytes())
    assert box, f"{path} has no MediaBox"
    return float(box.group(1)), float(box.group(2))


def check_written(paths, stem=None):
    """A PNG and a PDF exist, are non-empty, agree in size, and the PNG is not blank."""
    assert [p.suffix for p in paths] == [".png", ".pdf"]
    png, pdf = paths
    if stem is not None:
        assert png.stem == pdf.stem == stem
    for path in paths:
        assert path.is_file() and path.stat().st_size > 0
    assert pdf.read_bytes().startswith(b"%PDF")
    image = matplotlib.image.imread(png)
    width, height = pdf_page_size(pdf)
    expected = (round(height / 72 * DPI), round(width / 72 * DPI))
    assert image.shape[:2] == expected
    assert image[..., :3].var() > 0
    # Atomic writes leave no temporary file beside the figures.
    assert not [p for p in png.parent.iterdir() if ".tmp" in p.name]
    return image


def test_bic_figure(out_dir):
    k = np.arange(2, 21)
    mean = -1e5 * (1 - np.exp(-(k - 1) / 3)) + 500 * k
    table = pd.DataFrame({"k": k, "bic_mean": mean, "bic_std": 2000 / np.sqrt(k), "gradient": np.gradient(mean)})
    table.loc[table.index[-1], "gradient"] = np.nan
    figure = figures.bic_figure(table, chosen_k=6)
    image = check_written(save_figure(figure, out_dir, FIGURES["bic"]), "fig1_bic")
    assert image.shape[:2] == (6 * DPI, 7 * DPI)
    top, bottom = figure.axes
    assert top.get_ylabel() == "BIC (dimensionless)" and "information criterion" in top.get_title()
    assert bottom.get_xlabel() == "Number of mixture components K"
    mean_line = next(line for line in top.get_lines() if line.get_label() == "mean BIC")
    np.testing.assert_array_equal(mean_line.get_xdata(), k)
    np.testing.assert_array_equal(mean_line.get_ydata(), mean)
    gradient = next(line for line in bottom.get_lines() if line.get_label() == "gradient of the mean BIC")
    np.testing.assert_array_equal(gradient.get_ydata(), table["gradient"].to_numpy(float))
    for ax in (top, bottom):  # the chosen K is marked on both panels
        assert [line.get_xdata()[0] for line in ax.get_lines() if line.get_label() == "chosen K = 6"] == [6]


def test_bic_figure_requires_its_columns():
    with pytest.raises(ValueError, match="gradient"):
        figures.bic_figure(pd.DataFrame({"k": [2], "bic_mean": [1.0], "bic_std": [0.1]}))


def test_cluster_sky_map(stages, out_dir):
    clustered = stages["clustered"]
    figure = figures.cluster_sky_map(clustered)
    check_written(save_figure(figure, out_dir, FIGURES["cluster_sky_map"]), "fig2_cluster_sky_map")
    (ax,) = figure.axes
    counts = clustered["cluster"].value_counts().sort_index()
    # One scatter per cluster, with every detection of the cluster, labelled with its count.
    points = {collection.get_label(): len(collection.get_offsets()) for collection in ax.collections}
    assert points == {f"cluster {c} (n = {n:,})": n for c, n in counts.items()}
    # ... at the galactic position of each detection, l increasing to the left
    for cluster, n in counts.items():
        (collection,) = [c for c in ax.collections if c.get_label() == f"cluster {cluster} (n = {n:,})"]
        rows = clustered[clustered["cluster"] == cluster]
        np.testing.assert_allclose(collection.get_offsets(), np.column_stack(mollweide_xy(rows["ra"], rows["dec"])))
    assert ax.get_xlabel() == figures.LONGITUDE_LABEL and ax.get_ylabel() == figures.LATITUDE_LABEL
    assert "Mollweide" in figure.get_suptitle()


def test_hardness_by_cluster(stages, out_dir):
    clustered = stages["clustered"]
    figure = figures.hardness_by_cluster(clustered)
    check_written(save_figure(figure, out_dir, FIGURES["hardness_by_cluster"]), "fig3_hardness_by_cluster")
    axes = panels(figure)
    clusters = sorted(clustered["cluster"].unique())
    assert len(axes) == len(clusters)
    for ax, cluster in zip(axes, clusters, strict=True):
        rows = clustered[clustered["cluster"] == cluster]
        assert ax.get_title() == f"Cluster {cluster} (n = {len(rows):,})"
        (points,) = ax.collections
        np.testing.assert_array_equal(points.get_offsets(), rows[["hard_hm", "hard_hs"]].to_numpy())
        np.testing.assert_array_equal(points.get_array(), rows["var_prob_h"].to_numpy())  # the colour
    assert axes[0].get_ylabel() == figures.HARDNESS_LABELS["hard_hs"]
    assert axes[-1].get_xlabel() == figures.HARDNESS_LABELS["hard_hm"]
    assert colorbar_labels(figure) == ["var_prob_h, hard-band variability probability"]
    assert figure.get_suptitle() == "Hardness ratios of the detections in each cluster"


def smoothed_density(x, y, limits):
    """The 50 x 50 histogram smoothed by 1.5 bins and scaled to peak 1, computed here."""
    from scipy.ndimage import gaussian_filter

    edges = np.linspace(*limits, 51)
    counts = np.histogram2d(x, y, bins=(edges, edges))[0]
    density = gaussian_filter(counts, 1.5, mode="constant").T
    return density / density.max()


@pytest.mark.parametrize("kind, aggregated", [("hardness", True), ("variability", False), ("hardness", False)])
def test_class_density_maps(stages, out_dir, kind, aggregated):
    classified = stages["classified"]
    figure = figures.class_density_maps(classified, kind=kind, aggregated=aggregated)
    number = 6 if kind == "hardness" else 7
    stem = f"fig{number}_{kind}_density_{'aggregated' if aggregated else 'classes'}"
    assert density_figure(kind, aggregated) == stem
    check_written(save_figure(figure, out_dir, stem), stem)

    xcol, ycol, limits, xlabel, ylabel = figures.DENSITY_KINDS[kind]
    predicted = classified[classified["main_type"].isin(CLASSES)].dropna(subset=[xcol, ycol])
    family = predicted["main_type"].map(AGGREGATE_CLASS)
    groups = AGGREGATE_CLASSES if aggregated else CLASSES
    axes = panels(figure)
    assert len(axes) == len(groups)
    drawn_panels = 0
    for ax, group in zip(axes, groups, strict=True):
        rows = predicted[(family if aggregated else predicted["main_type"]) == group]
        assert ax.get_title().startswith(group) and ax.get_title().endswith(f"n = {len(rows):,}" + ")" * aggregated)
        if rows.empty:
            assert not ax.images and [t.get_text() for t in ax.texts] == ["no detections"]
            continue
        (image,) = ax.images
        expected = np.ma.masked_less(smoothed_density(rows[xcol], rows[ycol], limits), 0.01)
        np.testing.assert_allclose(image.get_array().filled(np.nan), expected.filled(np.nan), rtol=1e-12)
        assert tuple(image.get_extent()) == (*limits, *limits)
        drawn_panels += 1
        if not aggregated:  # the aggregated class's density as contours
            parent = predicted[family == AGGREGATE_CLASS[group]]
            (contours,) = [c for c in ax.collections if hasattr(c, "levels")]
            assert list(contours.levels) == [0.1, 0.3, 0.6] and len(parent) >= len(rows)
    assert drawn_panels > 1
    assert axes[-1].get_xlabel() == xlabel.split(",")[0] and axes[0].get_ylabel() == ylabel.split(",")[0]
    assert f"x: {xlabel}; y: {ylabel}" in figure.get_suptitle()
    assert colorbar_labels(figure) == ["density / panel peak (sqrt scale)"]


def test_class_density_maps_rejects_an_unknown_kind(stages):
    with pytest.raises(ValueError, match="hardness, variability"):
        figures.class_density_maps(stages["classified"], kind="spectra")


def test_class_sky_density(stages, out_dir):
    uniquely = stages["uniquely"]
    assert set(uniquely["agg_master_class"]) <= set(AGGREGATE_CLASSES)
    bins = (36, 18)
    figure = figures.class_sky_density(uniquely, bins=bins)
    check_written(save_figure(figure, out_dir, FIGURES["class_sky_density"]), "fig8_class_sky_density")
    axes = panels(figure)
    assert len(axes) == len(AGGREGATE_CLASSES)
    x_edges = np.linspace(-np.pi, np.pi, bins[0] + 1)
    y_edges = np.arcsin(np.linspace(-1, 1, bins[1] + 1))  # equal-area cells
    for ax, group in zip(axes, AGGREGATE_CLASSES, strict=True):
        rows = uniquely[uniquely["agg_master_class"] == group]
        x, y = mollweide_xy(rows["ra"], rows["dec"])
        counts = np.histogram2d(x, y, bins=(x_edges, y_edges))[0].T
        (mesh,) = ax.collections
        np.testing.assert_array_equal(mesh.get_array().filled(0).reshape(counts.shape), counts)
        assert ax.get_title() == f"{group} (n = {len(rows):,} sources)"
        assert ax.name == "mollweide"
    assert axes[2].get_xlabel() == "Galactic longitude l (deg)" and axes[0].get_ylabel() == "Galactic latitude b (deg)"
    (label,) = colorbar_labels(figure)
    assert label.startswith("sources per cell (equal-area cells of ")


def test_source_probability_plot(stages, out_dir):
    classified = stages["classified"]
    source = stages["uniquely"].iloc[0]  # the most detected source
    assert source["detection_count"] > 1
    figure = figures.source_probability_plot(classified, source["name"], master_class=source["master_class"])
    paths = save_figure(figure, out_dir, source_figure(source["name"]))
    check_written(paths, "fig10_" + source["name"].replace(" ", "_").replace("+", "p"))
    assert " " not in paths[0].name and "+" not in paths[0].name

    rows = classified[classified["name"] == source["name"]]
    probabilities = rows[list(CLASSES)].to_numpy(float)
    mean = probabilities.mean(axis=0)
    half = 1.96 * probabilities.std(axis=0, ddof=1) / np.sqrt(len(rows))
    ax, track = figure.axes
    assert [t.get_text() for t in ax.get_xticklabels()] == list(CLASSES)
    assert ax.get_xlabel() == "Class" and ax.get_ylabel() == "Class probability"
    (points,) = [c for c in ax.collections if c.get_label() == f"detections (n = {len(rows)})"]
    np.testing.assert_array_equal(points.get_offsets()[:, 1], probabilities.ravel())
    assert np.all(
        np.abs(points.get_offsets()[:, 0] - np.repeat([np.arange(len(CLASSES))], len(rows), 0).ravel()) < 0.13
    )
    (band,) = [c for c in ax.collections if c.get_label().startswith("95% confidence interval")]
    vertices = band.get_paths()[0].vertices
    np.testing.assert_allclose(vertices[1 : len(CLASSES) + 1, 1], np.clip(mean - half, 0, 1))
    (mean_line,) = [line for line in ax.get_lines() if line.get_label() == "mean probability"]
    np.testing.assert_allclose(mean_line.get_ydata(), mean)
    (square,) = [line for line in ax.get_lines() if line.get_label() == f"master class: {source['master_class']}"]
    best = CLASSES.index(source["master_class"])
    assert square.get_xdata()[0] == best and square.get_ydata()[0] == mean[best]
    assert ax.get_title().startswith(f"{source['name']}: master class {source['master_class']} (")
    # the right panel: each detection's naive Bayes track, and their mean
    track_columns = [c for c in rows.columns if c.startswith("track_")]
    assert track_columns and "not the Mahalanobis probabilities" in track.get_title()
    (track_mean,) = [line for line in track.get_lines() if line.get_label() == "mean"]
    np.testing.assert_allclose(track_mean.get_ydata(), np.nanmean(rows[track_columns].to_numpy(float), axis=0))
    assert len(track.get_lines()) == len(rows) + 1


def test_source_probability_plot_without_a_track_votes_softly(stages):
    classified = stages["classified"]
    classified = classified.drop(columns=[c for c in classified.columns if c.startswith("track_")])
    name = stages["uniquely"]["name"].iloc[1]
    (ax,) = figures.source_probability_plot(classified, name).axes
    mean = classified.loc[classified["name"] == name, list(CLASSES)].to_numpy(float).mean(axis=0)
    soft = CLASSES[int(np.argmax(mean))]
    (square,) = [line for line in ax.get_lines() if line.get_label() == f"soft vote: {soft}"]
    assert square.get_ydata()[0] == mean.max()


def test_source_probability_plot_names_an_absent_source(stages):
    with pytest.raises(ValueError, match=re.escape("'MOCK J000000.0+000000'")):
        figures.source_probability_plot(stages["classified"], "MOCK J000000.0+000000")
    name = stages["classified"]["name"].iloc[0]
    with pytest.raises(ValueError, match="Galaxy"):
        figures.source_probability_plot(stages["classified"], name, master_class="Galaxy")


def test_confusion_heatmap(stages, out_dir):
    classified = stages["classified"]
    scored = classified[classified["main_type"].isin(CLASSES)]
    counts = pd.crosstab(scored["true_class"].map(AGGREGATE_CLASS), scored["main_type"].map(AGGREGATE_CLASS))
    counts = counts.reindex(index=list(AGGREGATE_CLASSES), columns=list(AGGREGATE_CLASSES), fill_value=0)
    counts.loc["Seyfert"] = 0  # a true class without examples is drawn empty, not as NaN noise
    figure = figures.confusion_heatmap(counts, AGGREGATE_CLASSES, "Aggregated (mock)")
    check_written(save_figure(figure, out_dir, "fig5_test"), "fig5_test")
    (ax,) = panels(figure)
    (image,) = ax.images
    shown = image.get_array()
    expected = counts.div(counts.sum(axis=1), axis=0)
    np.testing.assert_allclose(shown[~shown.mask], expected.to_numpy()[~shown.mask])
    assert shown.mask[list(AGGREGATE_CLASSES).index("Seyfert")].all() and shown.mask.sum() == len(AGGREGATE_CLASSES)
    cell_text = [t.get_text() for t in ax.texts]
    assert cell_text == ["–" if np.isnan(v) else f"{v:.2f}" for v in expected.to_numpy().ravel()]
    assert [t.get_text() for t in ax.get_xticklabels()] == list(AGGREGATE_CLASSES)
    assert [t.get_text() for t in ax.get_yticklabels()] == list(AGGREGATE_CLASSES)
    assert ax.get_xlabel() == "Predicted class" and ax.get_ylabel() == "True class"
    assert ax.get_title() == "Aggregated (mock)" and colorbar_labels(figure) == ["Fraction of the true class"]
    with pytest.raises(ValueError, match="4 labels"):
        figures.confusion_heatmap(np.eye(3), AGGREGATE_CLASSES, "bad")


def method_table(seed=0, methods=("mahalanobis", "naive Bayes", "random forest")):
    """A SYNTHETIC table in the shape of validation.compare_methods (values drawn at random)."""
    rng = np.random.default_rng(seed)
    rows = []
    for method in methods:
        for level, labels in (("classes", CLASSES), ("aggregated", AGGREGATE_CLASSES)):
            row = {"method": method, "level": level}
            for column in ("accuracy", "macro_f1", "brier", "ece"):
                row[column], row[f"{column}_std"] = rng.uniform(0, 1), rng.uniform(0, 0.05)
            row.update({f"f1_{label}": rng.uniform(0, 1) for label in labels})
            if level == "aggregated":
                row.update({f"diag_{label}": rng.uniform(0, 1) for label in AGGREGATE_CLASSES})
                row.update({f"diag_{label}_std": rng.uniform(0, 0.05) for label in AGGREGATE_CLASSES})
            rows.append(row)
    return pd.DataFrame(rows)


def test_method_comparison_figure(out_dir):
    table = method_table()
    figure = figures.method_comparison_figure(table)
    check_written(save_figure(figure, out_dir, FIGURES["method_comparison"]), "fig_method_comparison")
    axes = panels(figure)
    assert [ax.get_title() for ax in axes] == ["Ten classes", "Aggregated classes"]
    for ax, level, labels in zip(axes, ("classes", "aggregated"), (CLASSES, AGGREGATE_CLASSES), strict=True):
        assert [t.get_text() for t in ax.get_xticklabels()] == list(labels)
        assert ax.get_ylabel() == "F1 (mean over splits)"
        for _, row in table[table["level"] == level].iterrows():
            label = f"{row['method']} (macro F1 {row['macro_f1']:.2f})"
            np.testing.assert_array_equal(bar_heights(ax, label), [row[f"f1_{c}"] for c in labels])
        assert len(ax.containers) == table["method"].nunique()


@pytest.mark.parametrize("synthetic", [False, True])
def test_comparison_figure(out_dir, synthetic):
    table = pd.concat(
        [method_table(1).assign(split="by source"), method_table(2).assign(split="by detection")], ignore_index=True
    )
    stem = f"fig_splits_{synthetic}"
    figure = figures.comparison_figure(table, synthetic=synthetic)
    check_written(save_figure(figure, out_dir, stem), stem)
    axes = panels(figure)
    assert [ax.get_title() for ax in axes] == [title for _, _, title in figures.COMPARISON_PANELS]
    methods = list(dict.fromkeys(table["method"]))
    for ax in axes[-4:]:  # the method names under the lowest row (the panels share x)
        assert [t.get_text() for t in ax.get_xticklabels()] == methods
    for ax, (level, column, _) in zip(axes, figures.COMPARISON_PANELS, strict=True):
        for split in ("by source", "by detection"):
            rows = table[(table["split"] == split) & (table["level"] == level)].set_index("method")
            np.testing.assert_array_equal(bar_heights(ax, split), rows.loc[methods, column])
            (container,) = [c for c in ax.containers if c.get_label() == split]
            error_segments = container.errorbar.lines[2][0].get_segments()
            np.testing.assert_allclose(
                [np.ptp(segment[:, 1]) / 2 for segment in error_segments], rows.loc[methods, f"{column}_std"]
            )
    assert figure.get_suptitle().startswith("SYNTHETIC (mock catalog): ") == synthetic


@pytest.mark.parametrize("synthetic", [False, True])
def test_reliability_figure(out_dir, synthetic):
    from xrayclass.core.calibration import reliability_curve

    rng = np.random.default_rng(3)
    curves = {}
    for name, sharpness in (("sharp", 4.0), ("flat", 0.5)):
        logits = rng.normal(size=(400, len(CLASSES))) * sharpness
        probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        truth = (probabilities.cumsum(axis=1) < rng.uniform(size=(400, 1))).sum(axis=1).clip(max=len(CLASSES) - 1)
        curves[name] = reliability_curve(probabilities, truth)
    stem = f"fig_reliability_{synthetic}"
    figure = figures.reliability_figure(curves, synthetic=synthetic)
    check_written(save_figure(figure, out_dir, stem), stem)
    (ax,) = panels(figure)
    lines = {line.get_label(): line for line in ax.get_lines()}
    np.testing.assert_array_equal(lines["perfectly calibrated"].get_xydata(), [[0, 0], [1, 1]])
    for name, curve in curves.items():
        filled = np.asarray(curve["count"]) > 0
        np.testing.assert_array_equal(lines[name].get_xdata(), np.asarray(curve["confidence"])[filled])
        np.testing.assert_array_equal(lines[name].get_ydata(), np.asarray(curve["accuracy"])[filled])
    assert ax.get_xlabel().startswith("confidence") and ax.get_ylabel() == "accuracy in the bin"
    assert ax.get_title().startswith("SYNTHETIC (mock catalog): ") == synthetic
    with pytest.raises(ValueError, match="no curves"):
        figures.reliability_figure({})


def test_cell_text_contrasts_with_the_cell():
    assert figures._text_colour((0.0, 0.13, 0.3, 1.0)) == "white"  # dark blue
    assert figures._text_colour((1.0, 0.9, 0.2, 1.0)) == "black"  # yellow


def test_safe_stem_keeps_signs_apart():
    assert safe_stem("2CXO J004231.1+411621") == "2CXO_J004231.1p411621"
    assert safe_stem("2CXO J004231.1-411621") == "2CXO_J004231.1-411621"
    assert safe_stem("a/b\\c d") == "a_b_c_d"


def test_galactic_centre_is_at_the_origin():
    longitude, latitude = figures.galactic([266.40499], [-28.93617])
    assert abs(longitude[0]) < 0.01 and abs(latitude[0]) < 0.01
    longitude, _ = figures.galactic([0.0, 180.0], [0.0, 0.0])
    assert ((longitude >= -180) & (longitude < 180)).all()


def test_a_failed_save_leaves_no_file(tmp_path):
    figure = Figure()
    figure.subplots().plot([0, 1])

    def fail(*args, **kwargs):
        raise RuntimeError("disk full")

    figure.savefig = fail
    with pytest.raises(RuntimeError, match="disk full"):
        save_figure(figure, tmp_path, "broken")
    assert list(tmp_path.iterdir()) == []


def test_the_module_does_not_use_pyplot():
    """Figures are plain Figure objects: importing the module starts no pyplot state."""
    code = "import sys, xrayclass.analysis.figures; assert 'matplotlib.pyplot' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(figures.__file__).parents[2])


def test_an_empty_table_is_refused_clearly(stages):
    empty = stages["clustered"].iloc[:0]
    for draw in (figures.cluster_sky_map, figures.hardness_by_cluster):
        with pytest.raises(ValueError, match="no rows"):
            draw(empty)


def test_figures_of_synthetic_runs_are_marked(tmp_path):
    """Inside synthetic_marking every figure drawn carries the SYNTHETIC mark; outside, none."""
    from xrayclass.analysis.figures import synthetic_marking

    def texts(figure):
        return [t.get_text() for t in figure.texts]

    table = method_table()
    plain = figures.method_comparison_figure(table)
    save_figure(plain, tmp_path, "plain")
    assert "SYNTHETIC" not in texts(plain)
    with synthetic_marking(True):
        marked = figures.method_comparison_figure(table)
    save_figure(marked, tmp_path, "marked")
    assert "SYNTHETIC" in texts(marked)
    assert "SYNTHETIC" not in texts(figures.method_comparison_figure(table))
    assert (tmp_path / "marked.png").read_bytes() != (tmp_path / "plain.png").read_bytes()


def test_comparison_figure_says_why_a_panel_is_empty():
    table = pd.concat(
        [method_table(1).assign(split="by source"), method_table(2).assign(split="by detection")], ignore_index=True
    )
    columns = [column for _, column, _ in figures.COMPARISON_PANELS]
    undefined, zero = columns[5], columns[4]  # YSO and XB diagonals, as on the real sample
    table[undefined], table[zero] = np.nan, 0.0
    figure = figures.comparison_figure(table)
    notes = {
        column: [t.get_text() for t in ax.texts]
        for ax, (_, column, _) in zip(panels(figure), figures.COMPARISON_PANELS, strict=True)
    }
    assert notes[undefined] == ["undefined: no labeled detection\nof this class in the data"]
    assert notes[zero] == ["0 for every method"]
    assert all(notes[column] == [] for column in columns if column not in (undefined, zero))


#: Source names that matplotlib would read as mathtext, or that are too long for a title line
#: or a file name (issue 22).
AWKWARD_NAMES = {
    "mathtext": r"2CXO $\frac{a$ J1 $x^$",
    "300 characters": "2CXO J" + "".join(f"{k:03d}$" for k in range(73))[:294],
    "300 characters, spaced": " ".join(["$\\alpha$ name"] * 22)[:300],
}


@pytest.mark.parametrize("name", AWKWARD_NAMES.values(), ids=AWKWARD_NAMES.keys())
def test_source_names_and_drivers_are_drawn_as_plain_text(stages, tmp_path, name):
    classified = stages["classified"].copy()
    source = stages["uniquely"].iloc[0]
    assert len(name) >= 22 and "$" in name
    rows = classified["name"] == source["name"]
    classified.loc[rows, "name"] = name
    classified.loc[rows, "driven_by"] = r"$\frac{spectrum$"
    figure = figures.source_probability_plot(classified, name, master_class=source["master_class"])
    paths = save_figure(figure, tmp_path, source_figure(name))  # drawn: mathtext would raise here
    assert [p.suffix for p in paths] == [".png", ".pdf"] and all(p.stat().st_size > 0 for p in paths)
    ax, track = figure.axes
    # The whole name, as written (wrapped at spaces or inside long words, never cut here).
    assert "".join(name.split()) in "".join(ax.get_title().split())
    assert max(len(line) for line in ax.get_title().splitlines()) <= figures.TITLE_NAME_WIDTH + 50
    assert "driven_by: $\\frac{spectrum$" in track.get_title()
    assert not ax.title.get_parse_math() and not track.title.get_parse_math()


def test_a_long_name_gives_a_short_file_name_of_its_own():
    first, second = "2CXO J" + "1" * 300, "2CXO J" + "1" * 299 + "2"
    assert len(source_figure(first)) <= SOURCE_FIGURE_STEM_MAX
    assert source_figure(first) != source_figure(second)
    assert source_figure("2CXO J053516.0-052353") == "fig10_2CXO_J053516.0-052353"


def test_figures_are_written_all_or_none(tmp_path):
    def drawn():
        figure = Figure()
        figure.subplots().plot([0, 1])
        yield figure, "first"
        raise ValueError("the second figure cannot be drawn")

    with pytest.raises(ValueError, match="second figure"):
        save_figures(drawn(), tmp_path / "figures")
    assert not (tmp_path / "figures").exists()
