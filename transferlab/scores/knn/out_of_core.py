"""Leave-one-out k-NN out of core: query rows against the whole bank in reference blocks, min-merged.

Contract: ``neighbour_lists`` returns, for any sorted distinct query rows of a host bank, ``knn_loo``'s
kernel outputs (idx, dist, tie_count, tie_same) on those rows, bit for bit, for every block plan;
``boundary_labels`` is ``_C.knn_boundary_labels`` streamed the same way; ``resolve_queries`` and
``plan_blocks`` turn the user's ``queries`` / ``max_memory`` into rows and block sizes (one-line
errors naming the argument otherwise). Inputs are read, never written. Imports ``rules`` and
``partial`` from the kNN package, nothing else of it.

Two users: ``knn_loo(..., queries=..., max_memory=...)`` (the score on a subsample of query rows, or
on every row under a memory budget) and :class:`~transferlab.scores.knn.stream.KnnLooStream` (the
streaming state: workers feed disjoint query row blocks, states merge, ``compute()`` once every
query is covered).

How (``neighbour_lists``): the bank is read in reference blocks through the shared block reader
(``transferlab.core.blocks``: a memory-mapped bank's pages are released block by block); each block
gives partial neighbour lists of the queries through ``_C.knn_cross`` (``csrc/knn/knn_cross.h``:
the same distance bits as ``knn_loo``'s kernel), merged with ``partial.merge_partials`` (the
min-merge by (distance, index) with exact tie counts). Self is excluded by index inside the kernel:
a contiguous run of query rows ``a..b`` passes its row offset a, scattered queries their row indices
(``row_index``).

Every candidate of every query is thus seen once, by the same distance function, so the merged
lists, distances and tie counts equal ``knn_loo``'s bit for bit. Cost: (queries x N x D) like the
full score restricted to those rows; memory: the query block, one reference block, O(q k) lists.
"""
from __future__ import annotations

from typing import Any, Tuple

import numpy as np

from transferlab.core import blocks
from transferlab.core import cpu_threads
from transferlab import kernels
from transferlab.core.arrays import Matrix
from transferlab.core.inputs import scaled_by_power_of_two
from transferlab.scores.knn.partial import merge_partials, partial_from_kernel
from transferlab.scores.knn.rules import normalise

__all__ = ["resolve_queries", "plan_blocks", "neighbour_lists", "boundary_labels"]

_DEFAULT_BYTES = 64 << 20  # query / reference block bytes without a budget


# ---------------------------------------------------------------------------- options


def resolve_queries(queries: Any, n: int, seed: Any) -> np.ndarray:
    """Query rows as an int64 array: ``None`` -> every row; an int q -> q distinct rows drawn with
    ``np.random.default_rng(seed)`` (sorted); an array of distinct row indices in [0, n) as given."""
    if queries is None:
        return np.arange(n, dtype=np.int64)
    if isinstance(queries, (bool, np.bool_)):
        raise TypeError(f"queries must be None, an int or an array of row indices, got {queries!r}")
    if isinstance(queries, (int, np.integer)):
        q = int(queries)
        if not 1 <= q <= n:
            raise ValueError(f"queries={q} must be in [1, n_samples={n}]")
        return np.sort(np.random.default_rng(seed).choice(n, size=q, replace=False)).astype(np.int64)
    idx = np.asarray(queries)
    if idx.ndim != 1 or idx.size == 0:
        raise ValueError(f"queries must be a non-empty 1-D array of row indices, got shape {idx.shape}")
    if idx.dtype.kind not in "iu":
        raise TypeError(f"queries must hold integer row indices, got dtype {idx.dtype}")
    idx = idx.astype(np.int64)
    bad = idx[(idx < 0) | (idx >= n)]
    if bad.size:
        raise ValueError(f"queries must be row indices in [0, {n}): got {int(bad[0])}")
    if np.unique(idx).size != idx.size:
        raise ValueError("queries must not repeat a row index")
    return idx


def plan_blocks(m: Matrix, n_queries: int, k: int, metric: str, max_memory: Any, *, scaled: bool = False
                ) -> Tuple[int, int]:
    """(query rows per group, reference rows per block) under ``max_memory`` (None: 64 MiB blocks).

    A query row costs its stored (or normalised float32) copy, the kernel's packed float32 copy and its
    lists in the merges; a
    reference row its stored bytes (mapped pages), the NaN scan's mask, the cosine copy and its
    norm; with ``scaled`` (a bank of extreme magnitude, read scaled by a power of two) each block's
    scaled copy too. The state is the (q, k) result lists and the label remapping; the rest is split between
    the two blocks. The work is (query groups x reference blocks) kernel calls, so the smallest
    plan accepted is 32 query rows and 256 reference rows (fewer when there are fewer).
    """
    d, item = m.d, m.data.dtype.itemsize
    cos = metric == "cosine"
    q_row = d * (max(item, 4) + 4 + (12 if cos else 0)) + 64 * k + 64
    ref_row = d * (item + 1 + (12 if cos else 0)) + 16
    if scaled:
        q_row, ref_row = q_row + d * max(item, 4), ref_row + d * max(item, 4)
    state = n_queries * (24 * k + 40) + blocks.label_bytes(m.n)
    budget = blocks.parse_max_memory(max_memory)
    if budget is None:
        return (max(1, min(n_queries, _DEFAULT_BYTES // q_row)), max(1, _DEFAULT_BYTES // ref_row))
    min_q, min_ref = min(n_queries, 32), min(m.n, 256)
    need = state + min_q * q_row + min_ref * ref_row
    if budget < need:
        raise ValueError(
            f"max_memory={budget} bytes ({blocks.format_bytes(budget)}) is too small for knn_loo: its fixed state "
            f"needs {blocks.format_bytes(state)} and the smallest blocks ({min_q} query rows, {min_ref} reference "
            f"rows) {blocks.format_bytes(need - state)}; the minimum is {need} bytes ({blocks.format_bytes(need)})")
    free = budget - state
    q_rows = min(n_queries, max(min_q, free // 2 // q_row))
    ref_rows = max(min_ref, (free - q_rows * q_row) // ref_row)
    return int(q_rows), int(ref_rows)


# ---------------------------------------------------------------------------- the engine


def _prep(blk: Matrix, metric: str, exponent: int = 0) -> Matrix:
    """A block as the kernel reads it: normalised rows (cosine), or scaled by the bank's power of two
    (``exponent``: an extreme-magnitude bank, see ``core.inputs.unit_exponent``), or as stored."""
    if metric == "cosine":
        return normalise(blk)
    return scaled_by_power_of_two(blk, exponent)


def _cross(Q: Matrix, qidx: np.ndarray, qlab: np.ndarray, B: Matrix, c_off: int, blab: np.ndarray, k: int,
           contiguous: bool):
    """Partial lists of the queries ``Q`` (bank rows ``qidx``) over the block ``B`` (rows ``c_off..``), self
    excluded by index: the row offset of a contiguous run, else each query's row index."""
    row_index = None if contiguous else qidx
    out = kernels.cpu_module().knn_cross(Q.data, int(qidx[0]), B.data, blab, k, Q.is_bf16, cpu_threads.num_threads(),
                                         c_off, qlab, False, row_index)
    return partial_from_kernel(out, qlab, blab, c_off)


def _group_lists(m: Matrix, y: np.ndarray, qidx: np.ndarray, Q: Matrix, k: int, metric: str, ref_rows: int,
                 exponent: int):
    """Merged partial lists of the (sorted) queries ``qidx`` (rows ``Q``) over every reference block."""
    qlab = np.ascontiguousarray(y[qidx], dtype=np.int32)
    contiguous = int(qidx[-1] - qidx[0]) + 1 == qidx.size
    acc = None
    for s, e, blk in blocks.blocks(m, ref_rows):
        B = _prep(blk, metric, exponent)
        blab = y[s:e]
        part = _cross(Q, qidx, qlab, B, s, blab, k, contiguous)
        acc = part if acc is None else merge_partials(acc, part)
    return acc


def neighbour_lists(m: Matrix, y: np.ndarray, qidx: np.ndarray, k: int, *, metric: str = "euclidean",
                    query_rows: int, ref_rows: int, exponent: int = 0):
    """``knn_loo``'s (idx, dist, tie_count, tie_same) of the rows ``qidx`` (sorted, distinct) of the
    host bank ``m``, neighbours from every row, streamed (see the module docstring). ``exponent``: every
    block is read scaled by 2^-exponent (distances are then in that frame)."""
    y = np.ascontiguousarray(y, dtype=np.int32)
    q = qidx.size
    idx = np.empty((q, k), dtype=np.int64)
    dist = np.empty((q, k), dtype=np.float32)
    tc = np.empty(q, dtype=np.int64)
    ts = np.empty(q, dtype=np.int64)
    for a in range(0, q, query_rows):
        rows = qidx[a : a + query_rows]
        Q = _prep(blocks.take(m, rows), metric, exponent)  # read from the file: no mapped pages
        p = _group_lists(m, y, rows, Q, k, metric, ref_rows, exponent)
        idx[a : a + rows.size], dist[a : a + rows.size] = p.idx, p.dist
        tc[a : a + rows.size], ts[a : a + rows.size] = p.tie_count, p.tie_same
    return idx, dist, tc, ts


def boundary_labels(m: Matrix, y: np.ndarray, rows: np.ndarray, boundary: np.ndarray, *, metric: str = "euclidean",
                    ref_rows: int, n_classes: int, exponent: int = 0):
    """``_C.knn_boundary_labels``' (offsets, labels, counts) streamed: for each bank row ``rows[r]``,
    the label histogram of the other rows at distance exactly ``boundary[r]`` (the kernel's bits:
    every distance of the row to a block comes from ``knn_cross`` with k = the block's rows)."""
    y = np.ascontiguousarray(y, dtype=np.int32)
    hist = np.zeros((rows.size, n_classes), dtype=np.int64)
    sub = max(1, min(ref_rows, 4096))
    for a in range(0, rows.size, 64):
        r = rows[a : a + 64]
        Q = _prep(blocks.take(m, r), metric, exponent)
        T = np.asarray(boundary[a : a + 64], dtype=np.float32)
        qlab = np.ascontiguousarray(y[r])
        for s, e, blk in blocks.blocks(m, ref_rows):
            B = _prep(blk, metric, exponent)
            for b0 in range(0, e - s, sub):
                b1 = min(e - s, b0 + sub)
                idx, dist, *_ = kernels.cpu_module().knn_cross(
                    Q.data, m.n, B.rows(b0, b1).data, y[s + b0 : s + b1], b1 - b0, Q.is_bf16,
                    cpu_threads.num_threads(), s + b0, qlab)
                hit = (dist == T[:, None]) & (idx >= 0) & (idx != r[:, None])
                rr, cc = np.nonzero(hit)
                np.add.at(hist[a : a + 64], (rr, y[idx[rr, cc]]), 1)
    offsets = np.zeros(rows.size + 1, dtype=np.int64)
    labels, counts = [], []
    for i in range(rows.size):
        nz = np.flatnonzero(hist[i])
        labels.append(nz.astype(np.int32))
        counts.append(hist[i, nz])
        offsets[i + 1] = offsets[i] + nz.size
    cat = (lambda parts, dt: np.concatenate(parts).astype(dt) if parts else np.zeros(0, dt))
    return offsets, cat(labels, np.int32), cat(counts, np.int64)
