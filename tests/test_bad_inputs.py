"""Bad and awkward inputs, one row each: the exit status, the word the message must
contain, and that nothing was written or overwritten (issue 11).

Every case starts from a small valid run on a SYNTHETIC mock catalog (made once per
session), copies what it needs into its own directory, breaks one thing, and calls the
tool's ``main(argv)`` in-process. The rule checked for every case: exit 0 with a
defined result, or exit 2 (3 for a service) with exactly one ``error:`` line naming the
problem; never a traceback, never exit 1; no output on failure; every input unchanged;
no temporary file left behind.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from xrayclass.cli import mock as mock_cli
from xrayclass.cli import stages as cli
from xrayclass.constants import CLASSES, RAW_FEATURE_COLUMNS

REPOSITORY = Path(__file__).resolve().parent.parent

STAGES = {
    "clustering": cli.clustering_main,
    "crossmatch": cli.crossmatch_main,
    "classification": cli.classification_main,
    "master": cli.master_classification_main,
}


def tool(name):
    if name in STAGES:
        return STAGES[name]
    if name == "classify_source":
        from xrayclass.cli.classify_source import main
    elif name == "mock":
        main = mock_cli.main
    elif name == "analysis":
        from xrayclass.cli.analysis import main
    elif name == "fetch_csc":
        from xrayclass.cli.fetch import main
    else:
        raise KeyError(name)
    return main


def build_valid_run(directory: Path, n_detections: int = 600) -> dict:
    """A complete small run on a SYNTHETIC mock catalog; returns the paths of its files."""
    from threadpoolctl import threadpool_limits

    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    run = {
        name: d / file
        for name, file in {
            "mock": "mock.csv",
            "simbad": "mock_simbad.csv",
            "s1": "s1.csv",
            "model": "model.json",
            "s2": "s2.csv",
            "s3": "s3.csv",
            "classifier": "classifier.json",
            "outliers": "outliers.csv",
            "s4": "s4",
        }.items()
    }
    with threadpool_limits(1):
        steps = [
            (mock_cli.main, ["--n-detections", n_detections, "--seed", 1, "--output", run["mock"]]),
            (cli.clustering_main, ["--input", run["mock"], "--output", run["s1"], "--model", run["model"]]),
            (cli.crossmatch_main, ["--input", run["s1"], "--catalog", run["simbad"], "--output", run["s2"]]),
            (
                cli.classification_main,
                [
                    "--input",
                    run["s2"],
                    "--output",
                    run["s3"],
                    "--model-output",
                    run["classifier"],
                    "--outliers-output",
                    run["outliers"],
                ],
            ),
            (cli.master_classification_main, ["--input", run["s3"], "--out-dir", run["s4"]]),
        ]
        for main, argv in steps:
            assert main(["-q", *map(str, argv)]) == 0, argv
    return run


@pytest.fixture(scope="session")
def valid_run(tmp_path_factory):
    return build_valid_run(tmp_path_factory.mktemp("valid_run"))


# -- how a case is run and judged ------------------------------------------------------------


def digest(path: Path) -> str | None:
    path = Path(path)
    if path.is_dir():
        return ",".join(f"{p.name}:{digest(p)}" for p in sorted(path.iterdir()))
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None


def invoke(main: Callable, argv: list, capsys) -> tuple[int, str]:
    """Run ``main(argv)``; argparse's own errors (SystemExit) count as exit codes."""
    from threadpoolctl import threadpool_limits

    capsys.readouterr()
    with threadpool_limits(1):
        try:
            code = main([str(a) for a in argv])
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    captured = capsys.readouterr()
    return code, captured.err + captured.out


def leftovers(directory: Path) -> list[Path]:
    return [p for p in Path(directory).rglob("*") if ".tmp" in p.name]


def assert_outcome(code, stderr, expected, word, outputs=(), protected=(), before=None, directory=None):
    assert "Traceback" not in stderr, stderr
    assert code != 1, stderr
    assert code == expected, f"exit {code}, expected {expected}: {stderr}"
    if expected in (2, 3):
        errors = [line for line in stderr.splitlines() if "error:" in line]
        assert len(errors) == 1, stderr
        assert word.lower() in errors[0].lower(), errors[0]
        for output in outputs:
            assert not Path(output).exists(), f"{output} written despite the error"
    elif word:
        assert word.lower() in stderr.lower(), stderr
    if before is not None:
        assert {p: digest(p) for p in protected} == before, "an input was changed"
    if directory is not None:
        assert not leftovers(directory), leftovers(directory)


# -- making broken inputs ---------------------------------------------------------------------


def edit_table(source: Path, target: Path, change: Callable[[pd.DataFrame], pd.DataFrame]) -> Path:
    table = pd.read_csv(source, low_memory=False)
    change(table).to_csv(target, index=False)
    return target


RAW = list(RAW_FEATURE_COLUMNS)


def set_cell(column, value, rows=(0,)):
    """Set ``column`` in ``rows`` (positions among the rows that have every raw feature)."""

    def change(table):
        if isinstance(value, str) or not pd.api.types.is_numeric_dtype(table[column]):
            table[column] = table[column].astype(object)
        elif not pd.api.types.is_float_dtype(table[column]):
            table[column] = table[column].astype("float64")
        usable = np.flatnonzero(table[[c for c in RAW if c in table.columns]].notna().all(axis=1).to_numpy())
        table.loc[table.index[usable[list(rows)]], column] = value
        return table

    return change


def edit_json(source: Path, target: Path, change: Callable[[dict], None]) -> Path:
    document = json.loads(Path(source).read_text())
    change(document)
    Path(target).write_text(json.dumps(document))
    return target


def setter(path: str, value):
    def change(document):
        keys = path.split(".")
        node = document
        for key in keys[:-1]:
            node = node[key] if not isinstance(node, list) else node[int(key)]
        if isinstance(node, list) and value is _DELETE:
            del node[int(keys[-1])]
        elif isinstance(node, list):
            node[int(keys[-1])] = value
        elif value is _DELETE:
            del node[keys[-1]]
        else:
            node[keys[-1]] = value

    return change


_DELETE = object()


@dataclass
class Case:
    """One row of the table: what to break, which command, what must happen."""

    id: str
    tool: str
    make: Callable  # (run, d) -> (argv, outputs, protected)
    code: int
    word: str = ""
    check: Callable | None = None  # extra assertions on (d, stderr) for exit-0 cases
    marks: tuple = field(default_factory=tuple)


def s1(input_key="mock", change=None, extra=(), **over):
    """Stage 1 on the mock (optionally edited); outputs in the case directory."""

    def make(run, d):
        source = run[input_key]
        path = edit_table(source, d / "in.csv", change) if change else source
        args = {"--input": path, "--output": d / "out.csv", "--model": d / "model.json", **over}
        argv = [x for pair in args.items() for x in pair] + list(extra)
        outputs = [v for k, v in args.items() if k != "--input" and Path(v).parent == d and v != path]
        return argv, outputs, [path]

    return make


def s3(change=None, extra=(), source="s2", **over):
    def make(run, d):
        path = edit_table(run[source], d / "in.csv", change) if change else run[source]
        args = {
            "--input": path,
            "--output": d / "out.csv",
            "--model-output": d / "classifier.json",
            "--outliers-output": d / "outliers.csv",
            **over,
        }
        argv = [x for pair in args.items() for x in pair] + list(extra)
        outputs = [v for k, v in args.items() if k != "--input" and v != path]
        return argv, outputs, [path]

    return make


def s4(change=None, extra=()):
    def make(run, d):
        path = edit_table(run["s3"], d / "in.csv", change) if change else run["s3"]
        return ["--input", path, "--out-dir", d / "out", *extra], [d / "out"], [path]

    return make


def s2_frozen(change):
    def make(run, d):
        frozen = edit_table(run["s2"], d / "frozen.csv", change)
        return (
            ["--input", run["s1"], "--frozen", frozen, "--output", d / "out.csv"],
            [d / "out.csv"],
            [run["s1"], frozen],
        )

    return make


def s2_catalog(change=None, extra=()):
    def make(run, d):
        catalog = edit_table(run["simbad"], d / "catalog.csv", change) if change else run["simbad"]
        return (
            ["--input", run["s1"], "--catalog", catalog, "--output", d / "out.csv", *extra],
            [d / "out.csv"],
            [run["s1"], catalog],
        )

    return make


def classify_source(model_change=None, classifier_change=None, input_change=None):
    def make(run, d):
        model = edit_json(run["model"], d / "model.json", model_change) if model_change else run["model"]
        classifier = (
            edit_json(run["classifier"], d / "classifier.json", classifier_change)
            if classifier_change
            else run["classifier"]
        )
        source = edit_table(run["mock"], d / "in.csv", input_change) if input_change else run["mock"]
        return (
            ["--model", model, "--classifier", classifier, "--output", d / "out.csv", source],
            [d / "out.csv", d / "out_sources.csv"],
            [model, classifier, source],
        )

    return make


def rows_dropped(n_dropped):
    """Exactly ``n_dropped`` fewer clustered rows than the valid run."""

    def check(run, d, stderr):
        assert len(pd.read_csv(d / "out.csv")) == len(pd.read_csv(run["s1"])) - n_dropped

    return check


def finite_outputs(run, d, stderr):
    out = pd.read_csv(d / "out.csv")
    numbers = out.select_dtypes("number").to_numpy(dtype="float64")
    probabilities = out[[c for c in out.columns if c.startswith("prob_")]].to_numpy()
    assert np.isfinite(probabilities).all() and (probabilities >= 0).all() and (probabilities <= 1).all()
    assert numbers.size


def truncate_csv(source_key):
    def make_file(run, d):
        data = Path(run[source_key]).read_bytes()
        cut = d / "cut.csv"
        cut.write_bytes(data[: data.rindex(b",", 0, len(data) - 5)])  # stop inside the last row
        return cut

    return make_file


def _blank_names(table):
    table["name"] = table["name"].astype(object)
    table.loc[:4, "name"] = ""
    return table


def _unclassified_everywhere(table):
    table["main_type"] = "Unclassified"
    table[list(CLASSES)] = 0.0
    return table


def _same_class(table):
    table = table[table["main_type"] != "Unclassified"].copy()
    table["main_type"] = "AGN"
    table[list(CLASSES)] = 0.0
    table["AGN"] = 1.0
    return table


def _summary(d):
    return json.loads((d / "out" / "master_summary.json").read_text())


def _kappa_undefined(run, d, stderr):
    summary = _summary(d)
    assert summary["cohen_kappa"] is None


def _all_unclassified(run, d, stderr):
    summary = _summary(d)
    assert summary["sources"] == 0 and summary["cohen_kappa"] is None
    assert len(pd.read_csv(d / "out" / "uniquely_classified.csv")) == 0


def _one_detection(run, d, stderr):
    summary = _summary(d)
    assert summary["sources"] == 1 and summary["cohen_kappa"] is None


def same_path(key_from, key_to, maker):
    """Point one output option at another path of the case (an input or another output)."""

    def make(run, d):
        argv, outputs, protected = maker(run, d)
        i = argv.index(key_from)
        target = argv[argv.index(key_to) + 1]
        argv[i + 1] = target
        if Path(target).exists():
            protected = [*protected, target]
        outputs = [o for o in outputs if o != target]
        return argv, outputs, protected

    return make


def parent_is_file(run, d):
    (d / "afile").write_text("not a directory\n")
    return (
        ["--input", run["mock"], "--output", d / "afile" / "out.csv", "--model", d / "model.json"],
        [d / "model.json"],
        [run["mock"], d / "afile"],
    )


def gamma_huge(table):
    table.loc[0, "powlaw_gamma"] = 1e308
    return table


def column_zero(column):
    def change(table):
        table[column] = 0.0
        return table

    return change


def drop_column(column):
    def change(table):
        return table.drop(columns=[column])

    return change


def duplicate_rows(table):
    return pd.concat([table, table.iloc[:3]], ignore_index=True)


def _no_references(table):
    table["main_type"] = "NaN"
    return table


def _only_references(table):
    table["main_type"] = "AGN"
    return table


def references_of_sources(n_sources):
    """Keep the SIMBAD classes of the ``n_sources`` sources with the most references; the rest unmatched."""

    def change(table):
        reference = table["main_type"].isin(CLASSES)
        kept = table.loc[reference, "name"].value_counts(sort=True).index[:n_sources]
        table.loc[reference & ~table["name"].isin(kept), "main_type"] = "NaN"
        return table

    return change


def _one_reference_per_source(table):
    """Three references, each of another class and source: no class has three."""
    reference = table["main_type"].isin(CLASSES)
    first = table.loc[reference].drop_duplicates("main_type").drop_duplicates("name").head(3).index
    table.loc[reference & ~table.index.isin(first), "main_type"] = "NaN"
    return table


N_MOCK = 600


CASES = [
    # -- outputs that would destroy an input or each other (lost data, exit 0 before) --
    Case("s1-model-is-input", "clustering", same_path("--model", "--input", s1()), 2, "overwrite"),
    Case("s1-model-is-output", "clustering", same_path("--model", "--output", s1()), 2, "two different outputs"),
    Case("s1-output-is-input", "clustering", same_path("--output", "--input", s1()), 2, "overwrite"),
    Case(
        "s3-outliers-is-output",
        "classification",
        same_path("--outliers-output", "--output", s3()),
        2,
        "two different outputs",
    ),
    Case("s3-model-output-is-input", "classification", same_path("--model-output", "--input", s3()), 2, "overwrite"),
    Case("s3-outliers-is-input", "classification", same_path("--outliers-output", "--input", s3()), 2, "overwrite"),
    Case("s1-parent-is-a-file", "clustering", parent_is_file, 2, "not a directory"),
    Case("s1-output-unknown-format", "clustering", s1(**{"--output": "out.txt"}), 2, "unknown table format"),
    # -- values outside their physical range: dropped and counted, never clipped --
    Case(
        "s1-powlaw-gamma-1e308", "clustering", s1(change=gamma_huge), 0, "powlaw_gamma outside", check=rows_dropped(1)
    ),
    Case(
        "s1-hard-hm-1e308",
        "clustering",
        s1(change=set_cell("hard_hm", 1e308)),
        0,
        "hard_hm outside",
        check=rows_dropped(1),
    ),
    Case(
        "s1-bb-kt-negative",
        "clustering",
        s1(change=set_cell("bb_kt", -0.5, rows=(0, 1))),
        0,
        "bb_kt outside",
        check=rows_dropped(2),
    ),
    Case(
        "s1-var-sigma-negative",
        "clustering",
        s1(change=set_cell("var_sigma_b", -1.0)),
        0,
        "var_sigma_b outside",
        check=rows_dropped(1),
    ),
    Case(
        "s1-var-prob-above-1",
        "clustering",
        s1(change=set_cell("var_prob_h", 1.5)),
        0,
        "var_prob_h outside",
        check=rows_dropped(1),
    ),
    Case("s3-bb-kt-negative", "classification", s3(change=set_cell("bb_kt", -1.0)), 0, "bb_kt outside"),
    Case("s3-var-sigma-negative", "classification", s3(change=set_cell("var_sigma_h", -1.0)), 0, "outside"),
    Case("s1-log-feature-zero-everywhere", "clustering", s1(change=column_zero("bb_kt")), 2, "zero for every"),
    Case("s1-missing-column", "clustering", s1(change=drop_column("hard_hm")), 2, "missing required columns"),
    Case("s1-text-in-number", "clustering", s1(change=set_cell("hard_ms", "abc")), 2, "non-numeric"),
    # -- identities: names, repeats, positions, clusters --
    Case("s1-blank-names", "clustering", s1(change=_blank_names), 2, "blank source name"),
    Case("s1-duplicated-detections", "clustering", s1(change=duplicate_rows), 2, "repeat an earlier detection"),
    Case(
        "s1-duplicated-detections-allowed",
        "clustering",
        s1(change=duplicate_rows, extra=["--allow-duplicates"]),
        0,
        "repeating an earlier detection",
        check=rows_dropped(0),
    ),
    Case("s1-dec-123", "clustering", s1(change=set_cell("dec", 123.0)), 2, "position"),
    Case("s1-ra-nan", "clustering", s1(change=set_cell("ra", np.nan)), 2, "position"),
    Case("s2-frozen-cluster-5.5", "crossmatch", s2_frozen(set_cell("cluster", 5.5)), 2, "cluster"),
    Case("s2-frozen-cluster-minus-1", "crossmatch", s2_frozen(set_cell("cluster", -1)), 2, "cluster"),
    Case("s2-frozen-cluster-nan", "crossmatch", s2_frozen(set_cell("cluster", np.nan)), 2, "cluster"),
    Case("s2-frozen-cluster-too-big", "crossmatch", s2_frozen(set_cell("cluster", 6)), 2, "cluster"),
    # Found by the fuzz test (tests/test_fuzz.py), kept here:
    Case("s2-frozen-blank-name", "crossmatch", s2_frozen(set_cell("name", np.nan)), 2, "blank source name"),
    Case(
        "s2-catalog-nan-positions", "crossmatch", s2_catalog(set_cell("ra", np.nan, rows=(0, 1, 2))), 0, "no position"
    ),
    Case("s2-catalog-dec-123", "crossmatch", s2_catalog(set_cell("dec", 123.0)), 2, "impossible position"),
    Case("s2-catalog-radius-0", "crossmatch", s2_catalog(extra=["--radius", "0"]), 2, "radius"),
    Case("s3-cluster-5.5", "classification", s3(change=set_cell("cluster", 5.5)), 2, "cluster"),
    Case("s3-cluster-nan", "classification", s3(change=set_cell("cluster", np.nan)), 2, "cluster"),
    Case("s3-no-references", "classification", s3(change=_no_references), 2, "reference"),
    Case("s3-only-references", "classification", s3(change=_only_references), 2, "nothing to classify"),
    # -- stage 4: probabilities, degenerate votes --
    Case("s4-probability-minus-5", "master", s4(set_cell("QSO", -5.0)), 2, "[0, 1]"),
    Case("s4-probability-inf", "master", s4(set_cell("AGN", np.inf)), 2, "[0, 1]"),
    Case("s4-probabilities-not-summing-to-1", "master", s4(set_cell("QSO", 0.9, rows=range(0, 50))), 2, "sum to 1"),
    Case(
        "s4-one-detection",
        "master",
        s4(lambda t: t[t["main_type"] != "Unclassified"].head(1)),
        0,
        "undefined",
        check=_one_detection,
    ),
    Case("s4-same-class-everywhere", "master", s4(_same_class), 0, "undefined", check=_kappa_undefined),
    Case("s4-all-unclassified", "master", s4(_unclassified_everywhere), 0, "no source", check=_all_unclassified),
    Case("s4-blank-names", "master", s4(_blank_names), 2, "blank source name"),
    Case("s4-duplicated-detections", "master", s4(duplicate_rows), 2, "repeat an earlier detection"),
    # -- a table cut short --
    Case(
        "s1-csv-cut-mid-row",
        "clustering",
        lambda run, d: (
            ["--input", truncate_csv("mock")(run, d), "--output", d / "out.csv", "--model", d / "model.json"],
            [d / "out.csv", d / "model.json"],
            [d / "cut.csv"],
        ),
        2,
        "cut short",
    ),
    Case(
        "s4-csv-cut-mid-row",
        "master",
        lambda run, d: (["--input", truncate_csv("s3")(run, d), "--out-dir", d / "out"], [d / "out"], [d / "cut.csv"]),
        2,
        "cut short",
    ),
    # -- arguments --
    Case("s1-seed-minus-1", "clustering", s1(**{"--seed": "-1"}), 2, "--seed"),
    Case("s1-fit-sample-3", "clustering", s1(**{"--fit-sample": "3"}), 2, "fit-sample"),
    # -- artifacts (classify_source.py) --
    Case(
        "model-weights-all-zero",
        "classify_source",
        classify_source(setter("mixture.weights", [0.0] * 6)),
        2,
        "mixture.weights",
    ),
    Case(
        "model-weight-nan",
        "classify_source",
        classify_source(setter("mixture.weights.2", float("nan"))),
        2,
        "mixture.weights",
    ),
    Case(
        "model-cholesky-edited",
        "classify_source",
        classify_source(setter("mixture.precisions_cholesky.0.0.5", 3.0)),
        2,
        "precisions_cholesky",
    ),
    Case("model-missing-key", "classify_source", classify_source(setter("mixture.means", _DELETE)), 2, "mixture.means"),
    Case(
        "model-11-features",
        "classify_source",
        classify_source(lambda doc: doc.update(features=doc["features"][:11])),
        2,
        "features",
    ),
    Case(
        "model-7-components",
        "classify_source",
        classify_source(setter("mixture.n_components", 7)),
        2,
        "mixture.weights",
    ),
    # Found by the fuzz test (make fuzz), kept here:
    Case(
        "model-n-iter-infinite",
        "classify_source",
        classify_source(setter("mixture.n_iter", float("inf"))),
        2,
        "mixture.n_iter",
    ),
    Case(
        "model-cluster-provenance-not-a-table",
        "classify_source",  # found by make fuzz after the frozen-cluster model (issue 9) was merged
        classify_source(setter("clusters", float("nan"))),
        2,
        "clusters",
    ),
    Case("model-wrong-format", "classify_source", classify_source(setter("format", "something")), 2, "format"),
    Case(
        "classifier-nan-inverse-covariance",
        "classify_source",
        classify_source(classifier_change=lambda doc: _break_inverse(doc)),
        2,
        "inverse_covariance",
    ),
    Case(
        "classifier-quantile-deleted",
        "classify_source",  # found by make fuzz
        classify_source(classifier_change=setter("outlier_quantiles.0", _DELETE)),
        2,
        "outlier_quantiles",
    ),
    Case(
        "classifier-likelihood-missing",
        "classify_source",  # found by make fuzz after the likelihood option (issue 13) was merged
        classify_source(classifier_change=setter("references.likelihood", None)),
        2,
        "references.likelihood",
    ),
    Case(
        "classifier-temperature-negative",
        "classify_source",
        classify_source(classifier_change=setter("calibration", {"temperature": -1.0})),
        2,
        "calibration.temperature",
    ),
    Case(
        "classifier-unknown-method",
        "classify_source",
        classify_source(classifier_change=setter("method", "random-forest")),
        2,
        "method",
    ),
    Case(
        "classifier-missing-key",
        "classify_source",
        classify_source(classifier_change=setter("naive_bayes", _DELETE)),
        2,
        "naive_bayes",
    ),
    Case(
        "classify-source-output-is-input",
        "classify_source",
        lambda run, d: (
            ["--model", run["model"], "--classifier", run["classifier"], "--output", run["mock"], run["mock"]],
            [],
            [run["mock"]],
        ),
        2,
        "overwrite",
    ),
    # -- the other tools --
    Case(
        "mock-bad-share",
        "mock",
        lambda run, d: (["--n-detections", "50", "--labeled-share", "2", "--output", d / "m.csv"], [d / "m.csv"], []),
        2,
        "share",
    ),
    Case(
        "mock-output-format",
        "mock",
        lambda run, d: (["--n-detections", "50", "--output", d / "m.txt"], [d / "m.txt"], []),
        2,
        "format",
    ),
    Case(
        "fetch-csc-output-format",
        "fetch_csc",
        lambda run, d: (["--output", d / "x.txt"], [d / "x.txt"], []),
        2,
        "format",
    ),
    Case(
        "analysis-compare-missing-catalog",
        "analysis",
        lambda run, d: (
            [
                "compare",
                "--catalog",
                d / "nothing.csv",
                "--uniquely",
                run["s4"] / "uniquely_classified.csv",
                "--output",
                d / "cmp.csv",
            ],
            [d / "cmp.csv"],
            [],
        ),
        2,
        "not found",
    ),
    # Issue 22, order: calibration folds that cannot be made, tuning folds on too few references.
    Case("s3-calibrate-two-sources", "classification", s3(references_of_sources(2), ["--calibrate"]), 2, "2 sources"),
    Case(
        "s3-calibrate-two-sources-naive-bayes",
        "classification",
        s3(references_of_sources(2), ["--calibrate", "--method", "naive-bayes"]),
        2,
        "2 sources",
    ),
    Case(
        "s3-calibrate-two-sources-streaming",
        "classification",
        s3(references_of_sources(2), ["--calibrate", "--engine", "streaming"]),
        2,
        "2 sources",
    ),
    Case(
        "s3-calibrate-no-class-of-three",
        "classification",
        s3(_one_reference_per_source, ["--calibrate"]),
        2,
        "no class has 3 references",
    ),
    Case(
        "s3-two-references",
        "classification",
        s3(lambda t: _one_reference_per_source(t).pipe(references_of_sources(2))),
        0,
    ),
    Case(
        "s3-two-references-naive-bayes",
        "classification",
        s3(lambda t: _one_reference_per_source(t).pipe(references_of_sources(2)), ["--method", "naive-bayes"]),
        0,
    ),
]


def _break_inverse(document):
    for per_class in document["references"]["clusters"].values():
        for entry in per_class.values():
            if entry["scored"]:
                entry["inverse_covariance"][0][0] = float("nan")
                return
    raise AssertionError("no scored class in the valid run")


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case, valid_run, tmp_path, capsys):
    argv, outputs, protected = case.make(valid_run, tmp_path)
    before = {p: digest(p) for p in protected}
    code, stderr = invoke(tool(case.tool), argv, capsys)
    assert_outcome(code, stderr, case.code, case.word, outputs, protected, before, tmp_path)
    if case.check is not None:
        case.check(valid_run, tmp_path, stderr)


def test_full_disk_is_one_line(valid_run, tmp_path, capsys, monkeypatch):
    """ENOSPC during the write: one line, exit 2, no output, no temporary."""

    def full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(pd.DataFrame, "to_csv", full)
    code, stderr = invoke(
        cli.master_classification_main, ["--input", valid_run["s3"], "--out-dir", tmp_path / "o"], capsys
    )
    assert_outcome(code, stderr, 2, "no space left", [tmp_path / "o" / "uniquely_classified.csv"], directory=tmp_path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write into any directory")
def test_unwritable_output_directory_is_reported_before_the_fit(valid_run, tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        code, stderr = invoke(
            cli.clustering_main,
            ["--input", valid_run["mock"], "--output", locked / "o.csv", "--model", tmp_path / "m.json"],
            capsys,
        )
    finally:
        locked.chmod(0o700)
    assert_outcome(code, stderr, 2, "not writable", [tmp_path / "m.json"])


def test_an_unexpected_error_says_it_is_a_bug(valid_run, tmp_path, capsys, monkeypatch):
    import xrayclass.stages.master_classification

    def broken(*args, **kwargs):
        raise ZeroDivisionError("simulated")

    monkeypatch.setattr(xrayclass.stages.master_classification, "master_classification", broken)
    code, stderr = invoke(
        cli.master_classification_main, ["--input", valid_run["s3"], "--out-dir", tmp_path / "o"], capsys
    )
    assert code == 1 and "bug" in stderr and "Traceback" not in stderr
    code, stderr = invoke(
        cli.master_classification_main, ["-v", "--input", valid_run["s3"], "--out-dir", tmp_path / "o"], capsys
    )
    assert code == 1 and "Traceback" in stderr


# -- temporaries of killed runs --------------------------------------------------------------


def test_a_stale_temporary_is_removed_by_the_next_run(valid_run, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    # A dead process id (this one's child, reaped) and the older name without one.
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = [out / f".uniquely_classified.{child.stdout.strip()}-abc123.tmp.csv", out / ".master_summary.x7y.tmp.json"]
    for path in stale:
        path.write_text("partial")
    code, stderr = invoke(cli.master_classification_main, ["--input", valid_run["s3"], "--out-dir", out], capsys)
    assert code == 0, stderr
    assert not any(path.exists() for path in stale)
    assert "interrupted run" in stderr
    assert not leftovers(out)


def test_a_temporary_of_a_running_process_is_left_alone(valid_run, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    alive = out / f".uniquely_classified.{os.getppid()}-abc123.tmp.csv"
    alive.write_text("being written")
    code, stderr = invoke(cli.master_classification_main, ["--input", valid_run["s3"], "--out-dir", out], capsys)
    assert code == 0 and alive.exists() and "left alone" in stderr


def stage4_with_slow_writes(slow_body, setup=()):
    """Stage 4 in a child process whose table writes run ``slow_body`` after writing."""
    # The child starts with Ctrl-C as a terminal leaves it: a child inherits an ignored or
    # blocked SIGINT from its parent, and the test runner's may have been changed by then.
    return (
        "import signal, sys, threading, time\n"
        "import pandas as pd\n"
        "from xrayclass.cli import stages as cli\n"
        "signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})\n"
        "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
        + "".join(f"{line}\n" for line in setup)
        + "original = pd.DataFrame.to_csv\n"
        "def slow(self, path, *args, **kwargs):\n"
        "    original(self, path, *args, **kwargs)\n"
        + "".join(f"    {line}\n" for line in slow_body)
        + "pd.DataFrame.to_csv = slow\n"
        "sys.exit(cli.master_classification_main(sys.argv[1:]))\n"
    )


def start_child(script, valid_run, out):
    return subprocess.Popen(
        [sys.executable, "-c", script, "--input", str(valid_run["s3"]), "--out-dir", str(out)],
        cwd=REPOSITORY,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPOSITORY)},
    )


SLOW_WRITER = stage4_with_slow_writes(
    [
        'sys.stdout.write("WRITING\\n")  # one write: the two tables are written at once',
        "sys.stdout.flush()",
        "time.sleep(60)",
    ]
)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_run_killed_mid_write_leaves_nothing(valid_run, tmp_path, signum):
    out = tmp_path / "out"
    process = start_child(SLOW_WRITER, valid_run, out)
    try:
        assert process.stdout.readline().strip() == "WRITING"
        assert leftovers(out), "the temporary should exist while writing"
        process.send_signal(signum)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 128 + signum, stderr
    assert "Traceback" not in stderr
    assert not leftovers(out)
    assert not (out / "uniquely_classified.csv").exists()


SIGNAL_TO_A_WRITER = stage4_with_slow_writes(
    [
        "with LOCK:",
        "    WRITTEN.append(threading.current_thread().name)",
        "    last = len(WRITTEN) == 2",
        "if last and threading.current_thread() is not threading.main_thread():",
        "    # The kernel hands a process's signal to any of its threads: here, to the writer",
        "    # that finished last, while the other write still sleeps in the file system.",
        "    signal.pthread_kill(threading.get_ident(), signal.SIGINT)",
        "time.sleep(60)",
    ],
    setup=["LOCK = threading.Lock()", "WRITTEN = []"],
)


def test_ctrl_c_landing_on_a_writer_thread_stops_the_run_at_once(valid_run, tmp_path):
    """Only the main thread acts on signals: it must neither write nor sit in a join meanwhile.

    Stage 4 writes two tables at once. The one that finishes last signals itself while the
    other sleeps; were that other write on the main thread, Ctrl-C would wait for it.
    """
    out = tmp_path / "out"
    process = start_child(SIGNAL_TO_A_WRITER, valid_run, out)
    try:
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, stderr
    assert "interrupted; nothing written" in stderr
    assert not leftovers(out)
    assert not (out / "uniquely_classified.csv").exists()


def test_a_sigkilled_run_is_cleaned_up_by_the_next(valid_run, tmp_path, capsys):
    out = tmp_path / "out"
    process = start_child(SLOW_WRITER, valid_run, out)
    try:
        assert process.stdout.readline().strip() == "WRITING"
        process.kill()
        process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert leftovers(out), "SIGKILL cannot be caught: the temporary stays until the next run"
    code, _stderr = invoke(cli.master_classification_main, ["--input", valid_run["s3"], "--out-dir", out], capsys)
    assert code == 0 and not leftovers(out)
