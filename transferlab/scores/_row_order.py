"""A canonical row order, so that scores with an ordered or seeded step (a k-means++ start, a probe
draw) are a function of the row contents and the seed, never of the order the rows came in
(BAD_INPUTS.md row 9).

Rows are sorted by two float64 projections on fixed Gaussian vectors, then by label. Each key is a
per-row reduction (``(row * g).sum()`` over one contiguous row), so its value depends on the row's
contents only, not on where the row sits. Exact duplicates get equal keys and equal contents, so
their relative order cannot change the sorted matrix. Distinct rows whose keys and labels all
collide (rounding in the projections; essentially never) are ordered by their contents, column by
column, so the sorted matrix is unique in every case.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from .._arrays import Matrix
from . import _gram

_SEED = 20210  # fixed: any canonical order works; the scores' own seeds stay for their own steps


def canonical_order(m: Matrix, codes: np.ndarray) -> Optional[np.ndarray]:
    """Row indices putting ``(m, codes)`` in canonical order, or None when they already are.

    Permuting the rows of ``m`` (and ``codes`` with them) gives bitwise the same ``m.take(order)``.
    One pass over the bank plus an O(N log N) sort; O(N) memory.
    """
    g = np.random.default_rng(_SEED).standard_normal((2, m.d))
    k1 = np.empty(m.n)
    k2 = np.empty(m.n)
    for a, b, blk in _gram.row_blocks(m):
        k1[a:b] = (blk * g[0]).sum(axis=1)
        k2[a:b] = (blk * g[1]).sum(axis=1)
    codes = np.asarray(codes)
    order = np.lexsort((codes, k2, k1))  # k1 first, then k2, then the label
    same = (k1[order][1:] == k1[order][:-1]) & (k2[order][1:] == k2[order][:-1]) & \
        (codes[order][1:] == codes[order][:-1])
    if same.any():
        order = _sort_ties(m, order, same)
    if np.array_equal(order, np.arange(m.n)):
        return None
    return order


def _sort_ties(m: Matrix, order: np.ndarray, same: np.ndarray) -> np.ndarray:
    """Order each run of equal keys by the rows' contents (a no-op for runs of exact duplicates)."""
    start = np.r_[True, ~same]  # position p starts a run
    run = np.cumsum(start) - 1  # run id per sorted position
    size = np.bincount(run)
    pos = np.flatnonzero(size[run] > 1)  # sorted positions inside a tied run (contiguous per run)
    rows = m.take(order[pos]).to_float64_host()
    rid = run[pos]
    first = np.searchsorted(rid, rid)  # index (into pos) of each run's first row
    differs = np.zeros(size.size, dtype=bool)
    differs[rid[np.any(rows != rows[first], axis=1)]] = True
    pick = differs[rid]
    if not pick.any():
        return order  # exact duplicates only
    sub = rows[pick]
    keys = tuple(sub[:, j] for j in range(m.d - 1, -1, -1)) + (rid[pick],)
    p = pos[pick]
    order = order.copy()
    order[p] = order[p][np.lexsort(keys)]
    return order
