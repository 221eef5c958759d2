"""Shared fixtures. Synthetic tables made here are labeled as such in their names."""

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from xrayclass.constants import FEATURES
from xrayclass.io import paths

REPOSITORY = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def reference_dir():
    """The shared reference directory; tests that need it skip, saying why, when absent."""
    directory = paths.reference_dir()
    if not directory.is_dir():
        pytest.skip(f"reference directory {directory} is absent (set {paths.REFERENCE_ENV})")
    return directory


@pytest.fixture(scope="session")
def mock_crossmatched():
    """SYNTHETIC: 24,000 mock detections (seed 8) through stage 1 and a local stage 2.

    One run for the whole session, shared by the tests of the analyses and of the
    naive Bayes classifier; tests that need other sizes or seeds make their own.
    Treat it as read-only.
    """
    from xrayclass.analysis.mock import generate
    from xrayclass.stages.clustering import cluster_detections
    from xrayclass.stages.crossmatch import crossmatch_local

    detections, simbad = (pd.concat(parts, ignore_index=True) for parts in zip(*generate(24_000, 8), strict=False))
    stage1, _ = cluster_detections(detections)
    return crossmatch_local(stage1, simbad, 1.0)


def reference_path(reference_dir, name):
    path = reference_dir / name
    if not path.is_file():
        pytest.skip(f"reference file {path} is absent")
    return path


@pytest.fixture(scope="session")
def crossmatch_sample(reference_dir):
    return reference_path(reference_dir, "crossmatch_sample_2021.csv")


@pytest.fixture(scope="session")
def sample_csc_csv(crossmatch_sample, tmp_path_factory):
    """The CSC query columns of the real crossmatch sample, as a stage-1 input."""
    sample = pd.read_csv(crossmatch_sample)
    columns = list(sample.columns)
    path = tmp_path_factory.mktemp("sample") / "sample_csc.csv"
    sample[columns[: columns.index("cluster")]].to_csv(path, index=False)
    return path


@pytest.fixture(scope="session")
def run_stages():
    """Run stages of the pipeline in this process, quietly, as their command lines do.

    Call it as ``run_stages(out, frozen=..., csc=..., stages=(1, 2, 3, 4), features=None,
    crossmatch_args=())``: stage 1 reads ``csc``, stage 2 swaps in ``frozen``, and every
    stage writes into ``out`` (``s1.csv``, ``model.json``, ``s2.csv``, ``s3.csv``,
    ``classifier.json``, ``o.csv`` and stage 4's tables); the stage-2 ``--model`` is
    given explicitly. ``features`` is a feature-set file for stages 1 and 3. Returns ``out``.
    """
    from xrayclass.cli import stages as cli

    def run(out, *, frozen, csc=None, stages=(1, 2, 3, 4), features=None, crossmatch_args=()):
        feature_args = ["--features", features] if features is not None else []
        model = ["--model", out / "model.json"]
        steps = {
            1: (cli.clustering_main, ["--input", csc, "--output", out / "s1.csv", *model, *feature_args]),
            2: (
                cli.crossmatch_main,
                ["--input", out / "s1.csv", "--frozen", frozen, "--output", out / "s2.csv", *model, *crossmatch_args],
            ),
            3: (
                cli.classification_main,
                ["--input", out / "s2.csv", "--output", out / "s3.csv", "--model-output", out / "classifier.json"]
                + ["--outliers-output", out / "o.csv", *((feature_args + model) if features is not None else [])],
            ),
            4: (cli.master_classification_main, ["--input", out / "s3.csv", "--out-dir", out]),
        }
        for number in stages:
            main, argv = steps[number]
            assert main([str(a) for a in argv] + ["-q"]) == 0, main.__name__
        return out

    return run


def classify_stage3(out, capsys, name="again.csv"):
    """classify_source.py on the stage-3 detections; returns (stage 3, classify_source, printed summary)."""
    from xrayclass.cli.classify_source import main as classify_source_main

    capsys.readouterr()
    assert (
        classify_source_main(
            [
                str(out / "s3.csv"),
                "--model",
                str(out / "model.json"),
                "--classifier",
                str(out / "classifier.json"),
                "--output",
                str(out / name),
                "-q",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    stage3 = pd.read_csv(out / "s3.csv")
    again = pd.read_csv(out / name).merge(stage3[["name", "obsid"]], on=["name", "obsid"], how="right")
    return stage3, again, printed


def run_stage_into(folder, name, script, source, outputs, *extra, cwd=REPOSITORY):
    """Run a stage script quietly on ``folder/source``, its ``outputs`` ((option, file name)
    pairs) written in ``folder/name`` (made if missing); it must succeed. Returns that folder."""
    out = folder / name
    out.mkdir(exist_ok=True)
    options = [item for option, file_name in outputs for item in (option, out / file_name)]
    result = run_script(script, "--input", folder / source, *options, "-q", *extra, cwd=cwd)
    assert result.returncode == 0, result.stderr
    return out


def run_script(script, *args, cwd=REPOSITORY, env=None):
    """Run a top-level script in a subprocess, as a user would (``env``: variables to add)."""
    return subprocess.run(
        [sys.executable, str(REPOSITORY / script), *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        env=None if env is None else {**os.environ, **env},
    )


def library_warnings(stderr):
    """Python warnings (pandas, NumPy, scikit-learn...) a command printed: noise to the
    user, or the sign of a change coming. The commands should print none."""
    return [line for line in stderr.splitlines() if re.search(r"\w+Warning: ", line)]


def synthetic_detections(n=400, seed=0):
    """SYNTHETIC raw CSC-like detections (not real data) with all raw feature columns."""
    rng = np.random.default_rng(seed)
    var_mean = rng.uniform(0.01, 1.0, size=(n, 3))
    table = pd.DataFrame(
        {
            "name": [f"SYNTHETIC J{i // 2:06d}" for i in range(n)],
            "obsid": rng.integers(100, 20000, size=n),
            "ra": rng.uniform(0, 360, size=n),
            "dec": rng.uniform(-90, 90, size=n),
            "hard_hm": rng.uniform(-1, 1, size=n),
            "hard_hs": rng.uniform(-1, 1, size=n),
            "hard_ms": rng.uniform(-1, 1, size=n),
            "powlaw_gamma": rng.normal(1.8, 0.6, size=n),
            "bb_kt": rng.lognormal(-0.5, 0.7, size=n),
            "var_prob_b": rng.uniform(0, 1, size=n),
            "var_prob_h": rng.uniform(0, 1, size=n),
            "var_prob_s": rng.uniform(0, 1, size=n),
        }
    )
    for k, band in enumerate("bhs"):
        table[f"var_mean_{band}"] = var_mean[:, k]
        table[f"var_sigma_{band}"] = var_mean[:, k] * rng.lognormal(-3, 1, size=n)
    table["var_min_b"] = table["var_mean_b"] * rng.uniform(0.5, 1.0, size=n)
    table["var_max_b"] = table["var_mean_b"] * rng.uniform(1.0, 1.5, size=n)
    return table.sort_values("name", kind="stable").reset_index(drop=True)


N_FEATURES = len(FEATURES)


def synthetic_features(n_per_class, classes, n_features=N_FEATURES, seed=0, spread=0.05):
    """SYNTHETIC preprocessed feature vectors: one Gaussian blob per class."""
    rng = np.random.default_rng(seed)
    centers = rng.uniform(0.2, 0.8, size=(len(classes), n_features))
    X = np.vstack([c + spread * rng.standard_normal((n_per_class, n_features)) for c in centers])
    y = np.repeat(np.asarray(classes, dtype=object), n_per_class)
    return X, y


@pytest.fixture(autouse=True)
def _restore_xrayclass_logging():
    """Command lines configure the 'xrayclass' logger (own handler, no propagation);
    start every test from the default so that ``caplog`` sees the records."""
    import logging

    logger = logging.getLogger("xrayclass")
    # Reset before the test too: module-scoped fixtures may have run a command line.
    logger.handlers[:], logger.level, logger.propagate = [], logging.NOTSET, True
    yield
    logger.handlers[:], logger.level, logger.propagate = [], logging.NOTSET, True


def _user_files():
    """Size and modification time of every file in the repository's data and run folders."""
    found = {}
    for folder in (REPOSITORY / paths.DATA_DIR, REPOSITORY / paths.OUT_DIR):
        for path in folder.rglob("*") if folder.is_dir() else ():
            if path.is_file():
                status = path.stat()
                found[str(path.relative_to(REPOSITORY))] = (status.st_size, status.st_mtime_ns)
    return found


@pytest.fixture(scope="session", autouse=True)
def _user_files_left_alone():
    """The tests write only into temporary folders: a user's data/ and out_data/ (their
    runs, perhaps hours of work) are the same after `make test` as before it."""
    before = _user_files()
    yield
    after = _user_files()
    changed = sorted(name for name in before.keys() | after.keys() if before.get(name) != after.get(name))
    if changed:
        pytest.fail(f"the tests changed files of the repository: {', '.join(changed[:10])}", pytrace=False)
