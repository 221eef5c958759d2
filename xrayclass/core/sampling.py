"""Seeded subsamples: the rows an estimate is made on when a catalog is large."""

from __future__ import annotations

import numpy as np

__all__ = ["seeded_subsample"]


def seeded_subsample(n_rows: int, size: int | None, random_state: int | None) -> np.ndarray:
    """Sorted indices of ``size`` rows drawn without replacement (all rows when ``size`` is None or >= ``n_rows``).

    Sorted so that the subsample keeps the table's order, and seeded so that the same
    table gives the same rows.
    """
    if size is None or n_rows <= size:
        return np.arange(n_rows)
    return np.sort(np.random.default_rng(random_state).choice(n_rows, size=size, replace=False))
