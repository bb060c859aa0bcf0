"""Batched pools: sfda, logme and hscore of many models of one dataset from shared Gram passes.

``score_many`` routes here (CPU, default options, N > D) instead of calling each score on each model.
Per model the one-shot calls would read the bank for: sfda (class sums, centred Gram, projection, the
ConfMix sums and Gram, projection), logme (class sums, uncentred Gram) and hscore (column sum,
centred Gram, centred class sums), plus one NaN scan per call. Here, per model:

* one input check (``prepare``: NaN scan, labels, rescaling), not one per score;
* one class-sum pass ``S0[c] = sum_{y_i=c} x_i`` and, for a block of models at once, their centred
  Grams ``G = sum_i (x_i - h)(x_i - h)^T`` (h the column mean) through the batched kernel
  (``kernels.lda.gram_batched``: the rows of one model feed its Gram, every model in one call);
* sfda continues from those statistics (steps 2-7, bitwise the one-shot value: the same calls in the
  same order, ``sfda_from_first_stats``);
* logme takes ``X^T X = G + h s^T + s h^T - n h h^T`` (s = sum_c S0[c]) and ``S0``; hscore takes
  ``G`` and the class sums about h. Both therefore equal the one-shot
  values to rounding (a relative 1e-9 is tested), not bitwise: their one-shot calls form X^T X / the
  mean from other float64 chains.

So a pool scored with sfda + logme + hscore makes 2 Gram passes per model instead of 4. A score
alone shares nothing: the Gram of one model is a D x D GEMM already at the SGEMM roof on the CPU, and
models with different features share no arithmetic; splitting sfda's first pass in two even cost 10% at
D=768 (bench/bench_pool.py), so ``score_many`` routes here only when two or more batchable scores run.
Where a call is not batchable (other options, max_memory, nan_policy, a CUDA bank, N <= D with its
warnings, a score re-registered under the same name) ``score_many`` calls the score itself.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

import numpy as np

from transferlab.core.arrays import Matrix
from transferlab.core.inputs import prepare
from transferlab.kernels import lda
from transferlab.scores.hscore.one_shot import hscore, hscore_from_stats
from transferlab.scores.logme.one_shot import COMPATS, logme, logme_from_stats
from transferlab.scores.registry import ScoreSpec
from transferlab.scores.sfda import one_shot as _sfda_mod

# Centred Grams (D x D float64) held at once: models are batched in groups under this many bytes.
GRAM_GROUP_BYTES = 512 << 20

# The keywords each batchable score may carry (anything else: the per-model call). "device" must be
# "auto" or "cpu" for the batched route.
_OPTIONS = {"sfda": {"a", "log", "solver", "device"}, "logme": {"compat", "device"}, "hscore": {"device"}}
_FUNCS: Dict[str, Callable[..., Any]] = {"sfda": _sfda_mod.sfda, "logme": logme, "hscore": hscore}

__all__ = ["batchable", "score_batched", "GRAM_GROUP_BYTES"]


def batchable(spec: ScoreSpec, kwargs: Mapping[str, Any]) -> bool:
    """Whether ``score_many`` may route ``spec`` with these keywords through :func:`score_batched`: a
    built-in sfda / logme / hscore (not a re-registered function of that name), only the options above,
    on the host."""
    if _FUNCS.get(spec.name) is not spec.fn:
        return False
    if not set(kwargs) <= _OPTIONS[spec.name] or kwargs.get("device", "auto") not in ("auto", "cpu"):
        return False
    if spec.name == "sfda":
        try:
            _sfda_mod.check_options(kwargs.get("a", 5.0), kwargs.get("log", False), kwargs.get("solver", "cholesky"))
        except (TypeError, ValueError):
            return False  # the one-shot call raises it, with score_many's note
    if spec.name == "logme" and kwargs.get("compat", "exact") not in COMPATS:
        return False  # the one-shot call raises its own error
    return True


def score_batched(items: Sequence[Any], codes: np.ndarray, calls: Mapping[str, Mapping[str, Any]],
                  on_error: Callable[[Exception, int, str], None]) -> Dict[str, List[Optional[float]]]:
    """``{score: [value per model]}`` for the batchable ``calls`` (``{name: kwargs}``) on every model.

    ``codes``: the shared integer labels (already validated). A model the batched route cannot take
    (not on the host, N <= D) gets ``None``: the caller scores it with the one-shot calls. An error
    is passed to ``on_error(error, model index, score name)`` (which raises).
    """
    names = list(calls)
    out: Dict[str, List[Optional[float]]] = {s: [None] * len(items) for s in names}
    group: List[tuple] = []
    held = 0
    for j, x in enumerate(items):
        try:
            m, lab, dev, _ = prepare(x, codes, device="cpu", what="/".join(names),
                                     cost=lambda m, lab: _sfda_mod._memory_cost(m, lab.n_classes),
                                     fixed_state_must_fit=True)
        except Exception as e:
            on_error(e, j, names[0])
        if dev != "cpu" or m.n <= m.d or getattr(x, "is_cuda", False):
            continue  # the one-shot calls keep their device handling and N <= D warnings
        group.append((j, m, lab))
        held += 8 * m.d * m.d
        if held >= GRAM_GROUP_BYTES:
            _score_group(group, calls, out, on_error)
            group, held = [], 0
    if group:
        _score_group(group, calls, out, on_error)
    return out


def _score_group(group: List[tuple], calls: Mapping[str, Mapping[str, Any]],
                 out: Dict[str, List[Optional[float]]], on_error: Callable[[Exception, int, str], None]) -> None:
    """Class sums per model, the group's centred Grams in one batched kernel call, then each score."""
    first = next(iter(calls))
    sums = []
    for j, m, lab in group:
        try:
            sums.append(lda.class_sums(m, lab.codes, lab.n_classes, "cpu"))
        except Exception as e:
            on_error(e, j, first)
    shifts = [s0.sum(0) / m.n for (_, m, _), (_, s0) in zip(group, sums)]
    try:
        grams = lda.gram_batched([m for _, m, _ in group], "cpu", shifts=shifts)
    except Exception as e:
        on_error(e, group[0][0], first)
    for (j, m, lab), (counts, s0), h, G in zip(group, sums, shifts, grams):
        for name, kw in calls.items():
            try:
                out[name][j] = _one(name, kw, m, lab.codes, counts, s0, h, G)
            except Exception as e:
                on_error(e, j, name)


def _one(name: str, kw: Mapping[str, Any], m: Matrix, codes: np.ndarray, counts: np.ndarray, s0: np.ndarray,
         h: np.ndarray, G: np.ndarray) -> float:
    n = m.n
    nf = counts.astype(np.float64)
    if name == "sfda":
        # exactly scatter_stats(m, y, C, "cpu"): Q = S0 - n_c h, then scatter_from_sums
        st1 = lda.scatter_from_sums(counts, s0 - nf[:, None] * h[None, :], G, h)
        return _sfda_mod.sfda_from_first_stats(m, codes, st1, float(kw.get("a", 5.0)), bool(kw.get("log", False)),
                                               "cpu", kw.get("solver", "cholesky"))
    if name == "logme":
        s = s0.sum(0)
        xtx = G + np.outer(h, s) + np.outer(s, h) - n * np.outer(h, h)
        return logme_from_stats(0.5 * (xtx + xtx.T), s0, counts, n, kw.get("compat", "exact"), "cpu")
    # hscore: the Gram and the class sums about the column mean h (its one-shot call sums the columns in
    # another chain, hence equal to rounding)
    return hscore_from_stats(G, s0 - nf[:, None] * h[None, :], counts, device="cpu")
