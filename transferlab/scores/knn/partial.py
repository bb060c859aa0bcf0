"""Partial neighbour lists and their exact min-merge (the algebra behind every out-of-core kNN path).

Contract: a :class:`Partial` holds, for a block of query rows, the k nearest rows among a *subset* of the
candidates, with the tie counts ``_C.knn_cross`` reports (csrc/knn/knn_cross.h). ``merge_partials`` of
partials over disjoint candidate sets is associative and commutative, and the merge over any split of the
candidates equals, bit for bit, one partial over all of them (neighbours, distances, tie counts).
``partial_from_kernel`` wraps one ``knn_cross`` output (scattered query rows need no self removal here: the
kernel excludes each query's own row by its ``row_index``). Pure numpy: no kernels, no I/O, nothing
from the rest of the kNN package. Users: ``out_of_core`` (``knn_loo(queries=, max_memory=)`` and
``KnnLooStream``) and ``transferlab.distributed.knn_loo_sharded`` (which re-exports ``Partial`` and
``merge_partials``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

import numpy as np

__all__ = ["Partial", "partial_from_kernel", "merge_partials"]


@dataclass(frozen=True)
class Partial:
    """Partial neighbour lists of a block of query rows over a subset of candidate rows.

    ``idx``/``dist`` (nq, k): sorted by (dist, global index), padded with -1 / +inf past ``found``;
    ``same`` (nq, k): listed neighbour has the query's label; ``tie_count``/``tie_same`` (nq,):
    candidates (listed or not) at exactly the last listed distance, and how many share the label.
    """

    idx: np.ndarray
    dist: np.ndarray
    same: np.ndarray
    found: np.ndarray
    tie_count: np.ndarray
    tie_same: np.ndarray


def partial_from_kernel(out: Tuple[np.ndarray, ...], row_lab: np.ndarray, cand_lab: np.ndarray,
                        cand_off: int) -> Partial:
    """The :class:`Partial` of one ``knn_cross`` output ``(idx, dist, found, tie_count, tie_same)``: the
    candidates are rows ``cand_off ..`` with labels ``cand_lab``, the queries have labels ``row_lab``."""
    idx, dist, found, tc, ts = out
    valid = idx >= 0
    same = np.zeros(idx.shape, dtype=bool)
    same[valid] = cand_lab[idx[valid] - cand_off] == np.broadcast_to(row_lab[:, None], idx.shape)[valid]
    return Partial(idx, dist, same, found, tc, ts)


def merge_partials(a: Partial, b: Partial) -> Partial:
    """Min-merge of two partials over disjoint candidate sets (associative and commutative)."""
    k = a.idx.shape[1]
    dist = np.concatenate([a.dist, b.dist], axis=1)
    idx = np.concatenate([a.idx, b.idx], axis=1)
    same = np.concatenate([a.same, b.same], axis=1)
    # Padding (+inf, -1) sorts after every real candidate: real distances are finite.
    order = np.lexsort((np.where(idx < 0, np.iinfo(np.int64).max, idx), dist), axis=1)[:, :k]
    dist = np.take_along_axis(dist, order, axis=1)
    idx = np.take_along_axis(idx, order, axis=1)
    same = np.take_along_axis(same, order, axis=1)
    found = np.minimum(a.found + b.found, k)
    rows = np.arange(idx.shape[0])
    bd = np.where(found > 0, dist[rows, np.maximum(found - 1, 0)], np.inf)
    tc = np.zeros_like(a.tie_count)
    ts = np.zeros_like(a.tie_same)
    for p in (a, b):
        last = np.where(p.found > 0, p.dist[rows, np.maximum(p.found - 1, 0)], -np.inf)
        at = (p.dist == bd[:, None]) & (p.idx >= 0)
        full = last == bd  # this side saw every candidate at bd, listed or not, in its counts
        tc += np.where(full, p.tie_count, at.sum(axis=1))
        ts += np.where(full, p.tie_same, (at & p.same).sum(axis=1))
    tc[found == 0] = 0
    ts[found == 0] = 0
    return Partial(idx, dist, same, found, tc, ts)
