"""A canonical row order, so that scores with an ordered or seeded step (a k-means++ start, a probe
draw) are a function of the row contents and the seed, never of the order the rows came in
(BAD_INPUTS.md row 9).

Rows are sorted by two float64 projections on fixed Gaussian vectors, then by label. Each key is a
per-row reduction (``(row * g).sum()`` over one contiguous row), so its value depends on the row's
contents only, not on where the row sits. Exact duplicates get equal keys and equal contents, so
their relative order cannot change the sorted matrix. Distinct rows whose keys and labels all
collide (rounding in the projections; essentially never) are ordered by their contents, column by
column, so the sorted matrix is unique in every case.

The pieces are exposed for the streaming states, which see the rows chunk by chunk:
``row_keys`` (the keys of a block of rows), ``order_of_keys`` (the sort and its tied runs),
``content_ranks`` and ``sort_runs`` (the tie rule).
"""
from __future__ import annotations

import functools
from typing import Optional, Tuple

import numpy as np

from transferlab.core.arrays import Matrix
from transferlab.core import blocks

#: ``row_order=`` of the scores with an order-dependent step (PARC, NLEEP): "canonical" (default: rows put in
#: the canonical order first, so permuting rows changes nothing) or "given" (the published pipeline on the
#: caller's row order, reproducing the published implementations' numbers).
ROW_ORDERS = ("canonical", "given")


def check_row_order(row_order) -> str:
    """``row_order`` after checking it is one of :data:`ROW_ORDERS` (ValueError naming the argument)."""
    if not isinstance(row_order, str) or row_order not in ROW_ORDERS:
        raise ValueError(f"row_order must be one of {ROW_ORDERS}, got {row_order!r}")
    return row_order


def check_stream_row_order(row_order, score: str) -> None:
    """Streams keep the canonical order only: the order a stream sees is a chunking and merge order."""
    if check_row_order(row_order) == "given":
        raise ValueError(f"row_order='given' is not available for streaming {score}: a stream sees the rows chunk "
                         f"by chunk and in merge order, not one caller's row order; score the bank in one piece "
                         f"with {score.lower()}(features, labels, row_order='given'), or keep "
                         f"row_order='canonical'")


_SEED = 20210  # fixed: any canonical order works; the scores' own seeds stay for their own steps


@functools.lru_cache(maxsize=8)
def _directions(d: int) -> np.ndarray:
    g = np.random.default_rng(_SEED).standard_normal((2, d))
    g.flags.writeable = False
    return g


def row_keys(blk: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """The two float64 sort keys of each row of a float64 block (a function of each row alone)."""
    g = _directions(blk.shape[1])
    return (blk * g[0]).sum(axis=1), (blk * g[1]).sum(axis=1)


def order_of_keys(k1: np.ndarray, k2: np.ndarray, codes: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """(order, same): rows sorted by k1, then k2, then label; ``same[p]`` is True when sorted
    positions p and p + 1 have equal keys and labels (a tied run, ordered by ``sort_runs``)."""
    codes = np.asarray(codes)
    order = np.lexsort((codes, k2, k1))  # k1 first, then k2, then the label
    same = (k1[order][1:] == k1[order][:-1]) & (k2[order][1:] == k2[order][:-1]) & \
        (codes[order][1:] == codes[order][:-1])
    return order, same


def canonical_order(m: Matrix, codes: np.ndarray) -> Optional[np.ndarray]:
    """Row indices putting ``(m, codes)`` in canonical order, or None when they already are.

    Permuting the rows of ``m`` (and ``codes`` with them) gives bitwise the same ``m.take(order)``.
    One pass over the bank plus an O(N log N) sort; O(N) memory.
    """
    k1 = np.empty(m.n)
    k2 = np.empty(m.n)
    for a, b, blk in blocks.f64_blocks(m, default_bytes=32 << 20):
        k1[a:b], k2[a:b] = row_keys(blk)
    order, same = order_of_keys(k1, k2, codes)
    if same.any():
        pos = tied_positions(same)
        order = sort_runs(order, same, content_ranks(m.take(order[pos]).to_float64_host()))
    if np.array_equal(order, np.arange(m.n)):
        return None
    return order


def tied_positions(same: np.ndarray) -> np.ndarray:
    """Sorted positions that lie in a tied run (of two or more rows), ascending."""
    n = same.size + 1
    tied = np.zeros(n, dtype=bool)
    tied[:-1] |= same
    tied[1:] |= same
    return np.flatnonzero(tied)


def content_ranks(rows: np.ndarray) -> np.ndarray:
    """Rank of each row's contents in lexicographic order (column 0 first); equal rows share a rank."""
    rows = np.asarray(rows, dtype=np.float64)
    if rows.shape[0] == 0:
        return np.zeros(0, dtype=np.int64)
    o = np.lexsort(tuple(rows[:, j] for j in range(rows.shape[1] - 1, -1, -1)))
    srt = rows[o]
    new = np.r_[True, np.any(srt[1:] != srt[:-1], axis=1)]
    ranks = np.empty(rows.shape[0], dtype=np.int64)
    ranks[o] = np.cumsum(new) - 1
    return ranks


def sort_runs(order: np.ndarray, same: np.ndarray, ranks: np.ndarray) -> np.ndarray:
    """Order each tied run by the rows' contents: ``ranks[j]`` is the content rank (``content_ranks``)
    of the row at the j-th tied position (``tied_positions(same)``). Stable, so a run of exact
    duplicates keeps its order (which cannot change the sorted matrix)."""
    start = np.r_[True, ~same]  # position p starts a run
    run = np.cumsum(start) - 1  # run id per sorted position
    pos = tied_positions(same)
    order = order.copy()
    order[pos] = order[pos][np.lexsort((ranks, run[pos]))]
    return order
