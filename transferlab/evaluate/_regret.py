"""Regret of a model selection (Renggli et al. 2022, Sec. 3 and Appendices C and G).

``finetune`` maps model -> fine-tune accuracy t(m) on one dataset (the pool M is its keys). For a selection S:

- absolute regret ``max_{m in M} t - max_{m in S} t`` (in the unit of the table);
- relative regret: the absolute regret divided by ``max_{m in M} t``;
- log-odds regret ``logit(max_M t) - logit(max_S t)`` with ``logit(t) = log(t / (1 - t))`` on accuracies as
  fractions (``percent=None`` reads a table whose largest value exceeds 1 as percent and divides by 100).

Budget to zero regret: the smallest B whose top-B set contains a best model (any model reaching the maximum).
Success rate at B: the fraction of datasets whose budget to zero regret is at most B (their Figure 7).

Ties (issue 18): a ranking's exact score ties (a ``{model: score}`` mapping) or its recorded tied groups (a
:class:`~transferlab.select.Selection` from ``task_aware``/``hybrid``) are part of the answer. With
``ties="expected"`` (default) every figure is the expected value over uniformly random tie-breaks, in closed
form (``_ties.py``); ``ties="name"`` evaluates the printed order (ties broken by model name). A plain list of
names has no ties.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Dict, Iterable, Mapping, Optional, Sequence, Union

import numpy as np

from transferlab.evaluate import _ties
from transferlab.evaluate._ties import TIES
from transferlab.ranking import check_budget, check_nan_policy, check_same_models, rank_desc, score_map

if TYPE_CHECKING:  # annotations only (select imports evaluate's siblings)
    from transferlab.select import Selection

#: ``{model: score}``, or a Selection (its order and tied groups)
ScoresLike = Union[Mapping[str, float], "Selection"]

__all__ = [
    "REGRET_KINDS",
    "TIES",
    "budget_to_zero_regret",
    "expected_random_budget_to_zero",
    "expected_random_regret",
    "random_success_rate",
    "regret",
    "relative_delta",
    "success_at",
    "success_rate",
    "top_k_regret",
]

REGRET_KINDS = ("relative", "absolute", "log_odds")


def _finetune(finetune) -> Dict[str, float]:
    accs, _ = score_map(finetune, "finetune")
    if min(accs.values()) < 0:
        raise ValueError("finetune: accuracies must be >= 0")
    return accs


def _as_fraction(accs: Dict[str, float], percent: Optional[bool]) -> Dict[str, float]:
    if percent is None:
        percent = max(accs.values()) > 1.0
    scale = 100.0 if percent else 1.0
    out = {m: v / scale for m, v in accs.items()}
    if max(out.values()) > 1.0:
        raise ValueError("finetune: log-odds regret needs accuracies in [0, 1] (or [0, 100] with percent=True)")
    return out


def _logit(t: float) -> float:
    if t <= 0.0:
        return -math.inf
    if t >= 1.0:
        return math.inf
    return math.log(t / (1.0 - t))


def _selected(selected, accs: Mapping[str, float]) -> list:
    if isinstance(selected, str):
        raise TypeError("selected must be a list of model names (or a Selection), got a string")
    sel = list(selected)
    if not sel:
        raise ValueError("selected is empty: a selection needs at least one model")
    missing = sorted(set(sel) - set(accs))
    if missing:
        raise ValueError(f"selected models missing from finetune: {missing}")
    return sel


def _check_kind(kind: str) -> None:
    if kind not in REGRET_KINDS:
        raise ValueError(f"kind must be one of {REGRET_KINDS}, got {kind!r}")


def _regret_of(best: float, got: float, kind: str) -> float:
    """best, got: accuracies (fractions for log_odds)."""
    if got == best:
        return 0.0
    if kind == "absolute":
        return best - got
    if kind == "relative":
        if best <= 0:
            raise ValueError("relative regret is undefined when the best fine-tune accuracy is 0")
        return (best - got) / best
    return _logit(best) - _logit(got)


def regret(selected: Iterable[str], finetune: Mapping[str, float], *, kind: str = "relative",
           percent: Optional[bool] = None, ties: str = "expected") -> float:
    """Regret of fine-tuning the models ``selected`` on one dataset (see the module docstring).

    selected: model names or a :class:`~transferlab.select.Selection`; finetune: ``{model: accuracy}``
    over the whole pool. kind: ``"relative"`` (default), ``"absolute"`` or ``"log_odds"``.
    ties: a Selection cut by its budget through a tied group (``sel.top(B)``, whose last tied group runs past
    B) is scored by the expected regret over which members of that group the budget keeps (``"expected"``,
    default) or as printed (``"name"``).
    """
    _check_kind(kind)
    _ties.check_ties(ties)
    accs = _finetune(finetune)
    sel = _selected(selected, accs)
    if kind == "log_odds":
        accs = _as_fraction(accs, percent)
    best = max(accs.values())
    groups = getattr(selected, "groups", ())
    if ties == "expected" and groups:
        _selected([m for g in groups for m in g], accs)
        return _ties.expected_top(list(groups), accs, len(sel), lambda got: _regret_of(best, got, kind))
    return _regret_of(best, max(accs[m] for m in sel), kind)


def expected_random_regret(finetune: Mapping[str, float], budget: int, *, kind: str = "relative",
                           percent: Optional[bool] = None) -> float:
    """Expected regret of ``budget`` models drawn uniformly without replacement, in closed form.

    With accuracies sorted ascending ``t_(1) <= ... <= t_(n)``, the maximum of a uniform B-subset is ``t_(i)``
    with probability ``C(i-1, B-1) / C(n, B)`` (exact with ties), so for absolute regret
    ``E = max t - sum_i t_(i) C(i-1, B-1) / C(n, B)``; relative divides by ``max t``; log-odds uses
    ``logit(max t) - sum_i logit(t_(i)) C(i-1, B-1) / C(n, B)``.
    """
    _check_kind(kind)
    accs = _finetune(finetune)
    n = len(accs)
    b = check_budget(budget, n)
    if kind == "log_odds":
        accs = _as_fraction(accs, percent)
    t = sorted(accs.values())
    best = t[-1]
    total = math.comb(n, b)
    probs = [math.comb(i - 1, b - 1) / total for i in range(1, n + 1)]  # exact big-int ratio per term
    # Models tied with the best contribute zero regret (also avoids inf - inf for log-odds at t = 1).
    return float(sum(p * _regret_of(best, ti, kind) for p, ti in zip(probs, t) if p > 0))


def relative_delta(a: Iterable[str], b: Iterable[str], finetune: Mapping[str, float], *,
                   kind: str = "relative", percent: Optional[bool] = None) -> float:
    """Relative delta between selections (Renggli et al., Eq. 2): ``(t(a) - t(b)) / t(a)`` with
    ``t(S) = max_{m in S} t(m)``; positive when ``a`` is better. ``kind="log_odds"`` gives the log-odds delta
    ``logit(t(a)) - logit(t(b))`` (Appendix C). ``relative_delta(all models, S)`` is the relative regret of S.
    """
    if kind not in ("relative", "log_odds"):
        raise ValueError(f"kind must be 'relative' or 'log_odds', got {kind!r}")
    accs = _finetune(finetune)
    sa, sb = _selected(a, accs), _selected(b, accs)
    if kind == "log_odds":
        accs = _as_fraction(accs, percent)
    ta, tb = max(accs[m] for m in sa), max(accs[m] for m in sb)
    if ta == tb:
        return 0.0
    if kind == "log_odds":
        return _logit(ta) - _logit(tb)
    if ta <= 0:
        raise ValueError("relative delta is undefined when t(a) is 0")
    return (ta - tb) / ta


def _ranking(scores, accs: Mapping[str, float], nan_policy: str, what: str = "scores") -> list:
    """A full ordering of models from a score mapping (ranked, ties by name) or an explicit order."""
    return [m for g in _groups(scores, accs, nan_policy, "name", what) for m in g]


def _groups(scores, accs: Mapping[str, float], nan_policy: str, ties: str, what: str = "scores") -> list:
    """The tied groups of a ranking, in order: a score mapping's exactly equal scores or a Selection's
    ``groups`` (``ties="expected"``), else one model per group in the printed order."""
    _ties.check_ties(ties)
    if isinstance(scores, Mapping):
        check_same_models(scores, accs, what, "finetune")
        vals, _ = score_map(scores, what, nan_policy=nan_policy, min_models=1)
        order = rank_desc(vals)
        return _ties.equal_value_groups(order, vals) if ties == "expected" else _ties.singletons(order)
    groups = getattr(scores, "groups", ())
    if ties == "expected" and groups:
        order = [m for g in groups for m in g]
        missing = sorted(set(order) - set(accs))
        if missing:
            raise ValueError(f"{what}: models missing from finetune: {missing}")
        return [tuple(g) for g in groups]
    if isinstance(scores, str):
        raise TypeError(f"{what} must be a mapping {{model: score}} or an ordered list of models")
    order = list(scores)
    if len(set(order)) != len(order):
        raise ValueError(f"{what}: a ranking cannot contain a model twice")
    missing = sorted(set(order) - set(accs))
    if missing:
        raise ValueError(f"{what}: models missing from finetune: {missing}")
    return _ties.singletons(order)


def top_k_regret(scores: ScoresLike, finetune: Mapping[str, float], k: int = 1, *, kind: str = "relative",
                 nan_policy: str = "raise", percent: Optional[bool] = None, ties: str = "expected") -> float:
    """Regret of fine-tuning the ``k`` highest-scored models.

    scores: ``{model: score}`` over the same models as ``finetune`` (a mismatch raises, naming the missing
    ids), or an ordered list/:class:`Selection`. With ``nan_policy="omit"`` unscored models cannot be picked but
    still count in the pool's best accuracy. ties: ``"expected"`` (default): the mean regret over the uniformly
    random tie-breaks of exactly equal scores (a mapping) or of a Selection's tied groups, in closed form;
    ``"name"``: ties broken by model name.
    """
    _check_kind(kind)
    check_nan_policy(nan_policy)
    accs = _finetune(finetune)
    groups = _groups(scores, accs, nan_policy, ties)
    k = check_budget(k, sum(len(g) for g in groups), "k")
    if kind == "log_odds":
        accs = _as_fraction(accs, percent)
    best = max(accs.values())
    return _ties.expected_top(groups, accs, k, lambda got: _regret_of(best, got, kind))


def budget_to_zero_regret(scores: ScoresLike, finetune: Mapping[str, float], *, nan_policy: str = "raise",
                          ties: str = "expected") -> float:
    """The smallest budget B whose top-B models contain a best model (Renggli et al., Appendix G).

    scores: ``{model: score}`` or an ordered list/:class:`Selection`. If the ranking never reaches a best model
    (a partial ranking, or best models omitted for NaN scores) ValueError is raised. ties: ``"expected"``
    (default): the expected value over uniformly random tie-breaks, ``o + (g + 1) / (m + 1)`` for the first
    tied group holding a best model (``o`` models before it, ``m`` best of its ``g``): an int when no tie
    decides it; ``"name"``: ties broken by model name (always an int).
    """
    check_nan_policy(nan_policy)
    accs = _finetune(finetune)
    groups = _groups(scores, accs, nan_policy, ties)
    best = max(accs.values())
    b0 = _ties.expected_budget_to_zero(groups, accs, best)
    if math.isinf(b0):
        raise ValueError("budget_to_zero_regret: the ranking never reaches a best model "
                         f"({sorted(m for m in accs if accs[m] == best)})")
    return int(b0) if float(b0).is_integer() else b0


def success_at(scores: ScoresLike, finetune: Mapping[str, float], budget: int, *, nan_policy: str = "raise",
               ties: str = "expected") -> float:
    """Probability that the top ``budget`` models of a ranking contain a best model: 0 or 1 without ties; with
    ``ties="expected"`` (default) over uniformly random tie-breaks, ``1 - C(g - m, r) / C(g, r)`` when the
    budget keeps ``r`` of the ``g`` models of the first tied group holding ``m`` best ones. Its mean over
    datasets is the success rate at ``budget`` (Renggli et al., Figure 7)."""
    check_nan_policy(nan_policy)
    accs = _finetune(finetune)
    groups = _groups(scores, accs, nan_policy, ties)
    b = check_budget(budget, len(accs))
    return _ties.success_probability(groups, accs, max(accs.values()), b)


def _budgets(budgets) -> np.ndarray:
    b = np.atleast_1d(np.asarray(budgets))
    if b.ndim != 1 or b.size == 0 or b.dtype.kind not in "iu" or (b < 1).any():
        raise ValueError(f"budgets must be positive integers, got {budgets!r}")
    return b.astype(np.int64)


def success_rate(per_dataset: Union[Mapping[str, float], Sequence[float]], budgets: Union[int, Sequence[int]]) -> Union[float, np.ndarray]:
    """Fraction of datasets whose budget to zero regret is at most B, for each B in ``budgets``
    (Renggli et al., Figure 7). per_dataset: ``{dataset: budget_to_zero}`` or a sequence of them (expected,
    non-integral values such as the random strategy's are accepted, but the rate of an *expected* budget is not
    the expected rate: for rankings with ties average :func:`success_at` over datasets instead). A scalar
    budget gives a float."""
    vals = list(per_dataset.values()) if isinstance(per_dataset, Mapping) else list(per_dataset)
    v = np.asarray(vals, dtype=np.float64)
    if v.ndim != 1 or v.size == 0 or not np.isfinite(v).all() or (v < 1).any():
        raise ValueError("per_dataset must hold at least one finite budget to zero regret >= 1 per dataset")
    b = _budgets(budgets)
    out = (v[None, :] <= b[:, None]).mean(axis=1)
    return float(out[0]) if np.ndim(budgets) == 0 else out


def expected_random_budget_to_zero(finetune: Mapping[str, float]) -> float:
    """Expected budget to zero regret of a uniformly random order: with ``m`` best models among ``n``, the
    first best position of a random permutation has mean ``(n + 1) / (m + 1)``."""
    accs = _finetune(finetune)
    best = max(accs.values())
    m = sum(1 for v in accs.values() if v == best)
    return (len(accs) + 1) / (m + 1)


def random_success_rate(finetune: Mapping[str, float], budget: int) -> float:
    """Probability that ``budget`` uniformly drawn models contain a best one: ``1 - C(n-m, B) / C(n, B)``."""
    accs = _finetune(finetune)
    n = len(accs)
    b = check_budget(budget, n)
    best = max(accs.values())
    m = sum(1 for v in accs.values() if v == best)
    return 1.0 - math.comb(n - m, b) / math.comb(n, b)
