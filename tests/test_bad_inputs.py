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
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
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


# Issue 22, explorer and figures:
def figures_run(name=None, unmatched=False):
    """``analysis.py figures`` on a copy of the valid run's stage outputs. With ``name``, the
    most detected source is renamed so and drawn (``--source``); with ``unmatched``, the
    detections of that source are missing from the stage-3 table (tables of two runs)."""

    def make(run, d):
        from xrayclass.io.paths import RunLayout

        layout = RunLayout(d / "run")
        layout.directory.mkdir()
        uniquely_path = run["s4"] / "uniquely_classified.csv"
        top = pd.read_csv(uniquely_path).sort_values("detection_count", ascending=False)["name"].iloc[0]
        for source, target in (
            (run["s1"], layout.clusters),
            (run["s3"], layout.detections),
            (uniquely_path, layout.uniquely),
        ):
            table = pd.read_csv(source, low_memory=False)
            if name is not None:
                table["name"] = table["name"].replace({top: name})
            if unmatched and target == layout.detections:
                table = table[table["name"] != top]
            table.to_csv(target, index=False)
        argv = ["figures", "--run-dir", layout.directory, *(["--source", name] if name else [])]
        return argv, [layout.figures], [layout.clusters, layout.detections, layout.uniquely]

    return make


def figure_drawn(name):
    def check(run, d, stderr):
        from xrayclass.io.paths import source_figure

        assert (d / "run" / "figures" / f"{source_figure(name)}.png").stat().st_size > 0

    return check


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


# Issue 22, inputs: makers for label times, files that are not files, feature-set files.


def write_labels(path: Path, rows: list[tuple[str, str, str]]) -> Path:
    """A labels.csv as the explorer exports it, from (name, class, time) rows."""
    table = pd.DataFrame(rows, columns=["name", "class", "time"]).assign(comment="", labeler="pytest")
    table[["name", "class", "comment", "labeler", "time"]].to_csv(path, index=False)
    return path


def a_reference(run) -> tuple[str, str]:
    """The name and class of a source that is a reference in the valid run's stage-2 table."""
    table = pd.read_csv(run["s2"], usecols=["name", "main_type"])
    row = table[table["main_type"].isin(CLASSES)].iloc[0]
    return str(row["name"]), str(row["main_type"])


def s3_labels(*files):
    """Stage 3 with one ``--labels`` per file; a file is ``(run, d, path) -> path``."""

    def make(run, d):
        argv, outputs, protected = s3()(run, d)
        paths = [write(run, d, d / f"labels{i}.csv") for i, write in enumerate(files)]
        for path in paths:
            argv += ["--labels", path]
        return argv, outputs, [*protected, *paths]

    return make


def labels_at(time: str, label: str | None = None):
    """A labels file giving a reference source ``label`` (default: its own class) at ``time``."""
    return lambda run, d, path: write_labels(path, [(a_reference(run)[0], label or a_reference(run)[1], time)])


def later_instant_wins(run, d, stderr):
    """The 'other' label at 14:00 UTC (written 09:00-05:00) beat the class at 12:30 UTC."""
    own = json.loads((d / "classifier.json").read_text())["own_labels"]
    assert own["removed_references"] > 0 and own["confirmed_references"] == 0, own


def feature_set_file(edit: Callable[[str], str] | None = None, raw: bytes | None = None):
    """Stage 1 with ``--features`` a copy of the paper's set, edited, or the bytes ``raw``."""

    def make(run, d):
        from xrayclass.core.featuresets import builtin

        path = d / "set.toml"
        if raw is not None:
            path.write_bytes(raw)
        else:
            path.write_text(edit(builtin("paper").read_text(encoding="utf-8")), encoding="utf-8")
        argv, outputs, protected = s1(extra=["--features", path])(run, d)
        return argv, outputs, [*protected, path]

    return make


def not_a_file(option: str, maker: Callable, name: str, kind: str = "dev-null"):
    """``maker``'s case with ``option`` naming a directory or a link to /dev/null called ``name``."""

    def make(run, d):
        argv, outputs, protected = maker(run, d)
        path = d / name
        if kind == "directory":
            path.mkdir()
        else:
            path.symlink_to(os.devnull)
        if option in argv:
            argv[argv.index(option) + 1] = path
        else:
            argv += [option, path]
        return argv, outputs, protected

    return make


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
    Case("s2-catalog-dec-123", "crossmatch", s2_catalog(set_cell("dec", 123.0)), 2, "no valid position"),
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
        "model-log-of-a-hardness-ratio",  # the rule of a feature-set file, for an artifact edited by hand
        "classify_source",
        classify_source(lambda doc: doc["feature_set"]["log"].append("hard_hm")),
        2,
        "hard_hm (in [-1, 1])",
    ),
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
    # -- Issue 22, inputs: label times, files that are not files, feature-set files --
    Case("labels-time-yesterday", "classification", s3_labels(labels_at("yesterday")), 2, "'yesterday'"),
    Case("labels-time-spreadsheet-date", "classification", s3_labels(labels_at("05/12/2026")), 2, "05/12/2026"),
    Case(
        "labels-later-instant-wins-not-later-text",
        "classification",
        s3_labels(labels_at("2026-05-12T09:00:00-05:00", "other"), labels_at("2026-05-12T12:30:00Z")),
        0,
        "own labels",
        check=later_instant_wins,
    ),
    Case(
        "labels-file-is-a-directory",
        "classification",
        not_a_file("--labels", s3(), "labels.csv", "directory"),
        2,
        "is a directory",
    ),
    Case("s1-input-is-dev-null", "clustering", not_a_file("--input", s1(), "in.csv"), 2, "character device"),
    Case(
        "s2-frozen-is-dev-null",
        "crossmatch",
        not_a_file("--frozen", s2_frozen(lambda table: table), "f.csv"),
        2,
        "character",
    ),
    Case("features-is-dev-null", "clustering", not_a_file("--features", s1(), "set.toml"), 2, "character device"),
    Case("features-latin-1", "clustering", feature_set_file(raw="# caf\xe9\n".encode("latin-1")), 2, "UTF-8"),
    Case(
        "features-nested-1000-deep",
        "clustering",
        feature_set_file(raw=b"features = " + b"[" * 1000 + b"]" * 1000 + b"\n"),
        2,
        "nested more than",
    ),
    Case(
        "features-2-mb",
        "clustering",
        feature_set_file(lambda text: text + "#" * 2_000_000 + "\n"),
        2,
        "too large",
    ),
    Case(
        "features-log-of-a-hardness-ratio",
        "clustering",
        feature_set_file(lambda text: text.replace('log = ["bb_kt",', 'log = ["hard_hm", "bb_kt",')),
        2,
        "hard_hm (in [-1, 1])",
    ),
    Case(
        "features-log-of-powlaw-gamma",  # positive in this catalog, not in the CSC
        "clustering",
        feature_set_file(
            lambda text: text.replace('log = ["bb_kt",', 'log = ["powlaw_gamma", "bb_kt",').replace(
                'minmax = ["powlaw_gamma"]', "minmax = []"
            )
        ),
        2,
        "powlaw_gamma (in [-20, 20])",
    ),
    Case(
        "classify-source-model-is-a-directory",
        "classify_source",
        not_a_file("--model", classify_source(), "model.json", "directory"),
        2,
        "is a directory",
    ),
    Case(
        "classify-source-classifier-is-a-directory",
        "classify_source",
        not_a_file("--classifier", classify_source(), "classifier.json", "directory"),
        2,
        "is a directory",
    ),
]


# -- issue 22, numbers: makers and checks ------------------------------------------------------


def _subnormal_sigma(table):
    # var_mean_b 1 keeps var_ratio_b at 5e-324 too: one tenth of it, the log shift, is 0.
    table = set_cell("var_sigma_b", 5e-324)(table)
    return set_cell("var_mean_b", 1.0)(table)


def no_numpy_repr(run, d, stderr):
    assert "np.float64" not in stderr and "np.int64" not in stderr, stderr


def s2_frozen_alone(change):
    """Stage 2 --frozen on a copy of the stage-1 table with no model beside it (none re-estimated)."""

    def make(run, d):
        stage1 = d / "s1.csv"
        stage1.write_bytes(Path(run["s1"]).read_bytes())
        frozen = edit_table(run["s2"], d / "frozen.csv", change)
        return ["--input", stage1, "--frozen", frozen, "--output", d / "out.csv"], [d / "out.csv"], [stage1, frozen]

    return make


def _without_prob_columns(change):
    def edit(table):
        return change(table.drop(columns=[c for c in table.columns if c.startswith("prob_")]))

    return edit


def _one_class(table):
    table["main_type"] = table["main_type"].astype(object)
    table.loc[table["main_type"].isin(CLASSES), "main_type"] = "QSO"
    return table


def astropy_table(key, file, column, unit, scale=1.0, rows=40):
    """The first ``rows`` of a run's table as a VOTable or FITS file whose ``column`` carries ``unit``."""
    from astropy.table import Table

    def make_file(run, d):
        table = Table.from_pandas(pd.read_csv(run[key], low_memory=False).head(rows))
        table[column] = table[column] * scale
        table[column].unit = unit
        table.write(d / file, format="votable" if file.endswith(".vot") else "fits")
        return d / file

    return make_file


def classify_file(make_file):
    def make(run, d):
        source = make_file(run, d)
        return (
            ["--model", run["model"], "--classifier", run["classifier"], "--output", d / "out.csv", source],
            [d / "out.csv", d / "out_sources.csv"],
            [source],
        )

    return make


def same_positions_as_degrees(run, d, stderr):
    """The converted positions are the mock's, to rounding."""
    out = pd.read_csv(d / "out.csv")
    mock = pd.read_csv(run["mock"]).head(40).drop_duplicates(["name", "obsid"])
    both = out.merge(mock, on=["name", "obsid"], suffixes=("", "_mock"), validate="many_to_one")
    assert len(both) == len(out) > 0
    np.testing.assert_allclose(both["ra"], both["ra_mock"], rtol=1e-12)


def _formula_names(table):
    table["name"] = table["name"].astype(object)
    table.loc[table["name"] == table["name"].iloc[0], "name"] = '=HYPERLINK("http://x","y")'
    return table


def formula_kept(run, d, stderr):
    names = pd.concat([pd.read_csv(p) for p in sorted((d / "out").glob("*.csv"))])["name"]
    assert '=HYPERLINK("http://x","y")' in set(names)


CASES += [
    # Issue 22, numbers: subnormal and huge values, positions, units, classes, formulas.
    Case(
        "s1-var-sigma-subnormal",
        "clustering",
        s1(change=_subnormal_sigma),
        0,
        "var_sigma_b subnormal",
        check=rows_dropped(1),
    ),
    Case(
        "s1-var-sigma-1e300",
        "clustering",
        s1(change=set_cell("var_sigma_b", 1e300)),
        0,
        "var_ratio_b outside [0, 1000]",
        check=rows_dropped(1),
    ),
    Case("s1-ra-1e308", "clustering", s1(change=set_cell("ra", 1e308)), 2, "ra 1e+308", check=no_numpy_repr),
    Case("s1-ra-360", "clustering", s1(change=set_cell("ra", 360.0)), 2, "position", check=no_numpy_repr),
    Case("s1-ra-negative", "clustering", s1(change=set_cell("ra", -0.5)), 2, "position"),
    Case(
        "s1-ra-1e308-streaming",
        "clustering",
        s1(change=set_cell("ra", 1e308), extra=["--engine", "streaming"]),
        2,
        "ra in [0, 360)",
        check=no_numpy_repr,
    ),
    Case("s2-catalog-ra-1e308", "crossmatch", s2_catalog(set_cell("ra", 1e308)), 2, "position"),
    Case("s2-catalog-ra-minus-1", "crossmatch", s2_catalog(set_cell("ra", -1.0)), 2, "position"),
    Case("s3-ra-1e308", "classification", s3(change=set_cell("ra", 1e308)), 2, "position", check=no_numpy_repr),
    Case(
        "classify-source-ra-1e308",
        "classify_source",
        classify_source(input_change=set_cell("ra", 1e308)),
        2,
        "position",
    ),
    Case(
        "s2-frozen-cluster-99-message",
        "crossmatch",
        s2_frozen(set_cell("cluster", 99)),
        2,
        "(99.0)",
        check=no_numpy_repr,
    ),
    Case(
        "s2-frozen-cluster-99-no-prob-no-model",
        "crossmatch",
        s2_frozen_alone(_without_prob_columns(set_cell("cluster", 99))),
        2,
        "without gaps",
    ),
    Case("s4-main-type-Foo", "master", s4(set_cell("main_type", "Foo")), 2, "'Foo'"),
    Case("s4-main-type-lower-case", "master", s4(set_cell("main_type", "qso")), 2, "case matters"),
    Case(
        "s4-main-type-lower-case-streaming",
        "master",
        s4(set_cell("main_type", "qso"), extra=["--engine", "streaming"]),
        2,
        "case matters",
    ),
    Case(
        "analysis-validate-one-class",
        "analysis",
        lambda run, d: (
            [
                "validate",
                "--input",
                edit_table(run["s2"], d / "one.csv", _one_class),
                "--run-dir",
                d / "v",
                "--seeds",
                "1",
                "--method",
                "hist-gradient-boosting",
            ],
            [d / "v"],
            [d / "one.csv"],
        ),
        2,
        "one class",
    ),
    Case(
        "classify-source-votable-ra-in-hours",
        "classify_source",
        classify_file(astropy_table("mock", "in.vot", "ra", "h", scale=1 / 15)),
        0,
        "'ra' converted from",
        check=same_positions_as_degrees,
    ),
    Case(
        "classify-source-fits-ra-in-radians",
        "classify_source",
        classify_file(astropy_table("mock", "in.fits", "ra", "rad", scale=np.pi / 180)),
        0,
        "'ra' converted from rad",
        check=same_positions_as_degrees,
    ),
    Case(
        "classify-source-votable-bb-kt-in-ev",
        "classify_source",
        classify_file(astropy_table("mock", "in.vot", "bb_kt", "eV", scale=1000.0)),
        0,
        "'bb_kt' converted from eV to keV",
    ),
    Case(
        "classify-source-votable-ra-in-metres",
        "classify_source",
        classify_file(astropy_table("mock", "in.vot", "ra", "m")),
        2,
        "column 'ra' has unit 'm'",
    ),
    Case(
        "classify-source-votable-hardness-in-kev",
        "classify_source",
        classify_file(astropy_table("mock", "in.vot", "hard_hm", "keV")),
        2,
        "pure number",
    ),
    Case(
        "s4-formula-like-name",
        "master",
        s4(_formula_names),
        0,
        "spreadsheet may run them as formulas",
        check=formula_kept,
    ),
]


# -- Issue 22, engines: the streaming and Dask engines fail as the stages do -------------------


def parquet_input(key: str, edit: Callable | None = None, row_group_size: int = 50):
    """A run's table as Parquet (row groups of ``row_group_size``), its Arrow table edited by ``edit``."""

    def make_file(run, d):
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pandas(pd.read_csv(run[key], low_memory=False), preserve_index=False)
        path = d / "in.parquet"
        pq.write_table(edit(table) if edit else table, path, row_group_size=row_group_size)
        return path

    return make_file


def duplicated_column(name: str):
    def edit(table):
        import pyarrow as pa

        return pa.Table.from_arrays([*table.columns, table.column(name)], names=[*table.column_names, name])

    return edit


def corrupt_in_the_middle(make_file: Callable, column: str):
    """``make_file``'s Parquet file with ``column``'s chunk of the middle row group overwritten.

    The header and footer stay intact, so the file opens; only reading that chunk fails
    (a column the client's passes of stage 3 do not read: only the workers do).
    """

    def corrupted(run, d):
        import pyarrow.parquet as pq

        path = make_file(run, d)
        metadata = pq.ParquetFile(path).metadata
        group = metadata.row_group(metadata.num_row_groups // 2)
        chunk = next(group.column(i) for i in range(group.num_columns) if group.column(i).path_in_schema == column)
        start = chunk.dictionary_page_offset or chunk.data_page_offset
        data = bytearray(path.read_bytes())
        data[start + 8 : start + chunk.total_compressed_size] = b"\xff" * (chunk.total_compressed_size - 8)
        path.write_bytes(bytes(data))
        return path

    return corrupted


def on_file(maker: Callable, make_file: Callable):
    """``maker``'s case (s3 or s4) with its input replaced by ``make_file``'s file."""

    def make(run, d):
        argv, outputs, _ = maker(run, d)
        path = make_file(run, d)
        argv[argv.index("--input") + 1] = path
        return argv, outputs, [path]

    return make


def engine(name: str) -> list[str]:
    return ["--engine", name]


SLOW = (pytest.mark.slow,)
NO_SCHEDULER = "tcp://127.0.0.1:1"  # nothing listens on port 1: refused at once, retried until the time-out

CASES += [
    *(
        Case(
            f"s3-parquet-duplicated-column-{name}",
            "classification",
            on_file(s3(extra=engine(name)), parquet_input("s2", duplicated_column("hard_hm"))),
            2,
            "'hard_hm' appears more than once",
            marks=SLOW if name == "dask" else (),
        )
        for name in ("memory", "streaming", "dask")
    ),
    Case(
        "s1-parquet-duplicated-column-streaming",
        "clustering",
        on_file(s1(extra=engine("streaming")), parquet_input("mock", duplicated_column("ra"))),
        2,
        "'ra' appears more than once",
    ),
    Case(
        "s4-parquet-duplicated-column-streaming",
        "master",
        on_file(s4(extra=engine("streaming")), parquet_input("s3", duplicated_column("QSO"))),
        2,
        "'QSO' appears more than once",
    ),
    # (The streaming engine said these as the Dask one now does before this change.)
    Case(
        "s3-parquet-corrupt-in-the-middle-dask",
        "classification",
        on_file(s3(extra=engine("dask")), corrupt_in_the_middle(parquet_input("s2"), "significance")),
        2,
        "cannot read as parquet",
        marks=SLOW,
    ),
    Case(
        "s4-zero-rows-dask",
        "master",
        on_file(s4(extra=engine("dask")), parquet_input("s3", lambda table: table.slice(0, 0))),
        2,
        "no rows",
        marks=SLOW,
    ),
    Case(
        "s4-dask-scheduler-unreachable",
        "master",
        s4(extra=[*engine("dask"), "--scheduler", NO_SCHEDULER]),
        3,
        NO_SCHEDULER,
    ),
    Case(
        "s3-dask-scheduler-unreachable",
        "classification",
        s3(extra=[*engine("dask"), "--scheduler", NO_SCHEDULER]),
        3,
        NO_SCHEDULER,
    ),
    # Issue 22, explorer and figures:
    Case(
        "analysis-figures-mathtext-name",
        "analysis",
        figures_run(r"2CXO $\frac{a$ J1"),
        0,
        check=figure_drawn(r"2CXO $\frac{a$ J1"),
    ),
    Case(
        "analysis-figures-300-character-name",
        "analysis",
        figures_run("2CXO J" + "1234567890" * 29 + "1234"),
        0,
        check=figure_drawn("2CXO J" + "1234567890" * 29 + "1234"),
    ),
    Case("analysis-figures-tables-of-two-runs", "analysis", figures_run(unmatched=True), 2, "no detection"),
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


# Issue 22, engines found by fuzzing: each engine checks its input as the in-memory stage
# does (check_detections), with the same functions and messages, and agrees with it.

ENGINES = ("streaming", "dask")


def engine_marks(name: str) -> tuple:
    return SLOW if name == "dask" else ()


def one_blank_name(table):
    """The name of one classified detection blanked (an Unclassified one does not vote)."""
    table["name"] = table["name"].astype(object)
    row = int(np.flatnonzero(table["main_type"].to_numpy(dtype=object) != "Unclassified")[0])
    table.loc[row, "name"] = ""
    return table


def text_in_the_last_row(column):
    """Text in a numeric pass-through column, in the last row (beyond the head Dask reads types from)."""

    def change(table):
        table[column] = table[column].astype(object)
        table.loc[table.index[-1], column] = "abc"
        return table

    return change


def one_blank_flag(table):
    table["outlier_flag"] = table["outlier_flag"].astype(object)
    table.loc[len(table) // 2, "outlier_flag"] = None
    return table


def repeated_adjacent(table):
    """The first detection twice, next to itself (stage 4's engines need the names sorted)."""
    return pd.concat([table.iloc[:1], table], ignore_index=True)


def raw_column_missing_another_out_of_range(table):
    """References out of range in a raw column: memory fitted without them, the engines with them."""
    table = table.drop(columns=["var_mean_b"])
    references = np.flatnonzero(table["main_type"].isin(CLASSES).to_numpy())
    table.loc[table.index[references[::3]], "var_sigma_h"] = -1.0
    return table


def cluster_99(table):
    table.loc[3, "cluster"] = 99
    return table


def arrow_cluster_99(table):
    import pyarrow as pa

    labels = pa.array([99, *table.column("cluster").to_pylist()[1:]])
    return table.set_column(table.column_names.index("cluster"), "cluster", labels)


def as_in_memory(tool_name: str, tables: Sequence[str]):
    """Check: the tables equal those of the in-memory run on the same input (``d/in.csv``)."""

    def check(run, d, stderr):
        memory = d / "memory"
        if tool_name == "master":
            argv = ["--input", d / "in.csv", "--out-dir", memory]
        else:
            argv = [
                "--input", d / "in.csv", "--output", memory / "out.csv",
                "--model-output", memory / "classifier.json", "--outliers-output", memory / "outliers.csv",
            ]  # fmt: skip
        assert tool(tool_name)(["-q", *map(str, argv)]) == 0
        for table in tables:
            pd.testing.assert_frame_equal(pd.read_csv(d / table), pd.read_csv(memory / Path(table).name))

    return check


CASES += [
    *(
        case
        for name in ENGINES
        for case in (
            Case(
                f"s3-blank-name-{name}",
                "classification",
                s3(one_blank_name, extra=engine(name)),
                2,
                "blank source name",
                marks=engine_marks(name),
            ),
            Case(
                f"s4-blank-name-{name}",
                "master",
                s4(one_blank_name, extra=engine(name)),
                2,
                "blank source name",
                marks=engine_marks(name),
            ),
            Case(
                f"s4-blank-outlier-flag-batches-of-40-{name}",
                "master",
                s4(one_blank_flag, extra=[*engine(name), "--batch-rows", "40"]),
                0,
                check=as_in_memory("master", ["out/uniquely_classified.csv", "out/ambiguous_classification.csv"]),
                marks=engine_marks(name),
            ),
            Case(
                f"s3-repeated-detection-{name}",
                "classification",
                s3(duplicate_rows, extra=engine(name)),
                2,
                "repeat an earlier detection",
                marks=engine_marks(name),
            ),
            Case(
                f"s4-repeated-detection-adjacent-{name}",
                "master",
                s4(repeated_adjacent, extra=engine(name)),
                2,
                "repeat an earlier detection",
                marks=engine_marks(name),
            ),
            Case(
                f"s3-blank-ra-{name}",
                "classification",
                s3(set_cell("ra", ""), extra=engine(name)),
                2,
                "no valid position",
                marks=engine_marks(name),
            ),
            Case(
                f"s4-no-name-column-{name}",
                "master",
                s4(lambda table: table.rename(columns={"name": "name_x"}), extra=engine(name)),
                2,
                "missing required columns: name",
                marks=engine_marks(name),
            ),
            Case(
                f"s3-raw-column-missing-another-out-of-range-{name}",
                "classification",
                s3(raw_column_missing_another_out_of_range, extra=engine(name)),
                0,
                check=as_in_memory("classification", ["out.csv"]),
                marks=engine_marks(name),
            ),
            Case(
                f"s3-cluster-99-{name}",
                "classification",
                s3(cluster_99, extra=engine(name)),
                2,
                "must hold cluster numbers (0 .. 5)",
                marks=engine_marks(name),
            ),
            Case(
                f"s3-prob-column-dropped-{name}",
                "classification",
                s3(drop_column("prob_0"), extra=engine(name)),
                2,
                "must hold cluster numbers (0 .. 4)",
                marks=engine_marks(name),
            ),
        )
    ),
    Case(
        "s1-text-in-a-pass-through-column-dask",
        "clustering",
        s1(change=text_in_the_last_row("gti_stop"), extra=engine("dask")),
        0,
        marks=SLOW,
    ),
    Case(
        "s3-text-in-a-pass-through-column-dask",
        "classification",
        s3(text_in_the_last_row("gti_stop"), extra=engine("dask")),
        0,
        check=as_in_memory("classification", ["out.csv"]),
        marks=SLOW,
    ),
    # pandas' ISO 8601 mode read these label times, which are not ISO 8601 (make fuzz: '2026-1-1').
    *(
        Case(f"labels-time-{kind}", "classification", s3_labels(labels_at(time)), 2, repr(time))
        for kind, time in (
            ("not-zero-padded", "2026-1-1"),
            ("year-alone", "2026"),
            ("one-digit-minutes", "2026-01-01T05:0"),
        )
    ),
    # The in-memory stage read a Parquet input without its prob_* columns: K unknown, a 99 passed.
    Case(
        "s3-cluster-99-parquet-memory",
        "classification",
        on_file(s3(), parquet_input("s2", arrow_cluster_99)),
        2,
        "must hold cluster numbers (0 .. 5)",
    ),
]


def _break_inverse(document):
    for per_class in document["references"]["clusters"].values():
        for entry in per_class.values():
            if entry["scored"]:
                entry["inverse_covariance"][0][0] = float("nan")
                return
    raise AssertionError("no scored class in the valid run")


@pytest.mark.parametrize("case", [pytest.param(c, marks=c.marks, id=c.id) for c in CASES])
def test_bad_input(case, valid_run, tmp_path, capsys):
    argv, outputs, protected = case.make(valid_run, tmp_path)
    before = {p: digest(p) for p in protected}
    code, stderr = invoke(tool(case.tool), argv, capsys)
    assert_outcome(code, stderr, case.code, case.word, outputs, protected, before, tmp_path)
    if case.check is not None:
        case.check(valid_run, tmp_path, stderr)


# Issue 22, inputs: a FIFO named as an input. Opening one for reading waits for a writer,
# so these run in a child process with a time-out: a regression fails, it does not hang.

SCRIPTS = {
    "clustering": "clustering.py",
    "crossmatch": "crossmatch.py",
    "classification": "classification.py",
    "classify_source": "classify_source.py",
    "master": "master_classification.py",
}


def fifo(option: str, maker: Callable, name: str):
    """``maker``'s case with ``option`` (or, for ``""``, the last argument) a FIFO called ``name``."""

    def make(run, d):
        argv, outputs, protected = maker(run, d)
        path = d / name
        os.mkfifo(path)
        if not option:
            argv[-1] = path
        elif option in argv:
            argv[argv.index(option) + 1] = path
        else:
            argv += [option, path]
        return argv, outputs, protected

    return make


FIFO_CASES = [
    Case("fifo-s1-input", "clustering", fifo("--input", s1(), "in.csv"), 2, "named pipe (FIFO)"),
    Case("fifo-s1-features", "clustering", fifo("--features", s1(), "set.toml"), 2, "named pipe (FIFO)"),
    Case("fifo-s2-frozen", "crossmatch", fifo("--frozen", s2_frozen(lambda t: t), "f.csv"), 2, "named pipe"),
    Case("fifo-s2-catalog", "crossmatch", fifo("--catalog", s2_catalog(), "c.csv"), 2, "named pipe (FIFO)"),
    Case("fifo-s3-labels", "classification", fifo("--labels", s3(), "labels.csv"), 2, "named pipe (FIFO)"),
    Case(
        "fifo-s3-input-streaming",
        "classification",
        fifo("--input", s3(extra=["--engine", "streaming"]), "in.parquet"),
        2,
        "named pipe (FIFO)",
    ),
    Case("fifo-classify-source-model", "classify_source", fifo("--model", classify_source(), "m.json"), 2, "FIFO"),
    Case("fifo-classify-source-input", "classify_source", fifo("", classify_source(), "in.csv"), 2, "FIFO"),
]


@pytest.mark.parametrize("case", FIFO_CASES, ids=[c.id for c in FIFO_CASES])
def test_a_fifo_is_refused_without_waiting(case, valid_run, tmp_path):
    argv, outputs, protected = case.make(valid_run, tmp_path)
    before = {p: digest(p) for p in protected}
    try:
        done = subprocess.run(
            [sys.executable, str(REPOSITORY / SCRIPTS[case.tool]), *map(str, argv)],
            cwd=REPOSITORY,
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "PYTHONPATH": str(REPOSITORY), "OPENBLAS_NUM_THREADS": "1"},
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{case.id}: still waiting after 60 s (the FIFO was opened)")
    assert_outcome(done.returncode, done.stderr, case.code, case.word, outputs, protected, before, tmp_path)


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


SECOND_WRITE_SLOW = stage4_with_slow_writes(
    [
        "WRITTEN.append(threading.current_thread().name)",
        "if len(WRITTEN) == 2:",
        "    sys.stdout.write('SECOND ' + ','.join(WRITTEN) + '\\n')",
        "    sys.stdout.flush()",
        "    time.sleep(60)",
    ],
    setup=["WRITTEN = []"],
)


def test_ctrl_c_during_the_second_write_stops_the_run_at_once(valid_run, tmp_path):
    """The tables are written by the main thread, the one Python runs signal handlers in.

    So a Ctrl-C that arrives while the second table is written (the first complete, in its
    temporary file) stops the run at once, and neither table is left.
    """
    out = tmp_path / "out"
    process = start_child(SECOND_WRITE_SLOW, valid_run, out)
    try:
        assert process.stdout.readline().strip() == "SECOND MainThread,MainThread"
        process.send_signal(signal.SIGINT)
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


# -- Issue 22, engines: full disks, an input replaced mid-run, killed runs, Dask missing ------

#: A file size limit (RLIMIT_FSIZE) for a child process: a write past it fails with EFBIG, as a
#: full disk fails with ENOSPC, wherever the file is (an output, or TMPDIR); Python ignores
#: SIGXFSZ, so the write returns the error instead of killing the process.
FILE_LIMIT = 100_000


def run_script_limited(script: str, argv: list, tmp: Path, limit: int | None = FILE_LIMIT, **kwargs):
    """One of the repository's scripts in a child, files capped at ``limit`` bytes, TMPDIR ``tmp``."""
    import resource

    def cap() -> None:
        if limit is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))

    tmp.mkdir(exist_ok=True)
    return subprocess.run(
        [sys.executable, str(REPOSITORY / script), *map(str, argv)],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=cap,
        env={**os.environ, "PYTHONPATH": str(REPOSITORY), "OPENBLAS_NUM_THREADS": "1", "TMPDIR": str(tmp)},
        **kwargs,
    )


def shuffled(source: Path, target: Path) -> Path:
    """The rows of ``source`` in another order (stage 3 then sorts them on disk, in TMPDIR)."""
    pd.read_csv(source, low_memory=False).sample(frac=1.0, random_state=3).to_csv(target, index=False)
    return target


FULL_DISKS = [
    # (script, its arguments from (run, d), a word of the message)
    pytest.param(
        "classification.py",
        lambda run, d: s3(extra=engine("streaming"))(run, d)[0],
        "out.csv: cannot write: File too large",
        id="s3-streaming-output",
    ),
    pytest.param(
        "classification.py",
        lambda run, d: [*s3(extra=engine("streaming"))(run, d)[0][2:], "--input", shuffled(run["s2"], d / "in.csv")],
        "temporary space",
        id="s3-streaming-sort-in-tmpdir",
    ),
    pytest.param(
        "clustering.py",
        lambda run, d: s1(extra=engine("dask"))(run, d)[0],
        "out.csv: cannot write: File too large",
        id="s1-dask-output",
        marks=pytest.mark.slow,
    ),
]


@pytest.mark.parametrize(("script", "arguments", "word"), FULL_DISKS)
def test_engines_say_cannot_write_on_a_full_disk(valid_run, tmp_path, script, arguments, word):
    """No space for an engine's output or its temporary files: exit 2, one line, nothing left."""
    argv = arguments(valid_run, tmp_path)
    done = run_script_limited(script, argv, tmp_path / "tmp")
    assert_outcome(
        done.returncode, done.stderr, 2, word, [tmp_path / "out.csv", tmp_path / "model.json"], directory=tmp_path
    )
    assert not list((tmp_path / "tmp").glob(".xrayclass-*")), "a work folder was left in TMPDIR"


class ReplaceWhenLogged(logging.Handler):
    """Replace ``path`` with ``other`` when a log message contains ``when``: a file changed between passes."""

    def __init__(self, when: str, path: Path, other: Path, keep_times: bool = False):
        super().__init__()
        self.when, self.path, self.other, self.keep_times, self.done = when, path, other, keep_times, False

    def emit(self, record: logging.LogRecord) -> None:
        if self.done or self.when not in record.getMessage():
            return
        self.done = True
        if self.keep_times:  # rewritten in place, same size, same modification time
            status = self.path.stat()
            self.path.write_bytes(self.other.read_bytes())
            os.utime(self.path, ns=(status.st_atime_ns, status.st_mtime_ns))
        else:  # replaced: another file moved onto the name
            os.replace(self.other, self.path)


REPLACED = [
    pytest.param("classification", "streaming", False, id="s3-streaming-replaced"),
    pytest.param("classification", "streaming", True, id="s3-streaming-rewritten-same-size-and-time"),
    pytest.param("classification", "dask", False, id="s3-dask-replaced", marks=pytest.mark.slow),
    pytest.param("clustering", "streaming", False, id="s1-streaming-replaced"),
    pytest.param("clustering", "dask", False, id="s1-dask-replaced", marks=pytest.mark.slow),
    pytest.param("crossmatch", "streaming", False, id="s2-streaming-replaced"),
]


@pytest.mark.parametrize(("stage", "name", "keep_times"), REPLACED)
def test_an_input_changed_between_passes_is_refused(valid_run, tmp_path, capsys, stage, name, keep_times):
    """The engines read their input several times: a file changed after the first pass is refused."""
    source = valid_run[{"classification": "s2", "crossmatch": "s1", "clustering": "mock"}[stage]]
    path = tmp_path / "in.csv"
    path.write_bytes(Path(source).read_bytes())
    other = shuffled(source, tmp_path / "other.csv")  # same size, other rows first and last
    maker = {"classification": s3, "crossmatch": s2_catalog, "clustering": s1}[stage](extra=engine(name))
    argv, outputs, _ = maker(valid_run, tmp_path)
    argv[argv.index("--input") + 1] = path
    # Logged once the first pass is done: by stages 1 and 3, and by stage 2's matching.
    when = "have an object within" if stage == "crossmatch" else "detections read"
    handler = ReplaceWhenLogged(when, path, other, keep_times)
    # On the engines' logger: the command line replaces the handlers of "xrayclass" itself.
    logger = logging.getLogger("xrayclass.engine")
    logger.addHandler(handler)
    try:
        code, stderr = invoke(tool(stage), argv, capsys)
    finally:
        logger.removeHandler(handler)
    assert handler.done, f"'{when}' was never logged: the file was not changed"
    assert_outcome(code, stderr, 2, f"{path}: changed while it was being read", outputs, directory=tmp_path)


def test_dask_missing_is_reported_before_any_work(valid_run, tmp_path, capsys, monkeypatch):
    """--engine dask without Dask installed: exit 2 at once, saying what to install."""
    monkeypatch.setitem(sys.modules, "distributed", None)  # what an absent package looks like to find_spec
    argv, outputs, _ = s3(extra=engine("dask"))(valid_run, tmp_path)
    code, stderr = invoke(tool("classification"), argv, capsys)
    assert_outcome(code, stderr, 2, "distributed not installed", outputs, directory=tmp_path)
    assert "detections read" not in stderr, "the input was read before Dask was looked for"


def stopping_script(main: str, patched: str, method: str) -> str:
    """A stage's ``main`` in a child whose ``patched.method`` says PAUSED, then sleeps (to be killed)."""
    module = patched.rpartition(".")[0]
    return (
        "import sys, time\n"
        f"import {module}\n"
        f"original = {patched}.{method}\n"
        "def paused(*args, **kwargs):\n"
        "    result = original(*args, **kwargs)\n"
        '    sys.stdout.write("PAUSED\\n")\n'
        "    sys.stdout.flush()\n"
        "    time.sleep(120)\n"
        "    return result\n"
        f"{patched}.{method} = paused\n"
        "from xrayclass.cli import stages as cli\n"
        f"sys.exit(cli.{main}(sys.argv[1:]))\n"
    )


#: Stage 3 paused after its first file in the on-disk sort; stage 4 while writing its tables.
#: (Dask's stage 4 keeps no folder of ours: its shuffle is in the workers' folders, which
#: Dask removes; killed while writing, it leaves nothing in TMPDIR, before this change too.)
MID_STAGE = {
    "classification": ("classification_main", "pyarrow.parquet.ParquetWriter", "write_table"),
    "master": ("master_classification_main", "pandas.DataFrame", "to_csv"),
}
#: Dask's stage 3 sorts on the workers, in the client's work folder: paused while the client
#: appends the workers' sorted parts from that folder into the output.
MID_STAGE_DASK = {"classification": ("classification_main", "xrayclass.io.streaming.BatchWriter", "append_part")}

KILLED = [
    pytest.param("classification", "streaming", id="s3-streaming"),
    pytest.param("master", "streaming", id="s4-streaming"),
    pytest.param("classification", "dask", id="s3-dask", marks=pytest.mark.slow),
]


def in_tmpdir(tmp: Path) -> list[str]:
    """What a run left in TMPDIR: Dask's own two lock files excepted (it keeps them between runs)."""
    return sorted(
        str(p.relative_to(tmp))
        for p in tmp.rglob("*")
        if not (p.parent.name == "dask-scratch-space" and p.name in ("global.lock", "purge.lock"))
        and p.name != "dask-scratch-space"
    )


@pytest.mark.parametrize(("stage", "name"), KILLED)
def test_a_sigkilled_engine_leaves_nothing_after_the_next_run(valid_run, tmp_path, stage, name):
    """SIGKILL mid-stage cannot be caught: the next run removes the work folders of the dead one."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    source = shuffled(valid_run["s2"], tmp_path / "in.csv") if stage == "classification" else valid_run["s3"]
    maker = s3(extra=engine(name)) if stage == "classification" else s4(extra=engine(name))
    argv = maker(valid_run, tmp_path)[0]
    argv[argv.index("--input") + 1] = source
    env = {**os.environ, "PYTHONPATH": str(REPOSITORY), "OPENBLAS_NUM_THREADS": "1", "TMPDIR": str(tmp)}
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            stopping_script(*(MID_STAGE_DASK if name == "dask" else MID_STAGE)[stage]),
            *map(str, argv),
        ],
        cwd=REPOSITORY,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,  # its Dask workers too are ended with it, below
    )
    try:
        assert child.stdout.readline().strip() == "PAUSED", child.stderr.read()
        assert list(tmp.glob(".xrayclass-*")), "the run should have its work folder in TMPDIR"
        child.kill()
        child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
        try:
            os.killpg(child.pid, signal.SIGKILL)  # the local cluster's workers, orphaned by the kill
        except ProcessLookupError:
            pass
    assert list(tmp.glob(".xrayclass-*")), "SIGKILL cannot be caught: the folder stays until the next run"
    again = subprocess.run(
        [
            sys.executable,
            str(REPOSITORY / f"{'classification' if stage == 'classification' else 'master_classification'}.py"),
            *map(str, argv),
        ],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert again.returncode == 0, again.stderr
    assert "left by an interrupted run" in again.stderr
    assert in_tmpdir(tmp) == [], in_tmpdir(tmp)
