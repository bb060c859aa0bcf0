"""Streaming NCE (one pass): the integer joint counts of (label, argmax_z P[i, z]) (``hard_labels``:
the one-shot's validation and tie rule, lowest source class), then ``nce_from_joint``. On the host (CUDA
chunks are copied there); labels and row numbers in errors as in LEEP's stream (``leep.stream``)."""
from __future__ import annotations

import numpy as np

from transferlab.core import devices
from transferlab.core.arrays import Matrix
from transferlab.scores._stream import ScoreStream
from transferlab.scores.leep.stream import check_from_logits, in_chunk
from transferlab.scores.nce.one_shot import hard_labels, joint_counts, nce_from_joint

__all__ = ["NceStream"]


class NceStream(ScoreStream):
    """Streaming :func:`transferlab.nce` (``from_logits`` as there); one pass, integer counts, so
    the number is bitwise the one-shot's whatever the chunks and merge order."""

    inputs = "probs"

    def __init__(self, from_logits: bool = False) -> None:
        super().__init__(from_logits=check_from_logits(from_logits))

    def _reset_pass(self) -> None:
        self.joint = np.zeros((0, self.d or 0), dtype=np.int64)  # #(label slot, argmax z)

    def _update(self, m: Matrix, slots: np.ndarray) -> None:
        try:
            z = hard_labels(devices.to_host(m), self.params["from_logits"])
        except ValueError as e:
            raise in_chunk(e, self.n) from None
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
