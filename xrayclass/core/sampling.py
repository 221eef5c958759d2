"""Seeded subsamples, and the order of rows set by their content.

Every seeded step that picks rows by position (folds, subsamples, a k-means start) is
run on rows put in :func:`content_order` first, so that the same rows in another order
give the same answer.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["ContentSample", "content_order", "content_sample", "seeded_subsample"]


def seeded_subsample(n_rows: int, size: int | None, random_state: int | None) -> np.ndarray:
    """Sorted indices of ``size`` rows drawn without replacement (all rows when ``size`` is None or >= ``n_rows``).

    Sorted so that the subsample keeps the table's order, and seeded so that the same
    table gives the same rows.
    """
    if size is None or n_rows <= size:
        return np.arange(n_rows)
    return np.sort(np.random.default_rng(random_state).choice(n_rows, size=size, replace=False))


def content_order(table: pd.DataFrame, tiebreak: pd.DataFrame | None = None) -> np.ndarray:
    """Positions of ``table``'s rows in an order set by their values alone.

    The rows are ordered by a 64-bit hash of their values (pandas'
    ``hash_pandas_object``, which reads floats by value: ``-0.0`` as ``0.0``). Rows of
    the same hash are ordered by the values of ``tiebreak`` (the same rows), then keep
    their relative order only where ``table`` and ``tiebreak`` hold the same values for
    them: the rows come in the same order whatever order they came in, up to the order of
    identical rows, which cannot change a result computed from those values. Two
    different rows of the same hash (a collision, about 3 chances in 10^8 among a
    million rows) are ordered by their values.

    Parameters
    ----------
    table : pandas.DataFrame
        The values that make each row what it is for the computation that follows
        (e.g. its features, label, cluster); the index is ignored.
    tiebreak : pandas.DataFrame, optional
        More values of the same rows that only order rows equal in ``table`` (so that
        adding them does not move any other row).

    Returns
    -------
    numpy.ndarray
        ``table.iloc[content_order(table)]`` is in the content order.
    """
    hashes = pd.util.hash_pandas_object(table, index=False).to_numpy()
    order = np.argsort(hashes, kind="stable")
    ordered = hashes[order]
    tied = np.flatnonzero(ordered[1:] == ordered[:-1])
    if not len(tied):
        return order
    values = table if tiebreak is None else pd.concat([table, tiebreak.set_axis(table.index)], axis=1)
    # Neighbours of equal hash must be equal rows (a run of them then is, by transitivity).
    first = values.take(order[tied]).reset_index(drop=True)
    second = values.take(order[tied + 1]).reset_index(drop=True)
    if (first.eq(second) | (first.isna() & second.isna())).to_numpy().all():
        return order
    # Different rows of one hash: their values break the ties (each column by its sorted codes).
    codes = [pd.factorize(values.iloc[:, j], sort=True)[0] for j in reversed(range(values.shape[1]))]
    return np.lexsort([*codes, hashes])


#: The column that carries the seed into the hash of :func:`content_sample` (its name is
#: never read: rows are hashed by the positions of their columns).
_SEED = "xrayclass.seed"


def _seeded(table: pd.DataFrame, random_state: int | None) -> pd.DataFrame:
    seed = -1 if random_state is None else int(random_state)
    return table.reset_index(drop=True).assign(**{_SEED: np.full(len(table), seed, dtype=np.int64)})


def content_sample(table: pd.DataFrame, size: int | None, random_state: int | None) -> np.ndarray:
    """Positions of ``size`` rows of ``table`` chosen by their values, in the content order.

    The first ``size`` rows of :func:`content_order` of the rows with the seed as one more
    value (``None``: as -1): another seed, other rows and another order; the same rows in
    another order, the same rows in the same order. All rows, in that order, when
    ``size`` is None or at least the number of rows.
    """
    order = content_order(_seeded(table, random_state))
    return order if size is None else order[:size]


class ContentSample:
    """:func:`content_sample` of a table given batch by batch, holding about ``2 size`` rows.

    The batches are kept until they hold twice ``size`` rows, then only the rows whose
    hash is among the ``size`` smallest (and any that tie with the last of them);
    :meth:`rows` is ``table.take(content_sample(table, size, random_state))`` of the
    whole table, whatever its batches.
    """

    def __init__(self, size: int | None, random_state: int | None) -> None:
        self.size, self.random_state = size, random_state
        self._rows: list[pd.DataFrame] = []
        self._hashes: list[np.ndarray] = []
        self._count = 0

    def add(self, batch: pd.DataFrame) -> None:
        self._rows.append(batch.reset_index(drop=True))
        self._hashes.append(pd.util.hash_pandas_object(_seeded(batch, self.random_state), index=False).to_numpy())
        self._count += len(batch)
        if self.size is not None and self._count > 2 * self.size:
            self._keep_smallest()

    def _keep_smallest(self) -> None:
        rows, hashes = pd.concat(self._rows, ignore_index=True), np.concatenate(self._hashes)
        if self.size is not None and len(hashes) > self.size:
            kept = hashes <= np.partition(hashes, self.size - 1)[self.size - 1]
            rows, hashes = rows.loc[kept].reset_index(drop=True), hashes[kept]
        self._rows, self._hashes, self._count = [rows], [hashes], len(hashes)

    def rows(self) -> pd.DataFrame | None:
        """The chosen rows in the content order (None when no batch was added)."""
        if not self._rows:
            return None
        self._keep_smallest()
        rows = self._rows[0]
        return rows.take(content_sample(rows, self.size, self.random_state)).reset_index(drop=True)
