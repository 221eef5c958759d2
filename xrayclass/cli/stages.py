"""The four stage command lines in one place, for the library and the tests.

Each lives in its own module (:mod:`.clustering`, :mod:`.crossmatch`, :mod:`.classification`,
:mod:`.master_classification`), so that a stage's script imports only its own stage's
science; see the top-level scripts and the console entry points in ``pyproject.toml``.
"""

from xrayclass.cli.classification import classification_main
from xrayclass.cli.clustering import clustering_main
from xrayclass.cli.crossmatch import crossmatch_main
from xrayclass.cli.master_classification import master_classification_main
from xrayclass.cli.options import add_engine_arguments

__all__ = [
    "add_engine_arguments",
    "classification_main",
    "clustering_main",
    "crossmatch_main",
    "master_classification_main",
]
