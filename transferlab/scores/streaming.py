"""Streaming LogME, H-score and regularised H-score: one pass over chunks, mergeable partial states.

    state = tl.scores.streaming.LogMEStream()
    for X_chunk, y_chunk in bank:               # any chunk sizes, e.g. a memory-mapped bank in blocks
        state.update(X_chunk, y_chunk)
    other = LogMEStream().update(X_rest, y_rest)  # e.g. on another worker
    state.merge(other).compute()                  # == tl.logme(all rows, all labels) (to ~1e-12)

Every state holds the same sufficient statistics, accumulated through the Gram seam (the ``lda``
kernels) about a fixed shift ``a`` (the mean of the first chunk: it keeps the Gram accurate when the
features share a large offset): n, per-label counts and sums of ``u = x - a``, ``G = sum u u^T``,
and for the regularised H-score ``sum |u|^4`` and ``sum |u|^2 u``. Merging re-expresses the other
state about this state's shift exactly (binomial expansions, no approximation), so any merge order
gives the same statistics up to float64 rounding. Labels may be of any sortable type and are mapped
to 0..C-1 in sorted order at ``compute()``, as the one-shot scores do; a label seen in one chunk
only is fine. Memory: O(D^2 + C D), independent of N.

SFDA is not offered here: its second fit needs the first fit's probabilities of every row, i.e.
a second pass over the bank.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional

import numpy as np

from . import _gram
from .. import _backend
from .._arrays import as_labels, as_matrix, check_finite
from .hscore import _warn_saturation, hscore_from_stats, reg_hscore_from_stats
from .logme import COMPATS, logme_from_stats

__all__ = ["GramStream", "LogMEStream", "HScoreStream", "RegHScoreStream"]


class GramStream:
    """Sufficient statistics of the Gram-family scores over all rows seen so far."""

    def __init__(self) -> None:
        self.n = 0
        self.d: Optional[int] = None
        self.shift: Optional[np.ndarray] = None
        self.gram: Optional[np.ndarray] = None  # sum u u^T, u = x - shift
        self.col_sum: Optional[np.ndarray] = None  # sum u
        self.sq_u: Optional[np.ndarray] = None  # sum |u|^2 u
        self.fourth = 0.0  # sum |u|^4
        self._slots: Dict[Any, int] = {}
        self._labels: List[Any] = []
        self._counts = np.zeros(0, dtype=np.int64)
        self._sums = np.zeros((0, 0))

    # ------------------------------------------------------------------ accumulation
    def update(self, features, labels) -> "GramStream":
        """Add a chunk of rows (N_chunk x D features, N_chunk labels). Returns self."""
        m = as_matrix(features, "features")
        lab = as_labels(labels, m.n, "labels", min_classes=1)
        check_finite(m, "raise")
        if self.d is None:
            self._start(m.d, _backend.to_host(m).to_float64_host().mean(axis=0))
        elif m.d != self.d:
            raise ValueError(f"features chunk has n_features={m.d}, earlier chunks had {self.d}")
        mat = _backend.to_host(m)  # the Gram seam works on the host
        slots = self._slots_of(lab.classes)
        codes = slots[lab.codes].astype(np.int32)
        counts, sums = _gram.class_sums(mat, codes, len(self._labels), shift=self.shift)
        self._counts += counts
        self._sums += sums
        self.gram += _gram.gram(mat, shift=self.shift)
        self.col_sum += sums.sum(axis=0)
        sq = _gram.row_sq_norms(mat, shift=self.shift)
        self.fourth += float(np.sum(sq * sq))
        _, s2 = _gram.class_sums(mat, np.zeros(mat.n, dtype=np.int32), 1, shift=self.shift, row_weight=sq)
        self.sq_u += s2[0]
        self.n += mat.n
        return self

    def merge(self, other: "GramStream") -> "GramStream":
        """Add another state's rows (computed anywhere, any shift). Returns self; ``other`` is unchanged."""
        if not isinstance(other, GramStream):
            raise TypeError(f"can only merge another streaming state, got {type(other).__name__}")
        if other.n == 0:
            return self
        if self.d is None:
            self._start(other.d, other.shift.copy())
        elif other.d != self.d:
            raise ValueError(f"cannot merge states with n_features={self.d} and {other.d}")
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
        slots = self._slots_of(np.asarray(other._labels, dtype=object))
        np.add.at(self._counts, slots, other._counts)
        np.add.at(self._sums, slots, other._sums + other._counts[:, None] * delta)
        self.n += n
        return self

    # ------------------------------------------------------------------ statistics for compute()
    def _sorted(self):
        """(counts, sums of u) in sorted label order, as np.unique orders them in the one-shot scores."""
        if self.n == 0:
            raise ValueError("empty feature bank: n_samples=0 (no rows were added to the stream)")
        keep = self._counts > 0
        labels = np.asarray(self._labels, dtype=object)[keep]
        order = np.argsort(as_labels(labels, min_classes=1).codes, kind="stable")
        idx = np.flatnonzero(keep)[order]
        if idx.size < 2:
            raise ValueError(f"need at least 2 classes, got {idx.size}")
        if self.n < 2:
            raise ValueError(f"need at least 2 samples, got n_samples={self.n}")
        return self._counts[idx], self._sums[idx]

    def centred(self):
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

    def uncentred(self):
        """(X^T X, class sums of x, counts)."""
        counts, sums = self._sorted()
        a, s = self.shift, self.col_sum
        G = self.gram + np.outer(a, s) + np.outer(s, a) + self.n * np.outer(a, a)
        return (G + G.T) / 2.0, sums + counts[:, None] * a, counts

    # ------------------------------------------------------------------ helpers
    def _start(self, d: int, shift: np.ndarray) -> None:
        self.d = d
        self.shift = np.asarray(shift, dtype=np.float64)
        self.gram = np.zeros((d, d))
        self.col_sum = np.zeros(d)
        self.sq_u = np.zeros(d)
        self._sums = np.zeros((0, d))

    def _slots_of(self, classes) -> np.ndarray:
        """Slot index of each label value, adding new labels at the end."""
        out = np.empty(len(classes), dtype=np.int64)
        for i, c in enumerate(classes):
            key = c.item() if hasattr(c, "item") else c
            if key not in self._slots:
                self._slots[key] = len(self._labels)
                self._labels.append(key)
            out[i] = self._slots[key]
        grow = len(self._labels) - self._counts.shape[0]
        if grow:
            self._counts = np.concatenate([self._counts, np.zeros(grow, dtype=np.int64)])
            self._sums = np.concatenate([self._sums, np.zeros((grow, self.d))])
        return out


class LogMEStream(GramStream):
    """Streaming :func:`transferlab.logme` (``compat`` as there)."""

    def __init__(self, compat: str = "exact") -> None:
        if compat not in COMPATS:
            raise ValueError(f"compat must be one of {COMPATS}, got {compat!r}")
        super().__init__()
        self.compat = compat

    def compute(self) -> float:
        G, sums, counts = self.uncentred()
        return logme_from_stats(G, sums, counts, self.n, self.compat)


class HScoreStream(GramStream):
    """Streaming :func:`transferlab.hscore` (warns when N <= D, as the one-shot score does)."""

    def compute(self) -> float:
        S, sums, counts, _ = self.centred()
        _warn_saturation(self.n, self.d, "hscore")
        return hscore_from_stats(S, sums, counts)


class RegHScoreStream(GramStream):
    """Streaming :func:`transferlab.reg_hscore`."""

    def compute(self) -> float:
        S, sums, counts, fourth = self.centred()
        return reg_hscore_from_stats(S, sums, counts, fourth, self.n)
