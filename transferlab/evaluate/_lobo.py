"""Leave-one-benchmark-out evaluation of consensus ranking against every single score (SCORES.md, "Consensus
ranking": choose the members on some benchmarks, report regret / weighted tau on the others, never on the
benchmark used to choose), and the hierarchical bootstrap the zoo table uses.

    res = ev.leave_one_benchmark_out(scores, truth)          # scores: {score: {benchmark: {model: value}}}
    res.strategies["consensus (LOBO)"][("pets", None)]       # {"regret@1": ..., "wtau": ...} on that unit
    res.chosen["pets"]                                       # the members chosen without looking at pets

Units: a benchmark with a flat truth ``{model: accuracy}`` is one unit ``(benchmark, None)``; with per-seed
truth ``{model: {seed: accuracy}}`` (``zoo.ground_truth(per_seed=True)``) each seed every model has is a unit
``(benchmark, seed)``. Metrics per unit: ``regret@k`` = relative regret in % of the best accuracy of the top-k
(``top_k_regret``), ``wtau`` = weighted Kendall tau (``weighted_tau``, scipy semantics, rank=True; NaN where a
ranking or the truth is constant, and a subset with a NaN on a training unit is never chosen).

Protocol, for each held-out benchmark b:
- candidates: the scores defined (finite, every model of the truth) on every benchmark;
- "best single (LOBO)": the candidate with the best mean criterion over the units of the *other* benchmarks;
- "consensus (LOBO)": the subset of 2..``max_members`` candidates whose :func:`consensus_scores` has the best
  mean criterion over the other benchmarks' units (ties: fewer members, then names);
- both are then evaluated on b's units only. The criterion is ``"wtau"`` (maximised, default) or
  ``"regret@1"`` (minimised). Every single score and the consensus of all candidates (no choice made) are
  reported on every unit beside them. Nothing of b (scores or truth) enters b's choice: the no-leak property.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from transferlab.consensus import consensus_scores
from transferlab.evaluate._correlation import weighted_tau
from transferlab.evaluate._regret import top_k_regret

__all__ = ["LOBOResult", "LOBO_CRITERIA", "hierarchical_ci", "leave_one_benchmark_out"]

LOBO_CRITERIA = ("wtau", "regret@1")
Unit = Tuple[str, Optional[object]]


@dataclass(frozen=True)
class LOBOResult:
    """strategies: ``{strategy: {unit: {metric: value}}}`` (strategies ``"score:<name>"``, ``"best single
    (LOBO)"``, ``"consensus (LOBO)"``, ``"consensus of all"``); chosen / chosen_single: ``{benchmark: members}`` /
    ``{benchmark: score}`` chosen with that benchmark held out; candidates: the scores that took part;
    excluded: ``{score: why}`` for scores left out; criterion, budgets: as given."""

    strategies: Dict[str, Dict[Unit, Dict[str, float]]]
    chosen: Dict[str, Tuple[str, ...]]
    chosen_single: Dict[str, str]
    candidates: Tuple[str, ...]
    excluded: Dict[str, str]
    criterion: str
    budgets: Tuple[int, ...]

    def metric(self, strategy: str, metric: str) -> Dict[Unit, float]:
        """``{unit: value}`` of one strategy and metric."""
        return {u: v[metric] for u, v in self.strategies[strategy].items()}


def _units(truth: Mapping) -> Dict[Unit, Dict[str, float]]:
    if not isinstance(truth, Mapping) or not truth:
        raise TypeError("truth must be a non-empty mapping {benchmark: {model: accuracy}} "
                        "(or {benchmark: {model: {seed: accuracy}}})")
    out: Dict[Unit, Dict[str, float]] = {}
    for b in sorted(truth, key=str):
        per_model = truth[b]
        if not isinstance(per_model, Mapping) or len(per_model) < 2:
            raise ValueError(f"truth[{b!r}] must map at least 2 models to accuracies")
        vals = list(per_model.values())
        if all(isinstance(v, Mapping) for v in vals):
            seeds = set.intersection(*(set(v) for v in vals))
            if not seeds:
                raise ValueError(f"truth[{b!r}]: no seed is shared by every model")
            for s in sorted(seeds, key=str):
                out[(b, s)] = {m: float(per_model[m][s]) for m in per_model}
        elif any(isinstance(v, Mapping) for v in vals):
            raise ValueError(f"truth[{b!r}] mixes per-seed and flat accuracies")
        else:
            out[(b, None)] = {m: float(v) for m, v in per_model.items()}
    return out


def _defined(per_bench: Mapping, b, models) -> bool:
    vals = per_bench.get(b) if isinstance(per_bench, Mapping) else None
    if not isinstance(vals, Mapping):
        return False
    return all(m in vals and math.isfinite(float(vals[m])) for m in models)


def _metrics(keys: Mapping[str, float], acc: Mapping[str, float], budgets) -> Dict[str, float]:
    out = {f"regret@{k}": 100.0 * top_k_regret(keys, acc, k=k) for k in budgets}
    if len(set(keys.values())) == 1 or len(set(acc.values())) == 1:
        # undefined (a constant input: e.g. two members ranking in exactly opposite orders); NaN, never chosen
        out["wtau"] = math.nan
    else:
        out["wtau"] = float(weighted_tau(keys, acc))
    return out


def leave_one_benchmark_out(scores: Mapping[str, Mapping[str, Mapping[str, float]]], truth: Mapping, *,
                            criterion: str = "wtau", max_members: int = 3,
                            budgets: Sequence[int] = (1, 2)) -> LOBOResult:
    """Evaluate every single score, the best single score and the consensus chosen leave-one-benchmark-out
    (module docstring). scores: ``{score: {benchmark: {model: value}}}`` (higher = better; extra models are
    ignored); truth: ``{benchmark: {model: accuracy}}`` or per seed. Needs at least 2 benchmarks and 2
    candidate scores. Inputs are not mutated."""
    if criterion not in LOBO_CRITERIA:
        raise ValueError(f"criterion must be one of {LOBO_CRITERIA}, got {criterion!r}")
    if isinstance(max_members, bool) or not isinstance(max_members, (int, np.integer)) or max_members < 2:
        raise ValueError(f"max_members must be an integer >= 2, got {max_members!r}")
    budgets = tuple(int(k) for k in budgets)
    if not budgets or any(k < 1 for k in budgets):
        raise ValueError(f"budgets must be integers >= 1, got {budgets!r}")
    if not isinstance(scores, Mapping) or not scores:
        raise TypeError("scores must be a non-empty mapping {score: {benchmark: {model: value}}}")
    units = _units(truth)
    benches = sorted({b for b, _ in units}, key=str)
    if len(benches) < 2:
        raise ValueError(f"leave-one-benchmark-out needs at least 2 benchmarks, got {benches}")
    excluded: Dict[str, str] = {}
    cands: List[str] = []
    for s in sorted(scores):
        missing = [b for b in benches if not _defined(scores[s], b, truth[b])]
        if missing:
            excluded[s] = f"not defined on every model of {missing}"
        else:
            cands.append(s)
    if len(cands) < 2:
        raise ValueError(f"need at least 2 scores defined on every benchmark, got {cands} (excluded: {excluded})")
    # Per (subset, unit) metrics do not depend on the fold: compute once, choose per fold.
    per_subset: Dict[Tuple[str, ...], Dict[Unit, Dict[str, float]]] = {}
    for r in range(1, min(max_members, len(cands)) + 1):
        for sub in itertools.combinations(cands, r):
            per_subset[sub] = {}
            for (b, seed), acc in units.items():
                members = {s: {m: scores[s][b][m] for m in acc} for s in sub}
                keys = members[sub[0]] if r == 1 else consensus_scores(members)[0]
                per_subset[sub][(b, seed)] = _metrics(keys, acc, budgets)
    all_sub = tuple(cands)
    if all_sub not in per_subset:
        per_subset[all_sub] = {u: _metrics(consensus_scores({s: {m: scores[s][u[0]][m] for m in acc}
                                                              for s in cands})[0], acc, budgets)
                               for u, acc in units.items()}

    sign = 1.0 if criterion == "wtau" else -1.0

    def fold_value(sub, held_out) -> float:
        vals = [v[criterion] for u, v in per_subset[sub].items() if u[0] != held_out]
        m = sign * float(np.mean(vals))
        return m if math.isfinite(m) else -math.inf  # an undefined criterion on a unit: never chosen

    strategies: Dict[str, Dict[Unit, Dict[str, float]]] = {f"score:{s}": per_subset[(s,)] for s in cands}
    strategies["consensus of all"] = per_subset[all_sub]
    strategies["best single (LOBO)"] = {}
    strategies["consensus (LOBO)"] = {}
    chosen: Dict[str, Tuple[str, ...]] = {}
    chosen_single: Dict[str, str] = {}
    multi = [sub for sub in per_subset if 2 <= len(sub) <= max_members]
    for b in benches:
        # best criterion first; ties: fewer members, then names (so the choice never depends on dict order)
        single = min(cands, key=lambda s: (-fold_value((s,), b), s))
        best = min(multi, key=lambda sub: (-fold_value(sub, b), len(sub), sub))
        chosen_single[b], chosen[b] = single, best
        for u in units:
            if u[0] == b:
                strategies["best single (LOBO)"][u] = per_subset[(single,)][u]
                strategies["consensus (LOBO)"][u] = per_subset[best][u]
    return LOBOResult(strategies, chosen, chosen_single, tuple(cands), excluded, criterion, budgets)


def hierarchical_ci(values: Mapping[Unit, float], draws: int = 10_000, seed: int = 0) -> Tuple[float, float, float]:
    """``(mean, lo, hi)``: the mean over units ``{(benchmark, seed): value}`` and a 95% percentile interval of a
    hierarchical bootstrap (benchmarks resampled, then seeds within each benchmark), the interval of
    ``bench/zoo/regret_ci.py``. With one unit per benchmark it is the plain bootstrap over benchmarks. For a
    paired comparison of two strategies pass the per-unit differences."""
    by_b: Dict[object, List[float]] = {}
    for (b, _), v in values.items():
        by_b.setdefault(b, []).append(float(v))
    if not by_b:
        raise ValueError("hierarchical_ci: no units")
    arrays = [np.asarray(by_b[b]) for b in sorted(by_b, key=str)]
    rng = np.random.default_rng(seed)
    means = np.empty(draws)
    for i in range(draws):
        picked = rng.integers(0, len(arrays), size=len(arrays))
        means[i] = np.mean(np.concatenate([arrays[j][rng.integers(0, arrays[j].size, size=arrays[j].size)]
                                           for j in picked]))
    return (float(np.mean(list(values.values()))), float(np.percentile(means, 2.5)),
            float(np.percentile(means, 97.5)))
