"""Streaming TransRate (:func:`transferlab.transrate`): the same number from a bank read chunk by chunk.

Two passes. Pass 1: N and ``sum_i x_i / r_i`` (r_i = |x_i|, or 1 for ``variant="original"``), i.e.
the mean direction mu. Pass 2: each row's Z_i = w_i (x_i / r_i - mu) is known from the row and mu
alone, so the per-class Grams ``Z_c^T Z_c`` are sums over rows (the one-shot's ``subset_gram`` of
each chunk's rows of that class); the overall ``Z^T Z`` is their sum. ``compute()`` takes the
eigenvalues (``gram_eigenvalues``: the top min(n_c, D) of each, as the one-shot's row Gram gives
when a class has n_c <= D rows) and the rank (the one-shot's rule on the overall eigenvalues) and
calls the one-shot's ``transrate_from_eigenvalues``.

Memory: O(C D^2): one D x D float64 Gram per class (C = 100, D = 2048: 3.4 GB), independent of N.
"""
from __future__ import annotations

import numpy as np

from transferlab.core import devices
from transferlab.scores._stream import ScoreStream
from transferlab.scores._stream_parts import check_counts
from transferlab.scores.transrate.one_shot import (check_options, gram_eigenvalues, normalised_sum, row_norms, row_weights, subset_gram, transrate_from_eigenvalues)


class TransRateStream(ScoreStream):
    """Streaming :func:`transferlab.transrate` (``eps`` and ``variant`` as there)."""

    n_passes = 2

    def __init__(self, eps: float = 1e-4, variant: str = "normalized") -> None:
        check_options(eps, variant)
        super().__init__(eps=eps, variant=variant)

    def _reset_pass(self) -> None:
        if self.pass_index == 0:
            self.dir_sum = None  # sum x / r
        self.grams = None  # (slots, D, D): sum over the class's rows of Z_i Z_i^T
        self.counts = np.zeros(0, dtype=np.int64)

    def _update(self, m, slots) -> None:
        m = devices.to_host(m)
        variant = self.params["variant"]
        r = row_norms(m, variant, first_row=self.n)
        if self.pass_index == 0:
            s = normalised_sum(m, r)
            self.dir_sum = s if self.dir_sum is None else self.dir_sum + s
            return
        w = row_weights(m, r, self.mu, variant, first_row=self.n)
        self._grow_grams()
        order = np.argsort(slots, kind="stable")
        bounds = np.r_[0, np.cumsum(np.bincount(slots[order] if slots.size else slots,
                                               minlength=len(self.labels)))]
        for c in np.flatnonzero(np.diff(bounds)):
            rows = order[bounds[c] : bounds[c + 1]]
            self.grams[c] += subset_gram(m.take(rows), r[rows], w[rows], self.mu)
            self.counts[c] += rows.size

    def _merge(self, other: "TransRateStream", slots: np.ndarray) -> None:
        if self.pass_index == 0:
            self.dir_sum = other.dir_sum.copy() if self.dir_sum is None else self.dir_sum + other.dir_sum
            return
        self._grow_grams()
        k = other.counts.size
        self.grams[slots[:k]] += other.grams[:k]
        self.counts[slots[:k]] += other.counts

    def _end_pass(self) -> None:
        if self.pass_index == 0:
            self.mu = self.dir_sum / self.n

    def _compute(self) -> float:
        self._grow_grams()
        idx = self.sorted_slots(self.counts)
        check_counts(self.n, idx.size)
        counts = self.counts[idx]
        total = self.grams[idx].sum(axis=0)
        lam = gram_eigenvalues(total, self.n)
        class_lams = [gram_eigenvalues(self.grams[c], int(self.counts[c])) for c in idx]
        p = self.params
        return transrate_from_eigenvalues(lam, class_lams, counts, self.n, self.d, p["eps"], p["variant"])

    def _grow_grams(self) -> None:
        c = len(self.labels)
        if self.grams is None:
            self.grams = np.zeros((c, self.d, self.d))
            self.counts = np.zeros(c, dtype=np.int64)
        elif self.grams.shape[0] < c:  # later passes see no new labels; kept for safety
            self.grams = self._grow(self.grams)
            self.counts = self._grow(self.counts)
