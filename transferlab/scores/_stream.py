"""The streaming protocol every score's state object follows: passes, chunks, merges, forks.

    st = transferlab.scores.streaming.stream("sfda", a=5.0)
    while not st.complete:                       # st.n_passes passes over the SAME rows
        for X_chunk, y_chunk in bank_chunks():   # any chunk sizes, any order within a pass
            st.update(X_chunk, y_chunk)
        st.end_pass()                            # what this pass learnt becomes the next pass's context
    st.compute()                                 # == the one-shot score (to ~1e-12 relative)

(``streaming.run(name, source, labels)`` runs that loop over an array, a memory-mapped bank or a
chunk factory.) A score whose statistics are sums over rows needs one pass (LogME, H-score); one
that needs a fitted quantity before it can sum (LEEP's conditional P(y|z) before the EEP of each
row, SFDA's first fit before the ConfMix) needs more: each pass reads the bank again.

Workers: ``part = st.fork()`` is an empty copy carrying the context of the earlier passes; a worker
feeds it its rows and sends it back (states pickle); ``st.merge(part)`` adds them. Merging is exact
up to float64 rounding in any order, and refuses states from another score, other parameters,
another pass or another context (a fork of a different run).

Rows and labels: ``update(x, labels)``; x is features (N_chunk x D) or source probabilities
(N_chunk x Z) as the score's ``inputs`` says, in any form ``transferlab.core.arrays.as_matrix`` accepts.
Labels may be of any sortable type; they are mapped to 0..C-1 in sorted order as the one-shot
scores do (``LabelSlots``). A label first seen late is fine in the first pass; in later passes a
label (or a row count) the first pass did not see is an error: every pass must see the same rows.

Subclasses implement ``_update(m, slots)`` (m: a validated ``Matrix``; slots: int64 label slots
from ``self.labels``), ``_merge(other)``, ``_reset_pass()`` (zero this pass's accumulators),
``_end_pass()`` (turn this pass's accumulators into the next pass's context) and ``_compute()``.
"""
from __future__ import annotations

import copy
import uuid
from typing import Any, Dict, List, Optional

import numpy as np

from transferlab.core.arrays import Matrix, as_labels, as_matrix
from transferlab.core.inputs import check_finite

__all__ = ["LabelSlots", "ScoreStream"]

class LabelSlots:
    """Label values -> slots in order of first appearance; sorted codes at the end.

    ``slots_of(classes)`` gives (adding unseen values when ``frozen`` is False) the slot of each
    value; ``order()`` gives the slots in sorted label order (np.unique's order, as the one-shot
    scores use), so ``codes = rank[slot]`` with ``rank = argsort(order())``.
    """

    def __init__(self) -> None:
        self._index: Dict[Any, int] = {}
        self.values: List[Any] = []
        self.frozen = False

    def __len__(self) -> int:
        return len(self.values)

    def slots_of(self, classes: np.ndarray) -> np.ndarray:
        out = np.empty(len(classes), dtype=np.int64)
        for i, c in enumerate(classes):
            key = c.item() if hasattr(c, "item") else c
            slot = self._index.get(key)
            if slot is None:
                if self.frozen:
                    raise ValueError(f"label {key!r} was not seen in the first pass: every pass must see the same rows")
                slot = self._index[key] = len(self.values)
                self.values.append(key)
            out[i] = slot
        return out

    def order(self, keep: Optional[np.ndarray] = None) -> np.ndarray:
        """Slots (those with ``keep`` True, default all) in sorted label order."""
        idx = np.arange(len(self.values)) if keep is None else np.flatnonzero(keep)
        if idx.size == 0:
            return idx
        vals = np.asarray([self.values[i] for i in idx], dtype=object)
        return idx[np.argsort(as_labels(vals, min_classes=1).codes, kind="stable")]


class ScoreStream:
    """Base class of the streaming states (see the module docstring for the protocol)."""

    score_name = "?"
    inputs = "features"  # or "probs": what update()'s first argument is
    n_passes = 1

    def __init__(self, **params: Any) -> None:
        self.params = dict(params)
        self.pass_index = 0
        self.labels = LabelSlots()
        self.n = 0  # rows seen in the current pass
        self.n_first: Optional[int] = None  # rows of the first pass (later passes must match)
        self.d: Optional[int] = None  # columns (fixed by the first row seen)
        self._context = uuid.uuid4().hex  # forks share it; merges check it
        self._new_part()
        self._reset_pass()

    def _new_part(self) -> None:
        """Give this state its own identity as a part of merges: ``_part`` names it, ``_absorbed`` the
        parts merged into it in this pass. A part's rows may enter a state once; merging a state into
        itself, the same part twice, or a part holding an already merged one raises (double counting)."""
        self._part = uuid.uuid4().hex
        self._absorbed: set = set()

    # ------------------------------------------------------------------ the protocol
    @property
    def complete(self) -> bool:
        """True once every pass has ended (``compute()`` is then all that is left)."""
        return self.pass_index >= self.n_passes

    def update(self, x: Any, labels: Any) -> "ScoreStream":
        """Add a chunk of rows to the current pass. Returns self."""
        if self.complete:
            raise ValueError(f"{type(self).__name__}: every pass has ended; call compute()")
        name = "source_probs" if self.inputs == "probs" else "features"
        m = as_matrix(x, name)
        lab = as_labels(labels, m.n, "labels", min_classes=1)
        check_finite(m, "raise")
        if self.d is None:
            self.d = m.d
        elif m.d != self.d:
            what = "n_source_classes" if self.inputs == "probs" else "n_features"
            raise ValueError(f"{name} chunk has {what}={m.d}, earlier chunks had {self.d}")
        slots = self.labels.slots_of(lab.classes)[lab.codes]
        self._update(m, slots)
        self.n += m.n
        return self

    def merge(self, other: "ScoreStream") -> "ScoreStream":
        """Add another state's rows of the same pass (a fork, or a fresh state in the first pass).
        Returns self; ``other`` is unchanged."""
        if not isinstance(other, ScoreStream):
            raise TypeError(f"can only merge another streaming state, got {type(other).__name__}")
        if type(other) is not type(self):
            raise TypeError(f"cannot merge a {type(other).__name__} into a {type(self).__name__}")
        if other.params != self.params:
            raise ValueError(f"cannot merge states with different options: {self.params} and {other.params}")
        if other.pass_index != self.pass_index:
            raise ValueError(f"cannot merge a state in pass {other.pass_index + 1} into one in pass "
                             f"{self.pass_index + 1}")
        if self.pass_index > 0 and other._context != self._context:
            raise ValueError("cannot merge states of different runs: in later passes merge only forks "
                             "(st.fork()) of this state")
        if other is self:
            raise ValueError(f"cannot merge a {type(self).__name__} into itself: its rows would count twice")
        theirs = {other._part} | other._absorbed
        if theirs & ({self._part} | self._absorbed):
            raise ValueError("this part (or a part merged into it) was already merged into this state: its rows "
                             "would count twice; merge each worker's part once")
        if other.n == 0:
            return self
        if self.d is not None and other.d is not None and other.d != self.d:
            what = "n_source_classes" if self.inputs == "probs" else "n_features"
            raise ValueError(f"cannot merge states with {what}={self.d} and {other.d}")
        if self.d is None:
            self.d = other.d
        slots = self.labels.slots_of(np.asarray(other.labels.values, dtype=object))
        self._merge(other, slots)
        self.n += other.n
        self._absorbed |= theirs
        return self

    def fork(self) -> "ScoreStream":
        """An empty state of the current pass carrying this state's context (for a worker)."""
        twin = copy.deepcopy(self)
        twin._new_part()
        twin.n = 0
        if twin.pass_index == 0:  # nothing learnt yet: a fresh state (labels and width come with rows)
            twin.labels = LabelSlots()
            twin.d = None
        twin._reset_pass()
        return twin

    def end_pass(self) -> "ScoreStream":
        """Close the current pass (after every chunk and merge of it). Returns self."""
        if self.complete:
            raise ValueError(f"{type(self).__name__}: every pass has already ended")
        self._check_pass_rows()
        if self.pass_index == 0:
            self.n_first = self.n
            self.labels.frozen = True
        self._end_pass()
        self.pass_index += 1
        self._context = uuid.uuid4().hex
        self._absorbed = set()  # the next pass's parts are new forks
        if not self.complete:
            self.n = 0
            self._reset_pass()
        return self

    def compute(self) -> float:
        """The score. Allowed once the last pass has ended, or during the last pass (ending it is
        then optional: a one-pass state can keep taking rows after a compute())."""
        if self.pass_index < self.n_passes - 1:
            raise ValueError(f"{type(self).__name__} needs {self.n_passes} passes over the rows; it is in pass "
                             f"{self.pass_index + 1}: call end_pass() and feed the same rows again")
        if not self.complete:
            self._check_pass_rows()
        return self._compute()

    # ------------------------------------------------------------------ helpers for subclasses
    def _check_pass_rows(self) -> None:
        if self.n == 0 and self.pass_index == 0:
            raise ValueError("empty feature bank: n_samples=0 (no rows were added to the stream)")
        if self.n_first is not None and self.n != self.n_first:
            raise ValueError(f"pass {self.pass_index + 1} saw {self.n} rows but the first pass saw {self.n_first}: "
                             "every pass must see the same rows")

    def sorted_slots(self, counts: np.ndarray) -> np.ndarray:
        """Slots of the labels with a nonzero count, in sorted label order (the one-shot codes)."""
        return self.labels.order(np.asarray(counts) > 0)

    def _grow(self, arr: np.ndarray, axis: int = 0) -> np.ndarray:
        """``arr`` padded with zeros along ``axis`` to one entry per label slot."""
        extra = len(self.labels) - arr.shape[axis]
        if extra <= 0:
            return arr
        pad = [(0, 0)] * arr.ndim
        pad[axis] = (0, extra)
        return np.pad(arr, pad)

    # ------------------------------------------------------------------ to implement
    def _update(self, m: Matrix, slots: np.ndarray) -> None:
        raise NotImplementedError

    def _merge(self, other: "ScoreStream", slots: np.ndarray) -> None:
        """Add ``other``'s accumulators; ``slots[j]`` is this state's slot of ``other``'s slot j."""
        raise NotImplementedError

    def _reset_pass(self) -> None:
        raise NotImplementedError

    def _end_pass(self) -> None:
        """Only for n_passes > 1: freeze what the next pass needs (may be a no-op on the last pass)."""

    def _compute(self) -> float:
        raise NotImplementedError
