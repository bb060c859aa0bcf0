"""Streaming NLEEP (:func:`transferlab.nleep`): the same number from a bank read chunk by chunk.

Two passes. Pass 1: the shifted Gram and column sums of the exact PCA (``ShiftedGram``, ending in
the one-shot's eigensolve and 80%-variance rule ``_gram.pca_from_gram``), and each row's canonical
sort keys (``_row_order.row_keys``: two projections, a function of the row alone) with its label,
only to find the tied runs (rows whose keys and label collide: exact duplicates, essentially never
anything else). Pass 2: each row's reduced features z = P (x - mean) (k columns), its keys and
label, and, for rows of a tied run only, its contents (stored once per distinct row), so that
``compute()`` puts the rows in exactly the one-shot's canonical order (``order_of_keys`` +
``sort_runs``) whatever the chunking or merge order, then runs the one-shot's mixture fit and LEEP
(``nleep_of_reduced``).

Memory: O(N k) for the reduced rows (k = the PCA's kept dimensions, far below the bank's N D) plus
O(N) keys; O(D^2) in pass 1; ``compute()`` needs the mixture's N x K posteriors, as the one-shot does.
Equality with the one-shot: the PCA Gram is summed in another order (rounding, ~1e-15 in the
reduced rows); the mixture's k-means++ start and EM carry that along without amplifying it (measured:
relative differences of 0 to 5e-16, e.g. bitwise equal at N = 50,000, D = 256, K = 20), short of a
knife-edge (a random draw or a convergence test falling within rounding of its threshold).
"""
from __future__ import annotations

from typing import Dict, List

import numpy as np

from transferlab.scores import _gram
from transferlab.core import devices
from transferlab.core.row_order import check_stream_row_order, content_ranks, order_of_keys, row_keys, sort_runs, tied_positions
from transferlab.scores._stream import ScoreStream
from transferlab.scores._stream_parts import ShiftedGram, check_counts, host_rows
from transferlab.scores.nleep.one_shot import check_options, nleep_of_reduced, resolve_components


class _KeyedRows:
    """Per-row canonical keys and label slots (and optionally reduced rows and tie contents)."""

    def __init__(self) -> None:
        self.k1: List[np.ndarray] = []
        self.k2: List[np.ndarray] = []
        self.slots: List[np.ndarray] = []
        self.z: List[np.ndarray] = []
        self.tie_id: List[np.ndarray] = []  # index into ``contents`` for tied rows, -1 otherwise
        self.contents: List[np.ndarray] = []
        self._content_index: Dict[bytes, int] = {}

    def add_content(self, row: np.ndarray) -> int:
        key = (row + 0.0).tobytes()  # + 0.0: -0.0 and 0.0 compare equal, as the sort treats them
        i = self._content_index.get(key)
        if i is None:
            i = self._content_index[key] = len(self.contents)
            self.contents.append(row.copy())
        return i

    def extend(self, other: "_KeyedRows", slots: np.ndarray) -> None:
        self.k1 += other.k1
        self.k2 += other.k2
        self.slots += [slots[s] for s in other.slots]
        self.z += other.z
        remap = np.array([self.add_content(c) for c in other.contents] + [-1], dtype=np.int64)
        self.tie_id += [remap[t] for t in other.tie_id]  # -1 maps to the appended -1

    @staticmethod
    def cat(parts: List[np.ndarray], dtype=np.float64) -> np.ndarray:
        return np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)


class NLEEPStream(ScoreStream):
    """Streaming :func:`transferlab.nleep` (``components``, ``var_ratio``, ``random_state`` as there)."""

    n_passes = 2

    def __init__(self, components="5c", var_ratio: float = 0.8, random_state=123,
                 row_order="canonical") -> None:
        check_stream_row_order(row_order, "NLEEP")  # only the canonical order: "given" raises
        check_options(components, var_ratio)
        super().__init__(components=components, var_ratio=var_ratio, random_state=random_state)

    def _reset_pass(self) -> None:
        if self.pass_index == 0:
            self.pca_gram = ShiftedGram()
        self.rows = _KeyedRows()

    def _update(self, m, slots) -> None:
        m = devices.to_host(m)
        blk = host_rows(m)
        k1, k2 = row_keys(blk)
        self.rows.k1.append(k1)
        self.rows.k2.append(k2)
        self.rows.slots.append(slots)
        if self.pass_index == 0:
            self.pca_gram.update(m)
            return
        self.rows.z.append(_gram.project(m, self.comps, self.bias))
        ids = np.full(m.n, -1, dtype=np.int64)
        for i in self._tied_rows(k1, k2, slots):
            ids[i] = self.rows.add_content(blk[i])
        self.rows.tie_id.append(ids)

    def _merge(self, other: "NLEEPStream", slots: np.ndarray) -> None:
        if self.pass_index == 0:
            self.pca_gram.merge(other.pca_gram)
        self.rows.extend(other.rows, slots)

    def _end_pass(self) -> None:
        if self.pass_index != 0:
            return
        mean, comps, _ = self.pca_gram.pca(var_ratio=float(self.params["var_ratio"]))
        self.comps, self.bias = comps, -(comps @ mean)  # as the one-shot nleep projects
        k1, k2, slots = (_KeyedRows.cat(self.rows.k1), _KeyedRows.cat(self.rows.k2),
                         _KeyedRows.cat(self.rows.slots, np.int64))
        order, same = order_of_keys(k1, k2, slots)  # slots: any label numbering finds the same runs
        pos = tied_positions(same)
        self.tie_keys = {(k1[i], k2[i], int(slots[i])) for i in order[pos]}
        self.tie_k1 = np.array(sorted({k[0] for k in self.tie_keys}))
        self.pca_gram = None

    def _tied_rows(self, k1, k2, slots) -> np.ndarray:
        if not self.tie_keys:
            return np.zeros(0, dtype=np.int64)
        cand = np.flatnonzero(np.isin(k1, self.tie_k1))
        return np.array([i for i in cand if (k1[i], k2[i], int(slots[i])) in self.tie_keys], dtype=np.int64)

    def _compute(self) -> float:
        r = self.rows
        slots = _KeyedRows.cat(r.slots, np.int64)
        counts = np.bincount(slots, minlength=len(self.labels))
        idx = self.sorted_slots(counts)
        check_counts(self.n, idx.size)
        rank = np.zeros(len(self.labels), dtype=np.int64)
        rank[idx] = np.arange(idx.size)
        codes = rank[slots]
        k = resolve_components(self.params["components"], idx.size, self.n, stacklevel=3)
        order, same = order_of_keys(_KeyedRows.cat(r.k1), _KeyedRows.cat(r.k2), codes)
        if same.any():
            ids = _KeyedRows.cat(r.tie_id, np.int64)[order[tied_positions(same)]]
            if (ids < 0).any():
                raise ValueError("NLEEP stream: the second pass saw rows the first pass did not: every pass must "
                                 "see the same rows")
            order = sort_runs(order, same, content_ranks(np.stack(r.contents))[ids])
        Z = np.concatenate(r.z)[order]
        return nleep_of_reduced(Z, codes[order], idx.size, k, self.params["random_state"])
