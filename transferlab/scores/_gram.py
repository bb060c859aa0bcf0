"""The Gram seam: class statistics, (centred) Gram matrices, projections and one eigensolve.

Every Gram-family score (LogME, H-score, GBC, TransRate, the PCA of NLEEP/GBC/PARC) reads its
features only through these functions, which mirror the ``lda`` kernel contract
(``csrc/lda/lda.h``)::

    class_sums(m, codes, C, shift, row_weight) -> counts (C,) int64, sums (C, D) float64
        counts[c] = #{i : y_i = c};  sums[c] = sum_{i : y_i = c} w_i (x_i - shift)
    gram(m, shift, row_scale)                  -> (D, D) float64
        sum_i s_i^2 (x_i - shift)(x_i - shift)^T
    project(m, W, b)                           -> (N, K) float64,  X W^T + b
    eigh_desc(G)                               -> eigenvalues descending, eigenvectors as columns

This implementation scans the bank in row blocks of bounded size (memory O(D^2 + block), a
memory-mapped bank is never loaded whole) and computes in float64 numpy; the compiled ``lda``
kernels satisfy the same contract and can replace the bodies without touching the scores.
"""
from __future__ import annotations

from typing import Iterator, Optional, Tuple

import numpy as np
from scipy.linalg import blas

from .._arrays import Matrix

# Float64 bytes per row block: large enough for BLAS efficiency, small enough for bounded memory.
_BLOCK_BYTES = 32 << 20


def row_blocks(m: Matrix) -> Iterator[Tuple[int, int, np.ndarray]]:
    """(start, stop, float64 copy of rows [start, stop)) over the bank in bounded blocks."""
    step = max(1, _BLOCK_BYTES // max(1, 8 * m.d))
    for s in range(0, m.n, step):
        e = min(m.n, s + step)
        blk = m.to_float64_host(s, e)
        if m.device == "cpu" and np.may_share_memory(blk, m.data):
            blk = blk.copy()  # float64 input: never modify the caller's rows in place
        yield s, e, blk


def class_sums(m: Matrix, codes: np.ndarray, n_classes: int, shift: Optional[np.ndarray] = None,
               row_weight: Optional[np.ndarray] = None) -> Tuple[np.ndarray, np.ndarray]:
    """Per-class counts and sums of (x - shift), optionally weighted per row. Never one-hot."""
    counts = np.bincount(codes, minlength=n_classes).astype(np.int64)
    sums = np.zeros((n_classes, m.d))
    for s, e, blk in row_blocks(m):
        if shift is not None:
            blk -= shift
        if row_weight is not None:
            blk *= row_weight[s:e, None]
        # Sorted scatter-add: np.add.at is slow; a sort + reduceat is O(rows log rows) and exact.
        c = codes[s:e]
        order = np.argsort(c, kind="stable")
        cs = c[order]
        starts = np.flatnonzero(np.r_[True, cs[1:] != cs[:-1]])
        sums[cs[starts]] += np.add.reduceat(blk[order], starts, axis=0)
    return counts, sums


def gram(m: Matrix, shift: Optional[np.ndarray] = None, row_scale: Optional[np.ndarray] = None) -> np.ndarray:
    """``sum_i s_i^2 (x_i - shift)(x_i - shift)^T`` as a full symmetric (D, D) float64 matrix."""
    d = m.d
    acc = np.zeros((d, d), order="F")
    for s, e, blk in row_blocks(m):
        if shift is not None:
            blk -= shift
        if row_scale is not None:
            blk *= row_scale[s:e, None]
        # dsyrk on blk^T (a Fortran view, no copy): C += A A^T, upper triangle only (half the GEMM).
        acc = blas.dsyrk(1.0, blk.T, beta=1.0, c=acc, trans=0, lower=0, overwrite_c=1)
    upper = np.triu(acc)
    return upper + np.triu(upper, 1).T


def project(m: Matrix, W: np.ndarray, b: Optional[np.ndarray] = None) -> np.ndarray:
    """``X W^T + b`` in float64, (N, K)."""
    W = np.asarray(W, dtype=np.float64)
    out = np.empty((m.n, W.shape[0]))
    for s, e, blk in row_blocks(m):
        out[s:e] = blk @ W.T
    if b is not None:
        out += b
    return out


def row_sq_norms(m: Matrix, shift: Optional[np.ndarray] = None) -> np.ndarray:
    """``|x_i - shift|^2`` per row, float64 (N,)."""
    out = np.empty(m.n)
    for s, e, blk in row_blocks(m):
        if shift is not None:
            blk -= shift
        out[s:e] = np.einsum("ij,ij->i", blk, blk)
    return out


def eigh_desc(G: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (descending) and eigenvectors (columns, same order) of a symmetric matrix."""
    w, V = np.linalg.eigh(G)
    return w[::-1].copy(), V[:, ::-1].copy()


def mean_and_centred_gram(m: Matrix) -> Tuple[np.ndarray, np.ndarray]:
    """Column mean and ``sum_i (x_i - mean)(x_i - mean)^T``; the shift keeps the Gram accurate."""
    mean = column_sum(m) / m.n
    return mean, gram(m, shift=mean)


def column_sum(m: Matrix) -> np.ndarray:
    total = np.zeros(m.d)
    for _, _, blk in row_blocks(m):
        total += blk.sum(axis=0)
    return total


def pca(m: Matrix, n_components: Optional[int] = None, var_ratio: Optional[float] = None):
    """Exact PCA from one eigensolve of the centred Gram.

    Returns (mean, components (K, D), explained variance (K,) with the 1/(N-1) convention).
    ``var_ratio`` follows scikit-learn's rule: the smallest K whose cumulative explained-variance
    ratio exceeds it. Component signs follow scikit-learn's ``svd_flip`` on V^T (largest-|.| entry of
    each component positive) so that projections are reproducible.
    """
    mean, G = mean_and_centred_gram(m)
    w, V = eigh_desc(G)
    w = np.maximum(w, 0.0)
    if var_ratio is not None:
        total = w.sum()
        ratio = np.cumsum(w / total) if total > 0 else np.ones_like(w)
        n_components = int(np.searchsorted(ratio, var_ratio, side="right") + 1)
    k = min(int(n_components), m.d)
    comps = V[:, :k].T.copy()
    big = np.argmax(np.abs(comps), axis=1)
    signs = np.sign(comps[np.arange(k), big])
    signs[signs == 0] = 1.0
    comps *= signs[:, None]
    return mean, comps, w[:k] / max(m.n - 1, 1)
