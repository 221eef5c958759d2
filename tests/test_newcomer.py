"""What a new user meets first: which run the commands read, the hints they print, --help.

Tables here are SYNTHETIC (made in the tests).
"""

import logging
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import REPOSITORY, run_script
from xrayclass.constants import CLASSES
from xrayclass.io.runs import default_run, find_run, run_directories

STAGE_FILES = (
    "cluster_csc.csv",
    "model.json",
    "cluster_csc_simbad.csv",
    "detection_level_classification.csv",
    "classifier.json",
    "uniquely_classified.csv",
)


def make_run(directory, files=STAGE_FILES, mtime=None):
    directory.mkdir(parents=True, exist_ok=True)
    for name in files:
        (directory / name).write_text("{}" if name.endswith(".json") else "name\n")
        if mtime is not None:
            os.utime(directory / name, (mtime, mtime))
    return directory


# -- which run ------------------------------------------------------------------------------------


def test_out_data_itself_when_it_holds_the_files(tmp_path):
    make_run(tmp_path / "out_data", mtime=1_000)
    make_run(tmp_path / "out_data" / "mock", mtime=2_000)
    assert default_run(out_dir=tmp_path / "out_data") == tmp_path / "out_data"


def test_else_the_most_recent_run_below_it(tmp_path, caplog):
    out = tmp_path / "out_data"
    make_run(out / "mock", mtime=2_000)
    make_run(out / "older", mtime=1_000)
    make_run(out / "deeper" / "mock", mtime=1_500)
    # Stage 4 on the published stage-3 output, newest of all, but not a run: no model.json.
    make_run(out / "reproduction", files=("uniquely_classified.csv",), mtime=3_000)
    (out / "report.md").write_text("#")
    assert run_directories(out) == [out / "mock", out / "deeper" / "mock", out / "older"]
    with caplog.at_level(logging.INFO, logger="xrayclass"):
        assert find_run(("uniquely_classified.csv",), out) == out / "mock"
    assert f"reading the run in {out / 'mock'}/" in caplog.text
    assert "lacks uniquely_classified.csv" in caplog.text and "--run-dir" in caplog.text
    os.utime(out / "older" / "model.json", (5_000, 5_000))
    assert default_run(out_dir=out) == out / "older"


def test_a_run_must_hold_what_the_command_needs(tmp_path):
    out = tmp_path / "out_data"
    make_run(out / "partial", files=("cluster_csc.csv", "model.json"), mtime=2_000)
    make_run(out / "mock", mtime=1_000)
    assert default_run(("cluster_csc.csv",), out) == out / "partial"
    assert default_run(("model.json", "classifier.json"), out) == out / "mock"


def test_no_run_anywhere_names_out_data(tmp_path):
    assert default_run(out_dir=tmp_path / "out_data") == tmp_path / "out_data"
    (tmp_path / "out_data" / "fetched").mkdir(parents=True)
    assert default_run(out_dir=tmp_path / "out_data") == tmp_path / "out_data"


def synthetic_uniquely(n=20):
    """SYNTHETIC uniquely classified sources, MOCK names."""
    rng = np.random.default_rng(0)
    table = pd.DataFrame(
        {
            "name": [f"MOCK J{i:06d}" for i in range(n)],
            "agg_master_class": "AGN",
            "master_class": "QSO",
            "detection_count": 1,
            "ra": rng.uniform(0, 360, n),
            "dec": rng.uniform(-80, 80, n),
        }
    )
    for name in CLASSES:
        table[name] = "0.100±0.010"
    return table


def test_explore_finds_the_mock_run_of_make_run(tmp_path):
    run = make_run(tmp_path / "out_data" / "mock", files=("model.json",))
    synthetic_uniquely().to_csv(run / "uniquely_classified.csv", index=False)
    make_run(tmp_path / "out_data" / "reproduction", files=("uniquely_classified.csv",))
    done = run_script("analysis.py", "explore", "--max-sources", 10, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "reading the run in out_data/mock/" in done.stderr
    assert (run / "explorer.html").is_file()
    assert not (tmp_path / "out_data" / "explorer.html").exists()


def test_figures_find_the_mock_run_of_make_run(tmp_path):
    run = make_run(tmp_path / "out_data" / "mock", files=("model.json",))
    done = run_script("analysis.py", "figures", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "reading the run in out_data/mock/" in done.stderr
    assert "out_data/mock/cluster_csc.csv absent" in done.stderr and run.is_dir()


def test_without_any_run_the_analysis_says_what_to_run(tmp_path):
    done = run_script("analysis.py", "validate", cwd=tmp_path)
    assert done.returncode == 2
    assert "out_data/cluster_csc_simbad.csv: file not found; run `make run`" in done.stderr


# -- the end of make run ------------------------------------------------------------------------


def test_make_run_ends_with_where_and_what_next(tmp_path, monkeypatch):
    from xrayclass.cli.run import next_steps

    monkeypatch.chdir(tmp_path)
    out = Path("out_data")
    run = make_run(out / "mock")
    (out / "report.html").write_text("<html>")
    text = next_steps(run, out)
    assert "out_data/mock/ (SYNTHETIC)" in text and "open out_data/report.html" in text
    commands = [line.strip() for line in text.splitlines() if line.startswith("  ") and "#" not in line]
    assert any(c.endswith("analysis.py explore") for c in commands)
    assert any(c.endswith("analysis.py figures") for c in commands)
    assert any(c.endswith("classify_source.py --help") for c in commands)
    (run / "example_detections.csv").write_text("name\n")
    assert "classify_source.py out_data/mock/example_detections.csv\n" in next_steps(run, out)
    # Where out_data/ holds a run of its own, the commands would read that one: they name this run.
    make_run(out)
    text = next_steps(run, out)
    assert "analysis.py explore --run-dir out_data/mock" in text
    assert "analysis.py figures --run-dir out_data/mock" in text
    assert "example_detections.csv --run-dir out_data/mock" in text


def test_make_run_help_is_plain_text():
    done = run_script("run_pipeline.py", "--help")
    assert done.returncode == 0
    assert "``" not in done.stdout and not re.search(r"^\s*\* ", done.stdout, re.MULTILINE)
    assert "SYNTHETIC mock catalog" in done.stdout


# -- hints ------------------------------------------------------------------------------------------


def readme_headings():
    text = (REPOSITORY / "README.md").read_text(encoding="utf-8")
    return [line.lstrip("#").strip().replace("`", "") for line in text.splitlines() if line.startswith("#")]


def quoted_sections():
    """Every section name quoted after 'README' in the product's code: (file, name)."""
    pattern = re.compile(r"README,?\s+(?:section\s+)?['\"]([^'\"]+)['\"]")
    files = [*REPOSITORY.glob("*.py"), *(REPOSITORY / "xrayclass").rglob("*.py")]
    return [
        (path.relative_to(REPOSITORY), name)
        for path in files
        for name in pattern.findall(path.read_text(encoding="utf-8"))
    ]


def test_every_readme_section_named_in_a_message_exists():
    quoted = quoted_sections()
    assert ("xrayclass/workflow/runner.py", "Data files") in [(str(p), n) for p, n in quoted]
    headings = readme_headings()
    missing = [
        (str(path), name)
        for path, name in quoted
        if not any(heading.startswith(name.replace("`", "")) for heading in headings)
    ]
    assert not missing, f"README has no section starting with these names: {missing}"


def test_every_section_the_readme_points_to_exists():
    text = (REPOSITORY / "README.md").read_text(encoding="utf-8")
    pointed = [" ".join(name.split()) for name in re.findall(r"\bsee\s+\"([^\"]+)\"", text)]
    assert "Running the scripts yourself" in pointed
    headings = readme_headings()
    assert not [name for name in pointed if not any(heading.startswith(name) for heading in headings)]


def test_stage1_without_input_names_the_ways_to_get_one(tmp_path):
    done = run_script("clustering.py", cwd=tmp_path)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    for way in ("fetch_csc.py", "data/cluster_csc_simbad.csv", "make_mock_catalog.py", "make run"):
        assert way in done.stderr
    assert not (tmp_path / "out_data").exists()


# -- ambiguous in one aggregated class -------------------------------------------------------------


def probabilities(**shares):
    return [shares.get(name, 0.0) for name in CLASSES]


def test_stage4_summary_counts_ambiguous_sources_within_one_aggregated_class():
    from xrayclass.stages.master_classification import format_summary, summarize, vote

    s1, s2 = {"Seyfert_1": 0.5, "Seyfert_2": 0.45}, {"Seyfert_1": 0.05, "Seyfert_2": 0.95}
    a, x = {"AGN": 0.5, "HMXB": 0.45}, {"AGN": 0.05, "HMXB": 0.95}
    rows = [
        ("A", "Seyfert_1", s1),
        ("A", "Seyfert_1", s1),
        ("A", "Seyfert_2", s2),
        ("B", "AGN", a),
        ("B", "AGN", a),
        ("B", "HMXB", x),
        ("C", "YSO", {"YSO": 1.0}),
    ]
    votes = vote([r[0] for r in rows], [r[1] for r in rows], [probabilities(**r[2]) for r in rows])
    assert list(votes.hard) == ["Seyfert_1", "AGN", "YSO"] and list(votes.soft) == ["Seyfert_2", "HMXB", "YSO"]
    summary = summarize(votes, len(rows), 0)
    assert summary["ambiguous"] == 2 and summary["ambiguous_same_aggregated_class"] == 1
    assert "2 (66.7%), of which 1 with both votes in the same aggregated class" in format_summary(summary)


@pytest.mark.parametrize(
    "hard, soft, said",
    [
        ("Seyfert_1", "Seyfert_2", "ambiguous (hard Seyfert_1, soft Seyfert_2: both Seyfert)"),
        ("AGN", "HMXB", "ambiguous (the two votes differ)"),
    ],
)
def test_classify_source_says_when_both_votes_share_an_aggregated_class(hard, soft, said):
    from xrayclass.stages.new_sources import AMBIGUOUS, _source_headline

    source = pd.Series(
        {
            "name": "MOCK J000001",
            "classified_count": 3,
            "detection_count": 3,
            "status": AMBIGUOUS,
            "voting_count": 3,
            "skipped_count": 0,
            "main_cluster": 2,
            "main_cluster_count": 3,
            "soft_master_class": soft,
            "soft_mean_probability": 0.6,
            "hard_master_class": hard,
            "driven_by": "",
            "outlier_flag": False,
        }
    )
    assert _source_headline(source).endswith(said)
