"""Streaming PARC (:func:`transferlab.parc`): bitwise the one-shot number from a bank read chunk by chunk.

Two passes. Pass 1: each row's canonical sort keys (``core.row_order.row_keys``: two projections, a
function of the row alone) and label: O(N) memory (24 bytes a row), never the rows. At its end the
one-shot's ``probe_indices`` draws the probe positions in the canonical order (``order_of_keys``);
each probe position is named by the tied run it falls in (the rows sharing its keys and label:
one row, or exact duplicates, or, essentially never, distinct rows whose keys collide) and its
offset in that run. Pass 2 keeps the rows of those runs (each distinct row once, with its count,
in its own dtype), so ``compute()`` orders every run by contents as the one-shot's ``sort_runs``
does, picks the probe rows and scores them with the one-shot's ``score_probe``. Memory in pass 2:
O(probe_size D).
"""
from __future__ import annotations

from typing import Any, Dict, List, Tuple

import numpy as np

from transferlab.core import devices
from transferlab.core.arrays import Matrix
from transferlab.core.row_order import check_stream_row_order, content_ranks, order_of_keys, row_keys
from transferlab.scores._stream import ScoreStream
from transferlab.scores._stream_parts import check_counts, host_rows
from transferlab.scores.parc.one_shot import check_options, probe_indices, score_probe

Key = Tuple[float, float, int]  # (k1, k2, label slot)


class PARCStream(ScoreStream):
    """Streaming :func:`transferlab.parc` (``pca``, ``n_dims``, ``probe_size``, ``seed``,
    ``label_rdm`` as there; ``row_order`` only ``"canonical"``)."""

    n_passes = 2

    def __init__(self, pca="randomized", n_dims=32, probe_size=500, seed=0, label_rdm="published",
                 row_order="canonical") -> None:
        check_options(pca, label_rdm, n_dims)
        check_stream_row_order(row_order, "PARC")  # only the canonical order: "given" raises
        super().__init__(pca=pca, n_dims=n_dims, probe_size=probe_size, seed=seed, label_rdm=label_rdm)

    def _reset_pass(self) -> None:
        if self.pass_index == 0:
            self.k1: List[np.ndarray] = []
            self.k2: List[np.ndarray] = []
            self.slots: List[np.ndarray] = []
        else:
            # per wanted run: content bytes -> [count, the row as stored (raw dtype), float64 row]
            self.found: Dict[Key, Dict[bytes, List[Any]]] = {key: {} for key in self.runs}
            self.dtypes: set = set()

    def _update(self, m, slots) -> None:
        m = devices.to_host(m)
        blk = host_rows(m)
        k1, k2 = row_keys(blk)
        if self.pass_index == 0:
            self.k1.append(k1)
            self.k2.append(k2)
            self.slots.append(slots)
            return
        self.dtypes.add(m.dtype)
        for i in np.flatnonzero(np.isin(k1, self.run_k1)):
            key = (k1[i], k2[i], int(slots[i]))
            if key in self.found:
                self._add(key, (blk[i] + 0.0).tobytes(), 1, np.array(m.data[i]), blk[i].copy(), m.dtype)

    def _add(self, key, content: bytes, count: int, raw, row, dtype) -> None:
        hit = self.found[key].get(content)
        if hit is None:
            self.found[key][content] = [count, raw, row, dtype]
        else:
            hit[0] += count

    def _merge(self, other: "PARCStream", slots: np.ndarray) -> None:
        if self.pass_index == 0:
            self.k1 += other.k1
            self.k2 += other.k2
            self.slots += [slots[s] for s in other.slots]
            return
        self.dtypes |= other.dtypes
        for key, rows in other.found.items():  # later passes: forks share this state's slots
            for content, (count, raw, row, dtype) in rows.items():
                self._add(key, content, count, raw, row, dtype)

    def _end_pass(self) -> None:
        if self.pass_index != 0:
            return
        k1, k2 = np.concatenate(self.k1), np.concatenate(self.k2)
        slots = np.concatenate(self.slots)
        codes = self._rank()[slots]
        order, same = order_of_keys(k1, k2, codes)
        probe = probe_indices(self.n, self.params["probe_size"], self.params["seed"])
        probe = np.arange(self.n) if probe is None else probe
        start = np.r_[True, ~same]
        run = np.cumsum(start) - 1
        run_start = np.flatnonzero(start)
        run_size = np.diff(np.r_[run_start, self.n])
        self.runs: Dict[Key, int] = {}  # wanted run -> its size
        self.probe: List[Tuple[Key, int, int]] = []  # (run, offset in run, code), in canonical order
        for p in probe:
            r = run[p]
            i = order[run_start[r]]
            key = (k1[i], k2[i], int(slots[i]))
            self.runs[key] = int(run_size[r])
            self.probe.append((key, int(p - run_start[r]), int(codes[i])))
        self.run_k1 = np.array(sorted({key[0] for key in self.runs}))
        self.k1 = self.k2 = self.slots = None  # O(N) no longer needed

    def _rank(self) -> np.ndarray:
        """Label slot -> code (sorted label order), over every label seen."""
        idx = self.labels.order()
        rank = np.zeros(len(self.labels), dtype=np.int64)
        rank[idx] = np.arange(idx.size)
        return rank

    def _compute(self) -> float:
        check_counts(self.n, len(self.labels))
        picked: Dict[Key, Tuple[np.ndarray, List[Any]]] = {}  # run -> (cumulative counts, rows by contents)
        for key, size in self.runs.items():
            rows = list(self.found[key].values())
            if sum(r[0] for r in rows) != size:
                raise ValueError("PARC stream: the second pass saw other rows than the first: every pass must see "
                                 "the same rows")
            ranks = content_ranks(np.stack([r[2] for r in rows]))
            sorted_rows = [rows[j] for j in np.argsort(ranks, kind="stable")]
            picked[key] = (np.cumsum([r[0] for r in sorted_rows]), sorted_rows)
        out, codes = [], []
        for key, offset, code in self.probe:
            cum, rows = picked[key]
            out.append(rows[int(np.searchsorted(cum, offset, side="right"))])
            codes.append(code)
        m = _probe_matrix(out)
        p = self.params
        return score_probe(m, np.array(codes, dtype=np.int64), len(self.labels), p["pca"], p["n_dims"],
                           p["label_rdm"], "cpu")


def _probe_matrix(rows) -> Matrix:
    """The probe rows as one host matrix, in their own dtype (float64 when chunks mixed dtypes)."""
    dtypes = {r[3] for r in rows}
    if len(dtypes) == 1:
        return Matrix(np.ascontiguousarray(np.stack([r[1] for r in rows])), "cpu", dtypes.pop(), "features")
    return Matrix(np.stack([r[2] for r in rows]), "cpu", "float64", "features")
