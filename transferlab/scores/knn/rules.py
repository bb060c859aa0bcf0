"""The definition of leave-one-out k-NN accuracy, shared by every kNN entry point.

Contract: pure rules, no kernels and no I/O. The option and problem checks (``check_options``,
``check_loo_problem``: the same errors and the single-sample warning for ``knn_loo``, its stream and
``distributed.knn_loo_sharded``), the result type (``KnnLooResult``), the cosine normalisation
(``normalise`` / ``normalise_host``: L2 norms in float64, zero rows rejected by name) and the vote
and tie rules (``vote``: majority, then smaller summed distance, then smaller label;
``expected_vote_credit``: the exact probability that the vote names y_i under uniform random
tie-breaking at the boundary). Imports nothing from the rest of the kNN package.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from fractions import Fraction
from math import comb
from typing import Dict, List, Optional

import numpy as np

from transferlab.core.arrays import Labels, Matrix

__all__ = ["METRICS", "TIES", "KnnLooResult", "check_options", "check_loo_problem", "normalise", "normalise_host",
           "vote", "expected_vote_credit"]

METRICS = ("euclidean", "cosine")
TIES = ("expected", "lowest_index")


@dataclass(frozen=True)
class KnnLooResult:
    """Per-sample details of ``knn_loo(..., return_details=True)``."""

    score: float
    neighbors: np.ndarray  # (N, k) int64, sorted by (distance, index)
    distances: np.ndarray  # (N, k) float32 squared Euclidean (cosine: 2 - 2 cos)
    correct: np.ndarray  # (N,) float64 credit per sample (fractional under ties="expected")
    tie_count: np.ndarray  # (N,) int64 neighbours tied at the boundary distance
    classes: np.ndarray  # original label values, index = code
    rows: Optional[np.ndarray] = None  # with queries=: the query rows (the per-sample arrays follow them)

    @property
    def se(self) -> float:
        """Standard error of ``score`` as a mean over the rows, ``std(correct, ddof=1) / sqrt(n)`` (the rows are
        the sampling unit). For comparing two banks on the same rows use their ``correct`` paired
        (``transferlab.core.paired``, ``select.task_aware(..., ties="statistical")``): far tighter."""
        from transferlab.core.paired import standard_error

        return standard_error(self.correct)


# ---------------------------------------------------------------------------- checks


def check_options(k, metric: str, ties: str) -> int:
    """ValueError / TypeError for bad ``metric``, ``ties`` or ``k`` (knn_loo, its stream, the sharded
    score); returns int(k)."""
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    if ties not in TIES:
        raise ValueError(f"ties must be one of {TIES}, got {ties!r}")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise TypeError(f"k must be an int, got {type(k).__name__}")
    return int(k)


def check_loo_problem(n: int, k: int, lab: Labels, stacklevel: int = 2) -> None:
    """The checks every leave-one-out k-NN entry point shares (local and sharded): k in [1, n-1], at least two
    classes, and one warning when a class has a single sample (it cannot be right under leave-one-out)."""
    if not 1 <= k <= n - 1:
        raise ValueError(
            f"k must be in [1, n_samples-1]: got k={k} with n_samples={n} "
            f"(leave-one-out {k}-NN needs at least {max(k, 1) + 1} samples)"
        )
    if lab.n_classes < 2:
        raise ValueError(f"need at least 2 classes, got {lab.n_classes}")
    singles = int(np.sum(lab.counts == 1))
    if singles:
        warnings.warn(
            f"{singles} class(es) have a single sample; under leave-one-out those samples cannot be "
            "classified correctly and are counted wrong",
            UserWarning,
            stacklevel=stacklevel + 1,
        )


# ---------------------------------------------------------------------------- cosine normalisation


def _zero_rows_error(zero: np.ndarray, name: str) -> ValueError:
    shown = ", ".join(str(int(i)) for i in zero[:10]) + (", ..." if zero.size > 10 else "")
    return ValueError(
        f"metric='cosine' is undefined for zero vectors: {name} has {zero.size} all-zero row(s) "
        f"(rows {shown}); drop them or use metric='euclidean'"
    )


def normalise_host(X: np.ndarray, name: str) -> np.ndarray:
    """Float64 rows divided by their L2 norms (the reference path)."""
    norms = np.sqrt(np.einsum("ij,ij->i", X, X))
    zero = np.flatnonzero(norms == 0)
    if zero.size:
        raise _zero_rows_error(zero, name)
    return X / norms[:, None]


def normalise(m: Matrix) -> Matrix:
    """Rows L2-normalised (norms in float64), as float32 on the matrix's device."""
    if m.device == "cuda":
        import torch

        t = m.data.to(torch.float64)
        norms = torch.linalg.vector_norm(t, dim=1)
        zero = torch.nonzero(norms == 0).flatten().cpu().numpy()
        if zero.size:
            raise _zero_rows_error(zero, m.name)
        return Matrix((t / norms[:, None]).to(torch.float32).contiguous(), "cuda", "float32", m.name, m.budget)
    out = np.empty((m.n, m.d), dtype=np.float32)
    step = max(1, (16 << 20) // max(1, 8 * m.d))
    zeros = []
    for s in range(0, m.n, step):
        block = m.to_float64_host(s, s + step)
        norms = np.sqrt(np.einsum("ij,ij->i", block, block))
        zeros.append(np.flatnonzero(norms == 0) + s)
        out[s : s + step] = block / np.where(norms == 0, 1.0, norms)[:, None]
    zero = np.concatenate(zeros)
    if zero.size:
        raise _zero_rows_error(zero, m.name)
    return Matrix(out, "cpu", "float32", m.name, m.budget)


# ---------------------------------------------------------------------------- vote and tie rules


def vote(labs: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Winning label per row of (N, k) neighbour labels / distances: most votes, then smaller summed
    distance, then smaller label."""
    eq = labs[:, :, None] == labs[:, None, :]
    counts = eq.sum(axis=2)
    sums = np.where(eq, d[:, None, :], 0.0).sum(axis=2)
    best_c, best_s, best_l = counts[:, 0], sums[:, 0], labs[:, 0]
    for p in range(1, labs.shape[1]):
        c, s, lab = counts[:, p], sums[:, p], labs[:, p]
        better = (c > best_c) | ((c == best_c) & ((s < best_s) | ((s == best_s) & (lab < best_l))))
        best_c = np.where(better, c, best_c)
        best_s = np.where(better, s, best_s)
        best_l = np.where(better, lab, best_l)
    return best_l


def expected_vote_credit(closer_labels: List[int], closer_d: List[float], hist: Dict[int, int], s: int,
                         T: float, y: int) -> float:
    """P(vote == y) when s of the boundary group (label histogram ``hist``) are drawn uniformly.

    For each number a_y of y-members drawn, every other class c must lose to y; its strength only
    grows with its draw a_c, so it loses exactly for a_c <= cap_c. The number of draws is then the
    coefficient of x^(s - a_y) in prod_c sum_{a <= cap_c} C(h_c, a) x^a (exact integers).
    """
    base: Dict[int, int] = {}
    sums: Dict[int, float] = {}
    for lab, dist in zip(closer_labels, closer_d):
        base[lab] = base.get(lab, 0) + 1
        sums[lab] = sums.get(lab, 0.0) + dist
    g = sum(hist.values())
    others = sorted((set(base) | set(hist)) - {y})
    hy = hist.get(y, 0)
    total = 0
    for ay in range(0, min(hy, s) + 1):
        cy = base.get(y, 0) + ay
        if cy == 0:
            continue
        sy = sums.get(y, 0.0) + ay * T
        poly = [1] + [0] * (s - ay)  # ways to draw from the classes seen so far, by draw size
        feasible = True
        for c in others:
            hc = hist.get(c, 0)
            cap = -1
            for a in range(0, min(hc, s - ay) + 1):
                cc, sc = base.get(c, 0) + a, sums.get(c, 0.0) + a * T
                if cc < cy or (cc == cy and (sc > sy or (sc == sy and c > y))):
                    cap = a
                else:
                    break
            if cap < 0:
                feasible = False
                break
            new = [0] * (s - ay + 1)
            for deg, ways in enumerate(poly):
                if ways:
                    for a in range(0, min(cap, s - ay - deg) + 1):
                        new[deg + a] += ways * comb(hc, a)
            poly = new
        if feasible:
            total += comb(hy, ay) * poly[s - ay]
    return float(Fraction(total, comb(g, s)))
