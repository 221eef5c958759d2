"""Property-based fuzzing of every stage and of classify_source.py (issue 11).

A small valid run on a SYNTHETIC mock catalog is made once; each example corrupts a
few random cells, columns or rows of one stage's input table, or one field of an
artifact (model.json, classifier.json), runs the command in-process and checks the
invariant:

* exit 0, with finite, in-range outputs; or
* exit 2 (3 for a service) with exactly one ``error:`` line and no output;
* never a traceback, never exit 1 (a bug), never a temporary file left behind.

The budget is small by default (CI, a few seconds per stage); ``make fuzz`` runs the
"fuzz" profile (XRAYCLASS_FUZZ_PROFILE=fuzz: 1,000 examples per test, 2,000 in all).
"""

from __future__ import annotations

import atexit
import contextlib
import io
import json
import math
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from test_bad_inputs import build_valid_run, leftovers, tool  # noqa: E402

from xrayclass.constants import CLASSES  # noqa: E402

settings.register_profile(
    "ci",
    max_examples=30,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# make fuzz: 1,000 examples for each of the two tests below (2,000 cases in all) unless
# XRAYCLASS_FUZZ_EXAMPLES says otherwise.
settings.register_profile(
    "fuzz",
    max_examples=int(os.environ.get("XRAYCLASS_FUZZ_EXAMPLES", 1000)),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("XRAYCLASS_FUZZ_PROFILE", "ci"))

RUN_DIR = Path(tempfile.mkdtemp(prefix="xrayclass-fuzz-"))
# Made when the module is collected (Hypothesis tests take no function fixtures): removed at exit.
atexit.register(shutil.rmtree, RUN_DIR, ignore_errors=True)
_RUN: dict = {}


def valid_run() -> dict:
    if not _RUN:
        _RUN.update(build_valid_run(RUN_DIR, n_detections=300))
        for key in ("mock", "simbad", "s1", "s2", "s3"):
            _RUN[f"{key}_table"] = pd.read_csv(_RUN[key], low_memory=False)
        for key in ("model", "classifier"):
            _RUN[f"{key}_document"] = json.loads(Path(_RUN[key]).read_text())
    return _RUN


# -- corruptions ------------------------------------------------------------------------------

NASTY_NUMBERS = [
    math.nan,
    math.inf,
    -math.inf,
    1e308,
    -1e308,
    0.0,
    -0.0,
    -1.0,
    1.0,
    0.5,
    2.0,
    5.5,
    -5.0,
    1e-300,
    123.0,
    91.0,
    -91.0,
    1e6,
]
values = st.one_of(
    st.sampled_from(NASTY_NUMBERS),
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.integers(min_value=-10, max_value=10),
    st.sampled_from(["", " ", "abc", "NaN", "1e308", "-", "AGN", "Unclassified", "5.5"]),
    st.none(),
)


@st.composite
def table_corruption(draw, columns, n_rows):
    """A list of operations on a table: set cells, drop/rename columns, repeat/cut rows."""
    operations = []
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["cell", "cell", "cell", "column_value", "drop", "rename", "repeat", "head"]))
        column = draw(st.sampled_from(columns))
        if kind == "cell":
            operations.append(("cell", column, draw(st.integers(0, n_rows - 1)), draw(values)))
        elif kind == "column_value":
            operations.append(("column_value", column, None, draw(values)))
        elif kind in ("drop", "rename"):
            operations.append((kind, column, None, None))
        elif kind == "repeat":
            operations.append(("repeat", None, draw(st.integers(0, n_rows - 1)), None))
        else:
            operations.append(("head", None, draw(st.integers(1, 5)), None))
    return operations


def apply_table(table: pd.DataFrame, operations) -> pd.DataFrame:
    table = table.copy()
    for kind, column, row, value in operations:
        if column is not None and column not in table.columns:
            continue
        if kind in ("cell", "column_value"):
            if value is None or isinstance(value, str) or not pd.api.types.is_float_dtype(table[column]):
                table[column] = table[column].astype(object)
            if kind == "cell":
                table.iloc[row % len(table), table.columns.get_loc(column)] = value
            else:
                table[column] = [value] * len(table)
        elif kind == "drop":
            table = table.drop(columns=[column])
        elif kind == "rename":
            table = table.rename(columns={column: column + "_x"})
        elif kind == "repeat":
            table = pd.concat([table, table.iloc[[row % len(table)]]], ignore_index=True)
        elif kind == "head":
            table = table.head(row)
    return table


def leaf_paths(node, prefix=()):
    """Every path to a value of a JSON document (lists: their first three items only)."""
    if isinstance(node, dict):
        for key, child in node.items():
            yield prefix + (key,)
            yield from leaf_paths(child, prefix + (key,))
    elif isinstance(node, list):
        for i, child in enumerate(node[:3]):
            yield prefix + (i,)
            yield from leaf_paths(child, prefix + (i,))


json_values = st.one_of(
    st.sampled_from(NASTY_NUMBERS),
    st.integers(-3, 20),
    st.sampled_from(["", "abc", "full", "naive-bayes"]),
    st.none(),
    st.booleans(),
    st.just([]),
    st.just({}),
    st.just([0.0] * 6),
    st.just("DELETE"),
)


def apply_json(document, path, value):
    document = json.loads(json.dumps(document))
    node = document
    for key in path[:-1]:
        node = node[key]
    if value == "DELETE":
        if isinstance(node, dict):
            del node[path[-1]]
        else:
            del node[path[-1]]
    else:
        node[path[-1]] = value
    return document


# -- the commands -----------------------------------------------------------------------------


def command(target: str, run: dict, d: Path, corrupted: Path | None):
    """argv, outputs and the checker of a successful run, for each fuzzed input."""
    if target == "mock":
        return (
            "clustering",
            ["--input", corrupted, "--output", d / "o.csv", "--model", d / "m.json"],
            [d / "o.csv", d / "m.json"],
            check_stage1,
        )
    if target == "s1":
        return (
            "crossmatch",
            ["--input", corrupted, "--catalog", run["simbad"], "--output", d / "o.csv"],
            [d / "o.csv"],
            None,
        )
    if target == "simbad":
        return (
            "crossmatch",
            ["--input", run["s1"], "--catalog", corrupted, "--output", d / "o.csv"],
            [d / "o.csv"],
            None,
        )
    if target == "frozen":
        return "crossmatch", ["--input", run["s1"], "--frozen", corrupted, "--output", d / "o.csv"], [d / "o.csv"], None
    if target == "s2":
        return (
            "classification",
            [
                "--input",
                corrupted,
                "--output",
                d / "o.csv",
                "--model-output",
                d / "c.json",
                "--outliers-output",
                d / "x.csv",
            ],
            [d / "o.csv", d / "c.json", d / "x.csv"],
            check_stage3,
        )
    if target == "s3":
        return (
            "master",
            ["--input", corrupted, "--out-dir", d / "out"],
            [d / "out" / "master_summary.json"],
            check_stage4,
        )
    raise KeyError(target)


def artifact_command(kind: str, run: dict, d: Path, corrupted: Path):
    model = corrupted if kind == "model" else run["model"]
    classifier = corrupted if kind == "classifier" else run["classifier"]
    sample = d / "sample.csv"
    run["mock_table"].head(20).to_csv(sample, index=False)
    return (
        "classify_source",
        ["--model", model, "--classifier", classifier, "--output", d / "o.csv", sample],
        [d / "o.csv"],
        check_classify_source,
    )


def _finite_in(values, low, high):
    values = np.asarray(values, dtype="float64")
    return np.isfinite(values).all() and (values >= low).all() and (values <= high).all()


def check_stage1(d):
    out = pd.read_csv(d / "o.csv")
    probabilities = out[[c for c in out.columns if c.startswith("prob_")]].to_numpy()
    assert _finite_in(probabilities, 0, 1)
    assert np.allclose(probabilities.sum(axis=1), 1)
    model = json.loads((d / "m.json").read_text())  # strict JSON: no NaN slipped in
    assert _finite_in(model["mixture"]["weights"], 0, 1)


def check_stage3(d):
    out = pd.read_csv(d / "o.csv")
    probabilities = out[list(CLASSES)].to_numpy(dtype="float64")
    assert _finite_in(probabilities, 0, 1)
    totals = probabilities.sum(axis=1)
    assert (np.isclose(totals, 1) | (totals == 0)).all()


def check_stage4(d):
    summary = json.loads((d / "out" / "master_summary.json").read_text())
    assert summary["cohen_kappa"] is None or -1 <= summary["cohen_kappa"] <= 1
    for name in ("uniquely_classified.csv", "ambiguous_classification.csv"):
        table = pd.read_csv(d / "out" / name)
        for column in CLASSES:
            assert not table[column].astype(str).str.contains("nan|inf|-", regex=True).any()


def check_classify_source(d):
    out = pd.read_csv(d / "o.csv")
    columns = [c for c in CLASSES if c in out.columns]
    if len(out) and columns:
        assert _finite_in(out[columns].to_numpy(dtype="float64"), 0, 1)


def run_and_judge(name, argv, outputs, check, d: Path):
    from threadpoolctl import threadpool_limits

    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out), threadpool_limits(1):
        try:
            code = tool(name)([str(a) for a in argv])
        except SystemExit as exc:
            code = exc.code
    stderr = err.getvalue()
    hypothesis.event(f"{name}: exit {code}")
    assert "Traceback" not in stderr, stderr
    assert code in (0, 2, 3), f"exit {code}: {stderr}"
    if code:
        assert len([line for line in stderr.splitlines() if "error:" in line]) == 1, stderr
        assert not any(Path(o).exists() for o in outputs), "output written despite the error"
    else:
        assert all(Path(o).exists() for o in outputs)
        if check is not None:
            check(d)
    assert not leftovers(d), leftovers(d)
    return code, stderr


TABLE_TARGETS = {
    "mock": "mock_table",
    "s1": "s1_table",
    "simbad": "simbad_table",
    "frozen": "s2_table",
    "s2": "s2_table",
    "s3": "s3_table",
}


@given(data=st.data())
def test_corrupted_tables_never_crash(data):
    run = valid_run()
    target = data.draw(st.sampled_from(sorted(TABLE_TARGETS)), label="target")
    table = run[TABLE_TARGETS[target]]
    operations = data.draw(table_corruption(list(table.columns), len(table)), label="operations")
    with tempfile.TemporaryDirectory(dir=RUN_DIR) as directory:
        d = Path(directory)
        corrupted = d / "input.csv"
        apply_table(table, operations).to_csv(corrupted, index=False)
        run_and_judge(*command(target, run, d, corrupted), d)


@given(data=st.data())
def test_corrupted_artifacts_never_crash(data):
    run = valid_run()
    kind = data.draw(st.sampled_from(["model", "classifier"]), label="artifact")
    document = run[f"{kind}_document"]
    path = data.draw(st.sampled_from(sorted(leaf_paths(document), key=str)), label="field")
    value = data.draw(json_values, label="value")
    with tempfile.TemporaryDirectory(dir=RUN_DIR) as directory:
        d = Path(directory)
        corrupted = d / f"{kind}.json"
        corrupted.write_text(json.dumps(apply_json(document, path, value)))
        run_and_judge(*artifact_command(kind, run, d, corrupted), d)
