"""The layers: science code (core, stages, analysis) never takes a file or folder name.

It takes tables and returns tables and figures. Only the I/O, workflow (a run's
directory) and command-line layers know file names; they add them to the messages of
the typed exceptions the science raises (:func:`xrayclass.exceptions.input_files`).
"""

import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import pytest

import xrayclass

SCIENCE_PACKAGES = ("xrayclass.core", "xrayclass.stages", "xrayclass.analysis")
PATH_PARAMETER = re.compile(r"^(path|paths|origin|filename|source_path|output|.*_path|.*_dir|directory|folder)$")


def _public_callables():
    for package_name in SCIENCE_PACKAGES:
        package = importlib.import_module(package_name)
        for info in pkgutil.iter_modules(package.__path__):
            module = importlib.import_module(f"{package_name}.{info.name}")
            for name, obj in vars(module).items():
                if name.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
                    continue
                if inspect.isfunction(obj):
                    yield f"{module.__name__}.{name}", obj
                elif inspect.isclass(obj):
                    for attribute, member in vars(obj).items():
                        if attribute.startswith("_") and attribute != "__init__":
                            continue
                        function = member.__func__ if isinstance(member, (classmethod, staticmethod)) else member
                        if inspect.isfunction(function):
                            yield f"{module.__name__}.{name}.{attribute}", function


def test_science_functions_take_no_file_name():
    offenders = []
    for qualified, function in _public_callables():
        names = [p for p in inspect.signature(function).parameters if PATH_PARAMETER.match(p)]
        if names:
            offenders.append(f"{qualified}({', '.join(names)})")
    assert not offenders, (
        "science functions taking a file name (raise typed exceptions without it; the CLI "
        "adds it): " + "; ".join(offenders)
    )


def test_the_check_sees_a_path_parameter():
    def science(table, path):
        return table

    assert PATH_PARAMETER.match("path") and PATH_PARAMETER.match("frozen_path")
    assert PATH_PARAMETER.match("out_dir") and PATH_PARAMETER.match("paths") and not PATH_PARAMETER.match("outputs")
    assert [p for p in inspect.signature(science).parameters if PATH_PARAMETER.match(p)] == ["path"]
    assert sum(1 for _ in _public_callables()) > 100


def test_the_four_stages_run_from_the_package():
    for name in ("run_clustering", "run_crossmatch", "run_classification", "run_master_classification"):
        assert name in xrayclass.__all__
        assert callable(getattr(xrayclass, name))
        assert not [p for p in inspect.signature(getattr(xrayclass, name)).parameters if PATH_PARAMETER.match(p)]


def test_input_files_names_the_file_of_the_table():
    from xrayclass.exceptions import InputError, input_files

    with pytest.raises(InputError, match=r"^frozen\.csv: bad$"):
        with input_files("s1.csv", frozen="frozen.csv"):
            raise InputError("bad", table="frozen")
    with pytest.raises(InputError, match=r"^s1\.csv: bad$"):
        with input_files("s1.csv"), input_files("s1.csv"):
            raise InputError("bad")


def test_only_the_command_lines_parse_arguments():
    """argparse is the command lines' business: no science, io or service module imports it."""
    package = Path(xrayclass.__file__).parent
    parsing = sorted(
        str(path.relative_to(package))
        for path in package.rglob("*.py")
        if re.search(r"^\s*(import argparse|from argparse import)", path.read_text(encoding="utf-8"), re.MULTILINE)
    )
    assert parsing and all(name.startswith("cli/") for name in parsing), parsing
