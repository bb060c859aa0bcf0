"""Streaming SFDA: :func:`transferlab.sfda` over a bank read chunk by chunk, in three passes.

The one-shot score fits twice and predicts once; each fit needs statistics of every row, so each
step is a pass here (the formulas are the one-shot's own functions in ``sfda/one_shot.py`` / ``kernels.lda``):

1. counts, class sums and the Gram about a shift (the Gram family's accumulation, ``GramStream``:
   the shift is the first chunk's mean and merges re-express a state about another's shift
   exactly). End: ``lda.scatter_from_sums`` -> the scatter statistics, ``sfda.first_fit``
   -> lambda and the first fit, ``sfda.confmix_anchors`` -> the anchors.
2. per chunk, the softened probability of each row's own class under the first fit
   (``sfda._softened_own_prob``) and the ConfMix rows ``x~_i = p_i x_i + (1 - p_i) anchor[y_i]``,
   built in bounded float64 row blocks; their class sums and Gram about the total mean of pass 1
   (the one-shot's centring point). End: the refit with the same lambda (``sfda._fit``).
3. the true class's probability (``log``: log-probability) under the refit, summed
   (``sfda._mixed_true_class_sum``); ``compute()`` divides by N.

Everything runs on the host (CUDA chunks are copied there). Memory: O(D^2 + C D), independent of
N. The number equals the one-shot's up to the rounding of the summation order (the tests ask 1e-9
relative); with N <= D ``compute()`` gives the one-shot's saturation warning.
"""
from __future__ import annotations

import numpy as np

from transferlab.core import devices
from transferlab.core.arrays import Matrix, as_matrix
from transferlab.scores import _gram
from transferlab.kernels import lda
from transferlab.scores._stream import ScoreStream
from transferlab.scores.sfda.one_shot import (_NumpyLA, _fit, _mixed_true_class_sum, _softened_own_prob, check_options, confmix_anchors, first_fit, warn_saturation)
from transferlab.scores._stream_parts import GramStream

__all__ = ["SFDAStream"]


class SFDAStream(GramStream):
    """Streaming :func:`transferlab.sfda` (``a``, ``log``, ``solver`` as there); three passes."""

    n_passes = 3

    def __init__(self, a: float = 5.0, log: bool = False, solver: str = "cholesky") -> None:
        check_options(a, log, solver)
        ScoreStream.__init__(self, a=float(a), log=bool(log), solver=solver)

    # ------------------------------------------------------------------ passes
    def _reset_pass(self) -> None:
        if self.pass_index == 0:
            super()._reset_pass()
        elif self.pass_index == 1:
            C, d = self.means.shape
            self.mix_sums = np.zeros((C, d))  # sum_{y_i=c} (x~_i - h), sorted label order
            self.mix_gram = np.zeros((d, d))  # sum_i (x~_i - h)(x~_i - h)^T
        else:
            self.total = 0.0  # sum_i p(y_i | x~_i) (log: log p)

    def _update(self, m: Matrix, slots: np.ndarray) -> None:
        if self.pass_index == 0:
            super()._update(m, slots)
            return
        mat = devices.to_host(m)
        y = self.rank[slots].astype(np.int32)
        p = _softened_own_prob(mat, y, self.coef1, self.intercept1, "cpu", _NumpyLA)
        if self.pass_index == 1:
            C = self.means.shape[0]
            for s, e, blk in _gram.row_blocks(mat):  # float64 copies: mixed in place
                ps = p[s:e, None]
                blk *= ps
                blk += (1.0 - ps) * self.anchors[y[s:e]]
                xt = as_matrix(blk, "features")
                _, self.mix_sums = lda.class_sums(xt, y[s:e], C, "cpu", shift=self.h, sums=self.mix_sums)
                self.mix_gram = lda.gram(xt, "cpu", shift=self.h, out=self.mix_gram)
        else:
            self.total += _mixed_true_class_sum(mat, y, p, self.anchors, self.coef2, self.intercept2, "cpu",
                                                _NumpyLA, self.params["log"])

    def _merge(self, other: "SFDAStream", slots: np.ndarray) -> None:
        # Later passes merge only forks of this state (the base checks the context): same labels.
        if self.pass_index == 0:
            super()._merge(other, slots)
        elif self.pass_index == 1:
            self.mix_sums += other.mix_sums
            self.mix_gram += other.mix_gram
        else:
            self.total += other.total

    def _end_pass(self) -> None:
        a, solver = self.params["a"], self.params["solver"]
        if self.pass_index == 0:
            if self.n < 2:
                raise ValueError(f"sfda needs at least 2 samples (two classes), got n_samples={self.n}")
            counts, sums = self._sorted()  # "need at least 2 classes" as the one-shot says it
            idx = self.sorted_slots(self._counts)
            self.rank = np.empty(len(self.labels), dtype=np.int64)  # slot -> the one-shot's code
            self.rank[idx] = np.arange(idx.size)
            st1 = lda.scatter_from_sums(counts, sums, self.gram, self.shift)
            self.lam, self.coef1, self.intercept1 = first_fit(st1, a, _NumpyLA, solver)
            self.counts, self.means, self.h = st1.counts, st1.means, st1.mean
            self.anchors = confmix_anchors(st1.means)
            super()._reset_pass()  # drop the pass-1 accumulators: forks carry only the context
        elif self.pass_index == 1:
            st2 = lda.scatter_from_sums(self.counts, self.mix_sums, self.mix_gram, self.h)
            self.coef2, self.intercept2 = _fit(st2, self.lam, _NumpyLA, solver)
            del self.mix_sums, self.mix_gram

    def _compute(self) -> float:
        warn_saturation(self.n, self.d, stacklevel=4)
        return self.total / self.n
