"""One call from a list of models and a labelled dataset to a ranking: :func:`rank_models`.

    ranking = tl.rank_models({"small": net_a, "wide": net_b}, (X, y))
    ranking = tl.rank_models(["bert-base-uncased", "roberta-base"], hf_dataset, layers="best", cache_dir="banks/")
    print(ranking); ranking.best; ranking.to_frame(); ranking.plot()

It is the house's pipeline behind one door: each model's features come from :func:`transferlab.extract` (cached
in FeatureBanks, resumable, see :mod:`transferlab.front._features`), are scored by :func:`transferlab.score_pool`
(every score timed) and ranked by :func:`transferlab.select.task_aware` (:class:`~transferlab.front.Ranking`).

Layers (Hugging Face models; a model with one output has a single "layer", which every rule picks):
``hidden_states[0]`` is the embedding output and ``hidden_states[i]`` the output of layer ``i``;
``"last"`` scores the last layer; ``"mean"`` scores the mean of the pooled layers 1..L, the embedding output left
out (transformer-ranker's ``layer_aggregator="layermean"``); ``"best"`` scores each of the layers 1..L and keeps,
per score, the best value and its layer (``"bestlayer"``; equal values: the lower layer); a list of indices
(negative from the end) scores those states and keeps the best of them the same way.
"""
from __future__ import annotations

import logging
import math
import os
import sys
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from transferlab import select
from transferlab.core import linalg
from transferlab.front import _hf
from transferlab.front._data import Rows, as_rows
from transferlab.front._features import Features, features_of
from transferlab.front._models import build_encoder, model_names
from transferlab.front._result import Ranking
from transferlab.scores import registry
from transferlab.scoring import score_pool

__all__ = ["rank_models", "DEFAULT_SCORES"]

logger = logging.getLogger("transferlab")

#: kNN leave-one-out accuracy (no hyper-parameters, what a fine-tuned model's neighbourhoods look like) first,
#: LogME (a Bayesian evidence of a linear head) beside it; both need only features and are exact and quick.
DEFAULT_SCORES = ("knn_loo", "logme")
LAYER_RULES = ("last", "mean", "best")

Layers = Union[str, Sequence[int]]


def _check_arguments(scores, task, layers, pooling, device, batch_size, progress, cache_dir,
                     score_kwargs) -> Tuple[List[str], Dict[str, Dict[str, Any]], str]:
    """Everything that can be checked before data or models are read: (score names, per-score kwargs, the
    scoring device)."""
    if not isinstance(task, str) or not task:
        raise TypeError(f"task must be a string such as 'classification', got {task!r}")
    names = [scores] if isinstance(scores, str) else list(scores) if scores is not None else []
    if not names:
        raise ValueError("scores: give at least one score name (see tl.available())")
    if len(set(names)) != len(names):
        raise ValueError(f"scores: a score is named twice in {names}")
    kwargs: Dict[str, Dict[str, Any]] = {}
    for s in names:
        try:
            spec = registry.get(s)
        except ValueError as e:
            raise ValueError(f"scores: {e}") from None
        if task not in spec.tasks:
            raise ValueError(f"scores: {s!r} does not support task={task!r} (it supports {list(spec.tasks)})")
        # task= is passed on only when it is not the default, so scores without a task argument keep working.
        kwargs[s] = {} if task == "classification" else {"task": task}
    for s, kw in (score_kwargs or {}).items():
        if s not in kwargs:
            raise ValueError(f"score_kwargs names {s!r}, which is not in scores {names}")
        kwargs[s].update(kw)
    if isinstance(layers, str):
        if layers not in LAYER_RULES:
            raise ValueError(f"layers must be 'last', 'mean', 'best' or a list of hidden-state indices, got {layers!r}")
    elif not (isinstance(layers, (list, tuple)) and layers and all(
            isinstance(i, (int, np.integer)) and not isinstance(i, bool) for i in layers)):
        raise ValueError(f"layers must be 'last', 'mean', 'best' or a non-empty list of integer indices, "
                         f"got {layers!r}")
    if pooling not in _hf.POOLINGS:
        raise ValueError(f"pooling must be one of {_hf.POOLINGS}, got {pooling!r}")
    dev = str(device)
    if not (dev in ("auto", "cpu", "cuda") or (dev.startswith("cuda:") and dev[5:].isdigit())):
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:<index>', got {device!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if not isinstance(progress, bool):
        raise TypeError(f"progress must be True or False, got {progress!r}")
    if cache_dir is not None and os.path.exists(os.fspath(cache_dir)) and not os.path.isdir(os.fspath(cache_dir)):
        raise ValueError(f"cache_dir={os.fspath(cache_dir)!r} exists and is not a directory")
    return names, kwargs, ("cuda" if dev.startswith("cuda") else dev)


def _layer_indices(layers: Layers, n_states: int, name: str) -> Tuple[str, List[int]]:
    """(``"one"`` | ``"mean"`` | ``"best"``, the hidden-state indices scored) of one model."""
    body = list(range(1, n_states)) or [0]  # layers 1..L; a single output is its own "layer"
    if layers == "last":
        return "one", [n_states - 1]
    if layers == "mean":
        return "mean", body
    if layers == "best":
        return "best", body
    picked = []
    for i in layers:
        if not -n_states <= int(i) < n_states:
            raise ValueError(f"layers: index {int(i)} is out of range for model {name!r}, which has {n_states} "
                             f"hidden state(s) (0 = embedding output .. {n_states - 1} = last layer)")
        picked.append(int(i) % n_states)
    return "best", list(dict.fromkeys(picked))


def _mean(states: List[np.ndarray]) -> np.ndarray:
    """Mean of equal-shape arrays, summed in float64 row blocks (bounded memory), stored float32."""
    n, w = states[0].shape
    out = np.empty((n, w), dtype=np.float32)
    step = max(1, (32 << 20) // max(1, 8 * w))
    for s in range(0, n, step):
        acc = np.zeros((min(n, s + step) - s, w), dtype=np.float64)
        for x in states:
            acc += x[s:s + step]
        out[s:s + step] = acc / len(states)
    return out


def _softmax_loader(logits: np.ndarray):
    return lambda: linalg.softmax_rows(np.asarray(logits, dtype=np.float64)).astype(np.float32)


def _score_model(name: str, feats: Features, labels: np.ndarray, layers: Layers, names: List[str],
                 kwargs: Mapping[str, Mapping[str, Any]], device: str, progress: bool):
    """(values, seconds, layer per score, every layer's value, notes) of one model, through score_pool."""
    n_states = len(feats.states)
    mode, idx = _layer_indices(layers, n_states, name)
    single = n_states == 1
    if mode == "mean" and not single:
        units = {f"{name} [mean of layers {idx[0]}-{idx[-1]}]": (_mean([feats.states[i] for i in idx]), None)}
    else:
        units = {name if len(idx) == 1 else f"{name} [layer {i}]": (feats.states[i], i) for i in idx}
    probs = {}
    if feats.logits is not None and any(registry.get(s).inputs == "probs" for s in names):
        probs = {k: _softmax_loader(feats.logits) for k, (_, i) in units.items() if single}
    got, notes = {}, []
    bar = _bar(progress and len(units) > 1, len(units), f"{name}: scoring layers", "layer")
    try:
        for k, (x, _) in units.items():  # one layer at a time, so that the bar moves
            res = score_pool({k: x}, names, labels=labels, probs={k: probs[k]} if k in probs else None,
                             device=device, score_kwargs={s: dict(kw) for s, kw in kwargs.items() if kw},
                             progress=False)  # this function's own bar counts the layers
            got.update({(r["model"], r["score"]): (r["value"], r["seconds"]) for r in res.rows})
            notes += res.notes
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    values, seconds, chosen, per_layer = {}, {}, {}, {}
    for s in names:
        scored = [(k, i) + got[(k, s)] for k, (_, i) in units.items() if (k, s) in got]
        seconds[s] = float(sum(sec for _, _, _, sec in scored))
        finite = [(v, -(i or 0), i) for _, i, v, _ in scored if not math.isnan(v)]
        if mode == "best" and not single:
            per_layer[s] = {i: v for _, i, v, _ in scored}
        if not finite:
            values[s], chosen[s] = math.nan, None
            continue
        v, _, i = max(finite)  # ties: the lower layer (larger -i)
        values[s] = float(v)
        chosen[s] = None if single else (tuple(idx) if mode == "mean" else i)
    return values, seconds, chosen, per_layer, notes


def _order(values: Dict[str, Dict[str, float]], primary: str) -> Tuple[Tuple[str, ...], select.Selection]:
    """(every model in rank order, the task_aware Selection of the primary score): the models the primary score
    could not score (NaN) follow the Selection, by name, and are its ``omitted``."""
    vals = {m: v[primary] for m, v in values.items()}
    finite = {m: v for m, v in vals.items() if not math.isnan(v)}
    missing = tuple(sorted(m for m in vals if m not in finite))
    if not finite:
        raise ValueError(f"scores: the primary score {primary!r} gave no value for any model; put a score that "
                         "applies to these models first")
    if len(finite) >= 2:
        sel = select.task_aware(finite, name=primary)
    else:  # task_aware ranks two or more; one scored model is its own ranking
        (m, v), = finite.items()
        sel = select.Selection((m,), (f"task-aware:{primary}",), f"task-aware:{primary}", (v,))
    sel = select.Selection(sel.models, sel.rules, sel.strategy, sel.values, missing)
    return sel.models + missing, sel


def _bar(progress: bool, total: int, desc: str = "rank_models", unit: str = "model"):
    if not progress:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm is optional; extract draws its own fallback bar
        return None
    # disable=None: shown on a terminal only (logs and CI stay clean), as extract's bars are.
    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, disable=None, leave=False)


def rank_models(models: Any, data: Any, *, scores: Union[str, Sequence[str]] = DEFAULT_SCORES,
                task: str = "classification", layers: Layers = "last", pooling: str = "mean",
                device: str = "auto", cache_dir: Optional[Union[str, "os.PathLike[str]"]] = None,
                batch_size: int = 32, progress: bool = True, text_column: Optional[str] = None,
                image_column: Optional[str] = None, label_column: Optional[str] = None, adapter: Any = "auto",
                max_length: Optional[int] = None,
                score_kwargs: Optional[Mapping[str, Mapping[str, Any]]] = None) -> Ranking:
    """Rank ``models`` by how well their frozen features transfer to the labelled ``data``.

    models: ``{name: model}`` or a list of models (at least 2): ``torch.nn.Module``, a callable returning
        features, a Hugging Face model id or local directory (never downloaded), a ``PreTrainedModel`` or a
        ``(model, tokenizer)`` pair, ``"timm:<name>"`` / ``"torchvision:<name>"`` (see
        :mod:`transferlab.front._models`).
    data: ``(X, y)`` (arrays/tensors, a list of str, a list of PIL images), a torch Dataset/DataLoader yielding
        ``(x, y)`` or a Hugging Face ``datasets.Dataset`` (columns found by name, or ``text_column=``,
        ``image_column=``, ``label_column=``); see :mod:`transferlab.front._data`.
    scores: registered score names; the first orders the ranking (default ``("knn_loo", "logme")``).
    task: ``"classification"``; another task is passed to the scores as ``task=`` (those that support it).
    layers: ``"last"``, ``"mean"``, ``"best"`` or a list of hidden-state indices (module docstring).
    pooling: how a Hugging Face model's token states become one vector: ``"mean"`` over the non-padding
        tokens (default), ``"first"`` token (``[CLS]``), ``"last"`` non-padding token (causal LMs).
    device: where models run (``"auto"``: CUDA when available) and scores compute.
    cache_dir: keep each model's features in a FeatureBank there; a later call with the same models and data
        re-scores without a forward pass, and an interrupted one resumes. None: in memory.
    batch_size: rows per forward pass. progress: bars on stderr (on a terminal) for extraction and scoring.
    adapter: extract's adapter for ``nn.Module`` models (``"auto"``, ``"hook:<module>"``, a callable...).
    max_length: tokens kept per text (default: the tokenizer's limit). score_kwargs: ``{score: {arg: value}}``.

    Returns a :class:`~transferlab.front.Ranking`: ``ranking.best``, ``.models`` (best first), ``.values``,
    ``.seconds``, ``.extraction_seconds``, ``.layers``, ``.table()``, ``.to_frame()``, ``.to_markdown()``,
    ``.plot()``; ``print(ranking)`` prints the table.
    """
    names, kwargs, score_device = _check_arguments(scores, task, layers, pooling, device, batch_size, progress,
                                                   cache_dir, score_kwargs)
    pool = model_names(models)
    rows = as_rows(data, task=task, text_column=text_column, image_column=image_column, label_column=label_column)
    values: Dict[str, Dict[str, float]] = {}
    seconds: Dict[str, Dict[str, float]] = {}
    chosen: Dict[str, Dict[str, Any]] = {}
    per_layer: Dict[str, Dict[str, Dict[int, float]]] = {}
    extraction: Dict[str, float] = {}
    cached: Dict[str, bool] = {}
    notes: List[str] = []
    labels = rows.labels
    bar = _bar(progress, len(pool))
    try:
        for name, spec in pool:
            with _hf.quiet_loading(not progress and _hf_spec(spec)):
                enc = build_encoder(name, spec, rows, batch_size=batch_size, pooling=pooling, adapter=adapter,
                                    max_length=max_length)
            _layer_indices(layers, enc.n_states, name)  # a bad index raises before this model runs
            if cache_dir is not None and not enc.cacheable:
                notes.append(f"{name}: a plain function has no weights to fingerprint; its features are not cached")
            feats = features_of(enc, rows, cache_dir=cache_dir, batch_size=batch_size, device=str(device),
                                progress=progress)
            labels = _labels_for(rows, labels, feats, name)
            del enc  # a Hugging Face model loaded for this name is released before the next one loads
            extraction[name], cached[name] = feats.seconds, feats.cached
            values[name], seconds[name], chosen[name], per_layer[name], more = _score_model(
                name, feats, labels, layers, names, kwargs, score_device, progress)
            notes += [n for n in more if n not in notes]
            logger.info("rank_models: %s: features %.2fs%s, %s", name, feats.seconds,
                        " (cached)" if feats.cached else "",
                        ", ".join(f"{s}={values[name][s]:.4g}" for s in names))
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    order, sel = _order(values, names[0])
    rule = layers if isinstance(layers, str) else f"{[int(i) for i in layers]}"
    return Ranking(order, tuple(names), values, seconds, chosen, per_layer, extraction, cached, rule, task,
                   sel, tuple(notes))


def _hf_spec(spec: Any) -> bool:
    return isinstance(spec, (str, tuple)) or _hf.is_hf_model(spec)


def _labels_for(rows: Rows, labels: Optional[np.ndarray], feats: Features, name: str) -> np.ndarray:
    """The labels scores read: the data's own, or (torch datasets) those the first bank stored, which every
    later bank must repeat."""
    if rows.labels is not None:
        return rows.labels
    if labels is not None and not np.array_equal(labels, feats.labels):
        raise ValueError(f"data: model {name!r} read other labels than the models before it; the dataset must "
                         "yield the same (x, y) rows on every pass")
    return feats.labels if labels is None else labels
