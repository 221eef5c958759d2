"""Argument types shared by the command lines: each parses one option value or says why not.

argparse prints an :class:`argparse.ArgumentTypeError`'s message after the option's
name (``--radius: must be a positive number, got -1``) and exits with status 2.
"""

from __future__ import annotations

import argparse
import math

__all__ = ["fraction", "positive_float", "positive_int", "seed"]


def _number(text: str, kind: type[int] | type[float]) -> int | float:
    try:
        return kind(text)
    except ValueError:
        what = "an integer" if kind is int else "a number"
        raise argparse.ArgumentTypeError(f"must be {what}, got {text}") from None


def positive_float(text: str) -> float:
    """A finite number above 0."""
    value = float(_number(text, float))
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def positive_int(text: str) -> int:
    """A whole number from 1 up."""
    value = int(_number(text, int))
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def fraction(text: str) -> float:
    """A number strictly between 0 and 1."""
    value = float(_number(text, float))
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def seed(text: str) -> int:
    """A random seed NumPy accepts: an integer from 0 to 2**32 - 1."""
    value = int(_number(text, int))
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"must be an integer from 0 to 2**32 - 1, got {text}")
    return value
