"""The Gram seam: class statistics, (centred) Gram matrices, projections and one eigensolve.

Every Gram-family score (LogME, H-score, GBC, TransRate, the PCA of NLEEP/GBC/PARC) reads its
features only through these functions, which mirror the ``lda`` kernel contract
(``csrc/lda/lda.h``)::

    class_sums(m, codes, C, shift, row_weight) -> counts (C,) int64, sums (C, D) float64
        counts[c] = #{i : y_i = c};  sums[c] = sum_{i : y_i = c} w_i (x_i - shift)
    gram(m, shift, row_scale)                  -> (D, D) float64
        sum_i s_i^2 (x_i - shift)(x_i - shift)^T
    project(m, W, b)                           -> (N, K) float64,  X W^T + b
    pca(m, ...)                                -> mean, components, explained variance

The three passes are the compiled ``lda`` kernels (through ``kernels.lda``, float64 sums, any
input dtype, memory O(D^2) or O(C D), a memory-mapped bank is never loaded whole); the remaining
helpers scan the bank in bounded float64 row blocks.

Devices: a matrix on a CUDA device is read there (the passes run on the GPU, N x D never crosses
to the host) and every result comes back as host float64 numpy: the contract of the functions
above does not depend on the device, so the scores' D x D algebra is one code. The eigensolves
(``core.linalg``) take the device explicitly: a score passes its bank's device (``m.device``), so
a bank on a GPU is solved there too. ``row_blocks`` always yields host copies.
"""
from __future__ import annotations

from typing import Iterator, Optional, Tuple

import numpy as np
from transferlab.core import blocks
from transferlab.core.arrays import Matrix
from transferlab.kernels import lda
from transferlab.core import linalg

# Float64 bytes per row block: large enough for BLAS efficiency, small enough for bounded memory.
_BLOCK_BYTES = 32 << 20

def _device_of(m: Matrix) -> str:
    return "cuda" if m.device == "cuda" else "cpu"


def _host(a) -> np.ndarray:
    """A float64 result of ``kernels.lda`` (numpy, or a torch tensor on the "cuda" path) as numpy."""
    if isinstance(a, np.ndarray):
        return a
    return a.detach().cpu().numpy()


def row_blocks(m: Matrix) -> Iterator[Tuple[int, int, np.ndarray]]:
    """(start, stop, float64 copy of rows [start, stop)) over the bank in bounded blocks (the shared
    reader: the active ``max_memory`` budget's rows, memory-mapped pages released per block)."""
    return blocks.f64_blocks(m, default_bytes=_BLOCK_BYTES)


def pass_cost(m: Matrix, n_classes: int) -> Tuple[int, int]:
    """(bytes per block row, fixed state bytes) of the Gram-family scores under ``max_memory``.

    A block row costs its stored bytes (the mapped pages) plus two float64 copies (``row_blocks``'
    block and its shifted / squared temporary); the state is four D x D float64 matrices (the Gram,
    its eigenvectors, LAPACK's work, a centred copy), three C x D ones and 16 bytes per row (the
    N-vectors such as the squared norms).
    """
    d = m.d
    return m.data.dtype.itemsize * d + 16 * d, 32 * d * d + 24 * n_classes * d + 16 * m.n


def class_sums(m: Matrix, codes: np.ndarray, n_classes: int, shift: Optional[np.ndarray] = None,
               row_weight: Optional[np.ndarray] = None) -> Tuple[np.ndarray, np.ndarray]:
    """Per-class counts and sums of w_i (x_i - shift) (the ``lda_class_sums`` kernel). Never one-hot."""
    counts, sums = lda.class_sums(m, codes, n_classes, _device_of(m), shift=shift, row_weight=row_weight)
    return counts, _host(sums)


def gram(m: Matrix, shift: Optional[np.ndarray] = None, row_scale: Optional[np.ndarray] = None) -> np.ndarray:
    """``sum_i s_i^2 (x_i - shift)(x_i - shift)^T``, full symmetric (D, D) float64 (the ``lda_gram`` kernel)."""
    return _host(lda.gram(m, _device_of(m), shift=shift, row_scale=row_scale))


def project(m: Matrix, W: np.ndarray, b: Optional[np.ndarray] = None) -> np.ndarray:
    """``X W^T + b`` in float64, (N, K) (the ``lda_project`` kernel)."""
    return _host(lda.project(m, np.ascontiguousarray(W, dtype=np.float64), _device_of(m), b=b))


def row_sq_norms(m: Matrix, shift: Optional[np.ndarray] = None) -> np.ndarray:
    """``|x_i - shift|^2`` per row, float64 (N,)."""
    if m.device == "cuda":
        return _row_sq_norms_on_device(m, shift)
    out = np.empty(m.n)
    for s, e, blk in row_blocks(m):
        if shift is not None:
            blk -= shift
        out[s:e] = np.einsum("ij,ij->i", blk, blk)
    return out


def _row_sq_norms_on_device(m: Matrix, shift: Optional[np.ndarray]) -> np.ndarray:
    """:func:`row_sq_norms` of a CUDA bank: float64 row blocks on the device, only the N norms return."""
    import torch

    sh = None if shift is None else torch.as_tensor(np.asarray(shift, dtype=np.float64), device=m.data.device)
    out = torch.empty(m.n, dtype=torch.float64, device=m.data.device)
    step = lda.block_rows(m.d)
    for s in range(0, m.n, step):
        z = m.data[s : s + step].to(torch.float64)
        if sh is not None:
            z = z - sh
        out[s : s + step] = (z * z).sum(dim=1)
    return out.cpu().numpy()


def mean_and_centred_gram(m: Matrix) -> Tuple[np.ndarray, np.ndarray]:
    """Column mean and ``sum_i (x_i - mean)(x_i - mean)^T``; the shift keeps the Gram accurate."""
    mean = column_sum(m) / m.n
    return mean, gram(m, shift=mean)


def column_sum(m: Matrix) -> np.ndarray:
    """``sum_i x_i`` in float64: one class-sum kernel pass (its per-element chains do not depend on
    the row blocks, so a ``max_memory`` budget gives the same bits)."""
    return class_sums(m, np.zeros(m.n, dtype=np.int32), 1)[1][0]


def pca(m: Matrix, n_components: Optional[int] = None, var_ratio: Optional[float] = None):
    """Exact PCA from one eigensolve of the centred Gram.

    Returns (mean, components (K, D), explained variance (K,) with the 1/(N-1) convention). The
    eigensolve runs where the bank lives (``m.device``).
    ``var_ratio`` follows scikit-learn's rule: the smallest K whose cumulative explained-variance
    ratio exceeds it. Component signs follow scikit-learn's ``svd_flip`` on V^T (largest-|.| entry of
    each component positive) so that projections are reproducible.
    """
    mean, G = mean_and_centred_gram(m)
    return pca_from_gram(mean, G, m.n, n_components, var_ratio, device=m.device)


def pca_from_gram(mean: np.ndarray, G: np.ndarray, n: int, n_components: Optional[int] = None,
                  var_ratio: Optional[float] = None, device: str = "cpu"):
    """:func:`pca` from the column mean and centred Gram ``sum_i (x_i - mean)(x_i - mean)^T`` of n
    rows (the streaming states accumulate those); same returns, same rules; the eigensolve runs on
    ``device`` (``core.linalg``)."""
    d = G.shape[0]
    w, V = linalg.eigh_desc(G, device)
    w = np.maximum(w, 0.0)
    if var_ratio is not None:
        total = w.sum()
        ratio = np.cumsum(w / total) if total > 0 else np.ones_like(w)
        n_components = int(np.searchsorted(ratio, var_ratio, side="right") + 1)
    k = min(int(n_components), d)
    comps = V[:, :k].T.copy()
    big = np.argmax(np.abs(comps), axis=1)
    signs = np.sign(comps[np.arange(k), big])
    signs[signs == 0] = 1.0
    comps *= signs[:, None]
    return mean, comps, w[:k] / max(n - 1, 1)
