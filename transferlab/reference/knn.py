"""Float64 oracle of leave-one-out k-NN accuracy, written from SCORES.md ("kNN leave-one-out accuracy").

Brute force, chunked over rows: for every row i the squared Euclidean distances to all rows are
``sum((x_i - x_j)**2)`` in float64 (exact duplicates get exactly equal distances), self is excluded
by index (distance set to +inf), candidates are ordered by (distance, index).

Tie rule (the same as ``transferlab.scores.knn_loo``), with T the k-th smallest distance of row i,
the *boundary group* G = {j != i : d(i, j) == T} (|G| = g) and s = the number of the k nearest that lie
in G (the slots the group fills):

* ``ties="lowest_index"``: the k nearest by (distance, index) vote;
* ``ties="expected"``: the k nearest are the rows closer than T plus a uniformly random s-subset of G;
  the credit is the probability that the vote then names y_i, enumerated here over every way of taking
  a_c members of each class c of G (weight prod_c C(h_c, a_c) / C(g, s)).

A vote goes to the label with the most votes, then the smaller summed distance, then the smaller label.
"""
from __future__ import annotations

import itertools
from fractions import Fraction
from math import comb
from typing import Dict, Tuple

import numpy as np

_CHUNK_BYTES = 32 << 20


def pairwise_sq_dists(X: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Squared distances (float64) of the given rows to every row, by the difference form."""
    X = np.asarray(X, dtype=np.float64)
    return np.stack([((X - X[i]) ** 2).sum(axis=1) for i in rows]) if len(rows) else np.zeros((0, X.shape[0]))


def _vote(counts: Dict[int, int], sums: Dict[int, float]) -> int:
    """The winning label: most votes, then smaller summed distance, then smaller label."""
    return min(counts, key=lambda c: (-counts[c], sums[c], c))


def _expected_credit(closer_labels, closer_d, group_hist: Dict[int, int], s: int, T: float, y: int) -> float:
    base: Dict[int, int] = {}
    sums: Dict[int, float] = {}
    for lab, dist in zip(closer_labels, closer_d):
        base[lab] = base.get(lab, 0) + 1
        sums[lab] = sums.get(lab, 0.0) + dist
    classes = sorted(group_hist)
    g = sum(group_hist.values())
    total = Fraction(0)
    ranges = [range(0, min(group_hist[c], s) + 1) for c in classes]
    for a in itertools.product(*ranges):
        if sum(a) != s:
            continue
        weight = 1
        counts = dict(base)
        sm = dict(sums)
        for c, ac in zip(classes, a):
            weight *= comb(group_hist[c], ac)
            if ac:
                counts[c] = counts.get(c, 0) + ac
                sm[c] = sm.get(c, 0.0) + ac * T
        if _vote(counts, sm) == y:
            total += weight
    return float(total / comb(g, s))


def knn_loo(X: np.ndarray, y: np.ndarray, k: int = 1, ties: str = "expected") -> Tuple[float, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Returns (score, neighbors (N,k) int64, distances (N,k) float64, correct (N,) float64, tie_count (N,) int64)."""
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y).astype(np.int64)
    n = X.shape[0]
    if not 1 <= k <= n - 1:
        raise ValueError("k must be in [1, n_samples-1]")
    nbrs = np.zeros((n, k), dtype=np.int64)
    dists = np.zeros((n, k), dtype=np.float64)
    correct = np.zeros(n, dtype=np.float64)
    tie_count = np.zeros(n, dtype=np.int64)
    chunk = max(1, _CHUNK_BYTES // max(1, 8 * n * X.shape[1]))
    for start in range(0, n, chunk):
        rows = np.arange(start, min(n, start + chunk))
        D = pairwise_sq_dists(X, rows)
        for r, i in enumerate(rows):
            d = D[r]
            d[i] = np.inf
            order = np.argsort(d, kind="stable")  # by (distance, index)
            top = order[:k]
            nbrs[i] = top
            dists[i] = d[top]
            T = d[top[-1]]
            group = np.flatnonzero(d == T)
            tie_count[i] = group.size
            s = int(np.sum(d[top] == T))
            if ties == "lowest_index" or group.size == s:
                counts: Dict[int, int] = {}
                sums: Dict[int, float] = {}
                for j in top:
                    counts[int(y[j])] = counts.get(int(y[j]), 0) + 1
                    sums[int(y[j])] = sums.get(int(y[j]), 0.0) + float(d[j])
                correct[i] = float(_vote(counts, sums) == y[i])
            else:
                closer = top[d[top] < T]
                hist: Dict[int, int] = {}
                for j in group:
                    hist[int(y[j])] = hist.get(int(y[j]), 0) + 1
                correct[i] = _expected_credit([int(y[j]) for j in closer], [float(d[j]) for j in closer], hist, s, float(T), int(y[i]))
    return float(correct.mean()), nbrs, dists, correct, tie_count


def knn_targets(X, Y, *, k: int = 1, ties: str = "expected", task: str = "regression",
                queries=None, bank=None) -> float:
    """Float64 oracle of k-NN with regression targets (R^2) or multilabel indicators (mean per-label
    accuracy), SCORES.md "Targets beyond single-label classification".

    Leave-one-out over the rows of ``X`` / ``Y`` (N, T); or, with ``queries`` = (Xq, Yq), the queries
    against the bank (X, Y) (``knn_accuracy``: nothing excluded). With T, G, s as above:
    ``ties="expected"``: regression predicts (sum of the closer targets + s/|G| sum of G's) / k;
    multilabel takes each label's expected vote credit over the s-subsets of G (hypergeometric), a
    vote with exactly k/2 positives counting 1/2. ``ties="lowest_index"``: the k nearest by (distance,
    index). R^2 = 1 - SSE/SST per column, averaged.
    """
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64).reshape(X.shape[0], -1)
    if queries is None:
        Xq, Yq, loo = X, Y, True
    else:
        Xq = np.asarray(queries[0], dtype=np.float64)
        Yq = np.asarray(queries[1], dtype=np.float64).reshape(Xq.shape[0], -1)
        loo = False
    pred = np.empty_like(Yq)
    credit = np.empty_like(Yq)
    for i in range(Xq.shape[0]):
        d = ((X - Xq[i]) ** 2).sum(axis=1)
        if loo:
            d[i] = np.inf
        order = np.lexsort((np.arange(d.size), d))
        T = d[order[k - 1]]
        closer = order[d[order] < T]
        group = np.flatnonzero(d == T)
        s = k - closer.size
        if ties == "lowest_index":
            closer, group, s = order[:k], np.zeros(0, dtype=np.int64), 0
        g = group.size
        if task == "regression":
            pred[i] = (Y[closer].sum(axis=0) + (s / g * Y[group].sum(axis=0) if g else 0.0)) / k
            continue
        for lab in range(Y.shape[1]):
            base = int(Y[closer, lab].sum())
            h = int(Y[group, lab].sum())
            acc = 0.0
            for a in range(0, min(h, s) + 1):
                if s - a > g - h:
                    continue
                p = comb(h, a) * comb(g - h, s - a) / comb(g, s) if g else 1.0
                pos = base + a
                acc += p * (0.5 if 2 * pos == k else float((2 * pos > k) == (Yq[i, lab] == 1)))
            credit[i, lab] = acc
    if task == "regression":
        sst = ((Yq - Yq.mean(axis=0)) ** 2).sum(axis=0)
        return float(np.mean(1.0 - ((Yq - pred) ** 2).sum(axis=0) / sst))
    return float(credit.mean())
