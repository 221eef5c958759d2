"""The input columns stage 3 reads, and those it only passes through to its output.

Kept apart from :mod:`.classification` (and its scientific libraries) so that the
command line can choose what to read from a file before those are loaded.
"""

from __future__ import annotations

from collections.abc import Sequence

from xrayclass.constants import CLUSTER, MAIN_TYPE, NAME, NAME_ALIASES, OBSID
from xrayclass.core.featuresets import PAPER, FeatureSet
from xrayclass.core.taxonomy import OTYPE

__all__ = ["REQUIRED_COLUMNS", "input_columns", "passthrough_columns"]

REQUIRED_COLUMNS = (NAME, OBSID, CLUSTER, "ra", "dec")


def input_columns(feature_set: FeatureSet = PAPER) -> tuple[str, ...]:
    """The input columns stage 3 reads, where the table has them (the others only pass through)."""
    return (*REQUIRED_COLUMNS, *NAME_ALIASES, MAIN_TYPE, OTYPE, *feature_set.features, *feature_set.raw_columns)


def passthrough_columns(columns: Sequence[str], feature_set: FeatureSet = PAPER) -> list[str]:
    """The input columns stage 3 passes through to its output, in their order.

    All but the identity, the SIMBAD type and the features, which the output puts first.
    """
    return [c for c in columns if c not in (*REQUIRED_COLUMNS, MAIN_TYPE, *feature_set.features)]
