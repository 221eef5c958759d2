"""The explorer's data preparation (xrayclass.analysis.explore) and ``analysis.py explore``, without a browser.

Tables here are SYNTHETIC (made in the tests, nothing real); the browser behaviour is
tested in test_explorer_browser.py.
"""

import base64
import hashlib
import html
import json
import re

import numpy as np
import pandas as pd

from tests.conftest import run_script
from xrayclass.analysis.explore import (
    RunTables,
    build_payload,
    label_next_order,
    mollweide,
    parse_mean_std,
    render,
)
from xrayclass.constants import AGGREGATE_CLASS, CLASSES, FEATURES
from xrayclass.workflow.explorer import run_is_synthetic


def synthetic_sources(n, seed=0, prefix="MOCK J"):
    rng = np.random.default_rng(seed)
    probabilities = rng.dirichlet(np.ones(len(CLASSES)), n)
    master = np.asarray(CLASSES)[probabilities.argmax(axis=1)]
    table = pd.DataFrame(
        {
            "name": [f"{prefix}{i:06d}" for i in range(n)],
            "agg_master_class": [AGGREGATE_CLASS[c] for c in master],
            "master_class": master,
            "detection_count": rng.integers(1, 5, n),
        }
    )
    for k, name in enumerate(CLASSES):
        table[name] = [f"{p:.3f}±{s:.3f}" for p, s in zip(probabilities[:, k], probabilities[:, k] / 4, strict=False)]
    table["ra"] = rng.uniform(0, 360, n)
    table["dec"] = rng.uniform(-89, 89, n)
    for feature in FEATURES:
        table[feature] = rng.normal(size=n)
    return table


def decode(column):
    return np.frombuffer(base64.b64decode(column["b64"]), dtype=np.dtype(column["dtype"]).newbyteorder("<"))


def test_mollweide_known_points():
    x, y = mollweide(np.array([0.0, 90.0, 0.0, 0.0, 180.0 - 1e-9]), np.array([0.0, 0.0, 90.0, -90.0, 0.0]))
    np.testing.assert_allclose(x, [0, -np.sqrt(2), 0, 0, -2 * np.sqrt(2)], atol=1e-8)
    np.testing.assert_allclose(y, [0, 0, np.sqrt(2), -np.sqrt(2), 0], atol=1e-12)
    # Equal-area: the auxiliary angle solves 2t + sin 2t = pi sin(lat).
    lat = np.linspace(-89, 89, 50)
    _, y = mollweide(np.zeros_like(lat), lat)
    theta = np.arcsin(y / np.sqrt(2))
    np.testing.assert_allclose(2 * theta + np.sin(2 * theta), np.pi * np.sin(np.radians(lat)), atol=1e-10)


def test_mean_std_strings_are_parsed():
    mean, std = parse_mean_std(pd.Series(["0.057±0.136", "1.0±0.0", "nan±nan"], name="QSO"))
    np.testing.assert_array_equal(mean[:2], [0.057, 1.0])
    np.testing.assert_array_equal(std[:2], [0.136, 0.0])
    assert np.isnan(mean[2])


def test_label_next_puts_uncertain_ambiguous_sources_first_then_outliers():
    ambiguous = np.array([False, True, False, True])
    probabilities = np.array([[1.0, 0.0], [0.9, 0.1], [0.5, 0.5], [0.5, 0.5]])
    outlier = np.array([99.0, np.nan, 50.0, 10.0])
    assert label_next_order(ambiguous, probabilities, outlier).tolist() == [3, 1, 0, 2]


def test_payload_holds_every_source_below_the_cap():
    uniquely, ambiguous = synthetic_sources(50), synthetic_sources(7, seed=1, prefix="MOCK K")
    ambiguous = ambiguous.rename(columns={"master_class": "hard_master_class"}).drop(columns="agg_master_class")
    ambiguous["soft_master_class"] = "YSO"
    payload = build_payload(RunTables(uniquely, ambiguous, synthetic=True))
    meta = payload["meta"]
    assert (meta["n_total"], meta["n_shown"], meta["sampled"]) == (57, 57, False)
    assert payload["names"][:50] == uniquely["name"].tolist()
    assert decode(payload["columns"]["ambiguous"]).sum() == 7
    np.testing.assert_array_equal(
        decode(payload["columns"]["pm0"])[:50], np.round(parse_mean_std(uniquely["QSO"])[0] * 1000).astype(int)
    )
    assert decode(payload["columns"]["soft"])[50:].tolist() == [CLASSES.index("YSO")] * 7
    assert payload["density"] is None


def test_payload_samples_above_the_cap_with_a_density_of_all():
    payload = build_payload(RunTables(synthetic_sources(500)), max_sources=100, seed=3)
    assert (payload["meta"]["n_total"], payload["meta"]["n_shown"], payload["meta"]["sampled"]) == (500, 100, True)
    assert decode(payload["density"]["eq"]["z"]).sum() == 500
    again = build_payload(RunTables(synthetic_sources(500)), max_sources=100, seed=3)
    assert again["names"] == payload["names"]


def test_page_needs_no_network():
    page = render(build_payload(RunTables(synthetic_sources(20), synthetic=True)))
    assert not re.search(r"<script[^>]+src=", page)
    assert not re.search(r"<link[^>]+href=", page)
    data = re.search(r'<script type="application/json" id="payload">(.*?)</script>', page, re.S).group(1)
    assert json.loads(data)["meta"]["synthetic"] is True


def test_the_same_tables_give_the_same_page(monkeypatch):
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    first = render(build_payload(RunTables(synthetic_sources(30), synthetic=True)))
    assert first == render(build_payload(RunTables(synthetic_sources(30), synthetic=True)))
    fingerprint = re.search(r"from data sha256 ([0-9a-f]{12})<", first).group(1)
    other = render(build_payload(RunTables(synthetic_sources(30, seed=1), synthetic=True)))
    assert fingerprint not in other
    # A date only when asked for, the reproducible-builds way.
    assert not re.search(r"made \d{4}-", first)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    dated = render(build_payload(RunTables(synthetic_sources(30), synthetic=True)))
    assert "made 2023-11-14 22:13 UTC with xrayclass" in dated


def test_mock_runs_are_recognized(tmp_path):
    assert run_is_synthetic(None, pd.Series(["MOCK J000001.0+000000"]))
    assert not run_is_synthetic(tmp_path, pd.Series(["2CXO J000010.0-501526"]))
    (tmp_path / "mock_cscresults.parquet.provenance.json").write_text('{"note": "SYNTHETIC mock catalog"}')
    assert run_is_synthetic(tmp_path, pd.Series(["2CXO J000010.0-501526"]))


def test_explore_command_writes_one_html_file(tmp_path):
    synthetic_sources(30).to_csv(tmp_path / "uniquely_classified.csv", index=False)
    done = run_script("analysis.py", "explore", "--run-dir", tmp_path)
    assert done.returncode == 0, done.stderr
    assert "30 sources, SYNTHETIC" in done.stdout
    assert (tmp_path / "explorer.html").stat().st_size > 1_000_000  # plotly.js is inlined
    bad = run_script("analysis.py", "explore", "--run-dir", tmp_path, "--output", tmp_path / "explorer.txt")
    assert bad.returncode == 2 and "explorer.txt" in bad.stderr and not (tmp_path / "explorer.txt").exists()
    missing = run_script("analysis.py", "explore", "--run-dir", tmp_path / "nowhere")
    assert missing.returncode == 2 and "file not found" in missing.stderr


HOSTILE = "</script><!--<script>alert(1)</script>\u2028\u2029&amp;'\"{{7*7}}${alert(1)}\u202e"


def test_data_cannot_leave_the_json_element():
    """Issue 22: a name that closes the script element or opens a comment in it stays data."""
    uniquely = synthetic_sources(5)
    uniquely.loc[0, "name"] = HOSTILE
    page = render(build_payload(RunTables(uniquely, synthetic=True)))
    data = re.search(r'<script type="application/json" id="payload">(.*?)</script>', page, re.S).group(1)
    # No markup character in the element at all (each is a \u escape), nor a line separator.
    assert not set(data) & set("<>&\u2028\u2029")
    assert json.loads(data)["names"][0] == HOSTILE


def inline_scripts(page):
    return re.findall(r"<script>(.*?)</script>", page, re.S)


def test_the_page_declares_a_policy_allowing_only_its_own_scripts():
    page = render(build_payload(RunTables(synthetic_sources(20), synthetic=True)))
    policy = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]*)">', page).group(1)
    policy = html.unescape(policy)
    assert page.index("Content-Security-Policy") < page.index("<script")
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["default-src"] == "'none'"
    scripts = directives["script-src"].split()
    assert "'unsafe-inline'" not in scripts and "*" not in scripts and "https:" not in scripts
    found = inline_scripts(page)
    assert len(found) == 2  # plotly.js and the page's own (the data are not a script)
    for text in found:
        digest = base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in scripts
    assert len([s for s in scripts if s.startswith("'sha256-")]) == len(found)
    # The page's script builds its elements and writes values as text; never as HTML.
    assert not re.search(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write", found[1])


def test_a_run_without_ambiguous_sources_has_an_explorer(tmp_path):
    """Stage 4 writes an ambiguous table with its header and no rows when no source is ambiguous."""
    synthetic_sources(10).to_csv(tmp_path / "uniquely_classified.csv", index=False)
    header = "name,hard_master_class,soft_master_class,detection_count,ra,dec," + ",".join(CLASSES)
    (tmp_path / "ambiguous_classification.csv").write_text(header + "\n")
    done = run_script("analysis.py", "explore", "--run-dir", tmp_path)
    assert done.returncode == 0, done.stderr
    assert "10 sources" in done.stdout
