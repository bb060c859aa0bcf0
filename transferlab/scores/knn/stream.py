"""``KnnLooStream``: leave-one-out k-NN as a streaming state (the ``ScoreStream`` protocol).

Contract: built over the whole reference bank and its labels; chunks are blocks of *query* rows, scored
against the whole bank through ``out_of_core.neighbour_lists`` (bitwise ``knn_loo``'s lists); states over
disjoint query rows merge in any order; ``compute()`` once every query is covered equals ``knn_loo`` with
the same options bit for bit. A state pickles (a memory-mapped bank travels as its file name, not its
bytes); the class stays importable as ``transferlab.scores.knn.stream.KnnLooStream``. With ``task=
"regression"`` / ``"multilabel"`` the labels are targets / indicators and ``compute()`` equals ``knn_loo``
with that task (``targets``). Imports ``rules``, ``credit``, ``out_of_core`` and ``targets``.
"""
from __future__ import annotations

import copy
from typing import Any, Optional

import numpy as np

from transferlab.core import blocks
from transferlab.core import devices
from transferlab.core.arrays import Labels, Matrix, as_labels, as_matrix, as_targets
from transferlab.core.inputs import check_finite, distances_in_bank_scale, scan_rows, unit_exponent
from transferlab.scores._stream import ScoreStream
from transferlab.scores.knn.credit import credit
from transferlab.scores.knn.out_of_core import neighbour_lists, plan_blocks, resolve_queries
from transferlab.scores.knn.rules import KnnLooResult, check_loo_problem, check_options
from transferlab.scores.knn.targets import bank_members, check_knn_task, multilabel_score, regression_score

__all__ = ["KnnLooStream"]


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
                 seed=0, max_memory=None, task="classification") -> None:
        if features is None or labels is None:
            raise TypeError("the knn_loo stream is built over the reference bank: "
                            "stream('knn_loo', features, labels, k=...) (or streaming.run('knn_loo', bank, labels))")
        k = check_options(k, metric, ties)
        blocks.parse_max_memory(max_memory)
        m = devices.to_host(as_matrix(features, "features"))
        self._targets = None  # regression targets / multilabel indicators (N, T) float64 for those tasks
        if check_knn_task(task, False) == "classification":
            lab = as_labels(labels, m.n, "labels", min_classes=1)
            check_loo_problem(m.n, int(k), lab, stacklevel=3)
        else:
            self._targets = as_targets(labels, task, m.n, "labels").values
            if not 1 <= int(k) <= m.n - 1:
                raise ValueError(f"k must be in [1, n_samples-1]: got k={k} with n_samples={m.n}")
            lab = Labels(np.zeros(m.n, dtype=np.int32), np.zeros(1, dtype=np.int64), np.array([m.n], dtype=np.int64))
        self._qidx = resolve_queries(queries, m.n, seed)
        self._plan = plan_blocks(m, self._qidx.size, int(k), metric, max_memory)  # too small: ValueError here
        bad, row_top = scan_rows(m.with_budget(blocks.Budget(self._plan[1])))
        check_finite(m, "raise", bad)
        # Extreme magnitudes: blocks are read scaled by the bank's power of two (as knn_loo's paths).
        self._exponent = 0 if metric == "cosine" else unit_exponent(row_top)
        if self._exponent:
            self._plan = plan_blocks(m, self._qidx.size, int(k), metric, max_memory, scaled=True)
        self._bank, self._lab = m, lab
        self._order = np.argsort(self._qidx, kind="stable")
        self._sorted = self._qidx[self._order]
        q_param = queries if queries is None or isinstance(queries, (int, np.integer)) else tuple(self._qidx.tolist())
        more = {} if task == "classification" else {"task": task}  # default params as before (old pickles merge)
        super().__init__(k=int(k), metric=metric, ties=ties, queries=q_param, seed=seed, max_memory=max_memory,
                         bank=_fingerprint(m), **more)
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
            if lab.shape[0] != chunk.n * (1 if self._targets is None else self._targets.shape[1]):
                raise ValueError(f"labels has length {lab.shape[0]} but the chunk has {chunk.n} rows")
            if self._targets is not None:
                same = lab.size == chunk.n * self._targets.shape[1] and np.array_equal(
                    np.asarray(labels, dtype=np.float64).reshape(chunk.n, -1), self._targets[start:stop])
            else:
                same = np.array_equal(lab, self._lab.classes[self._lab.codes[start:stop]])
            if not same:
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
                                  query_rows=self._plan[0], ref_rows=self._plan[1], exponent=self._exponent)
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
        twin._new_part()
        twin.n = 0
        twin._next = 0
        twin._reset_pass()
        return twin

    def _compute(self) -> float:
        if self._targets is None:
            return self.details().score
        self._check_covered()
        p = self.params
        Y = self._targets
        members_of = bank_members(self._bank, lambda pos: self._sorted[pos], metric=p["metric"],
                                  exponent=self._exponent, ref_rows=self._plan[1])
        score_of = regression_score if p["task"] == "regression" else multilabel_score
        return score_of(Y, Y[self._sorted], self.idx, self.dist, self.tie_count, p["k"], p["ties"], members_of)

    def _check_covered(self) -> None:
        if not np.all(self.covered):
            miss = int(self._sorted[np.argmin(self.covered)])
            raise ValueError(f"{int((~self.covered).sum())} of {self.covered.size} query rows are not covered yet "
                             f"(first: row {miss}); feed every row (or every requested query) before compute()")

    def details(self):
        """:class:`transferlab.scores.knn.KnnLooResult` of the queries (in the order they were given)."""
        if self._targets is not None:
            raise ValueError("details() is for task='classification'; with regression / multilabel targets call "
                             "compute()")
        self._check_covered()
        p = self.params
        correct = credit(self._bank, self._lab.codes, p["k"], p["ties"], self.idx, self.dist, self.tie_count,
                          self.tie_same, rows=self._sorted, metric=p["metric"], max_memory=p["max_memory"],
                          exponent=self._exponent)
        dist = distances_in_bank_scale(self.dist, self._exponent)
        back = np.empty_like(self._order)  # the sorted position of each query as given
        back[self._order] = np.arange(self._order.size)
        return KnnLooResult(float(correct[back].mean()), self.idx[back], dist[back], correct[back],
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
