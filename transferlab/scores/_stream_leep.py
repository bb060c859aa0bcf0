"""Streaming LEEP and NCE: the source-probability scores over a bank read chunk by chunk.

``LeepStream`` (two passes, as the one-shot :func:`transferlab.leep` reads P twice):

* pass 1 validates every chunk exactly as the one-shot score does (``_leep_stats.validate_probs``:
  NaN/inf, negative entries -> the ``from_logits`` hint, rows not summing to 1) and sums the joint
  ``S[y, z] = sum_{y_i = y} P[i, z]`` (float64, ``_leep_stats.joint_counts``); at its end the
  conditional ``P(y | z)`` (``_leep_stats.conditional``) becomes the context;
* pass 2 sums ``log EEP_i`` (``_leep_stats.eep``); ``compute()`` divides by N.

``NceStream`` (one pass): the integer joint counts of (label, argmax_z P[i, z]) (``nce.hard_labels``:
the same validation and tie rule, lowest source class), then ``nce.nce_from_joint``.

Both run on the host (CUDA chunks are copied there: a chunk's work is one pass over its rows).
Labels live in first-seen slots while the first pass runs; the statistics are put in sorted label
order (the one-shot's ``np.unique`` codes) when it ends, so the numbers are the one-shot's up to
the rounding of the summation order. Memory: O(C Z), independent of N.

Row numbers in validation errors count from the start of the chunk passed to ``update()``.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .. import _backend
from .._arrays import Labels, Matrix
from . import _leep_stats
from ._stream import ScoreStream, register_stream
from .leep import _reject_swapped
from .nce import hard_labels, joint_counts, nce_from_joint

__all__ = ["LeepStream", "NceStream"]


def _check_from_logits(from_logits: Any) -> bool:
    if not isinstance(from_logits, (bool, np.bool_)):
        raise TypeError(f"from_logits must be a bool, got {type(from_logits).__name__}")
    return bool(from_logits)


def _in_chunk(err: ValueError, start: int) -> ValueError:
    """The one-shot's message, saying where the chunk's row numbers start."""
    return ValueError(f"{err} [rows of this update() chunk, which starts after {start} rows of this pass]")


def _labels(codes: np.ndarray, n_classes: int) -> Labels:
    codes = np.ascontiguousarray(codes, dtype=np.int32)
    return Labels(codes, np.arange(n_classes), np.bincount(codes, minlength=n_classes).astype(np.int64))


@register_stream("leep")
class LeepStream(ScoreStream):
    """Streaming :func:`transferlab.leep` (``from_logits`` as there); two passes over the rows."""

    inputs = "probs"
    n_passes = 2

    def __init__(self, from_logits: bool = False) -> None:
        super().__init__(from_logits=_check_from_logits(from_logits))

    def update(self, x: Any, labels: Any) -> "LeepStream":
        _reject_swapped(x, labels)  # leep(labels, probs) is an error that says so, as in the one-shot
        return super().update(x, labels)

    # ------------------------------------------------------------------ passes
    def _reset_pass(self) -> None:
        if self.pass_index == 0:
            self.joint = np.zeros((0, self.d or 0))  # S per label slot (float64, not divided by N)
        else:
            self.log_eep = 0.0  # sum_i log EEP_i

    def _validated(self, m: Matrix, codes: np.ndarray, n_classes: int) -> _leep_stats.ProbInput:
        try:
            return _leep_stats.validate_probs(_backend.to_host(m), _labels(codes, n_classes),
                                              from_logits=self.params["from_logits"], device="cpu")
        except ValueError as e:
            raise _in_chunk(e, self.n) from None

    def _update(self, m: Matrix, slots: np.ndarray) -> None:
        if self.pass_index == 0:
            p = self._validated(m, slots, len(self.labels))
            self.joint = self._grow(self.joint if self.joint.size else np.zeros((0, m.d)))
            self.joint += _leep_stats.joint_counts(p, device="cpu")
        else:
            p = self._validated(m, self.rank[slots], self.cond.shape[0])
            eep = _leep_stats.eep(p, self.cond, device="cpu")
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
        self.cond = _leep_stats.conditional(self.joint[idx])
        self.joint = np.zeros((0, self.d))  # the context is cond: forks need not carry S

    def _compute(self) -> float:
        return self.log_eep / self.n


@register_stream("nce")
class NceStream(ScoreStream):
    """Streaming :func:`transferlab.nce` (``from_logits`` as there); one pass, integer counts, so
    the number is bitwise the one-shot's whatever the chunks and merge order."""

    inputs = "probs"

    def __init__(self, from_logits: bool = False) -> None:
        super().__init__(from_logits=_check_from_logits(from_logits))

    def _reset_pass(self) -> None:
        self.joint = np.zeros((0, self.d or 0), dtype=np.int64)  # #(label slot, argmax z)

    def _update(self, m: Matrix, slots: np.ndarray) -> None:
        try:
            z = hard_labels(_backend.to_host(m), self.params["from_logits"])
        except ValueError as e:
            raise _in_chunk(e, self.n) from None
        self.joint = self._grow(self.joint if self.joint.size else np.zeros((0, m.d), dtype=np.int64))
        self.joint += joint_counts(z, slots, len(self.labels), m.d)

    def _merge(self, other: "NceStream", slots: np.ndarray) -> None:
        self.joint = self._grow(self.joint if self.joint.size else np.zeros((0, other.d), dtype=np.int64))
        np.add.at(self.joint, slots, other.joint)

    def _compute(self) -> float:
        if self.n < 2:
            raise ValueError(f"need at least 2 samples, got n_samples={self.n}")
        idx = self.sorted_slots(self.joint.sum(axis=1))
        if idx.size < 2:
            raise ValueError(f"need at least 2 classes, got {idx.size}")
        return nce_from_joint(self.joint[idx])
