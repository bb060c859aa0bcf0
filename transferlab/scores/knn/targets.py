"""k-NN beyond single-label classes: regression R^2 and multilabel accuracy from any path's neighbour lists,
and the boundary-group rescan they (and ``knn_accuracy``) share.

Contract: the definitions of SCORES.md ("Targets beyond single-label classification"). For query i, with
T the k-th smallest distance, the rows strictly closer than T enter with weight 1/k each and the s
remaining slots are shared by the boundary group G (every candidate at exactly T, ``tie_count = |G|``):

* regression: the prediction is the mean target of the k nearest, ties at T entering with equal weight
  (each member of G with weight s / (|G| k): the expected prediction under uniform random tie-breaking,
  a function of the data); score = R^2 = 1 - SSE/SST per target column, averaged over columns
  (scikit-learn ``r2_score``, uniform average);
* multilabel: per label, the positives among the k nearest (the closer ones plus a uniformly random
  s-subset of G: hypergeometric) vote; more than k/2 positives predicts 1, fewer predicts 0, exactly k/2
  counts 1/2 correct; credit = the exact expectation; score = mean per-label accuracy.

``ties="lowest_index"`` takes the k listed neighbours (the argmin by (distance, index)) instead of the
expectation, as for classification. Rows whose G is larger than the slots left need G's members: a
rescan of the candidates with the kernels' own distance bits (``_C.knn_cross`` lists every candidate of
a block; its distances equal ``knn_loo``'s bit for bit, csrc/knn/knn_cross.h). Inputs are read, never
written. Imports ``rules`` only from the kNN package.
"""
from __future__ import annotations

from math import comb
from typing import Callable, List, Optional

import numpy as np

from transferlab import kernels
from transferlab.core import blocks
from transferlab.core import cpu_threads
from transferlab.core.arrays import Matrix
from transferlab.core.inputs import scaled_by_power_of_two
from transferlab.scores.knn.rules import expected_vote_credit, normalise, vote

__all__ = ["boundary_members", "bank_members", "ambiguous_rows", "regression_score", "multilabel_score", "class_credit",
           "check_knn_task"]

_QUERY_CHUNK = 64
_SUB_ROWS = 4096


def check_knn_task(task: str, return_details) -> str:
    """The task of a kNN entry point (``knn_loo``, ``knn_accuracy``, their streams)."""
    from transferlab.scores.registry import require_task

    require_task("knn_loo", task)
    if task != "classification" and return_details:
        raise ValueError(f"return_details=True is for task='classification' (per-sample labels and credit); "
                         f"with task={task!r} call without it")
    return task


def ambiguous_rows(dist: np.ndarray, tie_count: np.ndarray):
    """(boundary distance T (q,), slots s of the list at T (q,), rows whose G is larger than s)."""
    boundary = dist[:, -1]
    slots = np.sum(dist == boundary[:, None], axis=1)
    return boundary, slots, np.flatnonzero(tie_count > slots)


def boundary_members(queries: Matrix, bank: Matrix, boundary: np.ndarray, *, self_rows: Optional[np.ndarray] = None,
                     prep: Callable[[Matrix], Matrix] = lambda b: b, ref_rows: Optional[int] = None) -> List[np.ndarray]:
    """For each query row r, the bank rows at distance exactly ``boundary[r]`` (sorted indices), self
    (``self_rows[r]``, leave-one-out) excluded by index.

    ``queries``: the query rows as the kernel reads them (normalised / scaled already); ``bank``: the
    bank, each block passed through ``prep`` first (the same preparation), read in blocks of
    ``ref_rows`` (the shared block reader: a memory-mapped bank's pages are released per block). Every
    distance comes from ``_C.knn_cross`` with k = the block's rows, the kernels' own bits.
    """
    q = queries.n
    found: List[List[np.ndarray]] = [[] for _ in range(q)]
    far = 1 << 62  # a query offset beyond every candidate: nothing excluded by the kernel, self dropped below
    for a in range(0, q, _QUERY_CHUNK):
        b = min(q, a + _QUERY_CHUNK)
        Q = queries.rows(a, b)
        T = np.asarray(boundary[a:b], dtype=np.float32)
        for s, e, blk in blocks.blocks(bank, ref_rows or _SUB_ROWS):
            B = prep(blk)
            for b0 in range(0, e - s, _SUB_ROWS):
                b1 = min(e - s, b0 + _SUB_ROWS)
                idx, dist, *_ = kernels.cpu_module().knn_cross(Q.data, far, B.rows(b0, b1).data, None, b1 - b0,
                                                               Q.is_bf16, cpu_threads.num_threads(), s + b0)
                hit = (dist == T[:, None]) & (idx >= 0)
                if self_rows is not None:
                    hit &= idx != self_rows[a:b, None]
                for r in np.flatnonzero(hit.any(axis=1)):
                    found[a + r].append(idx[r][hit[r]])
    return [np.sort(np.concatenate(f)) if f else np.zeros(0, dtype=np.int64) for f in found]


def bank_members(m: Matrix, rows_of: Callable[[np.ndarray], np.ndarray], *, metric: str, exponent: int,
                 ref_rows: Optional[int]) -> Callable[[np.ndarray, np.ndarray], List[np.ndarray]]:
    """``members_of(positions, boundary)`` for leave-one-out lists over the raw host bank ``m`` read in
    blocks (the streamed paths): bank rows ``rows_of(positions)``, each block normalised (cosine) or scaled
    by 2^-``exponent`` as the lists' kernel read it."""
    def prep(b: Matrix) -> Matrix:
        return normalise(b) if metric == "cosine" else scaled_by_power_of_two(b, exponent)

    def members_of(positions: np.ndarray, boundary: np.ndarray) -> List[np.ndarray]:
        rows = rows_of(positions)
        return boundary_members(prep(blocks.take(m, rows)), m, boundary, self_rows=rows, prep=prep,
                                ref_rows=ref_rows)

    return members_of


def _members_or_listed(idx, dist, tie_count, ties, members_of):
    """(boundary, slots, {row: members of G}) for the rows whose expectation needs G's members."""
    boundary, slots, amb = ambiguous_rows(dist, tie_count)
    if ties == "lowest_index" or amb.size == 0:
        return boundary, slots, {}
    members = members_of(amb, boundary[amb])
    return boundary, slots, dict(zip(amb.tolist(), members))


def regression_score(Y: np.ndarray, Yq: np.ndarray, idx, dist, tie_count, k: int, ties: str, members_of) -> float:
    """R^2 (uniform average over target columns) of the k-NN predictions of the query targets ``Yq``
    (q, T) from the candidates' targets ``Y``; ``members_of(rows, boundary)`` lists G of those rows."""
    pred = Y[idx].mean(axis=1)  # (q, T): the listed k, each 1/k
    boundary, slots, groups = _members_or_listed(idx, dist, tie_count, ties, members_of)
    for i, g in groups.items():
        closer = idx[i][dist[i] < boundary[i]]
        pred[i] = (Y[closer].sum(axis=0) + slots[i] / g.size * Y[g].sum(axis=0)) / k
    return r2(Yq, pred)


def r2(Yq: np.ndarray, pred: np.ndarray) -> float:
    """1 - SSE/SST per column, averaged (scikit-learn ``r2_score``); a constant column: ValueError."""
    sst = ((Yq - Yq.mean(axis=0)) ** 2).sum(axis=0)
    flat = np.flatnonzero(sst == 0)
    if flat.size:
        raise ValueError(f"R^2 is undefined for a constant target: column {int(flat[0])} of the scored rows' "
                         "targets has zero variance")
    return float(np.mean(1.0 - ((Yq - pred) ** 2).sum(axis=0) / sst))


def _vote_credit(pos, k: int, truth):
    """Credit of a per-label vote with ``pos`` positives among k: majority right = 1, k/2 = 1/2."""
    half = 2 * pos == k
    win = np.where(truth == 1, 2 * pos > k, 2 * pos < k)
    return np.where(half, 0.5, win.astype(np.float64))


def multilabel_score(Y: np.ndarray, Yq: np.ndarray, idx, dist, tie_count, k: int, ties: str, members_of) -> float:
    """Mean per-label accuracy of the per-label majority vote (module docstring); ``Y`` / ``Yq`` 0/1."""
    credit = _vote_credit(Y[idx].sum(axis=1), k, Yq)  # (q, L)
    boundary, slots, groups = _members_or_listed(idx, dist, tie_count, ties, members_of)
    for i, g in groups.items():
        closer = idx[i][dist[i] < boundary[i]]
        base = Y[closer].sum(axis=0)
        hpos = Y[g].sum(axis=0).astype(np.int64)
        s, n_g = int(slots[i]), g.size
        total = comb(n_g, s)
        for lab in range(Y.shape[1]):
            h = int(hpos[lab])
            acc = 0.0
            for drawn in range(max(0, s - (n_g - h)), min(h, s) + 1):
                p = comb(h, drawn) * comb(n_g - h, s - drawn) / total
                acc += p * float(_vote_credit(np.array(base[lab] + drawn), k, np.array(Yq[i, lab])))
            credit[i, lab] = acc
    return float(credit.mean())


def class_credit(y: np.ndarray, yq: np.ndarray, idx, dist, tie_count, tie_same, k: int, ties: str,
                 members_of) -> np.ndarray:
    """Per-query classification credit (``knn_loo``'s rule) from lists over candidates labelled ``y``:
    ``knn_accuracy``'s path (the leave-one-out path keeps ``credit.credit``, the same rule)."""
    if k == 1:
        if ties == "expected":
            return tie_same.astype(np.float64) / tie_count.astype(np.float64)
        return (y[idx[:, 0]] == yq).astype(np.float64)
    labs = y[idx]
    d64 = dist.astype(np.float64)
    correct = (vote(labs, d64) == yq).astype(np.float64)
    boundary, slots, groups = _members_or_listed(idx, dist, tie_count, ties, members_of)
    for i, g in groups.items():
        closer = dist[i] < boundary[i]
        hl, hc = np.unique(y[g], return_counts=True)
        correct[i] = expected_vote_credit(labs[i][closer].tolist(), d64[i][closer].tolist(),
                                          {int(a): int(b) for a, b in zip(hl, hc)}, int(slots[i]),
                                          float(boundary[i]), int(yq[i]))
    return correct
