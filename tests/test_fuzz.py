"""Property-based fuzzing of every stage, the engines and classify_source.py (issues 11, 22).

A small valid run on a SYNTHETIC mock catalog is made once. Each example breaks one
input and runs the command in-process:

* a few random cells, columns or rows of one stage's input table (CSV or Parquet), with
  the in-memory engine, the streaming engine (stages 1-4) or Dask (stages 1, 3 and 4, on
  one local cluster started for the session and passed as ``--scheduler``);
* one field of an artifact (model.json, classifier.json) given to classify_source.py;
* a feature-set TOML file (``--features``), valid-looking or broken (wrong types,
  unknown features or transforms, empty or repeated entries, deep or huge structures,
  other encodings, files that are not files), through stage 1 and, when stage 1 takes
  it, stages 2 and 3;
* label files (``classification.py --labels``): random rows, times with and without
  zones or not times at all, unknown classes, repeated names, hostile strings, missing
  or repeated columns, other encodings (helpers in ``fuzz_inputs.py``).

The invariant:

* exit 0, with finite, in-range outputs; or
* exit 2 (3 for a service) with exactly one ``error:`` line and no output;
* never a traceback, never exit 1 (a bug), never a hang, never a temporary file left
  beside the outputs or in the command's own TMPDIR (a fresh one per example);
* for the engines, also: what the in-memory run refuses (exit 2) the engine refuses,
  and where both succeed they write the same tables;
* for label files, also: a time that is not ISO 8601 is an error, and where several
  labels name a source the one of the latest time (its value, not its text) is the one
  applied: the run gives what a file with only the winning labels gives.

The budget is small by default (a few seconds per test, derandomized); ``make fuzz``
runs the "fuzz" profile (XRAYCLASS_FUZZ_PROFILE=fuzz): 2,000 examples in all, split
between the tests as ``BUDGET`` says (XRAYCLASS_FUZZ_EXAMPLES changes the total),
about two and a half minutes on two cores (longer on a shared machine).
"""

from __future__ import annotations

import atexit
import contextlib
import io
import json
import math
import os
import shutil
import signal
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

hypothesis = pytest.importorskip("hypothesis")
import fuzz_inputs  # noqa: E402
from hypothesis import HealthCheck, Phase, example, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from test_bad_inputs import build_valid_run, leftovers, tool  # noqa: E402

from xrayclass.constants import CLASSES  # noqa: E402

# No "explain" phase: on a failing label example it re-ran stage 3 for a minute and a half
# to say which lines only failing examples run; the shrunk example is what the report needs.
PHASES = [Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink]
settings.register_profile(
    "ci",
    phases=PHASES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
settings.register_profile(
    "fuzz",
    phases=PHASES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
PROFILE = os.environ.get("XRAYCLASS_FUZZ_PROFILE", "ci")
settings.load_profile(PROFILE)

#: Examples per test: (default run, share of make fuzz's total). Dask's examples cost the
#: most (a round trip to the cluster per step), the artifacts' the least.
BUDGET = {
    "tables": (30, 0.25),
    "artifacts": (30, 0.10),
    "feature_sets": (20, 0.175),
    "labels": (20, 0.175),
    "streaming": (12, 0.20),
    "dask": (4, 0.10),
}
FUZZ_TOTAL = int(os.environ.get("XRAYCLASS_FUZZ_EXAMPLES", 2000))


def budget(test: str) -> settings:
    default, share = BUDGET[test]
    return settings(max_examples=default if PROFILE != "fuzz" else max(1, round(share * FUZZ_TOTAL)))


#: Longer than any example takes (the slowest, Dask's, take seconds): past it, a hang.
HANG_SECONDS = 30

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
        kind = draw(
            st.sampled_from(["cell", "cell", "cell", "column_value", "drop", "rename", "twice", "repeat", "head"])
        )
        column = draw(st.sampled_from(columns))
        if kind == "cell":
            operations.append(("cell", column, draw(st.integers(0, n_rows - 1)), draw(values)))
        elif kind == "column_value":
            operations.append(("column_value", column, None, draw(values)))
        elif kind in ("drop", "rename", "twice"):
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
        elif kind == "twice":  # the same column name twice (CSV readers rename it, Parquet keeps it)
            table = pd.concat([table, table[[column]]], axis=1)
        elif kind == "repeat":
            table = pd.concat([table, table.iloc[[row % len(table)]]], ignore_index=True)
        elif kind == "head":
            table = table.head(row)
    return table


def write_table(table: pd.DataFrame, path: Path) -> Path:
    """``table`` as CSV, or as Parquet when ``path`` says so and its columns have one type
    each (a column of mixed numbers and text has no Parquet type: then CSV)."""
    if path.suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            # From the columns one by one: pandas refuses to write a name twice, Parquet does not.
            arrays = [pa.array(table.iloc[:, i], from_pandas=True) for i in range(table.shape[1])]
            pq.write_table(pa.Table.from_arrays(arrays, names=[str(c) for c in table.columns]), path)
            return path
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            path = path.with_suffix(".csv")
    table.to_csv(path, index=False)
    return path


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


def command(target: str, run: dict, d: Path, corrupted: Path | None, engine: list | None = None):
    """argv, outputs and the checker of a successful run, for each fuzzed input.

    ``engine`` (``--engine ...`` and its options) is added to the stage's arguments.
    """
    name, argv, outputs, check = _command(target, run, d, corrupted)
    return name, [*argv, *(engine or [])], outputs, check


def _command(target: str, run: dict, d: Path, corrupted: Path | None):
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


class Hang(BaseException):
    """A command still running after HANG_SECONDS (a BaseException: no ``except Exception`` in
    the command takes it for an error of its own)."""


def _hang(signum, frame):
    raise Hang(f"no answer after {HANG_SECONDS} s")


@contextlib.contextmanager
def private_tmpdir(d: Path):
    """TMPDIR (and the ``tempfile`` module's cached copy of it) set to a fresh ``d/tmp``."""
    tmp = d / "tmp"
    tmp.mkdir()
    saved = os.environ.get("TMPDIR"), tempfile.tempdir
    os.environ["TMPDIR"], tempfile.tempdir = str(tmp), str(tmp)
    try:
        yield tmp
    finally:
        if saved[0] is None:
            del os.environ["TMPDIR"]
        else:
            os.environ["TMPDIR"] = saved[0]
        tempfile.tempdir = saved[1]


def run_and_judge(name, argv, outputs, check, d: Path):
    """Run the command in-process and check the invariant; returns its exit status and stderr."""
    from threadpoolctl import threadpool_limits

    err, out = io.StringIO(), io.StringIO()
    previous = signal.signal(signal.SIGALRM, _hang)
    signal.alarm(HANG_SECONDS)
    try:
        with (
            private_tmpdir(d) as tmp,
            contextlib.redirect_stderr(err),
            contextlib.redirect_stdout(out),
            threadpool_limits(1),
        ):
            try:
                code = tool(name)([str(a) for a in argv])
            except SystemExit as exc:
                code = exc.code
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
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
    left_in_tmp = sorted(p.name for p in tmp.iterdir())
    assert not left_in_tmp, f"left in TMPDIR: {left_in_tmp} (exit {code}: {stderr})"
    shutil.rmtree(tmp)
    return code, stderr


TABLE_TARGETS = {
    "mock": "mock_table",
    "s1": "s1_table",
    "simbad": "simbad_table",
    "frozen": "s2_table",
    "s2": "s2_table",
    "s3": "s3_table",
}
#: The inputs each engine reads in batches (the others it reads whole, as in memory).
ENGINE_TARGETS = {"streaming": ["mock", "s1", "s2", "s3"], "dask": ["mock", "s2", "s3"]}


def corrupted_table_example(data, targets, engine: str, d: Path):
    """Draw a target and its corruption, write it (CSV or Parquet) in ``d``.

    Returns the target, the corrupted file and the engine's options.
    """
    run = valid_run()
    target = data.draw(st.sampled_from(targets), label="target")
    table = run[TABLE_TARGETS[target]]
    operations = data.draw(table_corruption(list(table.columns), len(table)), label="operations")
    suffix = data.draw(st.sampled_from([".csv", ".parquet"]), label="format")
    corrupted = write_table(apply_table(table, operations), d / f"input{suffix}")
    options = []
    if engine != "memory":
        options = ["--engine", engine, "--batch-rows", data.draw(st.sampled_from([40, 1000]), label="batch rows")]
    if engine == "dask":
        options += ["--scheduler", dask_scheduler()]
    return target, corrupted, options


#: The tables whose contents the engines must give as the in-memory run does.
MAIN_OUTPUTS = {"master": ["out/uniquely_classified.csv", "out/ambiguous_classification.csv"]}


def run_quietly(name, argv) -> int:
    """The exit status of a command, its messages discarded (the in-memory reference run)."""
    from threadpoolctl import threadpool_limits

    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()), threadpool_limits(1):
        try:
            return tool(name)([str(a) for a in argv])
        except SystemExit as exc:
            return exc.code if isinstance(exc.code, int) else 1


def judge_engine(data, engine: str, d: Path):
    """The invariant for ``engine``, and agreement with the in-memory engine on the same
    file: what memory refuses (exit 2) the engine refuses too, and where both succeed
    their tables are equal. (An engine may refuse what memory takes, e.g. an unsorted
    stage-4 input, if it says so cleanly.)"""
    run = valid_run()
    target, corrupted, options = corrupted_table_example(data, ENGINE_TARGETS[engine], engine, d)
    with tempfile.TemporaryDirectory(dir=RUN_DIR) as other:
        memory = Path(other)
        name, argv, _, _ = command(target, run, memory, corrupted)
        with private_tmpdir(memory):
            memory_code = run_quietly(name, argv)
        code, stderr = run_and_judge(*command(target, run, d, corrupted, options), d)
        if memory_code == 2:
            assert code == 2, (
                f"--engine {engine} exit {code} where --engine memory refuses the input (exit 2): {stderr}"
            )
        if memory_code == 0 and code == 0:
            for output in MAIN_OUTPUTS.get(name, ["o.csv"]):
                pd.testing.assert_frame_equal(
                    pd.read_csv(d / output), pd.read_csv(memory / output), check_dtype=False, obj=f"{output} ({engine})"
                )


@budget("tables")
@given(data=st.data())
def test_corrupted_tables_never_crash(data):
    run = valid_run()
    with tempfile.TemporaryDirectory(dir=RUN_DIR) as directory:
        d = Path(directory)
        target, corrupted, _ = corrupted_table_example(data, sorted(TABLE_TARGETS), "memory", d)
        run_and_judge(*command(target, run, d, corrupted), d)


@budget("streaming")
@given(data=st.data())
def test_streaming_engine_never_crashes(data):
    with tempfile.TemporaryDirectory(dir=RUN_DIR) as directory:
        judge_engine(data, "streaming", Path(directory))


_DASK: dict = {}


def dask_scheduler() -> str:
    """The address of one local Dask cluster for the session (closed at exit): a cluster
    per example would cost seconds each. Its workers' TMPDIR is a folder of RUN_DIR,
    checked after each example."""
    if not _DASK:
        from distributed import LocalCluster

        tmp = RUN_DIR / "dask-workers-tmp"
        tmp.mkdir(exist_ok=True)
        saved = os.environ.get("TMPDIR")
        os.environ["TMPDIR"] = str(tmp)  # the worker processes inherit it
        try:
            cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0")
        finally:
            if saved is None:
                del os.environ["TMPDIR"]
            else:
                os.environ["TMPDIR"] = saved
        atexit.register(cluster.close)
        _DASK.update(cluster=cluster, tmp=tmp)
    return _DASK["cluster"].scheduler_address


@budget("dask")
@given(data=st.data())
def test_dask_engine_never_crashes(data):
    pytest.importorskip("distributed")
    with tempfile.TemporaryDirectory(dir=RUN_DIR) as directory:
        judge_engine(data, "dask", Path(directory))
    left = sorted(p.name for p in _DASK["tmp"].iterdir() if p.name.startswith(".xrayclass"))
    assert not left, f"left in the Dask workers' TMPDIR: {left}"


@budget("artifacts")
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


@budget("feature_sets")
@given(spec=fuzz_inputs.feature_set_file())
# Found by make fuzz: an unknown key added after 'features' was given a number (the harness
# copied the features as a list).
@example(
    spec={
        "document": fuzz_inputs.PAPER_DOCUMENT,
        "edits": [("value", ("features",), 0), ("unknown_key", ("name",), "sqrt")],
        "raw": "utf-8",
        "size": 3,
        "cut": 0.0,
    }
)
def test_feature_set_files_never_crash(spec):
    """A feature-set file through stage 1 and, when stage 1 takes it, stages 2 and 3."""
    run = valid_run()
    with tempfile.TemporaryDirectory(dir=RUN_DIR) as directory:
        d = Path(directory)
        features = fuzz_inputs.write_feature_set(spec, d)
        name, argv, outputs, check = command("mock", run, d, run["mock"])
        code, _ = run_and_judge(name, [*argv, "--features", features], outputs, check, d)
        if code:
            return
        stage1, model = d / "s1.csv", d / "s1_model.json"
        (d / "o.csv").rename(stage1)
        (d / "m.json").rename(model)
        name, argv, outputs, check = command("s1", run, d, stage1)
        run_and_judge(name, argv, outputs, check, d)
        crossmatched = d / "s2.csv"
        (d / "o.csv").rename(crossmatched)
        name, argv, outputs, check = command("s2", run, d, crossmatched)
        run_and_judge(name, [*argv, "--features", features, "--model", model], outputs, check, d)


@budget("labels")
@given(data=st.data())
def test_label_files_never_crash(data):
    """Label files to stage 3: the invariant, times as times, and the latest label wins."""
    run = valid_run()
    names = sorted(run["s2_table"]["name"].astype(str).unique())[:6]
    zoned = data.draw(st.sampled_from(fuzz_inputs.ZONED), label="zoned")
    hostile = data.draw(st.booleans(), label="hostile")
    files = data.draw(
        st.lists(fuzz_inputs.label_file(names, zoned, hostile), min_size=1, max_size=2), label="label files"
    )
    with tempfile.TemporaryDirectory(dir=RUN_DIR) as directory:
        d = Path(directory)
        labels = []
        for i, spec in enumerate(files):
            labels += ["--labels", fuzz_inputs.write_labels(spec, d / f"labels{i}.csv")]
        name, argv, outputs, check = command("s2", run, d, run["s2"])
        code, stderr = run_and_judge(name, [*argv, *labels], outputs, check, d)
        bad = fuzz_inputs.bad_times(files)
        assert not (code == 0 and bad), f"times that are not ISO 8601 accepted: {bad}"
        expected = fuzz_inputs.expected_labels(files)
        if code or expected is None:
            return
        result = pd.read_csv(d / "o.csv")
        # The same run with one file holding only the labels that must win.
        with tempfile.TemporaryDirectory(dir=RUN_DIR) as other:
            e = Path(other)
            resolved = e / "resolved.csv"
            expected.to_csv(resolved, index=False)
            name, argv, outputs, check = command("s2", run, e, run["s2"])
            code, stderr = run_and_judge(name, [*argv, "--labels", resolved], outputs, check, e)
            assert code == 0, stderr
            pd.testing.assert_frame_equal(result, pd.read_csv(e / "o.csv"))
