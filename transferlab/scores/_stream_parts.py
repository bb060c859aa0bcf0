"""Pieces the multi-pass streaming states share (GBC, NLEEP, TransRate, PARC).

* :class:`ShiftedGram`: the first pass of an exact PCA. It accumulates, about a fixed shift ``a``
  (the mean of the first rows it sees: keeps the Gram accurate under a large common offset), the
  row count, ``s = sum (x - a)`` and ``G = sum (x - a)(x - a)^T`` through the Gram seam, merges
  another accumulator exactly (re-expressed about this shift), and ends in ``_gram.pca_from_gram``
  (the one-shot ``_gram.pca``'s eigensolve and component rules). Memory O(D^2).
* :class:`ClassMoments`: per-class count, mean and sum of squared deviations (per dimension) of
  float64 rows, chunk by chunk (two passes inside a chunk) and merged with Chan et al.'s pairwise
  update, so no variance is ever formed from raw sums of squares (no cancellation). Memory O(C K).
* :func:`host_rows`: a chunk as float64 host rows (never the caller's buffer).
* :class:`GramStream`: the one-pass state of the Gram family (LogME, H-score, SFDA's first pass).
  The Gram family's states hold the same sufficient statistics, accumulated through the Gram seam (the ``lda`` kernels) about a fixed
  shift ``a`` (the mean of the first chunk: it keeps the Gram accurate when the features share a large
  offset): n, per-label counts and sums of ``u = x - a``, ``G = sum u u^T``, and for the regularised
  H-score ``sum |u|^4`` and ``sum |u|^2 u``. Merging re-expresses the other state about this state's
  shift exactly (binomial expansions, no approximation), so any merge order gives the same statistics
  up to float64 rounding. Memory: O(D^2 + C D), independent of N.
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

from transferlab.core import devices
from transferlab.core.arrays import Matrix
from transferlab.scores import _gram
from transferlab.scores._stream import ScoreStream


def host_rows(m: Matrix) -> np.ndarray:
    """The rows of ``m`` as a float64 host array that is safe to modify (a copy when needed)."""
    h = devices.to_host(m)
    blk = h.to_float64_host()
    if np.may_share_memory(blk, h.data):
        blk = blk.copy()
    return blk


def group_sums(Z: np.ndarray, slots: np.ndarray, order: np.ndarray, n_slots: int) -> np.ndarray:
    """(n_slots, K): the sum of the rows of Z per slot (``order`` = a stable argsort of ``slots``)."""
    out = np.zeros((n_slots, Z.shape[1]))
    if Z.shape[0]:
        s = slots[order]
        starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
        out[s[starts]] = np.add.reduceat(Z[order], starts, axis=0)
    return out


class ShiftedGram:
    """n, ``sum (x - a)`` and ``sum (x - a)(x - a)^T`` over the rows seen (see the module docstring)."""

    def __init__(self) -> None:
        self.n = 0
        self.shift: Optional[np.ndarray] = None
        self.col_sum: Optional[np.ndarray] = None
        self.gram: Optional[np.ndarray] = None

    def update(self, m: Matrix) -> None:
        m = devices.to_host(m)  # the Gram seam works on the host
        if self.shift is None:
            self._start(m.to_float64_host().mean(axis=0))
        _, s = _gram.class_sums(m, np.zeros(m.n, dtype=np.int32), 1, shift=self.shift)
        self.col_sum += s[0]
        self.gram += _gram.gram(m, shift=self.shift)
        self.n += m.n

    def merge(self, other: "ShiftedGram") -> None:
        if other.n == 0:
            return
        if self.shift is None:
            self._start(other.shift.copy())
        delta = other.shift - self.shift  # other's rows about this shift: u = v + delta
        s = other.col_sum
        self.gram += other.gram + np.outer(delta, s) + np.outer(s, delta) + other.n * np.outer(delta, delta)
        self.col_sum += s + other.n * delta
        self.n += other.n

    def mean_and_centred(self):
        """(column mean, ``sum (x - mean)(x - mean)^T``) as ``_gram.mean_and_centred_gram`` gives them."""
        dm = self.col_sum / self.n  # mean - shift
        S = self.gram - np.outer(self.col_sum, dm)
        return self.shift + dm, (S + S.T) / 2.0

    def pca(self, n_components: Optional[int] = None, var_ratio: Optional[float] = None):
        """``_gram.pca`` of the rows seen: (mean, components (K, D), explained variance)."""
        mean, S = self.mean_and_centred()
        return _gram.pca_from_gram(mean, S, self.n, n_components, var_ratio)

    def _start(self, shift: np.ndarray) -> None:
        d = shift.shape[0]
        self.shift = np.asarray(shift, dtype=np.float64)
        self.col_sum = np.zeros(d)
        self.gram = np.zeros((d, d))


class ClassMoments:
    """Per-slot count, mean and per-dimension sum of squared deviations of float64 rows."""

    def __init__(self, k: int = 0) -> None:
        self.counts = np.zeros(0, dtype=np.int64)
        self.means = np.zeros((0, k))
        self.m2 = np.zeros((0, k))

    def grow(self, n_slots: int) -> None:
        extra = n_slots - self.counts.shape[0]
        if extra > 0:
            self.counts = np.pad(self.counts, (0, extra))
            self.means = np.pad(self.means, ((0, extra), (0, 0)))
            self.m2 = np.pad(self.m2, ((0, extra), (0, 0)))

    def update(self, Z: np.ndarray, slots: np.ndarray, n_slots: int) -> None:
        """Add rows Z (n, K) with label slots: the chunk's own moments (two passes), then Chan's merge."""
        if self.means.shape[1] != Z.shape[1]:
            self.means = np.zeros((self.counts.shape[0], Z.shape[1]))
            self.m2 = np.zeros_like(self.means)
        counts = np.bincount(slots, minlength=n_slots).astype(np.int64)
        order = np.argsort(slots, kind="stable")
        sums = group_sums(Z, slots, order, n_slots)
        live = counts > 0
        means = np.zeros_like(sums)
        means[live] = sums[live] / counts[live, None]
        dev = Z - means[slots]
        self._combine(np.arange(n_slots), counts, means, group_sums(dev * dev, slots, order, n_slots))

    def merge(self, other: "ClassMoments", slots: np.ndarray) -> None:
        """Add ``other`` (its slot j is this object's slot ``slots[j]``)."""
        if other.counts.size == 0:
            return
        if self.means.shape[1] != other.means.shape[1]:
            self.means = np.zeros((self.counts.shape[0], other.means.shape[1]))
            self.m2 = np.zeros_like(self.means)
        self._combine(np.asarray(slots[: other.counts.size]), other.counts, other.means, other.m2)

    def _combine(self, slots, counts, means, m2) -> None:
        self.grow(int(slots.max()) + 1 if slots.size else 0)
        live = counts > 0
        slots, counts, means, m2 = slots[live], counts[live], means[live], m2[live]
        na = self.counts[slots].astype(np.float64)
        nb = counts.astype(np.float64)
        n = na + nb
        delta = means - self.means[slots]
        self.means[slots] = self.means[slots] + delta * (nb / n)[:, None]
        self.m2[slots] = self.m2[slots] + m2 + delta * delta * (na * nb / n)[:, None]
        self.counts[slots] += counts

    def moments(self, idx: np.ndarray):
        """(means, population variances) of the slots ``idx`` (in that order)."""
        return self.means[idx], self.m2[idx] / self.counts[idx, None]


def check_counts(n: int, n_classes: int) -> None:
    """The one-shot scores' minimums (``_common.prepare``: samples first, then classes)."""
    if n < 2:
        raise ValueError(f"need at least 2 samples, got n_samples={n}")
    if n_classes < 2:
        raise ValueError(f"need at least 2 classes, got {n_classes}")


class GramStream(ScoreStream):
    """Sufficient statistics of the Gram-family scores over all rows seen so far (one pass)."""

    # ------------------------------------------------------------------ accumulation
    def _reset_pass(self) -> None:
        self.shift: Optional[np.ndarray] = None
        self.gram: Optional[np.ndarray] = None  # sum u u^T, u = x - shift
        self.col_sum: Optional[np.ndarray] = None  # sum u
        self.sq_u: Optional[np.ndarray] = None  # sum |u|^2 u
        self.fourth = 0.0  # sum |u|^4
        self._counts = np.zeros(0, dtype=np.int64)
        self._sums = np.zeros((0, 0))

    def _update(self, m, slots) -> None:
        mat = devices.to_host(m)  # the Gram seam works on the host
        if self.shift is None:
            self._start(mat.d, mat.to_float64_host().mean(axis=0))
        self._counts, self._sums = self._grow(self._counts), self._grow(self._sums)
        counts, sums = _gram.class_sums(mat, slots.astype(np.int32), len(self.labels), shift=self.shift)
        self._counts += counts
        self._sums += sums
        self.gram += _gram.gram(mat, shift=self.shift)
        self.col_sum += sums.sum(axis=0)
        sq = _gram.row_sq_norms(mat, shift=self.shift)
        self.fourth += float(np.sum(sq * sq))
        _, s2 = _gram.class_sums(mat, np.zeros(mat.n, dtype=np.int32), 1, shift=self.shift, row_weight=sq)
        self.sq_u += s2[0]

    def _merge(self, other: "GramStream", slots: np.ndarray) -> None:
        if self.shift is None:
            self._start(other.d, other.shift.copy())
        # Rows of ``other`` about this shift: u = v + delta, v = x - other.shift.
        delta = other.shift - self.shift
        n, s, G = other.n, other.col_sum, other.gram
        dd = float(delta @ delta)
        ds = float(delta @ s)
        sum_sq = float(np.trace(G))
        Gd = G @ delta
        self.fourth += (other.fourth + 4.0 * float(delta @ other.sq_u) + 4.0 * float(delta @ Gd)
                        + 2.0 * dd * sum_sq + 4.0 * dd * ds + n * dd * dd)
        self.sq_u += other.sq_u + 2.0 * Gd + dd * s + delta * sum_sq + 2.0 * delta * ds + n * dd * delta
        self.gram += G + np.outer(delta, s) + np.outer(s, delta) + n * np.outer(delta, delta)
        self.col_sum += s + n * delta
        self._counts, self._sums = self._grow(self._counts), self._grow(self._sums)
        np.add.at(self._counts, slots, other._counts)
        np.add.at(self._sums, slots, other._sums + other._counts[:, None] * delta)

    # ------------------------------------------------------------------ statistics for compute()
    def _sorted(self):
        """(counts, sums of u) in sorted label order, as np.unique orders them in the one-shot scores."""
        idx = self.sorted_slots(self._counts)
        if idx.size < 2:
            raise ValueError(f"need at least 2 classes, got {idx.size}")
        if self.n < 2:
            raise ValueError(f"need at least 2 samples, got n_samples={self.n}")
        return self._counts[idx], self._sums[idx]

    def centred(self) -> Tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        """(centred Gram, centred class sums, counts, sum |x - mean|^4)."""
        counts, sums = self._sorted()
        n, s, G = self.n, self.col_sum, self.gram
        dm = s / n  # mean - shift
        S = G - np.outer(s, dm)
        S = (S + S.T) / 2.0
        dd = float(dm @ dm)
        fourth = (self.fourth - 4.0 * float(dm @ self.sq_u) + 4.0 * float(dm @ (G @ dm))
                  + 2.0 * dd * float(np.trace(G)) - 4.0 * dd * float(dm @ s) + n * dd * dd)
        return S, sums - counts[:, None] * dm, counts, fourth

    def uncentred(self) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(X^T X, class sums of x, counts)."""
        counts, sums = self._sorted()
        a, s = self.shift, self.col_sum
        G = self.gram + np.outer(a, s) + np.outer(s, a) + self.n * np.outer(a, a)
        return (G + G.T) / 2.0, sums + counts[:, None] * a, counts

    # ------------------------------------------------------------------ helpers
    def _start(self, d: int, shift: np.ndarray) -> None:
        self.shift = np.asarray(shift, dtype=np.float64)
        self.gram = np.zeros((d, d))
        self.col_sum = np.zeros(d)
        self.sq_u = np.zeros(d)
        self._sums = np.zeros((len(self.labels), d))
        self._counts = np.zeros(len(self.labels), dtype=np.int64)
