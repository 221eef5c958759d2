"""Choosing the number of mixture components from the BIC (the paper's Fig. 1).

For K = 2..20 the full-covariance mixture is fitted several times with different
seeds; the BIC's mean and spread per K and its gradient show where adding components
stops paying: the paper chose K = 6, where the gradient changes slope, flat from 7.
"""

import logging
from collections.abc import Iterable

import numpy as np
import pandas as pd
from joblib import Parallel, delayed

from xrayclass.core.mixture import fit_mixture
from xrayclass.core.progress import steps

__all__ = ["bic_scan", "knee", "summarize_bic"]

log = logging.getLogger(__name__)


def _bic(X: np.ndarray, k: int, seed: int) -> float:
    return fit_mixture(X, n_components=k, random_state=seed).bic(X)


def bic_scan(
    X: np.ndarray, k_values: Iterable[int] = range(2, 21), n_fits: int = 3, seed: int = 0, n_jobs: int = 1
) -> pd.DataFrame:
    """BIC of ``n_fits`` seeded fits for each K."""
    tasks = [(k, i, seed + i) for k in k_values for i in range(n_fits)]
    log.info(
        "fitting %d mixtures (K = %s, %d seeds each) on %s detections with %d jobs",
        len(tasks),
        f"{min(k_values)}..{max(k_values)}",
        n_fits,
        f"{len(X):,}",
        n_jobs,
    )
    # Results come back in task order as they finish, so progress can be shown per K.
    results = Parallel(n_jobs=n_jobs, verbose=0, return_as="generator")(delayed(_bic)(X, k, s) for k, _, s in tasks)
    rows = []
    for (k, i, s), value in zip(tasks, steps(results, len(tasks), "BIC scan", " fits"), strict=True):
        rows.append((k, i, s, value))
        if i == n_fits - 1:
            done = [row[3] for row in rows[-n_fits:]]
            log.info(
                "K = %d: BIC %.1f ± %.1f over %d fits (%d of %d K values done)",
                k,
                np.mean(done),
                np.std(done),
                n_fits,
                len(rows) // n_fits,
                len(tasks) // n_fits,
            )
    return pd.DataFrame(rows, columns=["k", "fit", "seed", "bic"])


def summarize_bic(scan: pd.DataFrame) -> pd.DataFrame:
    """Mean and spread of the BIC per K, and the gradient of the mean (per unit K)."""
    table = scan.groupby("k")["bic"].agg(bic_mean="mean", bic_std="std").reset_index()
    table["bic_std"] = table["bic_std"].fillna(0.0)
    table["gradient"] = np.gradient(table["bic_mean"].to_numpy(), table["k"].to_numpy()) if len(table) > 1 else np.nan
    return table


def knee(table: pd.DataFrame) -> int:
    """The K where the BIC curve bends most: farthest from the chord joining its ends.

    Both axes are scaled to [0, 1] first (the "kneedle" construction), so the answer
    does not depend on the BIC's units. For a BIC that falls steeply and then flattens,
    this is where its gradient changes slope.
    """
    k = table["k"].to_numpy(dtype=float)
    bic = table["bic_mean"].to_numpy(dtype=float)
    if len(k) < 3:
        return int(k[np.argmin(bic)])
    x = (k - k[0]) / (k[-1] - k[0])
    span = bic.max() - bic.min()
    y = (bic - bic.min()) / span if span > 0 else np.zeros_like(bic)
    chord = y[0] + (y[-1] - y[0]) * x
    return int(k[np.argmax(np.abs(chord - y))])
