"""The paper's figures, drawn from a small SYNTHETIC run of the four stages (mock catalog)."""

import re
import subprocess
import sys

import matplotlib.image
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from xrayclass.analysis import figures
from xrayclass.analysis.mock import generate
from xrayclass.constants import AGGREGATE_CLASS, AGGREGATE_CLASSES, CLASSES
from xrayclass.core.positional import crossmatch_local
from xrayclass.stages.classification import classify_detections
from xrayclass.stages.clustering import cluster_detections
from xrayclass.stages.master_classification import master_classification


@pytest.fixture(scope="module")
def stages():
    """SYNTHETIC stage outputs: 3,000 mock detections through clustering, crossmatch,
    classification and master classes."""
    detections, simbad = (pd.concat(parts, ignore_index=True) for parts in zip(*generate(3000, 7), strict=False))
    clustered, _ = cluster_detections(detections, n_components=6)
    crossmatched = crossmatch_local(clustered, simbad, 1.0)
    classified, _ = classify_detections(crossmatched)
    uniquely, _, _ = master_classification(classified)
    return {"clustered": crossmatched, "classified": classified, "uniquely": uniquely}


@pytest.fixture(scope="module")
def out_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("figures")


@pytest.fixture
def drawn(monkeypatch):
    """The figures saved during the test, in order: what is drawn can be checked, not only
    that files exist. save_figure still runs (and writes the files)."""
    saved = []
    original = figures.save_figure

    def keep(figure, out_dir, stem):
        saved.append(figure)
        return original(figure, out_dir, stem)

    monkeypatch.setattr(figures, "save_figure", keep)
    return saved


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
    expected = (round(height / 72 * figures.DPI), round(width / 72 * figures.DPI))
    assert image.shape[:2] == expected
    assert image[..., :3].var() > 0
    # Atomic writes leave no temporary file beside the figures.
    assert not [p for p in png.parent.iterdir() if ".tmp" in p.name]
    return image


def test_bic_figure(out_dir, drawn):
    k = np.arange(2, 21)
    mean = -1e5 * (1 - np.exp(-(k - 1) / 3)) + 500 * k
    table = pd.DataFrame({"k": k, "bic_mean": mean, "bic_std": 2000 / np.sqrt(k), "gradient": np.gradient(mean)})
    table.loc[table.index[-1], "gradient"] = np.nan
    image = check_written(figures.bic_figure(table, out_dir, chosen_k=6), "fig1_bic")
    assert image.shape[:2] == (6 * figures.DPI, 7 * figures.DPI)
    top, bottom = drawn[0].axes
    assert top.get_ylabel() == "BIC (dimensionless)" and "information criterion" in top.get_title()
    assert bottom.get_xlabel() == "Number of mixture components K"
    mean_line = next(line for line in top.get_lines() if line.get_label() == "mean BIC")
    np.testing.assert_array_equal(mean_line.get_xdata(), k)
    np.testing.assert_array_equal(mean_line.get_ydata(), mean)
    gradient = next(line for line in bottom.get_lines() if line.get_label() == "gradient of the mean BIC")
    np.testing.assert_array_equal(gradient.get_ydata(), table["gradient"].to_numpy(float))
    for ax in (top, bottom):  # the chosen K is marked on both panels
        assert [line.get_xdata()[0] for line in ax.get_lines() if line.get_label() == "chosen K = 6"] == [6]


def test_bic_figure_requires_its_columns(out_dir):
    with pytest.raises(ValueError, match="gradient"):
        figures.bic_figure(pd.DataFrame({"k": [2], "bic_mean": [1.0], "bic_std": [0.1]}), out_dir)


def test_cluster_sky_map(stages, out_dir, drawn):
    check_written(figures.cluster_sky_map(stages["clustered"], out_dir), "fig2_cluster_sky_map")
    (ax,) = drawn[0].axes
    counts = stages["clustered"]["cluster"].value_counts().sort_index()
    # One scatter per cluster, with every detection of the cluster, labelled with its count.
    points = {collection.get_label(): len(collection.get_offsets()) for collection in ax.collections}
    assert points == {f"cluster {c} (n = {n:,})": n for c, n in counts.items()}
    assert "Mollweide" in drawn[0].get_suptitle()


def test_hardness_by_cluster(stages, out_dir):
    check_written(figures.hardness_by_cluster(stages["clustered"], out_dir), "fig3_hardness_by_cluster")


@pytest.mark.parametrize("kind, aggregated", [("hardness", True), ("variability", False)])
def test_class_density_maps(stages, out_dir, kind, aggregated):
    paths = figures.class_density_maps(stages["classified"], out_dir, kind=kind, aggregated=aggregated)
    number = 6 if kind == "hardness" else 7
    check_written(paths, f"fig{number}_{kind}_density_{'aggregated' if aggregated else 'classes'}")


def test_class_density_maps_rejects_an_unknown_kind(stages, out_dir):
    with pytest.raises(ValueError, match="hardness, variability"):
        figures.class_density_maps(stages["classified"], out_dir, kind="spectra")


def test_class_sky_density(stages, out_dir):
    assert set(stages["uniquely"]["agg_master_class"]) <= set(AGGREGATE_CLASSES)
    check_written(figures.class_sky_density(stages["uniquely"], out_dir), "fig8_class_sky_density")


def test_source_probability_plot(stages, out_dir):
    source = stages["uniquely"].iloc[0]  # the most detected source
    assert source["detection_count"] > 1
    paths = figures.source_probability_plot(
        stages["classified"], source["name"], out_dir, master_class=source["master_class"]
    )
    check_written(paths, "fig10_" + source["name"].replace(" ", "_").replace("+", "p"))
    assert " " not in paths[0].name and "+" not in paths[0].name


def test_source_probability_plot_names_an_absent_source(stages, out_dir):
    with pytest.raises(ValueError, match=re.escape("'MOCK J000000.0+000000'")):
        figures.source_probability_plot(stages["classified"], "MOCK J000000.0+000000", out_dir)
    name = stages["classified"]["name"].iloc[0]
    with pytest.raises(ValueError, match="Galaxy"):
        figures.source_probability_plot(stages["classified"], name, out_dir, master_class="Galaxy")


def test_confusion_heatmap(stages, out_dir):
    classified = stages["classified"]
    scored = classified[classified["main_type"].isin(CLASSES)]
    counts = pd.crosstab(scored["true_class"].map(AGGREGATE_CLASS), scored["main_type"].map(AGGREGATE_CLASS))
    counts = counts.reindex(index=list(AGGREGATE_CLASSES), columns=list(AGGREGATE_CLASSES), fill_value=0)
    counts.loc["Seyfert"] = 0  # a true class without examples is drawn empty, not as NaN noise
    check_written(
        figures.confusion_heatmap(counts, AGGREGATE_CLASSES, out_dir, "fig5_test", "Aggregated (mock)"), "fig5_test"
    )
    with pytest.raises(ValueError, match="4 labels"):
        figures.confusion_heatmap(np.eye(3), AGGREGATE_CLASSES, out_dir, "bad", "bad")


def test_cell_text_contrasts_with_the_cell():
    assert figures._text_colour((0.0, 0.13, 0.3, 1.0)) == "white"  # dark blue
    assert figures._text_colour((1.0, 0.9, 0.2, 1.0)) == "black"  # yellow


def test_safe_stem_keeps_signs_apart():
    assert figures.safe_stem("2CXO J004231.1+411621") == "2CXO_J004231.1p411621"
    assert figures.safe_stem("2CXO J004231.1-411621") == "2CXO_J004231.1-411621"
    assert figures.safe_stem("a/b\\c d") == "a_b_c_d"


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
        figures.save_figure(figure, tmp_path, "broken")
    assert list(tmp_path.iterdir()) == []


def test_the_module_does_not_use_pyplot():
    """Figures are plain Figure objects: importing the module starts no pyplot state."""
    code = "import sys, xrayclass.analysis.figures; assert 'matplotlib.pyplot' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=figures.Path(figures.__file__).parents[2])


def test_an_empty_table_is_refused_clearly(stages, out_dir):
    empty = stages["clustered"].iloc[:0]
    for draw in (figures.cluster_sky_map, figures.hardness_by_cluster):
        with pytest.raises(ValueError, match="no rows"):
            draw(empty, out_dir)


def test_figures_of_synthetic_runs_are_marked(tmp_path):
    """Inside synthetic_marking every saved figure carries the SYNTHETIC mark; outside, none."""
    from matplotlib.figure import Figure

    from xrayclass.analysis.figures import save_figure, synthetic_marking

    def texts(figure):
        return [t.get_text() for t in figure.texts]

    plain = Figure()
    plain.subplots().plot([0, 1])
    save_figure(plain, tmp_path, "plain")
    assert "SYNTHETIC" not in texts(plain)
    marked = Figure()
    marked.subplots().plot([0, 1])
    with synthetic_marking(True):
        save_figure(marked, tmp_path, "marked")
    assert "SYNTHETIC" in texts(marked)
    assert (tmp_path / "marked.png").read_bytes() != (tmp_path / "plain.png").read_bytes()
