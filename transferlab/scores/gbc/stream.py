"""Streaming GBC (:func:`transferlab.gbc`): the same number from a bank read chunk by chunk.

Passes: when the features are kept as they are (D <= pca_dims, or pca_dims=None) one pass collects
the per-class count, mean and per-dimension sum of squared deviations (``ClassMoments``: chunk
moments merged with Chan's update, no variance from raw sums of squares). When D > pca_dims, pass 1
accumulates the shifted Gram and column sums of the exact PCA (``ShiftedGram``, ending in the
one-shot's eigensolve ``_gram.pca_from_gram``) and pass 2 collects the class moments of the
projected rows. The score itself is the one-shot's ``gbc_from_moments``.

Memory: O(D^2) in pass 1, O(C K) after it (K = the reduced width); never O(N).
"""
from __future__ import annotations

import numpy as np

from transferlab.scores import _gram
from transferlab.core import devices
from transferlab.scores._stream import ScoreStream
from transferlab.scores._stream_parts import ClassMoments, ShiftedGram, check_counts, host_rows
from transferlab.scores.gbc.one_shot import check_options, gbc_from_moments


class GBCStream(ScoreStream):
    """Streaming :func:`transferlab.gbc` (``gaussian`` and ``pca_dims`` as there).

    ``n_passes`` is 2 until the first rows fix the width, then 1 when no PCA is needed.
    """

    n_passes = 2

    def __init__(self, gaussian: str = "spherical", pca_dims=64) -> None:
        check_options(gaussian, pca_dims)
        super().__init__(gaussian=gaussian, pca_dims=pca_dims)

    @property
    def _reduces(self) -> bool:
        k = self.params["pca_dims"]
        return k is not None and self.d is not None and self.d > k

    def _fix_passes(self) -> None:
        if self.pass_index == 0 and self.d is not None:
            self.n_passes = 2 if self._reduces else 1

    def _pca_pass(self) -> bool:
        return self.pass_index == 0 and self._reduces

    def _reset_pass(self) -> None:
        if self.pass_index == 0:
            self.pca_gram = ShiftedGram()
        self.moments = ClassMoments()

    def _update(self, m, slots) -> None:
        self._fix_passes()
        if self._pca_pass():
            self.pca_gram.update(m)
        elif self._reduces:
            self.moments.update(_gram.project(devices.to_host(m), self.comps, self.bias), slots, len(self.labels))
        else:
            self.moments.update(host_rows(m), slots, len(self.labels))

    def _merge(self, other: "GBCStream", slots: np.ndarray) -> None:
        self._fix_passes()
        if self._pca_pass():
            self.pca_gram.merge(other.pca_gram)
        else:
            self.moments.merge(other.moments, slots)

    def _end_pass(self) -> None:
        if self._pca_pass():
            mean, comps, _ = self.pca_gram.pca(n_components=min(self.params["pca_dims"], self.n))
            self.comps, self.bias = comps, -(comps @ mean)  # as the one-shot gbc.reduce projects
            self.pca_gram = None

    def _compute(self) -> float:
        self.moments.grow(len(self.labels))
        idx = self.sorted_slots(self.moments.counts)
        check_counts(self.n, idx.size)
        means, var = self.moments.moments(idx)
        return gbc_from_moments(means, var, self.params["gaussian"])
