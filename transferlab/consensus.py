"""Consensus ranking: several transferability scores combined into one ranking of the models (SCORES.md,
"Consensus ranking").

    from transferlab import select
    sel = select.consensus({"logme": logme_by_model, "knn_loo": knn_by_model})   # a Selection, best first
    sel = select.consensus(scores, weights={"logme": 2, "knn_loo": 1})

Contract (``method="mean_rank"``, the only method): each score's values are ranked over the models in
increasing order (1 = lowest value, n = highest; exact ties get the average of their ranks, as
``scipy.stats.rankdata(method="average")``), then each model's key is the (weighted) mean of its ranks over the
scores; models are ordered by decreasing key, exact ties by model name (the tie rule of every ranking). So a
larger key is better, like a score, and :func:`consensus_scores` can be passed wherever a ``{model: score}``
mapping is expected (``evaluate.top_k_regret``, ``evaluate.weighted_tau``). Only ranks enter: the scales of the
members (LogME ~ 1, GBC ~ -1e5) do not matter.

How to choose the members honestly (on other benchmarks than the one evaluated) is
:func:`transferlab.evaluate.leave_one_benchmark_out`.
"""
from __future__ import annotations

import math
from typing import Dict, Mapping, Optional, Tuple

import numpy as np

from transferlab.ranking import check_same_models, rank_desc, score_map

__all__ = ["CONSENSUS_METHODS", "consensus_order", "consensus_scores"]

#: The combination rules :func:`consensus_scores` knows.
CONSENSUS_METHODS = ("mean_rank",)


def _average_ranks(values: Mapping[str, float], models) -> np.ndarray:
    """Increasing ranks 1..n of ``values`` over ``models`` (in that order), ties averaged."""
    v = np.array([values[m] for m in models], dtype=np.float64)
    order = np.argsort(v, kind="stable")
    sv = v[order]
    ranks = np.empty(v.size, dtype=np.float64)
    i = 0
    while i < v.size:  # runs of equal values share the mean of their positions (1-based)
        j = i
        while j + 1 < v.size and sv[j + 1] == sv[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def _check_weights(weights, names) -> Dict[str, float]:
    if weights is None:
        return {n: 1.0 for n in names}
    if not isinstance(weights, Mapping):
        raise TypeError(f"weights must be a mapping {{score name: weight}} or None, got {type(weights).__name__}")
    check_same_models(names, weights, "scores_by_name", "weights")
    out: Dict[str, float] = {}
    for n in names:
        w = weights[n]
        if isinstance(w, (bool, np.bool_)) or not isinstance(w, (int, float, np.integer, np.floating)):
            raise TypeError(f"weights[{n!r}] must be a real number, got {w!r}")
        if not (math.isfinite(float(w)) and float(w) >= 0):
            raise ValueError(f"weights[{n!r}] must be finite and >= 0, got {w!r}")
        out[n] = float(w)
    if sum(out.values()) <= 0:
        raise ValueError("weights: at least one weight must be > 0")
    return out


def consensus_scores(scores_by_name: Mapping[str, Mapping[str, float]], *, method: str = "mean_rank",
                     weights: Optional[Mapping[str, float]] = None,
                     nan_policy: str = "raise") -> Tuple[Dict[str, float], Tuple[str, ...]]:
    """``({model: weighted mean rank}, omitted models)`` of the scores ``{score name: {model: value}}``.

    Every score must cover the same models (a mismatch raises, naming the ids). A NaN/inf value raises unless
    ``nan_policy="omit"``, which drops that model from every score (returned as ``omitted``). ``weights``:
    ``{score name: weight >= 0}`` over exactly the score names (None: equal weights). Inputs are not mutated.
    """
    if method not in CONSENSUS_METHODS:
        raise ValueError(f"method must be one of {CONSENSUS_METHODS}, got {method!r}")
    if not isinstance(scores_by_name, Mapping):
        raise TypeError(f"scores_by_name must be a mapping {{score name: {{model: value}}}}, got "
                        f"{type(scores_by_name).__name__}")
    if not scores_by_name:
        raise ValueError("scores_by_name: need at least one score")
    names = list(scores_by_name)
    if not all(isinstance(n, str) for n in names):
        raise TypeError("scores_by_name: score names must be strings")
    w = _check_weights(weights, names)
    cleaned: Dict[str, Dict[str, float]] = {}
    omitted = set()
    for n in names:
        vals, om = score_map(scores_by_name[n], f"scores_by_name[{n!r}]", nan_policy=nan_policy)
        cleaned[n] = vals
        omitted.update(om)
    first = names[0]
    for n in names[1:]:  # compare the full model sets (finite or not) before anything is dropped
        check_same_models(scores_by_name[first], scores_by_name[n], f"scores_by_name[{first!r}]",
                          f"scores_by_name[{n!r}]")
    models = sorted(m for m in cleaned[first] if m not in omitted)
    if len(models) < 2:
        raise ValueError(f"scores_by_name: need at least 2 models to rank, got {len(models)}"
                         + (f" after omitting {sorted(omitted)}" if omitted else ""))
    total = sum(w.values())
    key = np.zeros(len(models))
    for n in names:
        if w[n] > 0:
            key += w[n] * _average_ranks(cleaned[n], models)
    key /= total
    return {m: float(k) for m, k in zip(models, key)}, tuple(sorted(omitted))


def consensus_order(scores_by_name: Mapping[str, Mapping[str, float]], **kw):
    """``(models best first, keys in that order, omitted)``: :func:`consensus_scores` ranked by decreasing key,
    exact ties by model name."""
    keys, omitted = consensus_scores(scores_by_name, **kw)
    order = rank_desc(keys)
    return order, [keys[m] for m in order], omitted
