"""Leave-one-out k-NN out of core: query rows against the whole bank in reference blocks, min-merged.

Two users: ``knn_loo(..., queries=..., max_memory=...)`` (the score on a subsample of query rows, or
on every row under a memory budget) and :class:`KnnLooStream` (the streaming state: workers feed
disjoint query row blocks, states merge, ``compute()`` once every query is covered).

How (``neighbour_lists``): the bank is read in reference blocks through the shared block reader
(``transferlab.core.blocks``: a memory-mapped bank's pages are released block by block); each block
gives partial neighbour lists of the queries through ``_C.knn_cross`` (``csrc/knn/knn_cross.h``:
the same distance bits as ``knn_loo``'s kernel), merged with ``distributed.merge_partials`` (the
min-merge by (distance, index) with exact tie counts). Self is excluded by index:

* queries forming one contiguous run of rows ``a..b``: ``knn_cross``'s own exclusion (row offset a);
* scattered queries: the block is cut at the query rows; the runs between them are candidates of
  every query (row offset N, beyond any candidate, so nothing is excluded), and the query rows of
  the block, gathered, are scored in *query numbering* (query r is row r, gathered row c is row
  lo + c), where ``knn_cross``'s exclusion removes exactly the self pairs; their indices are then
  mapped back to bank rows (monotone, so the (distance, index) order is kept).

Every candidate of every query is thus seen once, by the same distance function, so the merged
lists, distances and tie counts equal ``knn_loo``'s bit for bit. Cost: (queries x N x D) like the
full score restricted to those rows; memory: the query block, one reference block, O(q k) lists.
"""
from __future__ import annotations

import copy
from typing import Any, Optional, Tuple

import numpy as np

from transferlab.core import blocks
from transferlab.core import cpu_threads
from transferlab.core import devices
from transferlab import kernels
from transferlab.core.arrays import Matrix, as_labels, as_matrix
from transferlab.scores._stream import ScoreStream

__all__ = ["KnnLooStream", "neighbour_lists", "boundary_labels", "plan_blocks", "resolve_queries"]

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


def plan_blocks(m: Matrix, n_queries: int, k: int, metric: str, max_memory: Any) -> Tuple[int, int]:
    """(query rows per group, reference rows per block) under ``max_memory`` (None: 64 MiB blocks).

    A query row costs its stored (or normalised float32) copy and its lists in the merges; a
    reference row its stored bytes (mapped pages), the NaN scan's mask, the cosine copy and its
    norm. The state is the (q, k) result lists and the label remapping; the rest is split between
    the two blocks. The work is (query groups x reference blocks) kernel calls, so the smallest
    plan accepted is 32 query rows and 256 reference rows (fewer when there are fewer).
    """
    d, item = m.d, m.data.dtype.itemsize
    cos = metric == "cosine"
    q_row = d * (max(item, 4) + (12 if cos else 0)) + 64 * k + 64
    ref_row = d * (item + 1 + (12 if cos else 0)) + 16
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


def _prep(blk: Matrix, metric: str) -> Matrix:
    if metric != "cosine":
        return blk
    from transferlab.scores.knn.one_shot import _normalise

    return _normalise(blk)


def _cross(Q: Matrix, q_off: int, qlab: np.ndarray, B: Matrix, c_off: int, blab: np.ndarray, k: int):
    from transferlab.distributed import _partial

    out = kernels.cpu_module().knn_cross(Q.data, q_off, B.data, blab, k, Q.is_bf16, cpu_threads.num_threads(),
                                          c_off, qlab)
    return _partial(out, qlab, blab, c_off)


def _self_dist(Q: Matrix, qlab: np.ndarray, G: Matrix) -> np.ndarray:
    """Kernel distance of each query to itself (``G``: its own rows gathered from the block): every
    pair of the small group is listed (nothing excluded, k = group size), the diagonal is kept."""
    out = np.empty(Q.n, dtype=np.float32)
    for a in range(0, Q.n, 256):
        b = min(Q.n, a + 256)
        idx, dist, *_ = kernels.cpu_module().knn_cross(
            Q.rows(a, b).data, 1 << 62, G.rows(a, b).data, qlab[a:b], b - a, Q.is_bf16, cpu_threads.num_threads(),
            0, qlab[a:b])
        rows, cols = np.nonzero(idx == np.arange(b - a)[:, None])
        out[a + rows] = dist[rows, cols]
    return out


def _drop_self(p, own: np.ndarray, dself: np.ndarray, k: int):
    """k-lists excluding self from (k+1)-lists computed with nothing excluded.

    ``own[r]``: query r's row when it lies in this block (else -1, ``dself`` +inf); ``dself``: its
    distance to itself. Self is removed from the list, the list cut to k; with T' the old last
    distance and t the new one: t == T' -> tie counts minus self when d_self == T' (the kernel
    counted every candidate at T', listed or not); t < T' -> every candidate at t is listed (the
    unlisted ones lie at >= T'), so the ties are counted in the list.
    """
    from transferlab.distributed import Partial

    rows = np.arange(p.idx.shape[0])
    is_self = (p.idx == own[:, None]) & (own[:, None] >= 0)
    order = np.argsort(is_self, axis=1, kind="stable")  # self (at most one) to the end
    idx = np.take_along_axis(p.idx, order, axis=1)
    dist = np.take_along_axis(p.dist, order, axis=1)
    same = np.take_along_axis(p.same, order, axis=1)
    listed_self = is_self.any(axis=1)
    idx[listed_self, -1], dist[listed_self, -1], same[listed_self, -1] = -1, np.inf, False
    found1 = p.found - listed_self
    found = np.minimum(found1, k)
    old_last = np.where(p.found > 0, p.dist[rows, np.maximum(p.found - 1, 0)], np.inf)
    last = np.where(found > 0, dist[rows, np.maximum(found - 1, 0)], np.inf)
    at = (dist == last[:, None]) & (idx >= 0)
    self_at = (dself == old_last).astype(np.int64)
    keep_kernel = last == old_last
    tc = np.where(keep_kernel, p.tie_count - self_at, at.sum(axis=1))
    ts = np.where(keep_kernel, p.tie_same - self_at, (at & same).sum(axis=1))
    tc[found == 0] = 0
    ts[found == 0] = 0
    return Partial(np.ascontiguousarray(idx[:, :k]), np.ascontiguousarray(dist[:, :k]),
                   np.ascontiguousarray(same[:, :k]), found, tc, ts)


def _group_lists(m: Matrix, y: np.ndarray, qidx: np.ndarray, Q: Matrix, k: int, metric: str, ref_rows: int):
    """Merged partial lists of the (sorted) queries ``qidx`` (rows ``Q``) over every reference block."""
    from transferlab.distributed import merge_partials

    qlab = np.ascontiguousarray(y[qidx], dtype=np.int32)
    contiguous = int(qidx[-1] - qidx[0]) + 1 == qidx.size
    acc = None
    for s, e, blk in blocks.blocks(m, ref_rows):
        B = _prep(blk, metric)
        blab = y[s:e]
        if contiguous:
            part = _cross(Q, int(qidx[0]), qlab, B, s, blab, k)
        else:
            # Every query against the whole block, nothing excluded (row offset N), one more
            # neighbour; then self is dropped from the lists of the queries lying in the block.
            part = _cross(Q, m.n, qlab, B, s, blab, k + 1)
            lo, hi = (int(v) for v in np.searchsorted(qidx, [s, e]))
            own = np.full(qidx.size, -1, dtype=np.int64)
            dself = np.full(qidx.size, np.inf, dtype=np.float32)
            if hi > lo:
                own[lo:hi] = qidx[lo:hi]
                dself[lo:hi] = _self_dist(Q.rows(lo, hi), qlab[lo:hi], B.take(qidx[lo:hi] - s))
            part = _drop_self(part, own, dself, k)
        acc = part if acc is None else merge_partials(acc, part)
    return acc


def neighbour_lists(m: Matrix, y: np.ndarray, qidx: np.ndarray, k: int, *, metric: str = "euclidean",
                    query_rows: int, ref_rows: int):
    """``knn_loo``'s (idx, dist, tie_count, tie_same) of the rows ``qidx`` (sorted, distinct) of the
    host bank ``m``, neighbours from every row, streamed (see the module docstring)."""
    y = np.ascontiguousarray(y, dtype=np.int32)
    q = qidx.size
    idx = np.empty((q, k), dtype=np.int64)
    dist = np.empty((q, k), dtype=np.float32)
    tc = np.empty(q, dtype=np.int64)
    ts = np.empty(q, dtype=np.int64)
    for a in range(0, q, query_rows):
        rows = qidx[a : a + query_rows]
        Q = _prep(blocks.take(m, rows), metric)  # read from the file: no mapped pages
        p = _group_lists(m, y, rows, Q, k, metric, ref_rows)
        idx[a : a + rows.size], dist[a : a + rows.size] = p.idx, p.dist
        tc[a : a + rows.size], ts[a : a + rows.size] = p.tie_count, p.tie_same
    return idx, dist, tc, ts


def boundary_labels(m: Matrix, y: np.ndarray, rows: np.ndarray, boundary: np.ndarray, *, metric: str = "euclidean",
                    ref_rows: int, n_classes: int):
    """``_C.knn_boundary_labels``' (offsets, labels, counts) streamed: for each bank row ``rows[r]``,
    the label histogram of the other rows at distance exactly ``boundary[r]`` (the kernel's bits:
    every distance of the row to a block comes from ``knn_cross`` with k = the block's rows)."""
    y = np.ascontiguousarray(y, dtype=np.int32)
    hist = np.zeros((rows.size, n_classes), dtype=np.int64)
    sub = max(1, min(ref_rows, 4096))
    for a in range(0, rows.size, 64):
        r = rows[a : a + 64]
        Q = _prep(blocks.take(m, r), metric)
        T = np.asarray(boundary[a : a + 64], dtype=np.float32)
        qlab = np.ascontiguousarray(y[r])
        for s, e, blk in blocks.blocks(m, ref_rows):
            B = _prep(blk, metric)
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


# ---------------------------------------------------------------------------- the streaming state


class KnnLooStream(ScoreStream):
    """Streaming :func:`transferlab.knn_loo`: built over the reference bank and its labels; chunks are
    blocks of *query* rows, scored against the whole bank in reference blocks and min-merged.

        st = KnnLooStream(bank, labels, k=1)              # or streaming.stream("knn_loo", bank, labels)
        part = st.fork()                                  # a worker: query rows a..b
        part.update(bank[a:b], labels[a:b], start=a)
        st.merge(part)                                    # disjoint query rows, any order
        st.compute()                                      # == knn_loo(bank, labels, k=1) bitwise

    ``update(x, labels, start=None)``: the rows of the bank ``start .. start + len(x)`` (default:
    right after the previous chunk this state received); they must equal the bank's rows and labels
    there. Only the requested ``queries`` among them are scored. ``compute()`` needs every query
    covered (ValueError naming the first missing row otherwise). Options as ``knn_loo`` (``k``,
    ``metric``, ``ties``, ``queries``, ``seed``, ``max_memory``); the bank must be finite. A state
    pickles (a memory-mapped bank travels as its file name, not its bytes).
    """

    over_bank = True  # streaming.run builds it over the source bank and its labels

    def __init__(self, features=None, labels=None, *, k=1, metric="euclidean", ties="expected", queries=None,
                 seed=0, max_memory=None) -> None:
        from transferlab.scores.knn.one_shot import check_loo_problem, check_options

        if features is None or labels is None:
            raise TypeError("the knn_loo stream is built over the reference bank: "
                            "stream('knn_loo', features, labels, k=...) (or streaming.run('knn_loo', bank, labels))")
        k = check_options(k, metric, ties)
        blocks.parse_max_memory(max_memory)
        m = devices.to_host(as_matrix(features, "features"))
        lab = as_labels(labels, m.n, "labels", min_classes=1)
        check_loo_problem(m.n, int(k), lab, stacklevel=3)
        from transferlab.core.inputs import check_finite

        self._qidx = resolve_queries(queries, m.n, seed)
        self._plan = plan_blocks(m, self._qidx.size, int(k), metric, max_memory)  # too small: ValueError here
        check_finite(m.with_budget(blocks.Budget(self._plan[1])), "raise")
        self._bank, self._lab = m, lab
        self._order = np.argsort(self._qidx, kind="stable")
        self._sorted = self._qidx[self._order]
        q_param = queries if queries is None or isinstance(queries, (int, np.integer)) else tuple(self._qidx.tolist())
        super().__init__(k=int(k), metric=metric, ties=ties, queries=q_param, seed=seed, max_memory=max_memory,
                         bank=_fingerprint(m))
        self.d = m.d
        self._next = 0

    # ------------------------------------------------------------------ protocol
    def _reset_pass(self) -> None:
        q, k = self._sorted.size, self.params["k"]
        self.idx = np.full((q, k), -1, dtype=np.int64)
        self.dist = np.full((q, k), np.inf, dtype=np.float32)
        self.tie_count = np.zeros(q, dtype=np.int64)
        self.tie_same = np.zeros(q, dtype=np.int64)
        self.covered = np.zeros(q, dtype=bool)

    def update(self, x: Any, labels: Any = None, *, start: Optional[int] = None) -> "KnnLooStream":
        """Score the requested queries among bank rows ``start .. start + len(x)``. Returns self."""
        if self.complete:
            raise ValueError("KnnLooStream: every pass has ended; call compute()")
        m, n = self._bank, self._bank.n
        chunk = as_matrix(x, "features")
        if chunk.d != m.d:
            raise ValueError(f"features chunk has n_features={chunk.d}, the bank has {m.d}")
        start = self._next if start is None else start
        if isinstance(start, bool) or not isinstance(start, (int, np.integer)) or start < 0:
            raise ValueError(f"start must be a row index >= 0, got {start!r}")
        start, stop = int(start), int(start) + chunk.n
        if stop > n:
            raise ValueError(f"chunk rows {start}..{stop} run past the bank's n_samples={n}")
        if labels is not None:
            lab = np.asarray(labels).reshape(-1)
            if lab.shape[0] != chunk.n:
                raise ValueError(f"labels has length {lab.shape[0]} but the chunk has {chunk.n} rows")
            if not np.array_equal(lab, self._lab.classes[self._lab.codes[start:stop]]):
                raise ValueError(f"labels of rows {start}..{stop} differ from the bank's labels")
        if not np.array_equal(_host_f64(chunk), m.to_float64_host(start, stop), equal_nan=True):
            raise ValueError(f"the chunk's rows differ from the bank's rows {start}..{stop}: feed the bank's own rows")
        blocks.release(m, start, stop)
        lo, hi = (int(v) for v in np.searchsorted(self._sorted, [start, stop]))
        if np.any(self.covered[lo:hi]):
            raise ValueError(f"rows {start}..{stop} overlap rows this state has already scored")
        if hi > lo:
            p = self.params
            out = neighbour_lists(m, self._lab.codes, self._sorted[lo:hi], p["k"], metric=p["metric"],
                                  query_rows=self._plan[0], ref_rows=self._plan[1])
            self.idx[lo:hi], self.dist[lo:hi], self.tie_count[lo:hi], self.tie_same[lo:hi] = out
            self.covered[lo:hi] = True
        self.n += chunk.n
        self._next = stop
        return self

    def _merge(self, other: "KnnLooStream", slots: np.ndarray) -> None:
        both = self.covered & other.covered
        if np.any(both):
            raise ValueError(f"cannot merge states that both scored query row {int(self._sorted[np.argmax(both)])}: "
                             "workers must take disjoint row blocks")
        new = other.covered
        self.idx[new], self.dist[new] = other.idx[new], other.dist[new]
        self.tie_count[new], self.tie_same[new] = other.tie_count[new], other.tie_same[new]
        self.covered |= new

    def _check_pass_rows(self) -> None:
        if self.n == 0:
            raise ValueError("empty feature bank: n_samples=0 (no rows were added to the stream)")

    def fork(self) -> "KnnLooStream":
        """An empty state over the same bank (shared, not copied) for a worker."""
        twin = copy.copy(self)
        twin.n = 0
        twin._next = 0
        twin._reset_pass()
        return twin

    def _compute(self) -> float:
        return self.details().score

    def details(self):
        """:class:`transferlab.scores.knn.KnnLooResult` of the queries (in the order they were given)."""
        from transferlab.scores.knn.one_shot import KnnLooResult, _credit

        if not np.all(self.covered):
            miss = int(self._sorted[np.argmin(self.covered)])
            raise ValueError(f"{int((~self.covered).sum())} of {self.covered.size} query rows are not covered yet "
                             f"(first: row {miss}); feed every row (or every requested query) before compute()")
        p = self.params
        correct = _credit(self._bank, self._lab.codes, p["k"], p["ties"], self.idx, self.dist, self.tie_count,
                          self.tie_same, rows=self._sorted, metric=p["metric"], max_memory=p["max_memory"])
        back = np.empty_like(self._order)  # the sorted position of each query as given
        back[self._order] = np.arange(self._order.size)
        return KnnLooResult(float(correct[back].mean()), self.idx[back], self.dist[back], correct[back],
                            self.tie_count[back], self._lab.classes, rows=self._qidx.copy())

    # ------------------------------------------------------------------ pickling
    def __getstate__(self):
        state = dict(self.__dict__)
        state["_bank"] = _bank_ref(self._bank)
        return state

    def __setstate__(self, state):
        state["_bank"] = _bank_open(state["_bank"])
        self.__dict__.update(state)


def _host_f64(m: Matrix) -> np.ndarray:
    return devices.to_host(m).to_float64_host()


def _memmap_of(a) -> Optional[np.memmap]:
    obj = a
    while obj is not None:
        if isinstance(obj, np.memmap) and getattr(obj, "filename", None):
            return obj
        obj = getattr(obj, "base", None)
    return None


def _fingerprint(m: Matrix) -> str:
    mm = _memmap_of(m.data)
    if mm is not None and mm is m.data:
        return f"memmap:{mm.filename}:{mm.offset}:{m.n}x{m.d}:{m.dtype}"
    import uuid

    return f"array:{m.n}x{m.d}:{m.dtype}:{uuid.uuid4().hex}"


def _bank_ref(m: Matrix):
    """A memory-mapped bank travels as (file, offset, shape, dtype); anything else as itself."""
    mm = _memmap_of(m.data)
    if mm is not None and mm is m.data and m.data.flags.c_contiguous:
        return ("memmap", mm.filename, int(mm.offset), tuple(m.data.shape), m.data.dtype.str, m.dtype, m.name)
    return m


def _bank_open(ref):
    if isinstance(ref, tuple) and ref and ref[0] == "memmap":
        _, path, offset, shape, dt, dtype, name = ref
        return Matrix(np.memmap(path, mode="r", dtype=np.dtype(dt), shape=shape, offset=offset), "cpu", dtype, name)
    return ref
