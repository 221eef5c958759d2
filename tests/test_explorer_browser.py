"""The explorer in a real headless Chromium (Debian's ``chromium``, driven by Playwright).

Every page is opened from ``file://`` with every other URL aborted, so these tests
also prove that the page needs no network. Screenshots go to ``test-artifacts/``
(ignored by git). The tests skip, saying so, only when no Chromium binary is found
(``.ci/run`` installs it; set ``XRAYCLASS_CHROMIUM`` to use another binary).
"""

import csv
import io
import json
import os
import shutil
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import run_script
from xrayclass.constants import AGGREGATE_CLASSES, CLASSES
from xrayclass.workflow.explorer import read_run, write_explorer

REPOSITORY = Path(__file__).resolve().parent.parent
ARTIFACTS = REPOSITORY / "test-artifacts"
MOCK_DETECTIONS = 3_000
MOCK_SEED = 7


def chromium_path():
    configured = os.environ.get("XRAYCLASS_CHROMIUM")
    for candidate in (configured, "/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


CHROMIUM = chromium_path()
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no Chromium found (/usr/bin/chromium; `apt-get install chromium`, as .ci/run does, "
    "or set XRAYCLASS_CHROMIUM): browser tests of the explorer skipped",
)

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-extensions",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    # WebGL (plotly scattergl) in software, as on a machine without a GPU.
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
]


@pytest.fixture(scope="module")
def browser():
    playwright_api = pytest.importorskip("playwright.sync_api")
    with playwright_api.sync_playwright() as runner:
        launched = runner.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


class Page:
    """A page opened offline, with its console errors and blocked requests recorded."""

    def __init__(self, browser, path, downloads, init_script=None, ready_timeout=180_000):
        self.context = browser.new_context(viewport={"width": 1400, "height": 1100}, accept_downloads=True)
        if init_script:
            self.context.add_init_script(init_script)
        self.page = self.context.new_page()
        self.errors = []
        self.blocked = []
        self.downloads = downloads
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        self.page.route("**/*", self._route)
        start = time.perf_counter()
        self.page.goto(path.resolve().as_uri())
        self.page.wait_for_selector("body[data-ready='1']", timeout=ready_timeout)
        self.load_seconds = time.perf_counter() - start

    def _route(self, route):
        if route.request.url.startswith("file:"):
            route.continue_()
        else:
            self.blocked.append(route.request.url)
            route.abort()

    def drawn(self, plot, meta="sources"):
        """Points drawn in a plot's traces of the given kind (read from the plot itself)."""
        return self.page.evaluate(
            "([id, meta]) => document.getElementById(id).data.filter(t => t.meta === meta)"
            ".reduce((n, t) => n + t.x.length, 0)",
            [plot, meta],
        )

    def download(self, button):
        with self.page.expect_download() as info:
            self.page.click(button)
        target = self.downloads / info.value.suggested_filename
        info.value.save_as(target)
        return target

    def screenshot(self, name):
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / name
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def close(self):
        self.context.close()


@pytest.fixture(scope="module")
def mock_run(tmp_path_factory):
    """A SYNTHETIC mock run (stages 1-4 on a small mock catalog) and its explorer."""
    from xrayclass.cli.run import run_stages
    from xrayclass.workflow.mock import write_mock

    directory = tmp_path_factory.mktemp("mock_run")
    write_mock(MOCK_DETECTIONS, MOCK_SEED, directory / "mock_cscresults.parquet", directory / "mock_simbad.parquet")
    assert run_stages(directory / "mock_cscresults.parquet", directory, catalog=directory / "mock_simbad.parquet") == 0
    write_explorer(read_run(directory), directory / "explorer.html")
    return directory


@pytest.fixture
def mock_page(browser, mock_run, tmp_path):
    opened = Page(browser, mock_run / "explorer.html", tmp_path)
    yield opened
    opened.close()


def test_mock_explorer_loads_offline_and_shows_every_source(mock_page, mock_run):
    uniquely = pd.read_csv(mock_run / "uniquely_classified.csv")
    ambiguous = pd.read_csv(mock_run / "ambiguous_classification.csv")
    page = mock_page
    assert page.drawn("sky") == len(uniquely)
    assert page.drawn("features") == len(uniquely)
    page.page.select_option("#set", "ambiguous")
    assert page.drawn("sky") == len(ambiguous)
    page.page.select_option("#set", "both")
    assert page.drawn("features") == len(uniquely) + len(ambiguous)
    assert "SYNTHETIC" in page.page.inner_text("#synthetic-banner")
    watermarks = page.page.evaluate(
        "['sky', 'features'].map(id => document.getElementById(id).layout.annotations.map(a => a.text).join())"
    )
    assert watermarks == ["SYNTHETIC", "SYNTHETIC"]
    page.screenshot("explorer_mock.png")
    assert page.errors == []
    assert page.blocked == []


def test_class_toggle_hides_exactly_that_class(mock_page, mock_run):
    uniquely = pd.read_csv(mock_run / "uniquely_classified.csv")
    first = AGGREGATE_CLASSES[0]
    expected = int((uniquely["agg_master_class"] != first).sum())
    mock_page.page.uncheck("#classes input[data-group='0']")
    assert mock_page.drawn("sky") == expected
    assert mock_page.drawn("features") == expected
    mock_page.page.select_option("#level", "class")
    # The detailed level starts with every class shown; hide the second class.
    mock_page.page.uncheck("#classes input[data-group='1']")
    second = CLASSES[1]
    assert mock_page.drawn("sky") == int((uniquely["master_class"] != second).sum())
    assert mock_page.errors == []


def test_search_opens_the_source_panel_with_its_detections(mock_page, mock_run):
    uniquely = pd.read_csv(mock_run / "uniquely_classified.csv")
    detections = pd.read_csv(mock_run / "detection_level_classification.csv", usecols=["name", "obsid"])
    source = uniquely.iloc[0]
    mock_page.page.fill("#search", source["name"].lower())
    mock_page.page.press("#search", "Enter")
    assert mock_page.page.inner_text("#panel-name").startswith(source["name"])
    rows = mock_page.page.locator("#detections table tbody tr").count()
    assert rows == int((detections["name"] == source["name"]).sum())
    assert mock_page.drawn("sky", "current") == 1
    for link in ("SIMBAD", "CSC", "Aladin"):
        assert mock_page.page.locator("#panel-body a", has_text=link).count() == 1
    assert mock_page.errors == []


def _box_select(page, plot):
    """Drag a selection box over the middle of a plot, as a user would."""
    box = page.page.locator(f"#{plot} .nsewdrag").first.bounding_box()
    x0, y0 = box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.3
    page.page.mouse.move(x0, y0)
    page.page.mouse.down()
    page.page.mouse.move(x0 + box["width"] * 0.2, y0 + box["height"] * 0.2, steps=8)
    page.page.mouse.move(x0 + box["width"] * 0.4, y0 + box["height"] * 0.4, steps=8)
    page.page.mouse.up()


def test_selection_in_the_feature_plot_is_linked_and_exported(mock_page):
    _box_select(mock_page, "features")
    mock_page.page.wait_for_function("explorer.state.selected && explorer.state.selected.size > 0")
    selected = mock_page.page.evaluate("explorer.state.selected.size")
    assert 0 < selected < mock_page.drawn("features")
    # Linked: the sky map outlines the same sources, the table lists them.
    assert mock_page.drawn("sky", "selected") == selected
    assert mock_page.page.inner_text("#table-note").startswith(f"{selected:,} rows (the selection)")
    exported = mock_page.download("#export-selection")
    rows = list(csv.DictReader(io.StringIO(exported.read_text())))
    assert len(rows) == selected
    names = set(mock_page.page.evaluate("[...explorer.state.selected].map(i => explorer.names[i])"))
    assert {row["name"] for row in rows} == names
    assert exported.name == "SYNTHETIC_sources.csv"
    mock_page.screenshot("explorer_mock_selection.png")
    assert mock_page.errors == []


def export_labels(page, labels):
    """Label sources in the panel, as a user would, and export labels.csv."""
    page.page.fill("#labeler", "pytest")
    for name, label, comment in labels:
        page.page.fill("#search", name)
        page.page.press("#search", "Enter")
        page.page.select_option("#label-class", label)
        page.page.fill("#label-comment", comment)
        page.page.click("#save-label")
    return page.download("#export-labels")


def test_labels_persist_and_export(mock_page, mock_run):
    uniquely = pd.read_csv(mock_run / "uniquely_classified.csv")
    chosen = [(uniquely["name"].iloc[0], "HMXB", "looks, like an HMXB"), (uniquely["name"].iloc[1], "other", "a star?")]
    exported = export_labels(mock_page, chosen)
    rows = list(csv.DictReader(io.StringIO(exported.read_text())))
    assert [r["name"] for r in rows] == sorted(name for name, _, _ in chosen)
    by_name = {r["name"]: r for r in rows}
    for name, label, comment in chosen:
        assert by_name[name]["class"] == label and by_name[name]["comment"] == comment
        assert by_name[name]["labeler"] == "pytest" and by_name[name]["time"]
    # Persisted in the browser: a reload keeps them.
    mock_page.page.reload()
    mock_page.page.wait_for_selector("body[data-ready='1']")
    assert mock_page.page.inner_text("#label-count").startswith("2 label")
    # "Label next" goes to the first unlabeled source of the queue: ambiguous ones first.
    mock_page.page.click("#label-next")
    assert mock_page.page.evaluate("explorer.state.current >= 0")
    if len(pd.read_csv(mock_run / "ambiguous_classification.csv")):
        assert "hard vote" in mock_page.page.inner_text("#panel-body")
    assert mock_page.errors == []


def test_published_tables_explorer_shows_all_sources(browser, reference_dir, tmp_path):
    uniquely_path = reference_dir / "paper_uniquely_classified.csv"
    ambiguous_path = reference_dir / "paper_ambiguous_classification.csv"
    if not uniquely_path.is_file() or not ambiguous_path.is_file():
        pytest.skip("published stage-4 tables absent from the reference directory")
    detections_path = reference_dir / "paper_detection_level_classification.csv"
    tables = read_run(tmp_path, uniquely_path, ambiguous_path, detections_path if detections_path.is_file() else None)
    tables.title = "Pérez-Díaz et al. 2024: published stage-4 tables"
    output = tmp_path / "explorer_paper.html"
    meta = write_explorer(tables, output)
    assert not meta["synthetic"] and not meta["sampled"]
    page = Page(browser, output, tmp_path)
    try:
        uniquely = pd.read_csv(uniquely_path)
        assert page.drawn("sky") == len(uniquely) == 8271
        assert page.drawn("features") == 8271
        page.page.select_option("#set", "ambiguous")
        assert page.drawn("sky") == len(pd.read_csv(ambiguous_path))
        page.page.select_option("#set", "unique")
        assert page.page.locator("#synthetic-banner").count() == 0
        page.screenshot("explorer_paper.png")
        print(f"published-tables explorer: {output.stat().st_size / 1e6:.1f} MB, loaded in {page.load_seconds:.1f} s")
        assert page.errors == [] and page.blocked == []
    finally:
        page.close()


def test_labels_exported_from_the_explorer_change_the_references(mock_page, mock_run, tmp_path):
    """The CLAXSON loop: label in the browser, export, classification.py --labels."""
    import json
    import re
    import subprocess
    import sys

    from xrayclass.io.labels import file_sha256

    crossmatch = pd.read_csv(mock_run / "cluster_csc_simbad.csv", usecols=["name", "main_type"], keep_default_na=False)
    uniquely = pd.read_csv(mock_run / "uniquely_classified.csv")
    multi = uniquely.loc[uniquely["detection_count"] > 1, "name"]
    as_class, as_other = multi.iloc[0], multi.iloc[1]
    exported = export_labels(mock_page, [(as_class, "HMXB", "own label"), (as_other, "other", "a foreground star")])
    n_class = int((crossmatch["name"] == as_class).sum())
    n_other = int((crossmatch["name"] == as_other).sum())

    def classify(*extra):
        out = tmp_path / f"run{len(extra)}"
        out.mkdir()
        done = subprocess.run(
            [
                sys.executable,
                str(REPOSITORY / "classification.py"),
                "--input",
                str(mock_run / "cluster_csc_simbad.csv"),
                "--output",
                str(out / "detections.csv"),
                "--model-output",
                str(out / "classifier.json"),
                "--outliers-output",
                str(out / "outliers.csv"),
                *extra,
            ],
            capture_output=True,
            text=True,
            cwd=REPOSITORY,
            timeout=600,
        )
        assert done.returncode == 0, done.stderr
        references = int(re.search(r"([\d,]+) references of the", done.stderr).group(1).replace(",", ""))
        return done.stderr, references, out

    _, before, _ = classify()
    log, after, out = classify("--labels", str(exported))
    assert (
        f"own labels: 2 sources labeled in {exported}; 2 of them found ({n_class + n_other} detections relabeled): "
        f"{n_class} new references" in log
    )
    assert after == before + n_class
    detections = pd.read_csv(out / "detections.csv", usecols=["name"])
    assert not detections["name"].isin([as_class, as_other]).any()
    document = json.loads((out / "classifier.json").read_text())
    assert document["own_labels"]["files"][0]["sha256"] == file_sha256(exported)
    assert document["own_labels"]["new_references"] == n_class


# -- data is never code (issue 22) ------------------------------------------------------------

#: Every injected handler below calls this function; the page under test must never run one.
INJECTED = "__xrayclassInjected"

#: A source name a spreadsheet would run as a formula from a CSV export.
FORMULA_NAME = '=HYPERLINK("https://example.invalid","open me")'

#: Source names that would run as code if the page treated data as HTML or as a template.
HOSTILE_NAMES = (
    f'"><img src=x onerror={INJECTED}("img-name")>',
    f"<svg onload={INJECTED}('svg-name')>",
    f"</script><script>{INJECTED}('script-name')</script>",
    "<!--<script>",
    f"{{{{7*7}}}} ${{{INJECTED}('template')}} ${{alert(1)}}",
    f"MOCK \u202eJ000000.0+000000 <b onmouseover={INJECTED}('rtl')>rtl</b>",
    "__proto__",
    FORMULA_NAME,
)
HOSTILE_TYPE = f"<img src=x onerror={INJECTED}('simbad-type')>"
HOSTILE_DRIVER = f"<svg onload={INJECTED}('driven-by')>"
HOSTILE_LABEL_CLASS = f"<img src=x onerror={INJECTED}('label-class')>"
HOSTILE_COMMENT = f"</script><!--<script>{INJECTED}('comment') <img src=x onerror={INJECTED}('comment')>"
HOSTILE_LABELER = f"{{{{7*7}}}}<svg onload={INJECTED}('labeler')>"


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory):
    """A SYNTHETIC mock run whose most-detected sources carry hostile names in every table,
    and whose stage-3 table carries hostile SIMBAD types and ``driven_by`` values."""
    from xrayclass.cli.run import run_stages
    from xrayclass.workflow.mock import write_mock

    directory = tmp_path_factory.mktemp("hostile_run")
    write_mock(800, MOCK_SEED, directory / "mock_cscresults.parquet", directory / "mock_simbad.parquet")
    assert run_stages(directory / "mock_cscresults.parquet", directory, catalog=directory / "mock_simbad.parquet") == 0
    uniquely = pd.read_csv(directory / "uniquely_classified.csv")
    most_detected = uniquely.sort_values(["detection_count", "name"], ascending=False)["name"].iloc[
        : len(HOSTILE_NAMES)
    ]
    renamed = dict(zip(most_detected, HOSTILE_NAMES, strict=True))
    for table_path in directory.glob("*.csv"):
        table = pd.read_csv(table_path, keep_default_na=False, low_memory=False)
        if "name" not in table or not table["name"].isin(most_detected).any():
            continue
        table["name"] = table["name"].replace(renamed)
        if table_path.name == "detection_level_classification.csv":
            hostile = table["name"].isin(HOSTILE_NAMES)
            table.loc[hostile, "simbad_main_type"] = HOSTILE_TYPE
            table.loc[hostile, "driven_by"] = HOSTILE_DRIVER
        table.to_csv(table_path, index=False)
    return directory


def hostile_page(made_by, run_dir):
    """The explorer of the hostile run as ``analysis.py explore`` or the report writes it."""
    if made_by == "explore":
        output = run_dir / "explorer_from_explore.html"
        done = run_script("analysis.py", "explore", "--run-dir", run_dir, "--output", output)
        assert done.returncode == 0, done.stderr
        return output
    from xrayclass.io.paths import RunLayout
    from xrayclass.workflow.report import Report, explorer_section

    report = Report("hostile")
    explorer_section(report, RunLayout(run_dir), synthetic=True)
    assert any(block[0] == "link" for block in report.blocks), report.blocks
    return RunLayout(run_dir).explorer


def hover_text(page, plot):
    """The hover label plotly shows with the mouse on the current source (the star)."""
    x, y = page.page.evaluate(
        """(id) => {
          const plot = document.getElementById(id), layout = plot._fullLayout;
          const star = plot.data.find((t) => t.meta === "current");
          const box = plot.querySelector(".nsewdrag").getBoundingClientRect();
          return [box.left + layout.xaxis.l2p(star.x[0]), box.top + layout.yaxis.l2p(star.y[0])];
        }""",
        plot,
    )
    page.page.mouse.move(1, 1)
    page.page.evaluate("(id) => Plotly.Fx.unhover(id)", plot)
    page.page.mouse.move(x, y)
    label = page.page.locator(f"#{plot} .hoverlayer .hovertext").first
    label.wait_for(timeout=5_000)
    return page.page.evaluate(
        "(id) => [...document.querySelectorAll(`#${id} .hoverlayer .hovertext`)].map((l) => l.textContent).join(' | ')",
        plot,
    )


def _init_script(labels):
    """Records any injected call or dialog; seeds this browser's labels (as a colleague's
    localStorage would hold them) before the page's own script runs."""
    return (
        f"window.{INJECTED} = (what) => {{ (window.__injectedCalls = window.__injectedCalls || []).push(String(what)); }};"
        "window.__injectedCalls = [];"
        f"localStorage.setItem('xrayclass.labels', {json.dumps(json.dumps(labels))});"
        f"localStorage.setItem('xrayclass.labels.labeler', {json.dumps(HOSTILE_LABELER)});"
    )


@pytest.mark.slow
@pytest.mark.parametrize("made_by", ["explore", "report"])
def test_hostile_data_is_shown_as_text_and_never_runs(browser, hostile_run, made_by, tmp_path):
    page_path = hostile_page(made_by, hostile_run)
    labels = {
        name: {"class": HOSTILE_LABEL_CLASS, "comment": HOSTILE_COMMENT, "labeler": HOSTILE_LABELER, "time": "x"}
        for name in HOSTILE_NAMES
    }
    # A page that never becomes ready fails here (the readiness wait times out).
    page = Page(browser, page_path, tmp_path, init_script=_init_script(labels), ready_timeout=60_000)
    dialogs = []
    page.page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    injected = "window.__injectedCalls"
    try:
        assert page.page.evaluate(injected) == []
        assert page.page.evaluate("explorer.names.length") == len(
            pd.read_csv(hostile_run / "uniquely_classified.csv")
        ) + len(pd.read_csv(hostile_run / "ambiguous_classification.csv"))
        table_names = page.page.locator("#table tbody tr td:first-child").all_text_contents()
        for name in HOSTILE_NAMES:
            assert name in table_names, name
            # Found by search and shown, as typed, in the source panel and its detections.
            page.page.fill("#search", name)
            page.page.press("#search", "Enter")
            assert page.page.text_content("#panel-name").startswith(name)
            cells = page.page.locator("#detections td").all_text_contents()
            assert HOSTILE_TYPE in cells and HOSTILE_DRIVER in cells
            assert page.page.input_value("#label-comment") == HOSTILE_COMMENT
            # The hover label of the current source (plotly draws hover text as HTML).
            hover = hover_text(page, "sky")
            assert hover is not None and name in hover, (name, hover)
        # The filter finds a hostile name as text.
        page.page.fill("#filter", "<svg")
        assert page.page.locator("#table tbody tr").count() == 1
        page.page.fill("#filter", "")
        # A hostile comment typed and saved, then the labels exported: the literal text.
        page.page.fill("#label-comment", HOSTILE_COMMENT + " (typed)")
        page.page.click("#save-label")
        page.screenshot(f"explorer_hostile_{made_by}.png")
        page.page.click("#label-next")
        exported = page.download("#export-labels")
        rows = list(csv.DictReader(io.StringIO(exported.read_text(encoding="utf-8"))))
        assert {row["name"] for row in rows} == set(HOSTILE_NAMES)
        assert {row["labeler"] for row in rows} == {HOSTILE_LABELER}
        # The formula-like name is exported as it is (classification.py --labels needs it
        # exact) and counted in a note beside each export button.
        formula_note = "1 text cell(s) begin like a spreadsheet formula"
        assert page.page.text_content("#labels-export-note").startswith(formula_note)
        page.download("#export-selection")
        assert page.page.text_content("#export-note").startswith(formula_note)
        # The policy lets plotly's WebGL work: it says so in place of the plot otherwise.
        assert "WebGL is not supported" not in page.page.inner_text("main")
        assert page.page.evaluate(injected) == []
        assert dialogs == []
        assert page.errors == []
    finally:
        page.close()
