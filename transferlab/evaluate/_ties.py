"""Expected selection figures over uniformly random tie-breaks, in closed form.

A ranking is a sequence of *tied groups* ``G_1, G_2, ...`` (a partition of the models in ranking order). The
order inside a group is arbitrary (a strategy breaks it by name only to print something): every figure here is
the expectation over the ``prod |G_j|!`` orders that break the ties, each equally likely. With ``ties="name"``
every model is its own group (the printed order; the pre-issue-18 behaviour).

Closed forms (the same counting as the random strategy's, restricted to one group):

- top-B: all groups that end before position B, plus a uniform ``r``-subset of the group ``G`` that straddles
  B. With ``f`` the best accuracy of the full groups and ``G``'s accuracies sorted ascending
  ``t_(1) <= ... <= t_(g)``, the best of the subset is ``t_(i)`` with probability ``C(i-1, r-1) / C(g, r)``, so
  ``E[regret@B] = sum_i C(i-1, r-1) / C(g, r) * regret(max(f, t_(i)))``.
- budget to zero regret: the first group holding a best model starts after ``o`` models and holds ``m`` best
  models among ``g``; the first best position of a random order of it has mean ``(g + 1) / (m + 1)``, so
  ``E = o + (g + 1) / (m + 1)``.
- success at B (the top-B holds a best model): 0 when ``B <= o``, 1 when ``B >= o + g``, else
  ``1 - C(g - m, r) / C(g, r)`` with ``r = B - o``.
"""
from __future__ import annotations

import math
from typing import Callable, List, Mapping, Sequence, Tuple

TIES = ("expected", "name")

Groups = List[Tuple[str, ...]]


def check_ties(ties: str) -> str:
    if ties not in TIES:
        raise ValueError(f"ties must be one of {TIES}, got {ties!r}")
    return ties


def equal_value_groups(order: Sequence[str], values: Mapping[str, float]) -> Groups:
    """Consecutive models of ``order`` with exactly equal ``values`` form one group."""
    groups: Groups = []
    for m in order:
        if groups and values[m] == values[groups[-1][0]]:
            groups[-1] = groups[-1] + (m,)
        else:
            groups.append((m,))
    return groups


def singletons(order: Sequence[str]) -> Groups:
    return [(m,) for m in order]


def expected_top(groups: Groups, accs: Mapping[str, float], budget: int,
                 regret_of: Callable[[float], float]) -> float:
    """E[regret_of(best accuracy among the top ``budget``)] over tie-breaks (``budget`` <= number of models)."""
    f = -math.inf
    seen = 0
    for g in groups:
        if seen + len(g) <= budget:
            f = max(f, max(accs[m] for m in g))
            seen += len(g)
            if seen == budget:
                return regret_of(f)
            continue
        r = budget - seen
        t = sorted(accs[m] for m in g)
        total = math.comb(len(g), r)
        out = 0.0
        for i, ti in enumerate(t, start=1):
            p = math.comb(i - 1, r - 1) / total
            if p > 0:
                out += p * regret_of(max(f, ti))
        return out
    return regret_of(f)


def expected_budget_to_zero(groups: Groups, accs: Mapping[str, float], best: float) -> float:
    """E[first position holding a best model]; ``inf`` when no group holds one."""
    o = 0
    for g in groups:
        m = sum(1 for x in g if accs[x] == best)
        if m:
            return o + (len(g) + 1) / (m + 1)
        o += len(g)
    return math.inf


def success_probability(groups: Groups, accs: Mapping[str, float], best: float, budget: int) -> float:
    """P(the top ``budget`` holds a best model) over tie-breaks."""
    o = 0
    for g in groups:
        m = sum(1 for x in g if accs[x] == best)
        if m:
            if budget <= o:
                return 0.0
            if budget >= o + len(g):
                return 1.0
            r = budget - o
            return 1.0 - math.comb(len(g) - m, r) / math.comb(len(g), r)
        o += len(g)
    return 0.0
