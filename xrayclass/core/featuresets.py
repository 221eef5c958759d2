"""Feature sets as configuration: which features, how they are scaled, what they need.

A set names the features in axis order, which get ``log`` + MinMax and which MinMax
only (the rest are used as they are), the derived features it uses with their raw
columns (the derivations are code: :func:`xrayclass.core.features.derive_features`),
and the naive-Bayes categories. :data:`PAPER`, the paper's 12, is the default. Sets are
TOML (``xrayclass/featuresets/*.toml``)::

    name = "paper"
    features = ["hard_hm", ..., "var_newq_b"]
    log = ["bb_kt", ...]
    minmax = ["powlaw_gamma"]
    [derived]
    var_ratio_b = ["var_sigma_b", "var_mean_b"]
    [naive_bayes]
    spectrum = [...]
    variability = [...]
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xrayclass.constants import (
    FEATURES,
    LOG_FEATURES,
    MINMAX_FEATURES,
    SPECTRUM_FEATURES,
    VARIABILITY_FEATURES,
    VARIABILITY_RATIO_BANDS,
)
from xrayclass.exceptions import InputError

if TYPE_CHECKING:
    from xrayclass.core.preprocessing import LogMinMaxScaler

__all__ = [
    "DERIVATIONS",
    "DIRECT_FEATURES",
    "KNOWN_FEATURES",
    "PAPER",
    "FeatureSet",
    "builtin",
    "from_artifact",
    "require_transforms_apply",
]

#: Features the code can derive, and the raw columns each derivation reads.
DERIVATIONS: dict[str, tuple[str, ...]] = {
    **{f"var_ratio_{band}": (f"var_sigma_{band}", f"var_mean_{band}") for band in VARIABILITY_RATIO_BANDS},
    "var_newq_b": ("var_min_b", "var_max_b", "var_mean_b"),
}

#: Features read as they are from a CSC table (no derivation).
DIRECT_FEATURES = ("hard_hm", "hard_hs", "hard_ms", "powlaw_gamma", "bb_kt", "var_prob_b", "var_prob_h", "var_prob_s")

#: Every feature a set may name.
KNOWN_FEATURES = (*DIRECT_FEATURES, *DERIVATIONS)

_KEYS = {"name", "description", "features", "log", "minmax", "derived", "naive_bayes"}


def _names(value: Any, field_name: str, context: str) -> tuple[str, ...]:
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise InputError(f"{context}: '{field_name}' must be a list of feature names")
    if len(set(value)) != len(value):
        raise InputError(f"{context}: '{field_name}' names a feature twice")
    return tuple(value)


@dataclass(frozen=True)
class FeatureSet:
    """A validated feature set (see the module docstring); build with :meth:`from_dict` or :func:`load`."""

    name: str
    features: tuple[str, ...]
    log_features: tuple[str, ...]
    minmax_features: tuple[str, ...]
    #: Derived feature -> the raw columns it is computed from (only the derived features used).
    derived: dict[str, tuple[str, ...]] = field(hash=False, compare=True)
    spectrum: tuple[str, ...] = ()
    variability: tuple[str, ...] = ()
    description: str = field(default="", compare=False)

    @property
    def raw_columns(self) -> tuple[str, ...]:
        """The raw CSC columns the set needs: its direct features, then each derivation's inputs."""
        columns = [f for f in self.features if f not in self.derived]
        for feature in self.features:
            for column in self.derived.get(feature, ()):
                if column not in columns:
                    columns.append(column)
        return tuple(columns)

    @property
    def derived_features(self) -> tuple[str, ...]:
        return tuple(f for f in self.features if f in self.derived)

    def __len__(self) -> int:
        return len(self.features)

    def scaler(self, log_floor: float | None = None) -> LogMinMaxScaler:
        """An unfitted :class:`~xrayclass.core.preprocessing.LogMinMaxScaler` for this set."""
        # Imported here: the scaler brings scikit-learn, which the checks (and stage 4) do without.
        from xrayclass.core.preprocessing import LogMinMaxScaler

        return LogMinMaxScaler(
            features=self.features,
            log_features=self.log_features,
            minmax_features=self.minmax_features,
            log_floor=log_floor,
        )

    def categories(self) -> dict[str, tuple[str, ...]]:
        """The naive-Bayes categories (empty ones left out)."""
        return {k: v for k, v in (("spectrum", self.spectrum), ("variability", self.variability)) if v}

    @classmethod
    def from_dict(cls, document: dict, context: str = "feature set") -> FeatureSet:
        """Build and validate a set; :class:`InputError` naming ``context`` (its file or artifact field) otherwise."""
        if not isinstance(document, dict):
            raise InputError(f"{context}: a feature set must be a table of keys")
        unknown_keys = sorted(set(document) - _KEYS)
        if unknown_keys:
            raise InputError(
                f"{context}: unknown key(s) {', '.join(unknown_keys)} (expected {', '.join(sorted(_KEYS))})"
            )
        name = document.get("name", Path(context).stem)
        if not isinstance(name, str) or not name:
            raise InputError(f"{context}: 'name' must be a non-empty string")
        description = document.get("description", "")
        if not isinstance(description, str):
            raise InputError(f"{context}: 'description' must be a string")
        if "features" not in document:
            raise InputError(f"{context}: 'features' is missing (the list of features, in order)")
        features = _names(document["features"], "features", context)
        if not features:
            raise InputError(f"{context}: 'features' is empty")
        unknown = [f for f in features if f not in KNOWN_FEATURES]
        if unknown:
            raise InputError(f"{context}: unknown feature(s) {', '.join(unknown)} (known: {', '.join(KNOWN_FEATURES)})")
        log_features = _names(document.get("log", []), "log", context)
        minmax_features = _names(document.get("minmax", []), "minmax", context)
        for key, names in (("log", log_features), ("minmax", minmax_features)):
            stray = [f for f in names if f not in features]
            if stray:
                raise InputError(f"{context}: '{key}' names {', '.join(stray)}, not among 'features'")
        both = [f for f in log_features if f in minmax_features]
        if both:
            raise InputError(
                f"{context}: {', '.join(both)} in both 'log' and 'minmax' (log features are MinMax-scaled "
                "after the log anyway)"
            )
        derived_doc = document.get("derived", {})
        if not isinstance(derived_doc, dict):
            raise InputError(f"{context}: 'derived' must be a table: derived feature = [raw columns]")
        derived = {}
        for feature, columns in derived_doc.items():
            if feature not in DERIVATIONS:
                raise InputError(
                    f"{context}: 'derived.{feature}' is not a feature the pipeline can derive "
                    f"(derivable: {', '.join(DERIVATIONS)})"
                )
            if feature not in features:
                raise InputError(f"{context}: 'derived.{feature}' is not among 'features'")
            columns = _names(columns, f"derived.{feature}", context)
            lacking = [c for c in DERIVATIONS[feature] if c not in columns]
            if lacking or len(columns) != len(DERIVATIONS[feature]):
                raise InputError(
                    f"{context}: 'derived.{feature}' must name its raw columns "
                    f"{', '.join(DERIVATIONS[feature])}, got {', '.join(columns) or 'none'}"
                )
            derived[feature] = DERIVATIONS[feature]
        underived = [f for f in features if f in DERIVATIONS and f not in derived]
        if underived:
            raise InputError(
                f"{context}: derived feature(s) {', '.join(underived)} without their raw columns: add "
                + "; ".join(f"derived.{f} = {list(DERIVATIONS[f])}" for f in underived)
            )
        nb = document.get("naive_bayes")
        if not isinstance(nb, dict):
            raise InputError(f"{context}: '[naive_bayes]' is missing (its 'spectrum' and 'variability' lists)")
        stray_nb = sorted(set(nb) - {"spectrum", "variability"})
        if stray_nb:
            raise InputError(
                f"{context}: unknown naive_bayes category(ies) {', '.join(stray_nb)} (expected spectrum, variability)"
            )
        spectrum = _names(nb.get("spectrum", []), "naive_bayes.spectrum", context)
        variability = _names(nb.get("variability", []), "naive_bayes.variability", context)
        if not spectrum and not variability:
            raise InputError(f"{context}: the naive_bayes categories are empty")
        for key, names in (("spectrum", spectrum), ("variability", variability)):
            if not names:
                raise InputError(f"{context}: the naive_bayes category '{key}' is empty")
        in_categories = [*spectrum, *variability]
        stray = [f for f in in_categories if f not in features]
        if stray:
            raise InputError(f"{context}: naive_bayes names {', '.join(stray)}, not among 'features'")
        left_out = [f for f in features if f not in in_categories]
        twice = [f for f in spectrum if f in variability]
        if left_out or twice:
            raise InputError(
                f"{context}: every feature must be in exactly one naive_bayes category "
                f"({'missing: ' + ', '.join(left_out) if left_out else 'in both: ' + ', '.join(twice)})"
            )
        # Lists keep the file's order: the scaler records its log features in that order.
        return cls(
            name=name,
            features=features,
            log_features=log_features,
            minmax_features=minmax_features,
            derived={f: derived[f] for f in features if f in derived},
            spectrum=spectrum,
            variability=variability,
            description=description,
        )

    def to_dict(self) -> dict:
        """The set as plain JSON/TOML-ready values (what artifacts record)."""
        return {
            "name": self.name,
            **({"description": self.description} if self.description else {}),
            "features": list(self.features),
            "log": list(self.log_features),
            "minmax": list(self.minmax_features),
            "derived": {f: list(c) for f, c in self.derived.items()},
            "naive_bayes": {"spectrum": list(self.spectrum), "variability": list(self.variability)},
        }

    def same_as(self, other: FeatureSet) -> bool:
        """Same features, scaling, derivations and categories (names and descriptions aside)."""

        def key(fs: FeatureSet) -> tuple[object, ...]:
            return (
                fs.features,
                set(fs.log_features),
                set(fs.minmax_features),
                fs.derived,
                set(fs.spectrum),
                set(fs.variability),
            )

        return key(self) == key(other)


def require_transforms_apply(
    feature_set: FeatureSet, ranges: Mapping[str, tuple[float, float]], context: str = "feature set"
) -> None:
    """Refuse, before any data, a set whose ``log`` names a feature whose ``ranges`` reach below 0.

    ``log(x + shift)`` is undefined there: a hardness ratio under it gives NaN for every
    harder-than-soft detection, and the mixture fails on them.
    """
    unbounded = (-math.inf, math.inf)
    negative = {f: ranges.get(f, unbounded) for f in feature_set.log_features if ranges.get(f, unbounded)[0] < 0}
    if negative:
        spans = ", ".join(f"{f} (in [{low:g}, {high:g}])" for f, (low, high) in negative.items())
        raise InputError(
            f"{context}: 'log' names {spans}, which can be negative; the log transform needs values >= 0: "
            "list each under 'minmax' or under neither"
        )


def from_artifact(document: dict, context: str = "artifact") -> FeatureSet:
    """The feature set an artifact (model.json, classifier.json) records; the paper's when it has none."""
    if "feature_set" not in document:
        return PAPER
    return FeatureSet.from_dict(document["feature_set"], f"{context}: feature_set")


def builtin(name: str) -> Path:
    """Path of a feature set shipped with the package (``paper``, ``no_var_newq_b``)."""
    return Path(str(resources.files("xrayclass") / "featuresets" / f"{name}.toml"))


#: The paper's 12 features: the default everywhere.
PAPER = FeatureSet.from_dict(
    {
        "name": "paper",
        "description": "The 12 features of Pérez-Díaz et al. (2024)",
        "features": list(FEATURES),
        "log": list(LOG_FEATURES),
        "minmax": list(MINMAX_FEATURES),
        "derived": {f: list(c) for f, c in DERIVATIONS.items()},
        "naive_bayes": {"spectrum": list(SPECTRUM_FEATURES), "variability": list(VARIABILITY_FEATURES)},
    },
    "paper",
)
