"""Many models of one dataset: ``score_many`` (every score for every model in one call) and
``select_ensemble`` (SFDA's third use: greedy ensemble selection, Shao et al. 2022).

    tl.score_many([X_resnet, X_vit, X_effnet], y, scores=["sfda", "logme", "knn_loo"])
        -> {"sfda": [..3 values..], "logme": [...], "knn_loo": [...]}
    tl.select_ensemble([X_resnet, X_vit, X_effnet], y, size=2) -> EnsembleSelection(models=(1, 0), ...)

``score_many`` is the in-memory call of one dataset returning plain lists; ``transferlab.score_pool`` scores a
pool (FeatureBanks, or the same arrays with ``labels=``) into a timed table, here or on a Dask cluster.

The label work (validation and remapping with ``np.unique``) is done once and its integer codes are
what every per-model call receives, so a bad label vector fails once, before any kernel runs.

On the CPU the per-model kernels run back to back (each already uses every core). On CUDA each model
gets a CUDA stream of its own, driven by a worker thread (the kernels and the eigensolves release the
GIL): one model's host work (validation, the small D x D algebra, a host bank's copy to the device)
overlaps the others' kernels, and kernels too small to fill the GPU run side by side. Every score of
one model runs on that model's stream, after the bank is placed on the device once.
"""
from __future__ import annotations

import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, ContextManager, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from transferlab.core.types import ArrayLike
from transferlab.core import devices
from transferlab import kernels
from transferlab.core.arrays import as_labels, as_matrix, as_targets, check_task
from transferlab.core.inputs import check_bool
from transferlab.scores import _batched
from transferlab.scores.registry import available, get

# CUDA streams (worker threads) score_many uses at most: enough to hide one model's host work behind
# the others' kernels; more only multiplies the GPU memory held at once (each stream holds a bank).
DEFAULT_CUDA_STREAMS = 4

__all__ = ["EnsembleSelection", "score_many", "select_ensemble"]


def _feature_list(features_list, what: str = "features_list") -> list:
    if isinstance(features_list, (str, bytes)) or not hasattr(features_list, "__len__"):
        raise TypeError(f"{what} must be a sequence of (N, D) feature arrays, one per model")
    items = list(features_list)
    if not items:
        raise ValueError(f"{what} is empty: pass one (N, D) feature array per model")
    return items


def _score_many_task(items, labels, infos, score_kwargs, device: str, task: str) -> Dict[str, List[float]]:
    """score_many with regression targets / multilabel indicators: every supporting score, model by model."""
    skipped = [i.name for i in infos if task not in i.tasks]
    if skipped:
        warnings.warn(f"score_many: skipped {', '.join(skipped)} (they do not support task={task!r}; scores that do: "
                      f"{', '.join(available(task=task))})", UserWarning, stacklevel=3)
    n = as_matrix(items[0], "features_list[0]").n
    targets = as_targets(labels, task, n, "labels").values  # validated once
    out: Dict[str, List[float]] = {}
    for info in infos:
        if task not in info.tasks:
            continue
        kw = {"device": device, **score_kwargs.get(info.name, {}), "task": task}
        values = []
        for j, x in enumerate(items):
            try:
                values.append(float(info.func(x, targets, **kw)))
            except Exception as e:
                _note(e, j, info.name)
                raise
        out[info.name] = values
    return out


def score_many(features_list: Sequence[Any], labels: ArrayLike, scores: Sequence[str] = ("sfda", "logme", "knn_loo"), *,
               device: str = "auto", score_kwargs: Optional[Mapping[str, Mapping[str, Any]]] = None,
               cuda_streams: int = DEFAULT_CUDA_STREAMS, batched: bool = True,
               task: str = "classification") -> Dict[str, List[float]]:
    """Score many models of one dataset with several scores in one call.

    features_list: one (N, D_m) array per model (numpy, memmap, torch CPU/CUDA; D may differ), all on the same
        N rows in the same order. For scores registered with ``inputs="probs"`` (LEEP, NCE) pass source
        probabilities instead; mixing both kinds in one call is allowed only if each list entry suits every score.
    labels: the N target labels, shared by every model (validated and remapped once).
    scores: registered score names. score_kwargs: ``{score name: {keyword: value}}`` passed to that score.
    device: "auto" (each bank where it lives), "cpu", "cuda" (host banks are copied to the GPU once per model,
        on that model's stream) or "reference".
    cuda_streams: how many models are in flight at once on CUDA (one stream each); 1 runs them back to back.
    batched: on the host, when two or more of sfda / logme / hscore run with their default input options,
        they share one input check, one class-sum pass and one centred Gram per model, the Grams of a block
        of models in one batched kernel call (``transferlab/scores/_batched.py``): sfda is then bitwise its
        one-shot value, logme and hscore equal theirs to rounding (relative 1e-9 tested). False: every score
        is its own call.
    task: "classification" (default), "regression" or "multilabel" (labels: float targets / 0/1 indicators),
        passed to every score as ``task=``; a score that does not support it is skipped with a ``UserWarning``
        (the note) and is absent from the result.
    Returns ``{score: [value of model 0, value of model 1, ...]}``, each value equal to the one-shot call
    (on CUDA to the GPU's rounding: the same kernels on another stream). An error in one model's call is
    raised unchanged with a note naming the model and the score.
    """
    items = _feature_list(features_list)
    if isinstance(scores, str):
        scores = [scores]
    infos = [get(s) for s in scores]  # unknown names fail before any work
    score_kwargs = dict(score_kwargs or {})
    unknown = set(score_kwargs) - {i.name for i in infos}
    if unknown:
        raise ValueError(f"score_kwargs names scores that are not requested: {sorted(unknown)}")
    if check_task(task) != "classification":
        return _score_many_task(items, labels, infos, score_kwargs, device, task)
    n = as_matrix(items[0], "features_list[0]").n
    for j, x in enumerate(items[1:], 1):
        nj = as_matrix(x, f"features_list[{j}]").n
        if nj != n:
            raise ValueError(f"every model must embed the same N samples: features_list[0] has {n} rows, "
                             f"features_list[{j}] has {nj}")
    codes = as_labels(labels, n, "labels", min_classes=1).codes
    if isinstance(cuda_streams, bool) or not isinstance(cuda_streams, (int, np.integer)) or cuda_streams < 1:
        raise ValueError(f"cuda_streams must be an int >= 1, got {cuda_streams!r}")
    calls = [(info, {"device": device, **score_kwargs.get(info.name, {})}) for info in infos]
    check_bool(batched, "batched")
    done = _batched_values(items, codes, calls, batched and not _runs_on_cuda(items, device))

    def score_model(j: int, x) -> List[float]:
        if device == "cuda" and not getattr(x, "is_cuda", False):
            x = devices.to_cuda_array(x, f"features_list[{j}]")  # once for all the scores
        values = []
        for info, kw in calls:
            if done.get(info.name, [None] * (j + 1))[j] is not None:
                values.append(done[info.name][j])
                continue
            try:
                values.append(float(info.func(x, codes, **kw)))
            except Exception as e:
                _note(e, j, info.name)
                raise
        return values

    if _runs_on_cuda(items, device) and cuda_streams > 1 and len(items) > 1:
        per_model = _on_cuda_streams(items, score_model, min(int(cuda_streams), len(items)), _torch_stream_factory())
    else:
        per_model = [score_model(j, x) for j, x in enumerate(items)]
    return {info.name: [values[k] for values in per_model] for k, (info, _) in enumerate(calls)}


def _note(e: Exception, j: int, name: str) -> None:
    e.add_note(f"score_many: while scoring features_list[{j}] with {name!r}")


def _batched_values(items: Sequence[Any], codes: np.ndarray, calls, on: bool) -> Dict[str, List[Optional[float]]]:
    """The values of the batchable calls (sfda / logme / hscore, ``scores/_batched.py``); None where a model or
    a score goes through its own call."""
    take = {info.name: kw for info, kw in calls if on and _batched.batchable(info, kw)}
    if len(take) < 2:
        # One batchable score shares no pass: the route only splits its fused first pass in two (measured
        # 0.90x at N=20k, D=768 for sfda alone; bench/bench_pool.py), so it takes its own call.
        return {}

    def on_error(e: Exception, j: int, name: str) -> None:
        _note(e, j, name)
        raise e

    return _batched.score_batched(items, codes, take, on_error)


def _runs_on_cuda(items: Sequence[Any], device: str) -> bool:
    if device == "cuda":
        return True
    return device == "auto" and any(getattr(x, "is_cuda", False) for x in items)


def _torch_stream_factory() -> Callable[[], Callable[[], ContextManager]]:
    """A factory of per-worker stream contexts: each call makes a new CUDA stream that first waits for the
    work already queued on the caller's stream (the banks may still be being written there)."""
    import torch

    kernels.require_cuda()
    caller = torch.cuda.current_stream()

    def new_stream_context() -> Callable[[], ContextManager]:
        stream = torch.cuda.Stream()
        stream.wait_stream(caller)
        return lambda: torch.cuda.stream(stream)

    return new_stream_context


def _on_cuda_streams(items: Sequence[Any], score_model: Callable[[int, Any], List[float]], workers: int,
                     new_stream_context: Callable[[], Callable[[], ContextManager]]) -> List[List[float]]:
    """``[score_model(j, items[j]) for j]`` with ``workers`` threads, each holding one stream (entered around
    every model it scores). Results in model order; the first failing model's error (by index) is raised once
    every started model has finished."""
    import threading

    local = threading.local()

    def run(j: int) -> List[float]:
        if not hasattr(local, "enter"):
            local.enter = new_stream_context()
        with local.enter():
            return score_model(j, items[j])

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="transferlab-stream") as pool:
        futures = [pool.submit(run, j) for j in range(len(items))]
        return [f.result() for f in futures]


@dataclass(frozen=True)
class EnsembleSelection:
    """Greedy ensemble: ``models`` (indices into features_list, in the order chosen) and ``scores`` (the score of
    the ensemble after each addition: scores[i] is the score of the concatenated features of models[: i + 1])."""

    models: Tuple[int, ...]
    scores: Tuple[float, ...]
    score: str


def select_ensemble(features_list: Sequence[Any], labels: ArrayLike, size: int, *, score: str = "sfda",
                    device: str = "auto", **score_kw: Any) -> EnsembleSelection:
    """Greedily choose ``size`` models whose concatenated features score best (SFDA's ensemble selection).

    Step 1 takes the best single model; each later step adds the model whose features, concatenated (columns)
    with those already chosen, give the highest score. Ties go to the lower index. Features are upcast to
    float32 for the concatenation (float64 kept as float64): on the GPU when any bank is a CUDA tensor (with
    device="auto") or device="cuda" (each host bank then crosses once), else on the host.
    """
    items = _feature_list(features_list)
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)):
        raise TypeError(f"size must be an int, got {type(size).__name__}")
    if not 1 <= size <= len(items):
        raise ValueError(f"size must be in [1, {len(items)}] (the number of models), got {size}")
    func = get(score).func
    mats = [as_matrix(x, f"features_list[{j}]") for j, x in enumerate(items)]
    n = mats[0].n
    for j, m in enumerate(mats[1:], 1):
        if m.n != n:
            raise ValueError(f"every model must embed the same N samples: features_list[0] has {n} rows, "
                             f"features_list[{j}] has {m.n}")
    codes = as_labels(labels, n, "labels", min_classes=2).codes
    wide = any(m.dtype == "float64" for m in mats)
    if _runs_on_cuda(items, device):
        import torch

        banks = [devices.to_cuda(m).data.to(torch.float64 if wide else torch.float32) for m in mats]
        current = banks[0].new_empty((n, 0))

        def cat(a, b):
            return torch.cat([a, b], dim=1)
    else:
        banks = [m.to_float64_host().astype(np.float64 if wide else np.float32, copy=False) for m in mats]
        current = np.empty((n, 0), dtype=banks[0].dtype)

        def cat(a, b):
            return np.concatenate([a, b], axis=1)

    chosen: List[int] = []
    trail: List[float] = []
    for _ in range(size):
        best_j, best_v = -1, -np.inf
        for j in range(len(items)):
            if j in chosen:
                continue
            v = float(func(cat(current, banks[j]), codes, device=device, **score_kw))
            if v > best_v:  # strict: ties keep the lower index
                best_j, best_v = j, v
        chosen.append(best_j)
        trail.append(best_v)
        current = cat(current, banks[best_j])
    return EnsembleSelection(tuple(chosen), tuple(trail), score)
