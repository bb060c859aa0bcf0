"""Paired differences between two models measured on the same rows (or folds): mean, standard error, test.

Contract. ``a`` and ``b`` hold one value per row for two models on the *same* rows in the same order (per-row
correctness of kNN leave-one-out, out-of-fold correctness of a cross-validated linear probe, per-fold
accuracies, ...). Everything is float64. With ``d_i = a_i - b_i`` over ``n >= 2`` rows:

- ``mean = (1/n) sum d_i`` -- the difference of the two scores (a score that is a mean over rows);
- ``se = s_d / sqrt(n)`` with ``s_d`` the sample standard deviation of ``d`` (ddof = 1);
- ``t = mean / se`` with ``n - 1`` degrees of freedom: the paired t-test (``scipy.stats.ttest_rel``).

Why paired: both models are scored on the same rows, so row difficulty cancels in ``d``; the unpaired
standard error of two accuracies near 1.0 is much larger than the paired one when the models fail on the
same rows.

0/1 correctness: when every ``d_i`` is -1, 0 or 1, only the discordant rows carry evidence (``b`` rows where
a alone is right, ``c`` where b alone is) and the p-value is McNemar's *exact* test (a binomial test of ``b``
among ``b + c`` at 1/2): the t-test is its large-sample form but is anti-conservative with a handful of
discordant rows (3 against 0 among 300 rows gives t-test p = 0.04, exact p = 0.125), which is the case of
models that differ by one or two validation rows. ``mean``, ``se`` and the confidence bounds stay the t-based
ones in both cases.

Degenerate cases (documented, not errors): ``se == 0`` (every ``d_i`` equal): a zero mean is no evidence
(p = 1, bounds equal to 0) and a non-zero mean is certain (p = 0, bounds equal to the mean).

:class:`PairedStats` accumulates the same quantities chunk by chunk (Chan et al.'s parallel update of the
mean and sum of squared deviations), so a race over a million rows never holds them all, and two partial
accumulators merge exactly. :func:`tied_with_best` is the selection rule built on it: the models whose paired
difference with the best-scored model is not significant at level ``alpha``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Tuple

import numpy as np

__all__ = ["ALTERNATIVES", "PairedDifference", "PairedStats", "paired_difference", "paired_test",
           "standard_error", "tied_groups", "tied_with_best"]

ALTERNATIVES = ("two-sided", "greater", "less")


def _check_alpha(alpha: float) -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not (0.0 < float(alpha) < 1.0):
        raise ValueError(f"alpha must be a number in (0, 1), got {alpha!r}")
    return float(alpha)


def _vector(x, what: str) -> np.ndarray:
    v = np.asarray(x)
    if v.dtype == object or np.iscomplexobj(v) or not (np.issubdtype(v.dtype, np.number) or v.dtype == bool):
        raise TypeError(f"{what} must be a real numeric 1-D array, got dtype {v.dtype}")
    if v.ndim != 1:
        raise ValueError(f"{what} must be 1-D (one value per row or fold), got shape {v.shape}")
    v = v.astype(np.float64)  # a copy: inputs are never mutated
    if not np.isfinite(v).all():
        raise ValueError(f"{what} has {int((~np.isfinite(v)).sum())} NaN/inf values")
    return v


@dataclass(frozen=True)
class PairedDifference:
    """The paired difference ``a - b`` over ``n`` shared rows: ``mean``, its standard error ``se``, ``n``."""

    mean: float
    se: float
    n: int
    #: ``(b, c)``: rows with d = +1 and d = -1 when every difference is -1, 0 or 1 (0/1 correctness), else None
    discordant: Optional[Tuple[int, int]] = None

    @property
    def df(self) -> int:
        """Degrees of freedom of the paired t-test, ``n - 1``."""
        return self.n - 1

    @property
    def t(self) -> float:
        """``mean / se`` (``+-inf`` when ``se == 0 != mean``, 0 when both are 0)."""
        if self.se == 0.0:
            return 0.0 if self.mean == 0.0 else math.copysign(math.inf, self.mean)
        return self.mean / self.se

    def p_value(self, alternative: str = "two-sided") -> float:
        """p-value of the paired test of ``mean == 0`` against ``alternative``: ``"two-sided"``,
        ``"greater"`` (a better than b) or ``"less"``. The paired t-test, or McNemar's exact test when
        ``discordant`` is set (module docstring)."""
        if alternative not in ALTERNATIVES:
            raise ValueError(f"alternative must be one of {ALTERNATIVES}, got {alternative!r}")
        from scipy import stats

        if self.discordant is not None:
            b, c = self.discordant
            if b + c == 0:
                return 1.0
            greater = float(stats.binom.sf(b - 1, b + c, 0.5))
            less = float(stats.binom.cdf(b, b + c, 0.5))
            if alternative == "greater":
                return greater
            if alternative == "less":
                return less
            return min(1.0, 2.0 * min(greater, less))

        t = self.t
        if self.se == 0.0 and self.mean == 0.0:
            return 1.0
        if alternative == "greater":
            return float(stats.t.sf(t, self.df))
        if alternative == "less":
            return float(stats.t.cdf(t, self.df))
        return float(min(1.0, 2.0 * stats.t.sf(abs(t), self.df)))

    def _quantile(self, level: float) -> float:
        from scipy import stats

        return float(stats.t.ppf(level, self.df))

    def lower_bound(self, alpha: float = 0.05) -> float:
        """One-sided ``1 - alpha`` lower confidence bound on the mean difference."""
        alpha = _check_alpha(alpha)
        return self.mean - self._quantile(1.0 - alpha) * self.se if self.se > 0 else self.mean

    def upper_bound(self, alpha: float = 0.05) -> float:
        """One-sided ``1 - alpha`` upper confidence bound on the mean difference."""
        alpha = _check_alpha(alpha)
        return self.mean + self._quantile(1.0 - alpha) * self.se if self.se > 0 else self.mean

    def interval(self, alpha: float = 0.05) -> Tuple[float, float]:
        """Two-sided ``1 - alpha`` confidence interval on the mean difference."""
        alpha = _check_alpha(alpha)
        if self.se == 0.0:
            return (self.mean, self.mean)
        h = self._quantile(1.0 - alpha / 2.0) * self.se
        return (self.mean - h, self.mean + h)

    def significant(self, alpha: float = 0.05, alternative: str = "two-sided") -> bool:
        """Whether the paired test rejects ``mean == 0`` at level ``alpha``."""
        return self.p_value(alternative) < _check_alpha(alpha)


class PairedStats:
    """Running paired difference of ``a - b`` over rows given chunk by chunk (``add``), mergeable (``merge``).

    Holds only ``n``, the running mean and the sum of squared deviations ``m2`` (float64), so the result
    equals :func:`paired_difference` on the concatenated rows up to rounding, whatever the chunking.
    """

    __slots__ = ("n", "_mean", "_m2", "_pos", "_neg", "_ternary")

    def __init__(self) -> None:
        self.n = 0
        self._mean = 0.0
        self._m2 = 0.0
        self._pos = self._neg = 0  # rows with d = +1 / -1, meaningful while every d is in {-1, 0, 1}
        self._ternary = True

    def _combine(self, n: int, mean: float, m2: float) -> None:
        if n == 0:
            return
        tot = self.n + n
        delta = mean - self._mean
        self._m2 += m2 + delta * delta * self.n * n / tot
        self._mean += delta * n / tot
        self.n = tot

    def add(self, a, b) -> "PairedStats":
        """Add rows: ``a`` and ``b`` are the two models' values on the same new rows. Returns self."""
        va, vb = _vector(a, "a"), _vector(b, "b")
        if va.shape != vb.shape:
            raise ValueError(f"a and b must hold the same rows, got {va.size} and {vb.size} values")
        d = va - vb
        if self._ternary and not np.isin(d, (-1.0, 0.0, 1.0)).all():
            self._ternary = False
        self._pos += int((d == 1.0).sum())
        self._neg += int((d == -1.0).sum())
        if d.size:
            mu = float(d.mean())
            self._combine(int(d.size), mu, float(((d - mu) ** 2).sum()))
        return self

    def merge(self, other: "PairedStats") -> "PairedStats":
        """Add the rows of another accumulator (disjoint rows of the same two models). Returns self."""
        if not isinstance(other, PairedStats):
            raise TypeError(f"other must be a PairedStats, got {type(other).__name__}")
        self._combine(other.n, other._mean, other._m2)
        self._pos += other._pos
        self._neg += other._neg
        self._ternary = self._ternary and other._ternary
        return self

    def result(self) -> PairedDifference:
        """The :class:`PairedDifference` so far (needs ``n >= 2``)."""
        if self.n < 2:
            raise ValueError(f"a paired difference needs at least 2 rows, got {self.n}")
        var = max(self._m2, 0.0) / (self.n - 1)
        return PairedDifference(self._mean, math.sqrt(var / self.n), self.n,
                                 (self._pos, self._neg) if self._ternary else None)


def paired_difference(a, b) -> PairedDifference:
    """The paired difference ``a - b`` over the same ``n >= 2`` rows (module docstring)."""
    return PairedStats().add(a, b).result()


def paired_test(a, b, *, alternative: str = "two-sided") -> float:
    """p-value of the paired t-test of ``mean(a - b) == 0`` (equals ``scipy.stats.ttest_rel(a, b).pvalue``
    when the differences vary)."""
    return paired_difference(a, b).p_value(alternative)


def standard_error(values) -> float:
    """Standard error of the mean of per-row (or per-fold) values: ``std(values, ddof=1) / sqrt(n)``, n >= 2."""
    v = _vector(values, "values")
    if v.size < 2:
        raise ValueError(f"values: a standard error needs at least 2 rows, got {v.size}")
    return float(v.std(ddof=1) / math.sqrt(v.size))


def _samples(samples: Mapping[str, object]) -> Dict[str, np.ndarray]:
    if not isinstance(samples, Mapping):
        raise TypeError(f"samples must be a mapping {{model: per-row values}}, got {type(samples).__name__}")
    if not samples:
        raise ValueError("samples is empty")
    out = {m: _vector(v, f"samples[{m!r}]") for m, v in samples.items()}
    sizes = {v.size for v in out.values()}
    if len(sizes) != 1:
        raise ValueError(f"samples: every model must be measured on the same rows, got row counts "
                         f"{ {m: v.size for m, v in out.items()} }")
    return out


def tied_with_best(samples: Mapping[str, object], alpha: float = 0.05, *,
                   scores: Optional[Mapping[str, float]] = None) -> List[str]:
    """Models not significantly worse than the best one, best first.

    samples: ``{model: per-row values}`` on the same rows. The best model is the one with the highest
    ``scores`` (default: the mean of its samples), ties by name; a model is kept when the one-sided paired test
    of ``best - model > 0`` does not reject at level ``alpha`` (no multiplicity correction: keeping too many
    is the safe side for a tie). Returned in decreasing score, then name.
    """
    groups = tied_groups(samples, alpha, scores=scores)
    return list(groups[0])


def tied_groups(samples: Mapping[str, object], alpha: float = 0.05, *,
                scores: Optional[Mapping[str, float]] = None) -> List[Tuple[str, ...]]:
    """Partition of the models into statistical tie groups, in ranking order.

    Walk the ranking (decreasing score, then name): a group starts at its head model and takes every later
    model whose paired difference with the head is not significant (one-sided, level ``alpha``); the next
    group starts at the first model that is significantly worse. Exactly equal scores always share a group.
    """
    alpha = _check_alpha(alpha)
    vals = _samples(samples)
    if scores is None:
        key = {m: float(v.mean()) for m, v in vals.items()}
    else:
        if set(scores) != set(vals):
            raise ValueError("scores and samples must name the same models")
        key = {m: float(scores[m]) for m in vals}
    order = sorted(vals, key=lambda m: (-key[m], m))
    groups: List[Tuple[str, ...]] = []
    i = 0
    while i < len(order):
        head = order[i]
        group = [head]
        j = i + 1
        while j < len(order):
            m = order[j]
            same = key[m] == key[head]
            if not same and vals[head].size >= 2:
                same = not paired_difference(vals[head], vals[m]).significant(alpha, "greater")
            if not same:
                break
            group.append(m)
            j += 1
        groups.append(tuple(group))
        i = j
    return groups
