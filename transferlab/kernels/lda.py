"""Class statistics and scatter matrices for the LDA family: the Python seam over ``csrc/lda``.

SFDA uses it; LogME, H-score, GBC and TransRate are meant to. Every statistic is one pass of a
kernel over the bank with float64 accumulation; no N x C one-hot and no N x D float64 copy.

Conventions
-----------
``m`` is a validated :class:`transferlab.core.arrays.Matrix` already placed on ``device`` ("cpu",
"cuda" or "reference"; see ``transferlab.core.devices.resolve_device`` / ``place``). ``codes`` are int
labels in ``0..C-1`` (host numpy, e.g. ``Labels.codes``). Results are float64 arrays of the
device's kind: numpy on "cpu" and "reference", torch tensors on "cuda" (on the input's device).
Vectors such as ``shift`` / ``row_weight`` may be given as numpy or torch.

Low level (one kernel call each; ``z_i = s_i (x_i - shift)``, missing arguments are 0 / 1):

* :func:`class_sums` -> ``(counts (C,) int64 numpy, sums (C, D))``, ``sums[c] = sum_{y_i=c} w_i (x_i - shift)``
  (``sums=`` accumulates: row-chunked passes)
* :func:`gram` -> ``(D, D)``, ``sum_i z_i z_i^T`` (``out=`` accumulates)
* :func:`gram_batched` -> one Gram per model (many models in one call: the "batched SFDA" kernel)
* :func:`project` -> ``(N, K)``, ``x W^T + b``

High level:

* :func:`scatter_stats` -> :class:`ScatterStats` (class counts and means, total mean, total /
  between / within scatter), optionally of the *mixed* rows ``x~_i = p_i x_i + (1 - p_i) a_{y_i}``
  (SFDA's ConfMix) computed from the original bank without materialising them.

Accuracy: the Gram runs on rows centred by ``shift`` (the total mean by default), so a large common
offset of the features (ReLU embeddings) does not cancel digits; within = total - between is then
exact up to float64 rounding of O(spread^2) terms.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, List, Optional, Sequence

import numpy as np

from transferlab.core import blocks
from transferlab.core import cpu_threads
from transferlab import kernels
from transferlab.core import devices
from transferlab.core.arrays import Matrix

# Rows per block on the torch / reference paths: bounds their float64 temporaries.
_BLOCK_BYTES = 64 << 20

# On "cuda", use transferlab._cuda's lda kernels when that build has them (else torch float64
# matmuls on the device, which need no kernel of ours). Tests switch it to compare both.
USE_CUDA_KERNELS = True

_CUDA_LDA = ("lda_class_sums", "lda_gram", "lda_project")

# The Gram on "cuda": "cublas" (float64 row blocks through torch's matmul, i.e. cuBLAS DGEMM on the
# FP64 tensor cores) or "kernel" (our lda_gram, which reads any dtype in place). Measured on one
# H100 (2026-11-26, N=50k, D=2048 float32): lda_gram 0.0209 s, cuBLAS blocks 0.0079 s, equal to
# 5.8e-14 relative. The kernel stays (tests pin it against its CPU twin); the scores take cuBLAS.
CUDA_GRAM = "cublas"

__all__ = ["ScatterStats", "class_sums", "gram", "gram_batched", "project", "scatter_stats", "scatter_from_sums",
           "block_rows"]


def block_rows(d: int, bytes_per_value: int = 8, budget: int = _BLOCK_BYTES) -> int:
    """Rows of a d-wide float64 block that fit in ``budget`` bytes (at least 1)."""
    return max(1, budget // max(1, bytes_per_value * d))


# ---------------------------------------------------------------------------- array helpers


def _is_torch(a: Any) -> bool:
    return type(a).__module__.startswith("torch")


def _host_vec(a: Any, n: int, name: str) -> Optional[np.ndarray]:
    """A contiguous float64 numpy vector of length n (None stays None)."""
    if a is None:
        return None
    if _is_torch(a):
        a = a.detach().cpu().numpy()
    a = np.ascontiguousarray(a, dtype=np.float64).reshape(-1)
    if a.shape[0] != n:
        raise ValueError(f"{name} must have length {n}, got {a.shape[0]}")
    return a


def _dev_vec(a: Any, like, n: int, name: str):
    """A float64 torch vector on the device of tensor ``like`` (None stays None)."""
    if a is None:
        return None
    import torch

    t = torch.as_tensor(a.detach() if _is_torch(a) else np.asarray(a), dtype=torch.float64, device=like.device)
    t = t.reshape(-1).contiguous()
    if t.shape[0] != n:
        raise ValueError(f"{name} must have length {n}, got {t.shape[0]}")
    return t


def _codes(codes: Any, n: int) -> np.ndarray:
    c = np.ascontiguousarray(np.asarray(codes).reshape(-1), dtype=np.int32)
    if c.shape[0] != n:
        raise ValueError(f"labels have length {c.shape[0]} but the features have n_samples={n}")
    return c


def _f64_rows(m: Matrix, start: int, stop: int):
    """Rows [start, stop) as float64 (torch on the matrix's device for "cuda", else numpy)."""
    if m.device == "cuda":
        import torch

        return m.data[start:stop].to(torch.float64)
    return m.to_float64_host(start, stop)


def _cuda_kernels(m: Matrix):
    """``transferlab._cuda`` when it has the lda kernels and ``m`` lives on a CUDA device, else None."""
    if not USE_CUDA_KERNELS or not getattr(m.data, "is_cuda", False):
        return None
    mod = kernels.cuda_module()
    if mod is None or not all(hasattr(mod, f) for f in _CUDA_LDA):
        return None
    return mod


_ptr = devices.data_ptr


# ---------------------------------------------------------------------------- low level


def class_sums(m: Matrix, codes, n_classes: int, device: str, *, shift=None, row_weight=None, sums=None):
    """``(counts, sums)``: ``counts[c] = #{i: y_i = c}`` (int64 numpy, of these rows) and
    ``sums[c] = sum_{i: y_i = c} w_i (x_i - shift)`` ((C, D) float64).

    ``sums`` (a (C, D) float64 array of the device's kind) is accumulated into and returned
    (row-chunked passes; on the CPU bitwise equal to one pass).
    """
    n, d = m.n, m.d
    y = _codes(codes, n)
    if device == "cpu":
        sh, w = _host_vec(shift, d, "shift"), _host_vec(row_weight, n, "row_weight")
        counts = None
        for s, e, blk in blocks.kernel_blocks(m):  # sums= accumulates: bitwise one pass
            c, sums = kernels.cpu_module().lda_class_sums(
                blk.data, y[s:e], int(n_classes), sh, None if w is None else w[s:e], m.is_bf16,
                cpu_threads.num_threads(), sums=sums,
            )
            counts = c if counts is None else counts + c
        return counts, sums
    counts = np.bincount(y, minlength=n_classes).astype(np.int64)
    if device == "cuda":
        import torch

        like = m.data
        sh, w = _dev_vec(shift, like, d, "shift"), _dev_vec(row_weight, like, n, "row_weight")
        mod = _cuda_kernels(m)
        if mod is not None:
            # Inputs stay referenced until the kernel is queued; later frees are stream-ordered.
            yt32 = torch.as_tensor(y, dtype=torch.int32, device=like.device).contiguous()
            counts_t = torch.zeros(n_classes, dtype=torch.int64, device=like.device)
            if sums is None:
                sums = torch.zeros((n_classes, d), dtype=torch.float64, device=like.device)
            with devices.cuda_launch(like) as stream:
                mod.lda_class_sums(*m.device_view(), yt32.data_ptr(), int(n_classes), _ptr(sh), _ptr(w),
                                   counts_t.data_ptr(), sums.data_ptr(), stream)
            return counts, sums
        yt = torch.as_tensor(y, dtype=torch.int64, device=like.device)
        if sums is None:
            sums = torch.zeros((n_classes, d), dtype=torch.float64, device=like.device)
    else:
        sh, w = _host_vec(shift, d, "shift"), _host_vec(row_weight, n, "row_weight")
        yt = y
        if sums is None:
            sums = np.zeros((n_classes, d), dtype=np.float64)
    step = m.budget.rows or block_rows(d)
    for s in range(0, n, step):
        z = _f64_rows(m, s, s + step)
        if sh is not None:
            z = z - sh[None, :]
        if w is not None:
            z = z * w[s : s + step, None]
        if device == "cuda":
            sums.index_add_(0, yt[s : s + step], z)
        else:
            np.add.at(sums, yt[s : s + step], z)
    return counts, sums


def gram(m: Matrix, device: str, *, shift=None, row_scale=None, out=None):
    """``sum_i s_i^2 (x_i - shift)(x_i - shift)^T`` ((D, D) float64, exactly symmetric on "cpu").

    ``out`` (a symmetric (D, D) float64 array of the device's kind, e.g. an earlier result) is
    accumulated into and returned: a bank scored in row chunks then gets, on the CPU, bitwise the
    Gram of one pass (each element is one chain over the rows).
    """
    n, d = m.n, m.d
    if device == "cpu":
        sh, sc = _host_vec(shift, d, "shift"), _host_vec(row_scale, n, "row_scale")
        for s, e, blk in blocks.kernel_blocks(m):  # out= accumulates: bitwise one pass
            out = kernels.cpu_module().lda_gram(blk.data, sh, None if sc is None else sc[s:e], m.is_bf16,
                                                 cpu_threads.num_threads(), out=out)
        return out
    if device == "cuda":
        import torch

        like = m.data
        sh, s_ = _dev_vec(shift, like, d, "shift"), _dev_vec(row_scale, like, n, "row_scale")
        if out is None:
            out = torch.zeros((d, d), dtype=torch.float64, device=like.device)
        mod = _cuda_kernels(m) if CUDA_GRAM == "kernel" else None
        if mod is not None:
            with devices.cuda_launch(like) as stream:
                mod.lda_gram(*m.device_view(), _ptr(sh), _ptr(s_), out.data_ptr(), stream)
            return out
    else:
        sh, s_ = _host_vec(shift, d, "shift"), _host_vec(row_scale, n, "row_scale")
        if out is None:
            out = np.zeros((d, d), dtype=np.float64)
    step = m.budget.rows or block_rows(d)
    for s in range(0, n, step):
        z = _f64_rows(m, s, s + step)
        if sh is not None:
            z = z - sh[None, :]
        if s_ is not None:
            z = z * s_[s : s + step, None]
        out += z.T @ z
    return out


def gram_batched(mats: Sequence[Matrix], device: str, *, shifts: Optional[Sequence[Any]] = None,
                 row_scale=None) -> List[Any]:
    """One Gram per model (``gram(mats[k], shift=shifts[k], row_scale=row_scale)``), in one call.

    On the CPU this is the batched kernel (bitwise equal to separate :func:`gram` calls). With a
    shared ``row_scale`` all models must have the same number of rows.
    """
    if shifts is not None and len(shifts) != len(mats):
        raise ValueError(f"shifts must list one entry per model ({len(mats)}), got {len(shifts)}")
    if device == "cpu":
        n = mats[0].n if mats else 0
        return list(
            kernels.cpu_module().lda_gram_batched(
                [mm.data for mm in mats],
                None if shifts is None else [_host_vec(s, mm.d, "shift") for s, mm in zip(shifts, mats)],
                _host_vec(row_scale, n, "row_scale"),
                [mm.is_bf16 for mm in mats],
                cpu_threads.num_threads(),
            )
        )
    return [gram(mm, device, shift=None if shifts is None else shifts[k], row_scale=row_scale)
            for k, mm in enumerate(mats)]


def project(m: Matrix, W, device: str, *, b=None):
    """``x W^T + b`` ((N, K) float64) for ``W`` (K, D) float64 and optional ``b`` (K,)."""
    n, d = m.n, m.d
    if device == "cpu":
        Wh = np.ascontiguousarray(W.detach().cpu().numpy() if _is_torch(W) else W, dtype=np.float64)
        if Wh.ndim != 2 or Wh.shape[1] != d:
            raise ValueError(f"W must have shape (K, {d}), got {Wh.shape}")
        bh = _host_vec(b, Wh.shape[0], "b")
        parts = [kernels.cpu_module().lda_project(blk.data, Wh, bh, m.is_bf16, cpu_threads.num_threads())
                 for _, _, blk in blocks.kernel_blocks(m)]
        return parts[0] if len(parts) == 1 else np.concatenate(parts)
    if device == "cuda":
        import torch

        Wt = torch.as_tensor(W, dtype=torch.float64, device=m.data.device)
        if Wt.ndim != 2 or Wt.shape[1] != d:
            raise ValueError(f"W must have shape (K, {d}), got {tuple(Wt.shape)}")
        bt = _dev_vec(b, m.data, Wt.shape[0], "b")
        out = torch.empty((n, Wt.shape[0]), dtype=torch.float64, device=m.data.device)
        mod = _cuda_kernels(m)
        if mod is not None:
            Wc = Wt.contiguous()
            with devices.cuda_launch(m.data) as stream:
                mod.lda_project(*m.device_view(), Wc.data_ptr(), _ptr(bt), int(Wc.shape[0]), out.data_ptr(), stream)
            return out
    else:
        Wt = np.asarray(W, dtype=np.float64)
        bt = _host_vec(b, Wt.shape[0], "b")
        out = np.empty((n, Wt.shape[0]), dtype=np.float64)
    step = m.budget.rows or block_rows(d)
    for s in range(0, n, step):
        out[s : s + step] = _f64_rows(m, s, s + step) @ Wt.T
    if bt is not None:
        out += bt[None, :]
    return out


# ---------------------------------------------------------------------------- scatter statistics


@dataclass(frozen=True)
class ScatterStats:
    """Class statistics of a bank (unnormalised scatter: divide by ``n`` for biased covariances).

    counts  (C,) int64 numpy          n_c
    means   (C, D)                    class means mu_c
    mean    (D,)                      total mean mu
    total   (D, D)                    sum_i (x_i - mu)(x_i - mu)^T
    between (D, D)                    sum_c n_c (mu_c - mu)(mu_c - mu)^T
    within  (D, D)                    total - between = sum_c sum_{y_i=c} (x_i - mu_c)(x_i - mu_c)^T
    """

    counts: np.ndarray
    means: Any
    mean: Any
    total: Any
    between: Any
    within: Any

    @property
    def n(self) -> int:
        return int(self.counts.sum())

    @property
    def n_classes(self) -> int:
        return int(self.counts.shape[0])

    @property
    def priors(self) -> np.ndarray:
        """pi_c = n_c / N (float64 numpy)."""
        return self.counts.astype(np.float64) / float(self.n)

    def total_cov(self):
        """Biased covariance of the bank, ``total / N``."""
        return self.total / self.n

    def within_cov(self):
        """``sum_c pi_c Cov_c`` with biased class covariances, ``within / N``."""
        return self.within / self.n


def _as_like(a: np.ndarray, like):
    """A numpy array converted to the kind (and device) of ``like``."""
    if _is_torch(like):
        import torch

        return torch.as_tensor(a, dtype=torch.float64, device=like.device)
    return a


def _weighted_gram(A, w):
    """``A^T diag(w) A`` for w >= 0 as ``Y^T Y`` with ``Y = sqrt(w) A``: BLAS syrk on the host, whose
    result is exactly symmetric."""
    sw = w ** 0.5
    Y = A * sw[:, None]
    return Y.T @ Y


def _sym(a):
    """Exactly symmetric: the host forms above already are (no extra D x D pass); torch matmuls need
    not be."""
    return 0.5 * (a + a.T) if _is_torch(a) else a


def scatter_stats(m: Matrix, codes, n_classes: int, device: str, *, shift=None, mix_weight=None,
                  mix_anchors=None) -> ScatterStats:
    """Counts, class means, total mean and total / between / within scatter of ``m``'s rows.

    With ``mix_weight`` p (N,) and ``mix_anchors`` A (C, D) the statistics are those of the mixed
    rows ``x~_i = p_i x_i + (1 - p_i) A[y_i]`` (SFDA's ConfMix), from the original bank. With h the
    shift, ``z_i = x_i - h`` and ``u_c = h - A_c``, ``x~_i - h = p_i z_i + (p_i - 1) u_c``, so

        sum_{y_i=c} (x~_i - h) = S1_c + (P1_c - n_c) u_c
        sum_i (x~_i - h)(x~_i - h)^T = G + E + E^T + U^T diag(q) U,   E = S21^T U

    with ``S1 = class_sums(w=p)``, ``S21 = class_sums(w=p(p-1))``, ``G = gram(row_scale=p)``,
    ``P1_c = sum p_i``, ``q_c = sum (1-p_i)^2`` (over class c, all centred by h): three passes.

    ``shift`` (D,) is the centring point h (default: the total mean of the unmixed rows, from one
    extra class-sum pass); it only affects rounding, not the result.
    """
    n, d = m.n, m.d
    y = _codes(codes, n)
    counts = np.bincount(y, minlength=n_classes).astype(np.int64)
    if np.any(counts == 0):
        raise ValueError("every class in 0..n_classes-1 needs at least one sample (remap the labels first)")
    nf = counts.astype(np.float64)
    Q = None
    if shift is None:
        _, S0 = class_sums(m, y, n_classes, device)
        h = S0.sum(0) / n
        if mix_weight is None:
            Q = S0 - _as_like(nf, S0)[:, None] * h[None, :]
    else:
        h = _as_like(_host_vec(shift, d, "shift"), m.data) if device == "cuda" else _host_vec(shift, d, "shift")
    nf_d = _as_like(nf, h)
    if mix_weight is None:
        if Q is None:
            _, Q = class_sums(m, y, n_classes, device, shift=h)
        G = gram(m, device, shift=h)
    else:
        if mix_anchors is None:
            raise ValueError("mix_weight needs mix_anchors (C, D)")
        p = _host_vec(mix_weight, n, "mix_weight")
        A = mix_anchors
        if _is_torch(h) and not _is_torch(A):
            A = _as_like(np.asarray(A, dtype=np.float64), h)
        if tuple(A.shape) != (n_classes, d):
            raise ValueError(f"mix_anchors must have shape ({n_classes}, {d}), got {tuple(A.shape)}")
        U = h[None, :] - A
        _, S1 = class_sums(m, y, n_classes, device, shift=h, row_weight=p)
        _, S21 = class_sums(m, y, n_classes, device, shift=h, row_weight=p * (p - 1.0))
        P1 = _as_like(np.bincount(y, weights=p, minlength=n_classes), h)
        q = _as_like(np.bincount(y, weights=(1.0 - p) ** 2, minlength=n_classes), h)
        Q = S1 + (P1 - nf_d)[:, None] * U
        E = S21.T @ U
        G = gram(m, device, shift=h, row_scale=p) + (E + E.T) + _weighted_gram(U, q)
    return scatter_from_sums(counts, Q, G, h)


def scatter_from_sums(counts: np.ndarray, sums, G, shift) -> ScatterStats:
    """:class:`ScatterStats` from sums about a point h: ``counts`` (C,) int64 (all > 0), ``sums[c] =
    sum_{y_i=c} (x_i - h)`` (C, D) and ``G = sum_i (x_i - h)(x_i - h)^T`` (D, D) (streams accumulate
    these chunk by chunk)."""
    h = shift
    n = int(counts.sum())
    nf_d = _as_like(counts.astype(np.float64), h)
    delta = sums.sum(0) / n
    mean = h + delta
    means = h[None, :] + sums / nf_d[:, None]
    # Every term is exactly symmetric on the host (the Gram kernel mirrors, E + E^T, outer products,
    # syrk), so within = total - between is too.
    total = _sym(G - n * (delta[:, None] * delta[None, :]))
    between = _sym(_weighted_gram(means - mean[None, :], nf_d))
    return ScatterStats(counts, means, mean, total, between, _sym(total - between))
