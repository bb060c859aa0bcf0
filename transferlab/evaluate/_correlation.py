"""Rank and linear correlations between a score and fine-tune accuracy, written from their definitions
(O(n^2) over model pairs: pools hold tens to hundreds of models) and tested against scipy.

Inputs are either two ``{model: value}`` mappings (matched by model name; the model sets must be equal) or two
1-D sequences of equal length. NaN/inf raise unless ``nan_policy="omit"``, which drops the models where either
value is missing. An input that is constant leaves a correlation undefined: the result is ``nan`` with a
``RuntimeWarning``, never a made-up number.
"""
from __future__ import annotations

import math
import warnings
from typing import Mapping, Optional, Tuple

import numpy as np

from transferlab.ranking import check_nan_policy, check_same_models, rank_desc

__all__ = ["kendall_tau", "pearson", "spearman", "top_k_recall", "weighted_tau"]


def _pair(scores, truth, nan_policy: str, fn: str,
          labels: Tuple[str, str] = ("scores", "truth")) -> Tuple[np.ndarray, np.ndarray, Optional[list]]:
    """Aligned float64 vectors (and the model names, for mappings); ``labels`` name the two arguments."""
    check_nan_policy(nan_policy)
    names = None
    if isinstance(scores, Mapping) or isinstance(truth, Mapping):
        if not (isinstance(scores, Mapping) and isinstance(truth, Mapping)):
            raise TypeError(f"{fn}: scores and truth must both be mappings {{model: value}} or both arrays")
        check_same_models(scores, truth, *labels)
        names = sorted(scores)
        x = [scores[m] for m in names]
        y = [truth[m] for m in names]
    else:
        x, y = scores, truth
    xs, ys = [], []
    for arr, what, out in ((x, labels[0], xs), (y, labels[1], ys)):
        a = np.asarray(arr)
        if a.dtype == object or a.dtype.kind not in "biuf":
            raise TypeError(f"{fn}: {what} must be real numbers, got dtype {a.dtype}")
        if a.ndim != 1:
            raise ValueError(f"{fn}: {what} must be 1-D (one value per model), got shape {a.shape}")
        out.append(a.astype(np.float64))
    x, y = xs[0], ys[0]
    if x.shape != y.shape:
        raise ValueError(f"{fn}: {labels[0]} and {labels[1]} have different lengths ({x.size} and {y.size})")
    ok = np.isfinite(x) & np.isfinite(y)
    if not ok.all():
        if nan_policy == "raise":
            bad = np.flatnonzero(~ok)
            which = [names[i] for i in bad] if names is not None else bad.tolist()
            raise ValueError(f"{fn}: NaN or infinite values for {len(bad)} model(s): {which}; "
                             f"pass nan_policy='omit' to drop them")
        x, y = x[ok], y[ok]
        if names is not None:
            names = [n for n, k in zip(names, ok) if k]
    if x.size < 2:
        raise ValueError(f"{fn}: need at least 2 models, got {x.size}")
    return x, y, names


def _undefined(fn: str, why: str = "an input is constant") -> float:
    warnings.warn(f"{fn} is undefined because {why}; returning nan", RuntimeWarning, stacklevel=3)
    return math.nan


def _signs(v: np.ndarray) -> np.ndarray:
    """sign(v_i - v_j) over the strict upper triangle (i < j)."""
    i, j = np.triu_indices(v.size, 1)
    return np.sign(v[i] - v[j])


def kendall_tau(scores: Mapping[str, float], truth: Mapping[str, float], *, nan_policy: str = "raise") -> float:
    """Kendall's tau-b: ``sum_{i<j} s_ij t_ij / sqrt(sum |s_ij| * sum |t_ij|)`` with ``s_ij = sign(x_i - x_j)``,
    ``t_ij = sign(y_i - y_j)`` (equals ``scipy.stats.kendalltau(x, y).statistic``)."""
    x, y, _ = _pair(scores, truth, nan_policy, "kendall_tau")
    sx, sy = _signs(x), _signs(y)
    den = np.abs(sx).sum() * np.abs(sy).sum()
    if den == 0:
        return _undefined("kendall_tau")
    return float((sx * sy).sum() / math.sqrt(den))


def pearson(scores: Mapping[str, float], truth: Mapping[str, float], *, nan_policy: str = "raise") -> float:
    """Pearson's r: ``sum (x - mean x)(y - mean y) / sqrt(sum (x - mean x)^2 sum (y - mean y)^2)``."""
    x, y, _ = _pair(scores, truth, nan_policy, "pearson")
    return _pearson(x, y, "pearson")


def _pearson(x: np.ndarray, y: np.ndarray, fn: str) -> float:
    dx, dy = x - x.mean(), y - y.mean()
    nx, ny = math.sqrt((dx * dx).sum()), math.sqrt((dy * dy).sum())
    # Relative test: a column equal up to rounding (e.g. 0.1 + 0.2 vs 0.3) is constant too.
    if nx <= 1e-13 * max(1.0, float(np.abs(x).max())) or ny <= 1e-13 * max(1.0, float(np.abs(y).max())):
        return _undefined(fn)
    return float(np.clip((dx * dy).sum() / (nx * ny), -1.0, 1.0))


def _average_ranks(v: np.ndarray) -> np.ndarray:
    """1-based ranks, tied values get the mean of the ranks they span."""
    order = np.argsort(v, kind="stable")
    sv = v[order]
    ranks = np.empty(v.size, dtype=np.float64)
    start = 0
    for k in range(1, v.size + 1):
        if k == v.size or sv[k] != sv[start]:
            ranks[order[start:k]] = (start + 1 + k) / 2.0
            start = k
    return ranks


def spearman(scores: Mapping[str, float], truth: Mapping[str, float], *, nan_policy: str = "raise") -> float:
    """Spearman's rho: Pearson's r of the average ranks (ties share the mean rank)."""
    x, y, _ = _pair(scores, truth, nan_policy, "spearman")
    return _pearson(_average_ranks(x), _average_ranks(y), "spearman")


def _weighted_tau_ranked(x: np.ndarray, y: np.ndarray, rank: np.ndarray) -> float:
    """Vigna's weighted tau for a given importance rank (0 = most important) with the additive hyperbolic
    weigher: pair weight ``w_ij = 1/(rank_i + 1) + 1/(rank_j + 1)``,
    ``tau = sum w_ij s_ij t_ij / sqrt(sum_{s_ij != 0} w_ij * sum_{t_ij != 0} w_ij)``."""
    w = 1.0 / (rank.astype(np.float64) + 1.0)
    i, j = np.triu_indices(x.size, 1)
    wij = w[i] + w[j]
    sx, sy = np.sign(x[i] - x[j]), np.sign(y[i] - y[j])
    den = wij[sx != 0].sum() * wij[sy != 0].sum()
    if den == 0:
        return _undefined("weighted_tau")
    return float((wij * sx * sy).sum() / math.sqrt(den))


def _lexrank(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """scipy's default rank: decreasing lexicographic order by (x, y); rank[i] = position of element i
    (elements equal in both keys: the later index comes first, as in scipy)."""
    perm = np.lexsort((y, x))[::-1]
    rank = np.empty(x.size, dtype=np.intp)
    rank[perm] = np.arange(x.size)
    return rank


def weighted_tau(scores: Mapping[str, float], truth: Mapping[str, float], *, rank: bool = True, nan_policy: str = "raise") -> float:
    """Weighted Kendall tau (Vigna 2015) with hyperbolic weights ``1/(r+1)``, ``scipy.stats.weightedtau``
    semantics with the ground truth as scipy's first argument:
    ``weighted_tau(scores, truth, rank=r) == scipy.stats.weightedtau(truth, scores, rank=r).statistic``.

    rank=True (default, symmetric): the mean of the taus with importance ranks by decreasing (truth, scores)
    and by decreasing (scores, truth). rank=None: importance by decreasing ground truth only (ties by score),
    the convention of some published tables (e.g. LogME/SFDA-style ``weightedtau(acc, score, rank=None)``).
    rank=False: the input order is the importance order. An integer array: explicit ranks (0 = most
    important; with mappings, ordered like ``sorted(model names)``).
    """
    x, y, _ = _pair(truth, scores, nan_policy, "weighted_tau", ("truth", "scores"))  # x = truth
    if rank is True:
        return (_weighted_tau_ranked(x, y, _lexrank(x, y)) + _weighted_tau_ranked(y, x, _lexrank(y, x))) / 2
    if rank is None:
        r = _lexrank(x, y)
    elif rank is False:
        r = np.arange(x.size)
    else:
        r = np.asarray(rank)
        if r.shape != x.shape or r.dtype.kind not in "iu" or (r < 0).any():
            raise ValueError(f"weighted_tau: rank must be True, None, False or {x.size} non-negative integers")
    return _weighted_tau_ranked(x, y, r)


def top_k_recall(scores: Mapping[str, float], truth: Mapping[str, float], k: int = 1, *, nan_policy: str = "raise") -> float:
    """Fraction of the true top-``k`` models (by ``truth``) that are among the top-``k`` by ``scores``.
    Both top-k sets use the ranking tie rule (equal values ordered by model name; by index for arrays)."""
    x, y, names = _pair(scores, truth, nan_policy, "top_k_recall")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= x.size:
        raise ValueError(f"k must be an integer in [1, n_models={x.size}], got {k!r}")
    keys = names if names is not None else [f"{i:012d}" for i in range(x.size)]
    top_x = set(rank_desc(dict(zip(keys, x)))[:k])
    top_y = set(rank_desc(dict(zip(keys, y)))[:k])
    return len(top_x & top_y) / k
