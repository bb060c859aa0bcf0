"""Many models of one dataset: ``score_many`` (every score for every model in one call) and
``select_ensemble`` (SFDA's third use: greedy ensemble selection, Shao et al. 2022).

    tl.score_many([X_resnet, X_vit, X_effnet], y, scores=["sfda", "logme", "knn_loo"])
        -> {"sfda": [..3 values..], "logme": [...], "knn_loo": [...]}
    tl.select_ensemble([X_resnet, X_vit, X_effnet], y, size=2) -> EnsembleSelection(models=(1, 0), ...)

The label work (validation and remapping with ``np.unique``) is done once and its integer codes are
what every per-model call receives, so a bad label vector fails once, before any kernel runs; the
per-model kernels then run back to back on the device that holds each bank.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from .._arrays import as_labels, as_matrix
from ._registry import get

__all__ = ["EnsembleSelection", "score_many", "select_ensemble"]


def _feature_list(features_list, what: str = "features_list") -> list:
    if isinstance(features_list, (str, bytes)) or not hasattr(features_list, "__len__"):
        raise TypeError(f"{what} must be a sequence of (N, D) feature arrays, one per model")
    items = list(features_list)
    if not items:
        raise ValueError(f"{what} is empty: pass one (N, D) feature array per model")
    return items


def score_many(features_list: Sequence[Any], labels, scores: Sequence[str] = ("sfda", "logme", "knn_loo"), *,
               device: str = "auto", score_kwargs: Optional[Mapping[str, Mapping[str, Any]]] = None
               ) -> Dict[str, List[float]]:
    """Score many models of one dataset with several scores in one call.

    features_list: one (N, D_m) array per model (numpy, memmap, torch CPU/CUDA; D may differ), all on the same
        N rows in the same order. For scores registered with ``inputs="probs"`` (LEEP, NCE) pass source
        probabilities instead; mixing both kinds in one call is allowed only if each list entry suits every score.
    labels: the N target labels, shared by every model (validated and remapped once).
    scores: registered score names. score_kwargs: ``{score name: {keyword: value}}`` passed to that score.
    Returns ``{score: [value of model 0, value of model 1, ...]}``, each value equal to the one-shot call.
    """
    items = _feature_list(features_list)
    if isinstance(scores, str):
        scores = [scores]
    infos = [get(s) for s in scores]  # unknown names fail before any work
    score_kwargs = dict(score_kwargs or {})
    unknown = set(score_kwargs) - {i.name for i in infos}
    if unknown:
        raise ValueError(f"score_kwargs names scores that are not requested: {sorted(unknown)}")
    n = as_matrix(items[0], "features_list[0]").n
    for j, x in enumerate(items[1:], 1):
        nj = as_matrix(x, f"features_list[{j}]").n
        if nj != n:
            raise ValueError(f"every model must embed the same N samples: features_list[0] has {n} rows, "
                             f"features_list[{j}] has {nj}")
    codes = as_labels(labels, n, "labels", min_classes=1).codes
    out: Dict[str, List[float]] = {}
    for info in infos:
        kw = dict(score_kwargs.get(info.name, {}))
        kw.setdefault("device", device)
        out[info.name] = [float(info.func(x, codes, **kw)) for x in items]
    return out


@dataclass(frozen=True)
class EnsembleSelection:
    """Greedy ensemble: ``models`` (indices into features_list, in the order chosen) and ``scores`` (the score of
    the ensemble after each addition: scores[i] is the score of the concatenated features of models[: i + 1])."""

    models: Tuple[int, ...]
    scores: Tuple[float, ...]
    score: str


def select_ensemble(features_list: Sequence[Any], labels, size: int, *, score: str = "sfda",
                    device: str = "auto", **score_kw) -> EnsembleSelection:
    """Greedily choose ``size`` models whose concatenated features score best (SFDA's ensemble selection).

    Step 1 takes the best single model; each later step adds the model whose features, concatenated (columns)
    with those already chosen, give the highest score. Ties go to the lower index. Features are upcast to
    float32 for the concatenation (float64 kept as float64), on the host.
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
    dtype = np.float64 if any(m.dtype == "float64" for m in mats) else np.float32
    host = [m.to_float64_host().astype(dtype, copy=False) for m in mats]

    chosen: List[int] = []
    trail: List[float] = []
    current = np.empty((n, 0), dtype=dtype)
    for _ in range(size):
        best_j, best_v = -1, -np.inf
        for j in range(len(items)):
            if j in chosen:
                continue
            v = float(func(np.concatenate([current, host[j]], axis=1), codes, device=device, **score_kw))
            if v > best_v:  # strict: ties keep the lower index
                best_j, best_v = j, v
        chosen.append(best_j)
        trail.append(best_v)
        current = np.concatenate([current, host[best_j]], axis=1)
    return EnsembleSelection(tuple(chosen), tuple(trail), score)
