"""The probability-matrix passes shared by LEEP and the scores built on it (NCE, NLEEP).

Three steps, each on the device the matrix lives on (csrc/leep/leep.h is the kernel contract):

* :func:`validate_probs` - one pass over P: NaN/inf rows (``nan_policy``), and for probabilities
  negative entries and row sums outside ``1 +- sum_tolerance(m)``, with errors that name the
  rows; with ``from_logits`` it returns the per-row float64 log-sum-exp the later passes use
  (the softmax is never materialised);
* :func:`joint_counts` - ``S[c, z] = sum_{i : y_i = c} P[i, z]`` (float64, *not* divided by N),
  optionally chunk by chunk over rows (bitwise equal to one shot on the CPU);
* :func:`conditional` and :func:`eep` - ``P(y | z)`` with zero-mass source classes skipped, and
  ``EEP_i = sum_z P[i, z] P(y_i | z)``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Optional

import numpy as np

from transferlab.core import blocks
from transferlab.core import cpu_threads, devices
from transferlab import kernels
from transferlab.core.arrays import Labels, Matrix, check_labels_omit
from transferlab.core.inputs import check_finite

# Rows of probabilities must sum to 1 within this (SCORES.md, LEEP) ...
SUM_TOLERANCE = 1e-3
# ... plus the unit roundoff of the storage format: rounding each entry of a row that sums to 1 moves
# the sum by at most that much (bfloat16 probabilities of a correct softmax miss 1e-3 by themselves).
_ROUNDOFF = {"float16": 2.0**-11, "bfloat16": 2.0**-8, "float32": 2.0**-24, "float64": 2.0**-53}


def sum_tolerance(m: Matrix) -> float:
    """The row-sum tolerance for a matrix of ``m.dtype``."""
    return SUM_TOLERANCE + _ROUNDOFF[m.dtype]


_HOST_BLOCK_BYTES = 32 << 20  # rows per block of the reference path's numpy checks


@dataclass(frozen=True)
class ProbInput:
    """A validated probability (or logit) matrix, its labels and what the later passes need."""

    m: Matrix
    labels: Labels
    from_logits: bool
    row_lse: Any  # float64 (N,) log-sum-exp per row with from_logits (numpy or torch), else None
    keep: Optional[np.ndarray]  # rows kept by nan_policy="omit" (None: all)


# ---------------------------------------------------------------------------- validation


def _row_stats(m: Matrix, from_logits: bool, device: str):
    """(stats dict, row_lse) from the kernel of ``device`` ("reference": numpy, no row_lse)."""
    if device == "reference":
        return _host_row_stats(m, from_logits), None
    if device == "cuda":
        return _cuda_row_stats(m, from_logits)
    parts = [(s, kernels.cpu_module().leep_row_stats(blk.data, from_logits, sum_tolerance(m), m.is_bf16,
                                                       cpu_threads.num_threads()))
             for s, _, blk in blocks.kernel_blocks(m)]
    if len(parts) == 1:
        return parts[0][1]
    return _combine_row_stats(parts), (np.concatenate([lse for _, (_, lse) in parts]) if from_logits else None)


def _combine_row_stats(parts) -> Dict[str, Any]:
    """One stats dict from the per-block dicts of ``leep_row_stats`` (``parts``: (start row, (dict, lse)))."""
    out: Dict[str, Any] = {}
    for key in ("nonfinite", "negative", "bad_sum"):
        out[f"{key}_rows"] = int(sum(d[f"{key}_rows"] for _, (d, _) in parts))
        firsts = [s + d[f"first_{key}_row"] for s, (d, _) in parts if d[f"{key}_rows"]]
        out[f"first_{key}_row"] = int(min(firsts)) if firsts else -1
    lows = [d["min_row_sum"] for _, (d, _) in parts if d["min_row_sum"] == d["min_row_sum"]]
    highs = [d["max_row_sum"] for _, (d, _) in parts if d["max_row_sum"] == d["max_row_sum"]]
    out["min_row_sum"] = float(min(lows)) if lows else float("nan")
    out["max_row_sum"] = float(max(highs)) if highs else float("nan")
    return out


def _host_row_stats(m: Matrix, from_logits: bool) -> Dict[str, Any]:
    """The kernel's statistics, computed with numpy in float64 (the reference path's own check)."""
    nonfinite, negative, bad_sum, sums = [], [], [], []
    step = max(1, _HOST_BLOCK_BYTES // max(1, 8 * m.d))
    for s in range(0, m.n, step):
        X = m.to_float64_host(s, s + step)
        fin = np.isfinite(X).all(axis=1)
        nonfinite.append(~fin)
        row = X.sum(axis=1)
        sums.append(row[fin])
        negative.append(fin & (X < 0).any(axis=1) & (not from_logits))
        bad_sum.append(fin & ~(np.abs(row - 1.0) <= sum_tolerance(m)) & (not from_logits))
    out: Dict[str, Any] = {}
    for key, parts in (("nonfinite", nonfinite), ("negative", negative), ("bad_sum", bad_sum)):
        rows = np.flatnonzero(np.concatenate(parts))
        out[f"{key}_rows"] = int(rows.size)
        out[f"first_{key}_row"] = int(rows[0]) if rows.size else -1
    allsums = np.concatenate(sums)
    out["min_row_sum"] = float(allsums.min()) if allsums.size else float("nan")
    out["max_row_sum"] = float(allsums.max()) if allsums.size else float("nan")
    return out


def _row_sum(m: Matrix, row: int) -> float:
    return float(m.to_float64_host(row, row + 1).sum())


def validate_probs(m: Matrix, labels: Labels, *, from_logits: bool, nan_policy: str = "raise",
                   device: str = "cpu") -> ProbInput:
    """Check P (already placed on ``device``) per BAD_INPUTS.md and prepare the later passes.

    Raises ValueError naming the rows: NaN/inf (unless ``nan_policy="omit"``, which drops those
    rows and their labels), negative entries (logits passed as probabilities) and rows that do not
    sum to 1 within ``sum_tolerance(m)`` (1e-3 plus the dtype's unit roundoff). With ``from_logits``
    only NaN/inf is an error.
    """
    if nan_policy not in ("raise", "omit"):
        raise ValueError(f"nan_policy must be 'raise' or 'omit', got {nan_policy!r}")
    stats, row_lse = _row_stats(m, from_logits, device)
    keep = None
    if stats["nonfinite_rows"]:
        keep = check_finite(m, nan_policy)  # raises with the shared message, or returns the kept rows
        if keep.size == 0:
            raise ValueError(f"every row of {m.name} holds NaN or inf; nothing is left to score")
        m = m.take(keep)
        labels = check_labels_omit(labels, keep, min_classes=1)
        stats, row_lse = _row_stats(m, from_logits, device)
    if not from_logits:
        name = m.name
        if stats["negative_rows"]:
            r = stats["first_negative_row"]
            raise ValueError(
                f"{name} has negative entries in {stats['negative_rows']} row(s) (first at row {r}); "
                "probabilities cannot be negative: these look like logits, pass from_logits=True "
                "(the softmax is then taken in float64)"
            )
        if stats["bad_sum_rows"]:
            r = stats["first_bad_sum_row"]
            raise ValueError(
                f"{name} rows must sum to 1 (within {sum_tolerance(m):.3g}): {stats['bad_sum_rows']} row(s) do not "
                f"(first at row {r}, which sums to {_row_sum(m, r):.6g}; row sums range from "
                f"{stats['min_row_sum']:.6g} to {stats['max_row_sum']:.6g}); pass from_logits=True if these are "
                "logits, or normalise the rows"
            )
    return ProbInput(m, labels, from_logits, row_lse, keep)


# ---------------------------------------------------------------------------- the passes


def joint_counts(p: ProbInput, *, device: str = "cpu", chunk_rows: Optional[int] = None) -> np.ndarray:
    """``S[c, z] = sum_{i : y_i = c} P[i, z]`` as a float64 (C x Z) host array (J = S / N).

    ``chunk_rows`` feeds the rows to the kernel in chunks accumulating into one S (the path for
    banks read piece by piece); on the CPU the result is bitwise the one-shot result.
    """
    m, codes, C = p.m, p.labels.codes, p.labels.n_classes
    if device == "reference":
        from transferlab.reference.leep import joint, softmax_rows

        P = m.to_float64_host()
        return joint(softmax_rows(P) if p.from_logits else P, codes, C) * m.n
    if device == "cuda":
        return _cuda_joint(p)
    _C = kernels.cpu_module()
    if chunk_rows is not None and int(chunk_rows) < 1:
        raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows}")
    step = int(chunk_rows or m.budget.rows or m.n)
    S = None
    for s, e, blk in blocks.blocks(m, step):
        lse = None if p.row_lse is None else p.row_lse[s:e]
        S = _C.leep_joint(blk.data, codes[s:e], C, p.from_logits, lse, m.is_bf16, cpu_threads.num_threads(), S)
    return S


def conditional(S: np.ndarray) -> np.ndarray:
    """``P(y | z) = S[y, z] / sum_y S[y, z]``; source classes with zero total mass get an all-zero
    column (they carry no weight: every P[i, z] of such a column is 0)."""
    mass = S.sum(axis=0)
    cond = np.zeros_like(S)
    live = mass > 0
    cond[:, live] = S[:, live] / mass[live]
    return cond


def eep(p: ProbInput, cond: np.ndarray, *, device: str = "cpu") -> np.ndarray:
    """``EEP_i = sum_z P[i, z] cond[y_i, z]`` (float64, (N,) host array)."""
    m, codes, C = p.m, p.labels.codes, p.labels.n_classes
    cond = np.ascontiguousarray(cond, dtype=np.float64)
    if device == "reference":
        from transferlab.reference.leep import softmax_rows

        P = m.to_float64_host()
        P = softmax_rows(P) if p.from_logits else P
        return np.einsum("iz,iz->i", P, cond[codes])
    if device == "cuda":
        return _cuda_eep(p, cond)
    parts = [kernels.cpu_module().leep_eep(blk.data, codes[s:e], C, p.from_logits,
                                            None if p.row_lse is None else p.row_lse[s:e], cond, m.is_bf16,
                                            cpu_threads.num_threads())
             for s, e, blk in blocks.kernel_blocks(m)]
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


# ---------------------------------------------------------------------------- CUDA
# The _C calls with device pointers (ints; 0 = none), outputs preallocated here as torch tensors
# (COMMON.md, binding API); `view` = Matrix.device_view() = ptr, dtype_code, rows, cols, row_stride:
#   leep_row_stats(*view, from_logits, tol, row_lse_ptr, stream) -> stats dict (as _C's)
#   leep_joint(*view, labels_ptr, n_classes, from_logits, row_lse_ptr, joint_ptr, stream)   (+= into joint)
#   leep_eep(*view, labels_ptr, n_classes, from_logits, row_lse_ptr, cond_ptr, eep_ptr, stream)


def _cuda_leep():
    mod = kernels.require_cuda()
    if not hasattr(mod, "leep_row_stats"):
        raise RuntimeError("this build's transferlab._cuda has no LEEP kernels; pass device='cpu'")
    return mod


_ptr = devices.data_ptr


def _cuda_row_stats(m: Matrix, from_logits: bool):
    import torch

    mod = _cuda_leep()
    lse = torch.empty((m.n,), dtype=torch.float64, device=m.data.device) if from_logits else None
    with devices.cuda_launch(m.data, synchronize=True) as stream:
        stats = mod.leep_row_stats(*m.device_view(), from_logits, sum_tolerance(m), _ptr(lse), stream)
    return dict(stats), lse


def _cuda_joint(p: ProbInput) -> np.ndarray:
    import torch

    mod = _cuda_leep()
    dev = p.m.data.device
    labels = torch.as_tensor(p.labels.codes, dtype=torch.int32, device=dev).contiguous()
    S = torch.zeros((p.labels.n_classes, p.m.d), dtype=torch.float64, device=dev)
    with devices.cuda_launch(p.m.data, synchronize=True) as stream:
        mod.leep_joint(*p.m.device_view(), labels.data_ptr(), p.labels.n_classes, p.from_logits, _ptr(p.row_lse),
                       S.data_ptr(), stream)
    return S.cpu().numpy()


def _cuda_eep(p: ProbInput, cond: np.ndarray) -> np.ndarray:
    import torch

    mod = _cuda_leep()
    dev = p.m.data.device
    labels = torch.as_tensor(p.labels.codes, dtype=torch.int32, device=dev).contiguous()
    cond_t = torch.as_tensor(cond, dtype=torch.float64, device=dev).contiguous()
    out = torch.empty((p.m.n,), dtype=torch.float64, device=dev)
    with devices.cuda_launch(p.m.data, synchronize=True) as stream:
        mod.leep_eep(*p.m.device_view(), labels.data_ptr(), p.labels.n_classes, p.from_logits, _ptr(p.row_lse),
                     cond_t.data_ptr(), out.data_ptr(), stream)
    return out.cpu().numpy()
