"""Checks the science makes of its own inputs and choices."""

from __future__ import annotations

from collections.abc import Sequence

from xrayclass.exceptions import InputError

__all__ = ["require_choice"]


def require_choice(name: str, value: object, choices: Sequence[object]) -> None:
    """Raise :class:`InputError` unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise InputError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
