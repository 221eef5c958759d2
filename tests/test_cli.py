"""The stage scripts as a user runs them: end to end, deterministic, and strict with bad input."""

import hashlib
import subprocess
import sys

import pandas as pd
import pytest
from astropy.table import Table
from conftest import REPOSITORY, library_warnings, run_script

from xrayclass.constants import CLASSES

pytestmark = pytest.mark.slow

STAGES = ("clustering.py", "crossmatch.py", "classification.py", "master_classification.py")


def run_chain(sample_csc_csv, frozen, out, table_format="csv"):
    stage1 = out / f"cluster_csc.{table_format}"
    stage2 = out / f"cluster_csc_simbad.{table_format}"
    stage3 = out / f"detection_level_classification.{table_format}"
    results = [
        run_script("clustering.py", "--input", sample_csc_csv, "--output", stage1, "--model", out / "model.json"),
        run_script("crossmatch.py", "--input", stage1, "--frozen", frozen, "--output", stage2),
        run_script(
            "classification.py",
            "--input",
            stage2,
            "--output",
            stage3,
            "--model-output",
            out / "classifier.json",
            "--outliers-output",
            out / "outliers.csv",
        ),
        run_script("master_classification.py", "--input", stage3, "--out-dir", out, "--format", table_format),
    ]
    for result in results:
        assert result.returncode == 0, result.stderr
        assert not library_warnings(result.stderr)
    return results


@pytest.mark.parametrize("script", STAGES)
def test_help(script):
    result = run_script(script, "--help")
    assert result.returncode == 0
    assert "--input" in result.stdout and "Stage" in result.stdout


def test_frozen_swap_in_end_to_end_on_the_real_sample(sample_csc_csv, crossmatch_sample, tmp_path):
    results = run_chain(sample_csc_csv, crossmatch_sample, tmp_path)
    stage3 = pd.read_csv(tmp_path / "detection_level_classification.csv")
    assert len(stage3) == 161
    uniquely = pd.read_csv(tmp_path / "uniquely_classified.csv")
    ambiguous = pd.read_csv(tmp_path / "ambiguous_classification.csv")
    assert uniquely["detection_count"].sum() + ambiguous["detection_count"].sum() == 161 - 2
    assert list(uniquely.columns[:4]) == ["name", "agg_master_class", "master_class", "detection_count"]
    assert uniquely[list(CLASSES)].map(lambda s: "±" in s).all().all()
    summary = results[-1].stdout
    assert f"uniquely classified:    {len(uniquely):,}" in summary and "Cohen's kappa" in summary
    assert "1,615 detections read" in results[0].stderr


def test_same_input_same_outputs(sample_csc_csv, crossmatch_sample, tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    run_chain(sample_csc_csv, crossmatch_sample, first)
    run_chain(sample_csc_csv, crossmatch_sample, second)
    names = sorted(p.name for p in first.iterdir())
    assert names == sorted(p.name for p in second.iterdir()) and len(names) == 9  # outliers.csv with them
    for name in names:
        digest = [hashlib.sha256((d / name).read_bytes()).hexdigest() for d in (first, second)]
        assert digest[0] == digest[1], name


def test_parquet_and_votable_paths(sample_csc_csv, crossmatch_sample, tmp_path):
    votable = tmp_path / "sample.vot"
    Table.from_pandas(pd.read_csv(sample_csc_csv)).write(votable, format="votable")
    run_chain(votable, crossmatch_sample, tmp_path, table_format="parquet")
    uniquely = pd.read_parquet(tmp_path / "uniquely_classified.parquet")
    csv_dir = tmp_path / "csv"
    run_chain(sample_csc_csv, crossmatch_sample, csv_dir)
    from_csv = pd.read_csv(csv_dir / "uniquely_classified.csv")
    pd.testing.assert_frame_equal(uniquely[["name", "master_class"]], from_csv[["name", "master_class"]])


def test_classification_accepts_the_frozen_file_directly(crossmatch_sample, tmp_path):
    output = tmp_path / "det.csv"
    result = run_script(
        "classification.py",
        "--input",
        crossmatch_sample,
        "--output",
        output,
        "--model-output",
        tmp_path / "c.json",
        "--outliers-output",
        tmp_path / "o.csv",
    )
    assert result.returncode == 0, result.stderr
    assert "using column 'name_1' as the source name" in result.stderr
    assert len(pd.read_csv(output)) == 161


def assert_clean_failure(result, *fragments, out_dir):
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    error = [line for line in lines if "error:" in line]
    assert len(error) == 1, result.stderr
    for fragment in fragments:
        assert fragment in error[0], error[0]
    assert not [p for p in out_dir.iterdir() if p.suffix in (".csv", ".json", ".parquet")]
    assert "Traceback" not in result.stderr


def test_bad_inputs_fail_with_one_line_and_no_output(sample_csc_csv, crossmatch_sample, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    args = ("--output", out / "s1.csv", "--model", out / "m.json")
    result = run_script("clustering.py", "--input", tmp_path / "missing.vot", *args)
    assert_clean_failure(result, "missing.vot: file not found", out_dir=out)

    empty = tmp_path / "empty.csv"
    empty.write_text("name,obsid,ra,dec\n")
    assert_clean_failure(run_script("clustering.py", "--input", empty, *args), "empty.csv", "no rows", out_dir=out)

    table = pd.read_csv(sample_csc_csv)
    table.drop(columns=["bb_kt", "var_mean_s"]).to_csv(tmp_path / "cols.csv", index=False)
    assert_clean_failure(
        run_script("clustering.py", "--input", tmp_path / "cols.csv", *args),
        "cols.csv: missing required columns: bb_kt, var_mean_s",
        out_dir=out,
    )

    text = table.astype({"hard_ms": object})
    text.loc[7, "hard_ms"] = "n/a?"
    text.to_csv(tmp_path / "text.csv", index=False)
    assert_clean_failure(
        run_script("clustering.py", "--input", tmp_path / "text.csv", *args),
        "text.csv: column 'hard_ms' has non-numeric values",
        "data row 8",
        out_dir=out,
    )

    garbage = tmp_path / "garbage.parquet"
    garbage.write_text("this is not parquet")
    assert_clean_failure(
        run_script("clustering.py", "--input", garbage, *args), "garbage.parquet: cannot read as parquet", out_dir=out
    )


def test_stage2_mismatch_fails_cleanly(sample_csc_csv, crossmatch_sample, tmp_path):
    stage1 = tmp_path / "s1.csv"
    assert (
        run_script(
            "clustering.py", "--input", sample_csc_csv, "--output", stage1, "--model", tmp_path / "m.json"
        ).returncode
        == 0
    )
    frozen = pd.read_csv(crossmatch_sample)
    frozen.drop(index=[100, 101]).to_csv(tmp_path / "short.csv", index=False)
    out = tmp_path / "out"
    out.mkdir()
    result = run_script(
        "crossmatch.py", "--input", stage1, "--frozen", tmp_path / "short.csv", "--output", out / "s2.csv"
    )
    assert_clean_failure(result, "short.csv: has 1,613 rows", "1,615", out_dir=out)


def test_output_may_not_overwrite_input(crossmatch_sample, tmp_path):
    copy = tmp_path / "in.csv"
    copy.write_bytes(crossmatch_sample.read_bytes())
    result = run_script("classification.py", "--input", copy, "--output", copy)
    assert result.returncode == 2 and "would overwrite an input" in result.stderr
    assert copy.read_bytes() == crossmatch_sample.read_bytes()


def test_main_job_runs_on_a_mock_and_reproduces_the_paper(tmp_path, reference_dir):
    result = run_script("run_pipeline.py", "--out-dir", tmp_path / "out", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "SYNTHETIC MOCK catalog" in result.stdout and "NOT real sources" in result.stdout
    assert "MOCK catalog (synthetic, known truth)" in result.stdout
    assert "reproduction: 20 of 20 checks passed" in result.stdout
    assert (tmp_path / "out" / "mock" / "uniquely_classified.csv").exists()
    # It ends with where the results are and commands that work (from where it ran).
    ending = result.stdout.split("== Where the results are ==")[1]
    assert f"the stage outputs are in {tmp_path / 'out' / 'mock'}/ (SYNTHETIC)" in ending
    command = next(
        line.split()[1:]
        for line in ending.splitlines()
        if "classify_source.py" in line and not line.lstrip().startswith("#")
    )
    assert command[1:] == [
        str(tmp_path / "out" / "mock" / "example_detections.csv"),
        "--run-dir",
        str(tmp_path / "out" / "mock"),
    ]
    classified = run_script(*command, cwd=tmp_path)
    assert classified.returncode == 0, classified.stderr
    assert "3 sources from" in classified.stdout and "ambiguous (" in classified.stdout


def test_mock_end_to_end_through_the_scripts(tmp_path):
    """Stages 1-4 on a 30,000-detection mock through the scripts, with the recovered accuracy.

    No time limit here: the timings are measured by benchmarks/, on a quiet machine.
    """
    from xrayclass.analysis.mock import format_accuracy, mock_accuracy
    from xrayclass.io.tables import read_table

    catalog, simbad = tmp_path / "mock.parquet", tmp_path / "mock_simbad.parquet"
    made = run_script("make_mock_catalog.py", "--n-detections", 30000, "--seed", 11, "--output", catalog)
    assert made.returncode == 0, made.stderr
    assert "SYNTHETIC" in made.stderr
    steps = [
        ("clustering.py", "--input", catalog, "--output", tmp_path / "s1.parquet", "--model", tmp_path / "m.json"),
        ("crossmatch.py", "--input", tmp_path / "s1.parquet", "--catalog", simbad, "--output", tmp_path / "s2.parquet"),
        (
            "classification.py",
            "--input",
            tmp_path / "s2.parquet",
            "--output",
            tmp_path / "s3.parquet",
            "--model-output",
            tmp_path / "c.json",
            "--outliers-output",
            tmp_path / "o.csv",
        ),
        ("master_classification.py", "--input", tmp_path / "s3.parquet", "--out-dir", tmp_path),
    ]
    for script, *args in steps:
        result = run_script(script, *args)
        assert result.returncode == 0, result.stderr
    scores = mock_accuracy(read_table(tmp_path / "s3.parquet"), read_table(tmp_path / "uniquely_classified.csv"))
    print(format_accuracy(scores))
    # Chance here is always guessing the most common aggregated class (about 0.45).
    assert scores["aggregated_accuracy"] > 0.65
    assert scores["aggregated_accuracy"] > scores["aggregated_chance"] + 0.15


def test_a_prompt_exit_still_runs_the_exit_handlers_and_flushes_everything(tmp_path):
    marker = tmp_path / "cleaned"
    code = f"""
import atexit, logging, pathlib, sys
from xrayclass.cli.common import exit_promptly
atexit.register(lambda: pathlib.Path({str(marker)!r}).write_text("done"))
logging.basicConfig(stream=sys.stderr, format="%(message)s", level=logging.INFO)
logging.getLogger("stage").info("a log line")
sys.stdout.write("no end of line")  # left in the buffer
exit_promptly(3)
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPOSITORY)
    assert result.returncode == 3
    assert result.stdout == "no end of line"
    assert result.stderr.strip() == "a log line"
    assert marker.read_text() == "done"


def test_a_runs_side_files_go_beside_its_tables(sample_csc_csv, crossmatch_sample, tmp_path, capsys):
    """Given only the tables' paths, each stage keeps its model, classifier and outliers
    beside them (not in out_data/, where another run's would be overwritten)."""
    import json

    from xrayclass.cli import stages as cli

    first, second, third = (tmp_path / name for name in ("one", "two", "three"))
    for folder in (first, second, third):
        folder.mkdir()
    assert cli.clustering_main(["--input", str(sample_csc_csv), "--output", str(first / "s1.csv"), "-q"]) == 0
    assert (first / "model.json").is_file()
    fitted = json.loads((first / "model.json").read_text())
    # Stage 2 reads the model beside its input and updates it there.
    argv = ["--input", str(first / "s1.csv"), "--frozen", str(crossmatch_sample), "--output", str(second / "s2.csv")]
    assert cli.crossmatch_main([*argv, "-q"]) == 0
    updated = json.loads((first / "model.json").read_text())
    assert updated != fitted and updated["clusters"]["source"] == "frozen"
    assert sorted(p.name for p in second.iterdir()) == ["s2.csv"]
    assert cli.classification_main(["--input", str(second / "s2.csv"), "--output", str(third / "s3.csv"), "-q"]) == 0
    assert sorted(p.name for p in third.iterdir()) == ["classifier.json", "outliers.csv", "s3.csv"]
    capsys.readouterr()
