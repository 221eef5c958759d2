"""Command line of ``analysis.py``: analyses of the pipeline's outputs, one sub-command each.

Each sub-command has a ``add_<name>_parser(subparsers)`` function that declares its
options and a ``<name>_command(args)`` function that does the work; :func:`main`
dispatches. Problems with the input end the command with a one-line message naming
the file, exit status 2, and no output written; outputs are written atomically.

To add a sub-command: write its two functions and list the parser function in
:data:`SUBCOMMANDS`.
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xrayclass.analysis.census import format_type_census
from xrayclass.analysis.comparison import (
    DEFAULT_MAPPING,
    MATCH_MODES,
    MATCH_RADIUS_ARCSEC,
    CatalogColumns,
    compare_catalog,
    format_comparison,
    parse_mapping,
)
from xrayclass.analysis.explore import MAX_SOURCES, ExploreError
from xrayclass.analysis.validation import METHODS as VALIDATION_METHODS
from xrayclass.analysis.validation import comparison_frame
from xrayclass.cli.argtypes import positive_float, positive_int
from xrayclass.cli.common import DefaultsFormatter, configure_logging, report_errors, verbosity_options
from xrayclass.core.featuresets import PAPER, from_artifact
from xrayclass.exceptions import input_files
from xrayclass.io import paths
from xrayclass.io.artifacts import read_feature_set as load
from xrayclass.io.checks import check_outputs
from xrayclass.io.figures import figure_png
from xrayclass.io.runs import find_run
from xrayclass.io.tables import InputError, read_json, read_table, write_table
from xrayclass.workflow.explorer import read_run, write_explorer
from xrayclass.workflow.report import write_report
from xrayclass.workflow.runner import read_stage_table
from xrayclass.workflow.steps import census, k_selection, run_figures, validation

if TYPE_CHECKING:
    import pandas as pd

    from xrayclass.core.featuresets import FeatureSet


__all__ = [
    "PROG",
    "RUN_DIR_DEFAULT",
    "SUBCOMMANDS",
    "add_census_parser",
    "add_compare_parser",
    "add_explore_parser",
    "add_figures_parser",
    "add_kselect_parser",
    "add_report_parser",
    "add_validate_parser",
    "build_parser",
    "census_command",
    "compare_command",
    "default_comparison_output",
    "explore_command",
    "figures_command",
    "format_method_comparison",
    "kselect_command",
    "main",
    "report_command",
    "validate_command",
]

log = logging.getLogger("xrayclass")

PROG = "analysis.py"


# -- compare -----------------------------------------------------------------------------


Subparsers = argparse._SubParsersAction  # argparse's own type of add_subparsers()'s result


def _subparser(
    subparsers: Subparsers, common: argparse.ArgumentParser, name: str, command: Any, help: str, description: str
) -> argparse.ArgumentParser:
    """A sub-command's parser with the common options; ``command`` runs it."""
    parser = subparsers.add_parser(
        name, parents=[common], formatter_class=DefaultsFormatter, help=help, description=description
    )
    parser.set_defaults(command=command, stage=name)
    return parser


def _class_mapping_help() -> str:
    default = " ".join(f"--map '{p.name}={','.join(p.theirs)}'" for p in DEFAULT_MAPPING)
    return (
        "comparison class as OURS=THEIRS, repeatable: OURS is one or more of our classes "
        "joined with '+' (aggregated AGN, Seyfert, XB, YSO, or fine classes such as HMXB, "
        "TTau*; AGN and XB mean the aggregated classes) and names the row; THEIRS is a "
        "comma-separated list of the catalog's labels. Any --map replaces the whole default, "
        f"which suits MUWCLASS-style labels: {default}"
    )


def add_compare_parser(subparsers: Subparsers, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    default_columns = CatalogColumns()
    parser = _subparser(
        subparsers,
        common,
        "compare",
        compare_command,
        help="compare the uniquely classified sources with another catalog (Table 4)",
        description=(
            "Match the uniquely classified sources with a reference catalog by CSC name or "
            "within 1 arcsec, and give for each comparison class the number of our sources "
            "matched, the precision (share of them the catalog puts in the same class, over "
            "all its labels), the R-precision (the same over matches whose catalog label is "
            "one of the mapped labels) and the recall (share of the catalog's class among the "
            "matches that we put in it), as in Table 4 of the paper. The defaults read the "
            "MUWCLASS training set of Yang et al. 2022 (muwclass_td.csv)."
        ),
    )
    parser.add_argument("--catalog", required=True, help="reference catalog (.csv, .parquet, .vot/.xml or .fits)")
    parser.add_argument(
        "--uniquely",
        default=None,
        help=f"uniquely classified sources (stage-4 output; default: {RUN_DIR_DEFAULT}/{paths.UNIQUELY})",
    )
    parser.add_argument(
        "--output", default=None, help="result table (.csv or .parquet); default out_data/comparison_<catalog stem>.csv"
    )
    parser.add_argument("--name-column", default=default_columns.name, help="catalog column of CSC source names")
    parser.add_argument("--ra-column", default=default_columns.ra, help="catalog column of right ascension (deg)")
    parser.add_argument("--dec-column", default=default_columns.dec, help="catalog column of declination (deg)")
    parser.add_argument(
        "--label-column",
        default=default_columns.label,
        help="catalog column of class labels (MUWCLASS: Class, its prediction, "
        "reproduces the paper; True_Class is the literature class)",
    )
    parser.add_argument(
        "--map", action="append", dest="mapping", metavar="OURS=THEIRS", default=None, help=_class_mapping_help()
    )
    parser.add_argument(
        "--match",
        choices=MATCH_MODES,
        default="both",
        help="match by name or position (the paper), or by only one of them",
    )
    parser.add_argument("--radius", type=positive_float, default=MATCH_RADIUS_ARCSEC, help="matching radius in arcsec")
    return parser


def default_comparison_output(catalog: str | os.PathLike[str]) -> Path:
    """``out_data/comparison_<catalog stem>.csv``."""
    return paths.OUT_DIR / f"comparison_{Path(catalog).stem}.csv"


def compare_command(args: argparse.Namespace) -> None:
    """Run the catalog comparison and write and print its table."""
    output = args.output or default_comparison_output(args.catalog)
    if args.uniquely is None:
        args.uniquely = str(find_run((paths.UNIQUELY,), option="--uniquely") / paths.UNIQUELY)

    check_outputs([output], [args.catalog, args.uniquely])
    mapping = parse_mapping(args.mapping)
    columns = CatalogColumns(args.name_column, args.ra_column, args.dec_column, args.label_column)
    sources = read_stage_table(
        args.uniquely,
        paths.OUT_DIR / paths.UNIQUELY,
        "no run found: run `make run` (or master_classification.py) first, or pass --uniquely",
    )
    catalog = read_table(args.catalog)
    with input_files(args.uniquely, sources=args.uniquely, catalog=args.catalog):
        comparison = compare_catalog(sources, catalog, columns, mapping, args.radius, args.match)
    comparison.summary["catalog"] = str(args.catalog)
    log.debug(
        "matched sources by comparison class (rows) and catalog label (columns):\n%s", comparison.confusion.to_string()
    )
    write_table(comparison.metrics, output, na_rep="NaN")
    log.info("wrote %s", output)
    print(format_comparison(comparison))


# -- kselect, validate, census, figures, report -------------------------------------------

#: How ``--help`` describes the default run directory (:func:`xrayclass.io.runs.find_run`).
RUN_DIR_DEFAULT = (
    f"{paths.OUT_DIR}/ if it holds the files, else the most recent run below it, such as the "
    f"{paths.OUT_DIR}/mock/ of `make run` without input"
)


def _run_dir_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--run-dir",
        default=None,
        help="directory of the stage outputs (cluster_csc.csv, ..., uniquely_classified.csv); "
        f"default: {RUN_DIR_DEFAULT}",
    )


def _run_files(args: argparse.Namespace, *needs: str) -> paths.RunLayout:
    """The run of ``--run-dir``, or the one :func:`find_run` picks for the files ``needs``."""

    return paths.RunLayout(args.run_dir if args.run_dir is not None else find_run(needs or (paths.MODEL.name,)))


def add_kselect_parser(subparsers: Subparsers, common: argparse.ArgumentParser) -> None:
    parser = _subparser(
        subparsers,
        common,
        "kselect",
        kselect_command,
        help="BIC of the Gaussian mixture against K (Fig. 1)",
        description="Fit the full-covariance mixture for each K several times with different seeds (on a seeded "
        "subsample of the stage-1 detections), and write the BIC's mean, spread and gradient per K "
        "(bic.csv, bic_scan.csv) and Fig. 1; print the K at the knee of the curve.",
    )
    _run_dir_option(parser)
    parser.add_argument("--k-min", type=positive_int, default=2, help="smallest K")
    parser.add_argument("--k-max", type=positive_int, default=20, help="largest K")
    parser.add_argument("--n-fits", type=positive_int, default=3, help="seeded fits per K")
    parser.add_argument("--sample", type=int, default=20_000, help="detections used (0: all)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the subsample and of the first fit")
    parser.add_argument("--jobs", type=positive_int, default=2, help="parallel processes")


def kselect_command(args: argparse.Namespace) -> None:
    run = _run_files(args, paths.CLUSTERS.name)
    clustered = read_stage_table(run.clusters, run.clusters, "run `make run` or clustering.py first, or pass --run-dir")
    with input_files(run.clusters):
        table, chosen = k_selection(
            clustered,
            run.directory,
            run.figures,
            range(args.k_min, args.k_max + 1),
            args.n_fits,
            args.sample,
            args.seed,
            args.jobs,
        )
    print(table.to_string(index=False, float_format=lambda v: f"{v:.1f}"))
    print(f"knee of the BIC curve at K = {chosen}; wrote {run.bic} and {figure_png(run.figures, paths.FIGURES['bic'])}")


def add_validate_parser(subparsers: Subparsers, common: argparse.ArgumentParser) -> None:
    parser = _subparser(
        subparsers,
        common,
        "validate",
        validate_command,
        help="70/30 validation on the SIMBAD-labeled detections (Figs. 4, 5)",
        description="Split the detections labeled with one of the ten classes 70/30 (stratified, seeded), "
        "classify the 30% as if unlabeled with references from the 70% only, and compare with "
        "SIMBAD: row-normalized confusion matrices (ten and aggregated classes), precision, recall, "
        "F1 and accuracy, as mean and spread over several seeds.",
    )
    _run_dir_option(parser)
    parser.add_argument(
        "--input", default=None, help="crossmatched detections (default: RUN_DIR/cluster_csc_simbad.csv)"
    )
    parser.add_argument("--seeds", type=positive_int, default=5, help="number of seeded splits")
    parser.add_argument(
        "--group-by-source",
        action="store_true",
        help="keep all detections of a source on one side of the split (stricter than the paper)",
    )
    parser.add_argument(
        "--method",
        action="append",
        dest="methods",
        choices=(*VALIDATION_METHODS, "all"),
        default=None,
        help="classifier to validate, repeatable: with several, they are compared on "
        "the same splits (method_comparison.csv and a figure); 'all': every "
        "one; default: mahalanobis",
    )
    parser.add_argument(
        "--calibrate",
        action="store_true",
        help="also validate each method temperature-calibrated out of fold on its train rows ('<method>+T')",
    )
    parser.add_argument(
        "--both-splits",
        action="store_true",
        help="compare the methods grouped by source (the headline: new sources are never among "
        "the references) and by detection (the paper's), in one table and one figure",
    )
    parser.add_argument(
        "--features",
        default=None,
        metavar="FILE",
        help="feature set (TOML, see xrayclass/featuresets/) (default: the one the run's model.json "
        "records, else the paper's 12)",
    )


def validate_command(args: argparse.Namespace) -> None:
    run = _run_files(args, paths.CROSSMATCH.name) if not args.input else paths.RunLayout(args.run_dir or paths.OUT_DIR)
    path = Path(args.input) if args.input else run.crossmatch
    table = read_stage_table(path, run.crossmatch, "run `make run` or crossmatch.py first, or pass --input")

    chosen = args.methods or ["mahalanobis"]
    methods = tuple(dict.fromkeys(m for name in chosen for m in (VALIDATION_METHODS if name == "all" else [name])))
    feature_set = _validation_feature_set(args.features, run.model)
    with input_files(path):
        results, table = validation(
            table,
            run.directory / "validation",
            run.figures,
            range(args.seeds),
            args.group_by_source,
            methods,
            calibrate=args.calibrate,
            both_splits=args.both_splits,
            feature_set=feature_set,
        )
    for name, result in results.items():
        for level in ("classes", "aggregated"):
            part = result[level]
            print(
                f"{name}, {level}: accuracy {part['accuracy_mean']:.3f} ± {part['accuracy_std']:.3f}; "
                "row-normalized confusion (mean over seeds):"
            )
            print(part["confusion_mean"].round(2).to_string())
    for name, result in results.items():
        part = result["classes"]
        print(
            f"{name}: Brier {part['brier_mean']:.3f} ± {part['brier_std']:.3f}, expected calibration error "
            f"{part['ece_mean']:.3f} ± {part['ece_std']:.3f} (ten classes)"
        )
    if len(results) > 1 or args.both_splits:
        print(format_method_comparison(table))
    print(f"tables in {run.directory / 'validation'}, figures in {run.figures}")


def _validation_feature_set(
    features_path: str | os.PathLike[str] | None, model_path: str | os.PathLike[str]
) -> FeatureSet:
    """``--features``, else the run's model's set (when the run has a readable model), else the paper's."""
    if features_path is not None:
        return load(features_path)
    if Path(model_path).exists():
        try:
            feature_set = from_artifact(read_json(model_path), str(model_path))
        except (InputError, AttributeError, TypeError) as exc:
            log.warning(
                "%s: its feature set cannot be read (%s); validating with the paper's 12 features", model_path, exc
            )
            return PAPER
        if not feature_set.same_as(PAPER):
            log.info(
                "validating with the feature set %s of %s (%d features)", feature_set.name, model_path, len(feature_set)
            )
        return feature_set
    return PAPER


def format_method_comparison(table: pd.DataFrame) -> str:
    """The method comparison as text: mean ± std over the seeds of each quantity."""
    return comparison_frame(table).to_string(index=False)


def add_census_parser(subparsers: Subparsers, common: argparse.ArgumentParser) -> None:
    parser = _subparser(
        subparsers,
        common,
        "census",
        census_command,
        help="most common SIMBAD types per cluster and galactic-plane shares (Table 3)",
        description="The ten most common main_type values of each cluster, and the share of each cluster's "
        "detections at galactic |b| < 5 deg (census_types.csv, census_latitude.csv).",
    )
    _run_dir_option(parser)
    parser.add_argument(
        "--input", default=None, help="crossmatched detections (default: RUN_DIR/cluster_csc_simbad.csv)"
    )


def census_command(args: argparse.Namespace) -> None:
    run = _run_files(args, paths.CROSSMATCH.name) if not args.input else paths.RunLayout(args.run_dir or paths.OUT_DIR)
    path = Path(args.input) if args.input else run.crossmatch
    types, latitude = census(
        read_stage_table(path, run.crossmatch, "run `make run` or crossmatch.py first, or pass --input"), run.directory
    )
    print(format_type_census(types))
    print(latitude.to_string(index=False, float_format=lambda v: f"{v:.3f}"))


def add_figures_parser(subparsers: Subparsers, common: argparse.ArgumentParser) -> None:
    parser = _subparser(
        subparsers,
        common,
        "figures",
        figures_command,
        help="the paper's figures from a run's outputs (Figs. 2, 3, 6, 7, 8, 10)",
        description="Draw the figures that need only the stage outputs, as PNG and PDF in RUN_DIR/figures. "
        "Fig. 1 comes from 'kselect', Figs. 4-5 from 'validate'.",
    )
    _run_dir_option(parser)
    parser.add_argument(
        "--source",
        action="append",
        default=None,
        metavar="NAME",
        help="source for the per-source probability plot (Fig. 10), repeatable; default: the "
        "three uniquely classified sources with the most detections",
    )


def figures_command(args: argparse.Namespace) -> None:
    made = run_figures(_run_files(args), sources=args.source)
    print("\n".join(str(path) for path in made))


def add_report_parser(subparsers: Subparsers, common: argparse.ArgumentParser) -> None:
    parser = _subparser(
        subparsers,
        common,
        "report",
        report_command,
        help="the reproduction report (Markdown and HTML)",
        description="Write report.md and report.html: each published number next to the value obtained from "
        "this run's files and the shared reference data, with PASS/FAIL, the figures, and which "
        "inputs were real, frozen or synthetic. Runs the analyses it needs.",
    )
    _run_dir_option(parser)
    parser.add_argument("--output", default=str(paths.DEFAULT_RUN.report), help="the Markdown report (.md)")
    parser.add_argument(
        "--full",
        action="store_true",
        help="full BIC scan (3 fits per K on up to 20,000 detections) instead of the quick one",
    )


def report_command(args: argparse.Namespace) -> None:
    reference = paths.reference_dir()
    run_dir = args.run_dir if args.run_dir is not None else find_run()
    markdown, html_path, passed, failed = write_report(
        run_dir, args.output, reference if reference.is_dir() else None, quick=not args.full
    )
    print(f"wrote {markdown} and {html_path}: {passed} comparisons pass, {failed} fail")


def add_explore_parser(subparsers: Subparsers, common: argparse.ArgumentParser) -> None:
    parser = _subparser(
        subparsers,
        common,
        "explore",
        explore_command,
        help="one self-contained interactive HTML explorer of a run (works offline)",
        description="Write one HTML file with plotly.js and the run's sources inlined (no network needed; "
        "opens from file://): a sky map and a feature plot with class toggles and linked selection, "
        "a search box, a sortable table with CSV export, a source panel with probabilities, "
        "detections and links, and your own labels (exported as labels.csv for "
        "classification.py --labels). Above --max-sources sources a seeded sample is drawn, "
        "with a sky density layer of all of them.",
    )
    _run_dir_option(parser)
    parser.add_argument("--output", default=None, help="the HTML file (default: RUN_DIR/explorer.html)")
    parser.add_argument(
        "--uniquely", default=None, help="uniquely classified sources (default: RUN_DIR/uniquely_classified.csv)"
    )
    parser.add_argument(
        "--ambiguous", default=None, help="ambiguous sources (default: RUN_DIR/ambiguous_classification.csv, if there)"
    )
    parser.add_argument(
        "--detections",
        default=None,
        help="stage-3 detections for the source panel (default: RUN_DIR/detection_level_classification.csv, if there)",
    )
    parser.add_argument(
        "--max-sources",
        type=positive_int,
        default=MAX_SOURCES,
        help="sources embedded and drawn at most; above, a seeded random sample",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of that sample")
    parser.add_argument(
        "--synthetic",
        action="store_true",
        help="mark every view SYNTHETIC (done anyway for mock runs: MOCK names or a mock provenance file)",
    )


def explore_command(args: argparse.Namespace) -> None:
    if args.run_dir is None:
        args.run_dir = find_run(() if args.uniquely else (paths.UNIQUELY,))
    output = Path(args.output) if args.output else paths.RunLayout(args.run_dir).explorer
    if output.suffix.lower() not in (".html", ".htm"):
        raise InputError(f"{output}: the explorer is an .html file")
    tables = read_run(
        args.run_dir, args.uniquely, args.ambiguous, args.detections, synthetic=True if args.synthetic else None
    )
    try:
        meta = write_explorer(tables, output, args.max_sources, args.seed)
    except ExploreError as exc:
        raise InputError(f"{args.uniquely or Path(args.run_dir) / 'uniquely_classified.csv'}: {exc}") from None
    size = output.stat().st_size
    shown = (
        f"{meta['n_shown']:,} of {meta['n_total']:,} sources (seeded sample)"
        if meta["sampled"]
        else f"{meta['n_total']:,} sources"
    )
    print(
        f"wrote {output} ({size / 1e6:.1f} MB, {shown}{', SYNTHETIC' if meta['synthetic'] else ''}); "
        f"open it in a browser, no network needed"
    )


#: Functions adding one sub-command parser each, in the order ``--help`` lists them.
SUBCOMMANDS = (
    add_kselect_parser,
    add_validate_parser,
    add_census_parser,
    add_compare_parser,
    add_figures_parser,
    add_report_parser,
    add_explore_parser,
)


def build_parser() -> argparse.ArgumentParser:
    """The ``analysis.py`` parser with one sub-parser per analysis."""
    parser = argparse.ArgumentParser(
        prog=PROG, description="Analyses of the pipeline's outputs. Run 'analysis.py COMMAND --help' for each."
    )
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    common = verbosity_options()
    for add_parser in SUBCOMMANDS:
        add_parser(subparsers, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv``, run the sub-command; 0 on success, 2 on an input problem."""
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.stage, getattr(args, "verbosity", 0))

    return report_errors(f"{PROG} {args.stage}", args.command, args)
