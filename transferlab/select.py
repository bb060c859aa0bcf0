"""Model-selection strategies (Renggli et al. 2022, "Which model to transfer?"; Puigcerver et al. 2021,
"Scalable transfer learning with expert models").

Every strategy returns a :class:`Selection`: the models in the order the strategy would fine-tune them, and for
each model the rule that placed it there. A budget ``B`` keeps the first ``B`` (``budget=None`` keeps the whole
ranking, so ``sel.top(B)`` gives every budget from one call).

- :func:`task_agnostic`: by upstream accuracy; models without it after those with it, by upstream dataset size;
  (approximate) ties broken by parameter count (fewer first), then by name.
- :func:`task_aware`: by a task-aware score (kNN, linear probe, LEEP, ...), highest first.
- :func:`hybrid`: the top-1 task-agnostic model, then the top ``B-1`` task-aware models not already chosen
  (so ``hybrid(..., budget=1)`` is the task-agnostic pick); ``n_agnostic=k`` takes the top-k agnostic models.
- :func:`consensus`: several scores' rankings combined by (weighted) mean rank (:mod:`transferlab.consensus`).
- :func:`agnostic_oracle`: by mean fine-tune accuracy over the *other* datasets (an impractical reference).
- :func:`random_selection`: a uniformly random ordering (seeded).
- :func:`select_expert`: Puigcerver et al.'s expert selection: ``"knn"``, ``"label_matching"``, ``"random"``.
- :func:`race`: the best model of a pool by a per-row-mean score (knn_loo) on growing random rows, with a
  stated guarantee instead of every row of every model (``transferlab/race.py``; returns a ``RaceResult``).

Tie rule (BAD_INPUTS row 18): models with exactly equal keys are ordered by model name, ascending (Python ``str``
order), so no result depends on the order of the input. That order is only for printing: ties are part of the
answer. :func:`task_aware` and :func:`hybrid` record their tied groups (``Selection.tied_groups``: exactly equal
scores by default, or with ``ties="statistical"`` models whose paired difference on the same rows is not
significant, :mod:`transferlab.core.paired`), and :mod:`transferlab.evaluate` scores a selection by the
expected value over uniformly random tie-breaks (``ties="name"`` there for the printed order). Scores must be finite: NaN or ±inf raise ``ValueError``
naming the models unless ``nan_policy="omit"``, which drops them (listed in ``Selection.omitted``). Rankings need
at least 2 models.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from transferlab.consensus import consensus_order
from transferlab.core import paired
from transferlab.core.types import ArrayLike
from transferlab.pool import ModelCard, ModelPool
from transferlab.race import RaceResult, race  # the thin entry point: the race lives in transferlab/race.py
# NAN_POLICIES: re-exported (transferlab.select.NAN_POLICIES); the checks live in transferlab.ranking
from transferlab.ranking import NAN_POLICIES, check_budget, check_same_models, rank_desc, score_map  # noqa: F401

__all__ = [
    "RaceResult",
    "SCORE_TIES",
    "Selection",
    "agnostic_oracle",
    "consensus",
    "hybrid",
    "race",
    "random_selection",
    "select_expert",
    "task_agnostic",
    "task_aware",
]

@dataclass(frozen=True)
class Selection:
    """An ordered selection of models.

    models: model names, first = first to fine-tune. rules: for each model, the rule that placed it
    (``"task-agnostic:upstream_accuracy"``, ``"task-aware:LogME"``, ``"oracle"``, ``"random"``,
    ``"expert:knn"``, ...). values: the ranking key of each model (score, accuracy, KL divergence; ``None`` where
    there is none). strategy: the strategy's name. omitted: models dropped by ``nan_policy="omit"``.
    groups: the tied groups, in order (empty: no ties recorded, every model its own group); see
    :attr:`tied_groups`. Iterating yields the model names, so a Selection can be passed wherever a list of
    names is expected.
    """

    models: Tuple[str, ...]
    rules: Tuple[str, ...]
    strategy: str
    values: Tuple[Optional[float], ...] = ()
    omitted: Tuple[str, ...] = ()
    groups: Tuple[Tuple[str, ...], ...] = ()

    def __post_init__(self):
        if len(self.rules) != len(self.models):
            raise ValueError("a Selection needs one rule per model")
        if self.values and len(self.values) != len(self.models):
            raise ValueError("a Selection needs one value per model (or none)")
        if len(set(self.models)) != len(self.models):
            raise ValueError("a Selection cannot contain a model twice")
        if self.groups:
            flat = [m for g in self.groups for m in g]
            if (any(not g for g in self.groups) or len(set(flat)) != len(flat)
                    or tuple(flat[:len(self.models)]) != self.models
                    or len(flat) - len(self.groups[-1]) >= len(self.models)):
                raise ValueError("a Selection's groups must partition its models in order (the last group may "
                                 "run past a budget)")

    @property
    def tied_groups(self) -> Tuple[Tuple[str, ...], ...]:
        """The tied groups in ranking order: models inside a group are interchangeable (their printed order is
        by name). After :meth:`top` the last group may name models beyond the budget: the tie the budget cuts
        through, so that the expected regret of the cut selection can be computed."""
        return self.groups or tuple((m,) for m in self.models)

    def __len__(self) -> int:
        return len(self.models)

    def __iter__(self):
        return iter(self.models)

    def __getitem__(self, i):
        return self.models[i]

    def top(self, budget: int) -> "Selection":
        """The first ``budget`` models (``1 <= budget <= len(self)``)."""
        budget = check_budget(budget, len(self))
        groups: List[Tuple[str, ...]] = []
        seen = 0
        for g in self.groups:
            if seen >= budget:
                break
            groups.append(g)
            seen += len(g)
        return Selection(self.models[:budget], self.rules[:budget], self.strategy,
                         self.values[:budget] if self.values else (), self.omitted, tuple(groups))

    def rule(self, model: str) -> str:
        """The rule that placed ``model``."""
        try:
            return self.rules[self.models.index(model)]
        except ValueError:
            raise KeyError(f"model {model!r} is not in this selection") from None

    def to_list(self) -> List[str]:
        return list(self.models)

    def as_rows(self) -> List[Tuple[int, str, str, Optional[float]]]:
        """``(position (1-based), model, rule, value)`` per model."""
        vals = self.values or (None,) * len(self)
        return [(i + 1, m, r, v) for i, (m, r, v) in enumerate(zip(self.models, self.rules, vals))]


#: a ModelPool, or model cards (ModelCard or their dicts) in any iterable
PoolLike = Union[ModelPool, Sequence[Union[ModelCard, Mapping[str, Any]]]]

def _as_cards(pool) -> List[ModelCard]:
    if isinstance(pool, ModelPool):
        return list(pool)
    if isinstance(pool, Selection) or isinstance(pool, (str, bytes)):
        raise TypeError(f"pool must be a ModelPool (or a list of ModelCard), got {type(pool).__name__}")
    cards = [c if isinstance(c, ModelCard) else ModelCard.from_dict(c) for c in pool]
    return list(ModelPool(cards))


# --- strategies ---------------------------------------------------------------------------------------------

def task_agnostic(pool: PoolLike, budget: Optional[int] = None, *, tol: float = 0.0) -> Selection:
    """Rank a pool without looking at the target data (Renggli et al., Sec. 2).

    Models with an upstream accuracy come first, by decreasing accuracy; accuracies within ``tol`` of the
    first accuracy of their group count as tied (``tol=0``: exact ties only). Then models with only an upstream
    dataset size, by decreasing size (exact ties). Then models with neither. Inside a tie, fewer parameters
    first (unknown counts last), then by name.

    Rules: ``"task-agnostic:upstream_accuracy"``, ``"task-agnostic:upstream_size"``, ``"task-agnostic:none"``.
    """
    if not (isinstance(tol, (int, float)) and math.isfinite(tol) and tol >= 0):
        raise ValueError(f"tol must be a finite number >= 0, got {tol!r}")
    cards = _as_cards(pool)
    if len(cards) < 2:
        raise ValueError(f"pool: need at least 2 models to rank, got {len(cards)}")

    def tie_key(c: ModelCard):
        return (c.n_params is None, c.n_params or 0, c.name)

    def grouped(cs: List[ModelCard], key, t: float) -> List[ModelCard]:
        cs = sorted(cs, key=lambda c: (-key(c), c.name))
        out: List[ModelCard] = []
        group: List[ModelCard] = []
        head = None
        for c in cs:
            if head is None or head - key(c) > t:
                out.extend(sorted(group, key=tie_key))
                group, head = [], key(c)
            group.append(c)
        out.extend(sorted(group, key=tie_key))
        return out

    with_acc = [c for c in cards if c.upstream_accuracy is not None]
    with_size = [c for c in cards if c.upstream_accuracy is None and c.upstream_size is not None]
    rest = [c for c in cards if c.upstream_accuracy is None and c.upstream_size is None]
    order = (
        [(c, "task-agnostic:upstream_accuracy", c.upstream_accuracy)
         for c in grouped(with_acc, lambda c: c.upstream_accuracy, float(tol))]
        + [(c, "task-agnostic:upstream_size", float(c.upstream_size))
           for c in grouped(with_size, lambda c: c.upstream_size, 0.0)]
        + [(c, "task-agnostic:none", None) for c in sorted(rest, key=tie_key)]
    )
    sel = Selection(tuple(c.name for c, _, _ in order), tuple(r for _, r, _ in order), "task-agnostic",
                    tuple(v for _, _, v in order))
    return sel if budget is None else sel.top(budget)


#: How :func:`task_aware` and :func:`hybrid` group tied models: ``"exact"`` (exactly equal scores),
#: ``"statistical"`` (paired test on per-row samples) or ``"none"`` (no groups: the printed order is the answer).
SCORE_TIES = ("exact", "statistical", "none")


def _score_groups(order: List[str], vals: Mapping[str, float], ties: str, alpha: float,
                  samples: Optional[Mapping[str, object]]) -> Tuple[Tuple[str, ...], ...]:
    """The tied groups of the ranking ``order`` of ``vals`` (see :func:`task_aware`)."""
    if ties not in SCORE_TIES:
        raise ValueError(f"ties must be one of {SCORE_TIES}, got {ties!r}")
    if ties != "statistical" and samples is not None:
        raise ValueError("samples= is used by ties='statistical' only")
    if not order:
        return ()
    if ties == "none":
        return tuple((m,) for m in order)
    if ties == "exact":
        groups: List[Tuple[str, ...]] = []
        for m in order:
            if groups and vals[m] == vals[groups[-1][0]]:
                groups[-1] = groups[-1] + (m,)
            else:
                groups.append((m,))
        return tuple(groups)
    if samples is None:
        raise ValueError("ties='statistical' needs samples={model: per-row values on the same rows} (e.g. "
                         "knn_loo(..., return_details=True) results)")
    if not isinstance(samples, Mapping):
        raise TypeError(f"samples must be a mapping {{model: per-row values}}, got {type(samples).__name__}")
    missing = sorted(set(order) - set(samples))
    if missing:
        raise ValueError(f"samples: no per-row values for models {missing}")
    # a score's details (knn_loo / linear_probe, return_details=True) carry their per-row credit as `correct`
    per_row = {m: getattr(samples[m], "correct", samples[m]) for m in order}
    return tuple(paired.tied_groups(per_row, alpha, scores={m: vals[m] for m in order}))


def task_aware(scores: Mapping[str, float], budget: Optional[int] = None, *, name: str = "score",
               nan_policy: str = "raise", ties: str = "exact", alpha: float = 0.05,
               samples: Optional[Mapping[str, object]] = None) -> Selection:
    """Rank models by a task-aware score ``{model: score}`` (higher = better), printed ties by model name.

    ties: how tied groups are formed (``Selection.tied_groups``; evaluation takes the expectation over
    tie-breaks inside each group). ``"exact"`` (default): exactly equal scores. ``"statistical"``: walking the
    ranking, a group takes every following model whose paired difference with the group's first model is not
    significant at level ``alpha`` (one-sided paired t-test on ``samples``,
    :func:`transferlab.core.paired.tied_groups`); samples: ``{model: per-row values on the same rows}`` or the
    ``return_details=True`` results of knn_loo / linear_probe (their ``correct``). ``"none"``: no groups.
    Rules: ``"task-aware:<name>"``.
    """
    vals, omitted = score_map(scores, "scores", nan_policy=nan_policy)
    order = rank_desc(vals)
    groups = _score_groups(order, vals, ties, alpha, samples)
    sel = Selection(tuple(order), (f"task-aware:{name}",) * len(order), f"task-aware:{name}",
                    tuple(vals[m] for m in order), omitted, groups)
    return sel if budget is None else sel.top(budget)


def hybrid(pool: PoolLike, scores: Mapping[str, float], budget: Optional[int] = None, *, name: str = "score",
           tol: float = 0.0, nan_policy: str = "raise", n_agnostic: int = 1, ties: str = "exact",
           alpha: float = 0.05, samples: Optional[Mapping[str, object]] = None) -> Selection:
    """Renggli et al.'s hybrid strategy: the top-1 task-agnostic model, then the task-aware ranking without it.

    n_agnostic: how many task-agnostic picks come first (an integer in ``[0, n_models]``; 1 = the paper's
    strategy, the default; 0 = the task-aware ranking; ``n_models`` = the task-agnostic ranking).

    pool: a :class:`ModelPool` (ranked by :func:`task_agnostic`) or a ready task-agnostic :class:`Selection`
    (e.g. :func:`agnostic_oracle`). Its models must be exactly the scored models (a mismatch raises, naming
    the missing ids); models omitted under ``nan_policy="omit"`` are removed from the pool too.
    With budget ``B`` the selection is the agnostic pick plus the top ``B-1`` task-aware models not already
    chosen; ``budget=None`` gives the full order, whose prefixes are every budget.
    Tied groups: each agnostic pick alone (its own tie rule placed it), then the task-aware groups of the other
    models (``ties``, ``alpha``, ``samples`` as in :func:`task_aware`).
    """
    vals, omitted = score_map(scores, "scores", nan_policy=nan_policy)
    if isinstance(n_agnostic, bool) or not isinstance(n_agnostic, (int, np.integer)):
        raise TypeError(f"n_agnostic must be an integer, got {type(n_agnostic).__name__}")
    if not 0 <= int(n_agnostic) <= len(vals):
        raise ValueError(f"n_agnostic must be in [0, n_models={len(vals)}], got {n_agnostic}")
    k = int(n_agnostic)
    if isinstance(pool, Selection):
        agn_models = [m for m in pool.models if m not in omitted]
        check_same_models(agn_models, vals, "pool", "scores")
        picks = agn_models[:k]
        heads = [(m, pool.rule(m), pool.values[pool.models.index(m)] if pool.values else None) for m in picks]
    else:
        cards = [c for c in _as_cards(pool) if c.name not in omitted]
        check_same_models((c.name for c in cards), vals, "pool", "scores")
        agn = task_agnostic(cards, tol=tol)
        heads = list(zip(agn.models[:k], agn.rules[:k], agn.values[:k]))
    chosen = {m for m, _, _ in heads}
    rest = [m for m in rank_desc(vals) if m not in chosen]
    groups = tuple((m,) for m, _, _ in heads) + _score_groups(rest, vals, ties, alpha, samples)
    sel = Selection(tuple(m for m, _, _ in heads) + tuple(rest),
                    tuple(r for _, r, _ in heads) + (f"task-aware:{name}",) * len(rest), f"hybrid:{name}",
                    tuple(v for _, _, v in heads) + tuple(vals[m] for m in rest), omitted, groups)
    return sel if budget is None else sel.top(budget)


def consensus(scores_by_name: Mapping[str, Mapping[str, float]], budget: Optional[int] = None, *,
              method: str = "mean_rank", weights: Optional[Mapping[str, float]] = None,
              nan_policy: str = "raise") -> Selection:
    """Rank models by the consensus of several scores ``{score name: {model: value}}`` (SCORES.md): each
    score's values ranked over the models (average ranks for ties, larger value = larger rank), models ordered
    by the (weighted) mean rank, highest first, exact ties by name. ``weights``: ``{score name: w >= 0}``.
    Rules: ``"consensus:<method>"``; values: the mean ranks. Details: :mod:`transferlab.consensus`; choosing
    the members on other benchmarks: :func:`transferlab.evaluate.leave_one_benchmark_out`.
    Tied groups: models with exactly equal mean ranks.
    """
    order, keys, omitted = consensus_order(scores_by_name, method=method, weights=weights, nan_policy=nan_policy)
    rule = f"consensus:{method}"
    # exactly equal mean ranks are a tie (evaluate takes the expectation over its tie-breaks)
    groups = _score_groups(list(order), dict(zip(order, keys)), "exact", 0.05, None)
    sel = Selection(tuple(order), (rule,) * len(order), rule, tuple(keys), omitted, groups)
    return sel if budget is None else sel.top(budget)


def _dataset_key(table: Mapping, dataset: str, what: str) -> str:
    """The key of ``dataset`` in ``table``, matched case-insensitively (``Pet`` == ``pet``)."""
    if dataset in table:
        return dataset
    hits = [k for k in table if str(k).lower() == str(dataset).lower()]
    if not hits:
        raise ValueError(f"dataset {dataset!r} not in {what}; it has {sorted(map(str, table))}")
    if len(hits) > 1:
        raise ValueError(f"{what} has datasets differing only in case: {hits}")
    return hits[0]


def agnostic_oracle(finetune: Mapping[str, Mapping[str, float]], dataset: str,
                    budget: Optional[int] = None) -> Selection:
    """Renggli et al.'s impractical task-agnostic oracle: models of ``dataset`` ranked by their mean fine-tune
    accuracy over all *other* datasets of ``finetune`` (``{dataset: {model: accuracy}}``; dataset names match
    case-insensitively). Every model of ``dataset`` must have an accuracy on every other dataset.
    Rules: ``"oracle"``; values: the mean accuracy over the other datasets.
    """
    if not isinstance(finetune, Mapping):
        raise TypeError(f"finetune must be a mapping {{dataset: {{model: accuracy}}}}, got "
                        f"{type(finetune).__name__}")
    key = _dataset_key(finetune, dataset, "finetune")
    target, _ = score_map(finetune[key], f"finetune[{key!r}]")
    others = [d for d in finetune if d != key]
    if not others:
        raise ValueError("agnostic_oracle needs fine-tune accuracies on at least one other dataset")
    means: Dict[str, float] = {}
    for d in others:
        accs, _ = score_map(finetune[d], f"finetune[{d!r}]", min_models=1)
        missing = sorted(set(target) - set(accs))
        if missing:
            raise ValueError(f"agnostic_oracle: models {missing} have no fine-tune accuracy on dataset {d!r}")
        for m in target:
            means[m] = means.get(m, 0.0) + accs[m]
    means = {m: s / len(others) for m, s in means.items()}
    order = rank_desc(means)
    sel = Selection(tuple(order), ("oracle",) * len(order), "oracle", tuple(means[m] for m in order))
    return sel if budget is None else sel.top(budget)


def _names(pool, what: str = "pool") -> List[str]:
    if isinstance(pool, ModelPool):
        names = pool.names
    elif isinstance(pool, Mapping):
        names = list(pool)
    elif isinstance(pool, (str, bytes)):
        raise TypeError(f"{what} must be a ModelPool or a list of model names, got a string")
    else:
        names = [c.name if isinstance(c, ModelCard) else c for c in pool]
    if not all(isinstance(n, str) for n in names):
        raise TypeError(f"{what}: model names must be strings")
    if len(set(names)) != len(names):
        raise ValueError(f"{what}: duplicate model names")
    if len(names) < 2:
        raise ValueError(f"{what}: need at least 2 models to rank, got {len(names)}")
    return names


def random_selection(pool: PoolLike, budget: Optional[int] = None, seed: Optional[int] = None) -> Selection:
    """A uniformly random ordering of the pool's models (``numpy.random.default_rng(seed)`` permutation of the
    names sorted by name, so the result depends on the seed only, not on the pool's order). Rules: ``"random"``.
    Its expected regret has a closed form: :func:`transferlab.evaluate.expected_random_regret`.
    """
    names = sorted(_names(pool))
    if budget is not None:
        check_budget(budget, len(names))
    perm = np.random.default_rng(seed).permutation(len(names))
    order = [names[i] for i in perm]
    sel = Selection(tuple(order), ("random",) * len(order), "random")
    return sel if budget is None else sel.top(budget)


# --- expert selection (Puigcerver et al., Sec. 5) ----------------------------------------------------------

EXPERT_METHODS = ("knn", "label_matching", "random")


def _label_matching_kl(target_probs, priors: Mapping[str, object], from_logits: bool,
                       smoothing: float) -> Dict[str, float]:
    p = np.asarray(target_probs)
    if p.dtype == object or np.iscomplexobj(p) or not (np.issubdtype(p.dtype, np.number) or p.dtype == bool):
        raise TypeError(f"target_probs must be a real numeric array, got dtype {p.dtype}")
    if p.ndim != 2 or p.shape[0] == 0 or p.shape[1] < 2:
        raise ValueError(f"target_probs must be 2-D (n_target_images, n_upstream_labels) with n >= 1 and at "
                         f"least 2 labels, got shape {p.shape}")
    p = p.astype(np.float64)
    if not np.isfinite(p).all():
        bad = np.argwhere(~np.isfinite(p))
        raise ValueError(f"target_probs has {len(bad)} NaN/inf entries (first at row {bad[0][0]})")
    if from_logits:
        p = np.exp(p - p.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
    elif (p < 0).any() or np.abs(p.sum(axis=1) - 1.0).max() > 1e-3:
        raise ValueError("target_probs rows must be probabilities (non-negative, summing to 1); "
                         "pass from_logits=True for logits")
    q = p.mean(axis=0)
    z = q.shape[0]
    if not (isinstance(smoothing, (int, float)) and math.isfinite(smoothing) and smoothing >= 0):
        raise ValueError(f"smoothing must be a finite number >= 0, got {smoothing!r}")
    kl: Dict[str, float] = {}
    for name, prior in priors.items():
        pe = np.asarray(prior, dtype=np.float64)
        if pe.shape != (z,):
            raise ValueError(f"priors[{name!r}] must have shape ({z},) like the target predictions, "
                             f"got {pe.shape}")
        if not np.isfinite(pe).all() or (pe < 0).any():
            raise ValueError(f"priors[{name!r}] must be finite and non-negative")
        pe = pe + smoothing
        if pe.sum() <= 0:
            raise ValueError(f"priors[{name!r}] has zero mass")
        pe = pe / pe.sum()
        nz = q > 0
        if (pe[nz] == 0).any():
            kl[name] = math.inf
        else:
            kl[name] = float(np.sum(q[nz] * (np.log(q[nz]) - np.log(pe[nz]))))
    return kl


def _zoo_priors(experts: Optional[Sequence[str]]) -> Dict[str, object]:
    """The zoo's shipped expert priors, limited to ``experts`` (names checked) when given."""
    from transferlab.zoo import label_priors  # JSON only; no torch

    priors = label_priors()
    if experts is None:
        return priors
    names = _names(experts, "experts")
    unknown = sorted(set(names) - set(priors))
    if unknown:
        raise ValueError(f"experts: {unknown} have no shipped label prior; the zoo's experts are {sorted(priors)}")
    return {n: priors[n] for n in names}


def select_expert(method: str = "knn", *, knn: Optional[Mapping[str, float]] = None, target_probs: Optional[ArrayLike] = None,
                  priors: Optional[Mapping[str, ArrayLike]] = None, experts: Optional[Sequence[str]] = None,
                  seed: Optional[int] = None, from_logits: bool = False, smoothing: Optional[float] = None,
                  nan_policy: str = "raise") -> Selection:
    """Choose the expert to fine-tune (Puigcerver et al., Sec. 5); ``sel.models[0]`` is the chosen expert and
    the rest of the ranking follows.

    method="knn": highest kNN leave-one-out accuracy on the target (``knn={expert: knn_loo}``); ties by name.
    method="label_matching": a generic model trained on all upstream labels predicts upstream labels on the
        target images (``target_probs``, shape (n, Z)); with ``q`` the mean prediction and ``p_e`` expert e's
        upstream-label prior (``priors={expert: (Z,) array}``; counts are normalised, ``smoothing`` is added to
        every entry first), the expert with the smallest ``KL(q || p_e) = sum_z q_z log(q_z / p_{e,z})`` is
        chosen (terms with ``q_z = 0`` are 0; ``p_{e,z} = 0 < q_z`` gives +inf). Values: the KL divergences.
        ``priors=None`` (or ``"zoo"``): the zoo experts' shipped upstream label counts
        (:func:`transferlab.zoo.label_priors`; ``target_probs`` over the 20 upstream labels, e.g.
        :func:`transferlab.zoo.upstream_label_probs`), with ``smoothing=1`` (one pseudo-count per label, so an
        expert of a subtree is far, not infinitely far, from a target with mass outside it) unless given;
        ``experts`` limits them to those names. With your own priors, ``smoothing`` defaults to 0.
    method="random": a uniformly random expert of ``experts`` (or of the keys of ``knn``/``priors``), seeded.
    Rules: ``"expert:<method>"``.
    """
    if method not in EXPERT_METHODS:
        raise ValueError(f"method must be one of {EXPERT_METHODS}, got {method!r}")
    rule = f"expert:{method}"
    if method == "knn":
        if knn is None:
            raise ValueError("method='knn' needs knn={expert: knn_loo accuracy on the target}")
        sel = task_aware(knn, name="knn", nan_policy=nan_policy)
        return Selection(sel.models, (rule,) * len(sel), rule, sel.values, sel.omitted, sel.groups)
    if method == "label_matching":
        if target_probs is None:
            raise ValueError("method='label_matching' needs target_probs (n, Z) (and priors {expert: (Z,)}, "
                             "or none for the zoo's experts)")
        if priors is None or (isinstance(priors, str) and priors == "zoo"):
            priors, smoothing = _zoo_priors(experts), (1.0 if smoothing is None else smoothing)
        if not isinstance(priors, Mapping):
            raise TypeError(f"priors must be a mapping {{expert: (Z,) prior}}, got {type(priors).__name__}")
        _names(list(priors), "priors")
        kl = _label_matching_kl(target_probs, priors, from_logits, 0.0 if smoothing is None else smoothing)
        order = sorted(kl, key=lambda m: (kl[m], m))
        return Selection(tuple(order), (rule,) * len(order), rule, tuple(kl[m] for m in order))
    pool = experts if experts is not None else (knn if knn is not None else priors)
    if pool is None:
        raise ValueError("method='random' needs experts=[names] (or knn/priors to take the names from)")
    sel = random_selection(pool, seed=seed)
    return Selection(sel.models, (rule,) * len(sel), rule)
