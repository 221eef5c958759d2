"""Command line of ``analysis.py``: analyses of the pipeline's outputs, one sub-command each.

Each sub-command has a ``add_<name>_parser(subparsers)`` function that declares its
options and a ``<name>_command(args)`` function that does the work; :func:`main`
dispatches. Problems with the input end the command with a one-line message naming
the file, exit status 2, and no output written; outputs are written atomically.

To add a sub-command: write its two functions and list the parser function in
:data:`SUBCOMMANDS`.
"""

import argparse
import logging
import sys
from pathlib import Path

from . import paths
from .cli import EXIT_INPUT_ERROR, configure_logging
from .io import InputError, check_output_path, read_table, table_format, write_atomic

log = logging.getLogger("xrayclass")

PROG = "analysis.py"


class _DefaultsFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Show defaults in ``--help``, except where there is none to show."""

    def _get_help_string(self, action):
        if action.default is None or action.required:
            return action.help
        return super()._get_help_string(action)


def _common_options():
    """Options every sub-command takes (-v / -q), as an argparse parent parser."""
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_mutually_exclusive_group()
    group.add_argument("-v", "--verbose", action="store_const", const=1, dest="verbosity",
                       default=argparse.SUPPRESS, help="log more detail")
    group.add_argument("-q", "--quiet", action="store_const", const=-1, dest="verbosity",
                       default=argparse.SUPPRESS, help="log warnings and errors only")
    return common


def _distinct(output, *inputs):
    for source in inputs:
        if source is not None and Path(output).resolve() == Path(source).resolve():
            raise InputError(f"{output}: the output would overwrite an input; choose another --output")


def _read_input(path, default, hint, **kwargs):
    if Path(path) == Path(default) and not Path(path).exists():
        raise InputError(f"{path}: file not found; {hint}")
    return read_table(path, **kwargs)


def write_result_table(table, path):
    """Write a result table atomically; missing values appear as ``NaN`` in CSV."""
    if table_format(path) == "csv":
        return write_atomic(path, lambda tmp: table.to_csv(tmp, index=False, na_rep="NaN"))
    return write_atomic(path, lambda tmp: table.to_parquet(tmp, index=False))


# -- compare -----------------------------------------------------------------------------

def _class_mapping_help():
    from .comparison import DEFAULT_MAPPING

    default = " ".join(f"--map '{p.name}={','.join(p.theirs)}'" for p in DEFAULT_MAPPING)
    return (
        "comparison class as OURS=THEIRS, repeatable: OURS is one or more of our classes "
        "joined with '+' (aggregated AGN, Seyfert, XB, YSO, or fine classes such as HMXB, "
        "TTau*; AGN and XB mean the aggregated classes) and names the row; THEIRS is a "
        "comma-separated list of the catalog's labels. Any --map replaces the whole default, "
        f"which suits MUWCLASS-style labels: {default}"
    )


def add_compare_parser(subparsers, common):
    from .comparison import MATCH_MODES, MATCH_RADIUS_ARCSEC, CatalogColumns

    default_columns = CatalogColumns()
    parser = subparsers.add_parser(
        "compare", parents=[common], formatter_class=_DefaultsFormatter,
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
    parser.add_argument("--catalog", required=True,
                        help="reference catalog (.csv, .parquet, .vot/.xml or .fits)")
    parser.add_argument("--uniquely", default=str(paths.OUT_DIR / paths.UNIQUELY),
                        help="uniquely classified sources (stage-4 output)")
    parser.add_argument("--output", default=None,
                        help="result table (.csv or .parquet); default out_data/comparison_<catalog stem>.csv")
    parser.add_argument("--name-column", default=default_columns.name, help="catalog column of CSC source names")
    parser.add_argument("--ra-column", default=default_columns.ra, help="catalog column of right ascension (deg)")
    parser.add_argument("--dec-column", default=default_columns.dec, help="catalog column of declination (deg)")
    parser.add_argument("--label-column", default=default_columns.label,
                        help="catalog column of class labels (MUWCLASS: Class, its prediction, "
                             "reproduces the paper; True_Class is the literature class)")
    parser.add_argument("--map", action="append", dest="mapping", metavar="OURS=THEIRS", default=None,
                        help=_class_mapping_help())
    parser.add_argument("--match", choices=MATCH_MODES, default="both",
                        help="match by name or position (the paper), or by only one of them")
    parser.add_argument("--radius", type=_positive_float, default=MATCH_RADIUS_ARCSEC,
                        help="matching radius in arcsec")
    parser.set_defaults(command=compare_command, stage="compare")
    return parser


def default_comparison_output(catalog):
    """``out_data/comparison_<catalog stem>.csv``."""
    return paths.OUT_DIR / f"comparison_{Path(catalog).stem}.csv"


def compare_command(args):
    """Run the catalog comparison and write and print its table."""
    from .comparison import CatalogColumns, compare_catalog, format_comparison, parse_mapping

    output = args.output or default_comparison_output(args.catalog)
    check_output_path(output)
    _distinct(output, args.catalog, args.uniquely)
    mapping = parse_mapping(args.mapping)
    columns = CatalogColumns(args.name_column, args.ra_column, args.dec_column, args.label_column)
    sources = _read_input(args.uniquely, paths.OUT_DIR / paths.UNIQUELY,
                          "run master_classification.py first or pass --uniquely")
    catalog = read_table(args.catalog)
    comparison = compare_catalog(sources, args.uniquely, catalog, args.catalog, columns, mapping,
                                 args.radius, args.match)
    log.debug("matched sources by comparison class (rows) and catalog label (columns):\n%s",
              comparison.confusion.to_string())
    write_result_table(comparison.metrics, output)
    log.info("wrote %s", output)
    print(format_comparison(comparison))


#: Functions adding one sub-command parser each, in the order ``--help`` lists them.
SUBCOMMANDS = (add_compare_parser,)


def build_parser():
    """The ``analysis.py`` parser with one sub-parser per analysis."""
    parser = argparse.ArgumentParser(
        prog=PROG, description="Analyses of the pipeline's outputs. Run 'analysis.py COMMAND --help' for each.",
    )
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    common = _common_options()
    for add_parser in SUBCOMMANDS:
        add_parser(subparsers, common)
    return parser


def main(argv=None):
    """Parse ``argv``, run the sub-command; 0 on success, 2 on an input problem."""
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.stage, getattr(args, "verbosity", 0))
    try:
        args.command(args)
    except InputError as exc:
        print(f"{PROG} {args.stage}: error: {exc}", file=sys.stderr)
        return EXIT_INPUT_ERROR
    return 0


def _positive_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value
