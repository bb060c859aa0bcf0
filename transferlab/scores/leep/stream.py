"""Streaming LEEP: the source-probability score over a bank read chunk by chunk.

``LeepStream`` (two passes, as the one-shot :func:`transferlab.leep` reads P twice):

* pass 1 validates every chunk exactly as the one-shot score does (``leep_stats.validate_probs``:
  NaN/inf, negative entries -> the ``from_logits`` hint, rows not summing to 1) and sums the joint
  ``S[y, z] = sum_{y_i = y} P[i, z]`` (float64, ``leep_stats.joint_counts``); at its end the
  conditional ``P(y | z)`` (``leep_stats.conditional``) becomes the context;
* pass 2 sums ``log EEP_i`` (``leep_stats.eep``); ``compute()`` divides by N.

It runs on the host (CUDA chunks are copied there: a chunk's work is one pass over its rows).
Labels live in first-seen slots while the first pass runs; the statistics are put in sorted label
order (the one-shot's ``np.unique`` codes) when it ends, so the numbers are the one-shot's up to
the rounding of the summation order. Memory: O(C Z), independent of N.

Row numbers in validation errors count from the start of the chunk passed to ``update()``.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from transferlab.core import devices
from transferlab.core.arrays import Labels, Matrix
from transferlab.scores.leep import _stats as leep_stats
from transferlab.scores._stream import ScoreStream
from transferlab.scores.leep.one_shot import _reject_swapped
from transferlab.core.inputs import check_bool

__all__ = ["LeepStream", "check_from_logits", "in_chunk"]


def check_from_logits(from_logits: Any) -> bool:
    return check_bool(from_logits, "from_logits")


def in_chunk(err: ValueError, start: int) -> ValueError:
    """The one-shot's message, saying where the chunk's row numbers start."""
    return ValueError(f"{err} [rows of this update() chunk, which starts after {start} rows of this pass]")


def _labels(codes: np.ndarray, n_classes: int) -> Labels:
    codes = np.ascontiguousarray(codes, dtype=np.int32)
    return Labels(codes, np.arange(n_classes), np.bincount(codes, minlength=n_classes).astype(np.int64))


class LeepStream(ScoreStream):
    """Streaming :func:`transferlab.leep` (``from_logits`` as there); two passes over the rows."""

    inputs = "probs"
    n_passes = 2

    def __init__(self, from_logits: bool = False) -> None:
        super().__init__(from_logits=check_from_logits(from_logits))

    def update(self, x: Any, labels: Any) -> "LeepStream":
        _reject_swapped(x, labels)  # leep(labels, probs) is an error that says so, as in the one-shot
        return super().update(x, labels)

    # ------------------------------------------------------------------ passes
    def _reset_pass(self) -> None:
        if self.pass_index == 0:
            self.joint = np.zeros((0, self.d or 0))  # S per label slot (float64, not divided by N)
        else:
            self.log_eep = 0.0  # sum_i log EEP_i

    def _validated(self, m: Matrix, codes: np.ndarray, n_classes: int) -> leep_stats.ProbInput:
        try:
            return leep_stats.validate_probs(devices.to_host(m), _labels(codes, n_classes),
                                              from_logits=self.params["from_logits"], device="cpu")
        except ValueError as e:
            raise in_chunk(e, self.n) from None

    def _update(self, m: Matrix, slots: np.ndarray) -> None:
        if self.pass_index == 0:
            p = self._validated(m, slots, len(self.labels))
            self.joint = self._grow(self.joint if self.joint.size else np.zeros((0, m.d)))
            self.joint += leep_stats.joint_counts(p, device="cpu")
        else:
            p = self._validated(m, self.rank[slots], self.cond.shape[0])
            eep = leep_stats.eep(p, self.cond, device="cpu")
            # log(0) = -inf only on a float64 underflow: the one-shot's honest answer too.
            with np.errstate(divide="ignore"):
                self.log_eep += float(np.sum(np.log(eep)))

    def _merge(self, other: "LeepStream", slots: np.ndarray) -> None:
        if self.pass_index == 0:
            self.joint = self._grow(self.joint if self.joint.size else np.zeros((0, other.d)))
            np.add.at(self.joint, slots, other.joint)
        else:
            self.log_eep += other.log_eep

    def _end_pass(self) -> None:
        if self.pass_index != 0:
            return
        if self.n < 2:
            raise ValueError(f"LEEP needs at least 2 samples (of at least 2 classes), got n_samples={self.n}")
        idx = self.labels.order()  # every slot holds rows (slots are made by rows); sorted label order
        if idx.size < 2:
            raise ValueError(f"need at least 2 classes, got {idx.size}")
        self.rank = np.empty(len(self.labels), dtype=np.int64)  # slot -> the one-shot's code
        self.rank[idx] = np.arange(idx.size)
        self.cond = leep_stats.conditional(self.joint[idx])
        self.joint = np.zeros((0, self.d))  # the context is cond: forks need not carry S

    def _compute(self) -> float:
        return self.log_eep / self.n
