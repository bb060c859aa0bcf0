"""Per-sample credit of leave-one-out k-NN from the kernels' neighbour lists (the score is its mean).

Contract: ``credit(m, y, k, ties, idx, dist, tie_count, tie_same)`` applies the definition in
``knn_loo``'s docstring (``rules.vote`` and ``rules.expected_vote_credit``) to the outputs of any kNN
kernel path (in memory on CPU or CUDA, out of core, sharded), and gives the same float64 credits
whenever those outputs are the same. Rows whose boundary tie group is larger than the slots left
(``k > 1``, ``ties="expected"``) need the group's exact label histogram: a rescan of the bank, in
memory (``_C.knn_boundary_labels``) or, with ``rows=``, streamed (``out_of_core.boundary_labels``).
Inputs are read, never written. Imports ``rules`` and ``out_of_core``.
"""
from __future__ import annotations

import numpy as np

from transferlab import kernels
from transferlab.core import cpu_threads
from transferlab.core import devices
from transferlab.core.arrays import Matrix
from transferlab.scores.knn.out_of_core import boundary_labels, plan_blocks
from transferlab.scores.knn.rules import expected_vote_credit, vote

__all__ = ["credit"]


def credit(m: Matrix, y: np.ndarray, k: int, ties: str, idx, dist, tie_count, tie_same, *, rows=None,
           metric: str = "euclidean", max_memory=None, exponent: int = 0) -> np.ndarray:
    """Per-sample credit from the kernel outputs (see the knn_loo docstring for the rule).

    ``rows``: the bank rows the outputs belong to (the streamed path's queries; default every row,
    in order); the boundary rescan is then streamed too (``m`` is the raw bank, normalised per block
    for ``metric="cosine"``, scaled by 2^-``exponent`` like the lists' distances).
    """
    y = np.asarray(y)
    yq = y if rows is None else y[rows]
    if k == 1:
        if ties == "expected":
            return tie_same.astype(np.float64) / tie_count.astype(np.float64)
        return (y[idx[:, 0]] == yq).astype(np.float64)
    labs = y[idx]  # (N, k)
    d64 = dist.astype(np.float64)
    correct = (vote(labs, d64) == yq).astype(np.float64)
    if ties == "lowest_index":
        return correct
    boundary = dist[:, -1]
    slots = np.sum(dist == boundary[:, None], axis=1)
    ambiguous = np.flatnonzero(tie_count > slots)
    if ambiguous.size == 0:
        return correct
    if rows is not None:
        offsets, hl, hc = boundary_labels(m, y, rows[ambiguous], boundary[ambiguous], metric=metric,
                                          ref_rows=plan_blocks(m, ambiguous.size, k, metric, max_memory,
                                                                  scaled=bool(exponent))[1],
                                          n_classes=int(y.max()) + 1, exponent=exponent)
        for r, i in enumerate(ambiguous):
            hist = {int(c): int(v) for c, v in zip(hl[offsets[r] : offsets[r + 1]], hc[offsets[r] : offsets[r + 1]])}
            closer = dist[i] < boundary[i]
            correct[i] = expected_vote_credit(labs[i][closer].tolist(), d64[i][closer].tolist(), hist,
                                              int(slots[i]), float(boundary[i]), int(yq[i]))
        return correct
    host = devices.to_host(m)
    offsets, hl, hc = kernels.cpu_module().knn_boundary_labels(
        host.data, y.astype(np.int32), ambiguous.astype(np.int64), np.ascontiguousarray(boundary[ambiguous]),
        host.is_bf16, cpu_threads.num_threads()
    )
    found = np.array([hc[offsets[r] : offsets[r + 1]].sum() for r in range(ambiguous.size)], dtype=np.int64)
    if m.device == "cuda" and np.any(found != tie_count[ambiguous]):
        # The rescan uses the CPU distances, which may differ from the GPU's in the last bit: for
        # a consistent boundary group, take the whole answer of those rows from the CPU kernel.
        cidx, cdist, ctc, cts = kernels.cpu_module().knn_loo(host.data, y.astype(np.int32), k, host.is_bf16,
                                                             cpu_threads.num_threads())
        cpu_credit = credit(host, y, k, ties, cidx, cdist, ctc, cts)
        bad = ambiguous[found != tie_count[ambiguous]]
        correct[bad] = cpu_credit[bad]
        keep = found == tie_count[ambiguous]
        ambiguous, offsets_rows = ambiguous[keep], np.flatnonzero(keep)
    else:
        offsets_rows = np.arange(ambiguous.size)
    for r, i in zip(offsets_rows, ambiguous):
        hist = {int(c): int(v) for c, v in zip(hl[offsets[r] : offsets[r + 1]], hc[offsets[r] : offsets[r + 1]])}
        closer = dist[i] < boundary[i]
        correct[i] = expected_vote_credit(
            labs[i][closer].tolist(), d64[i][closer].tolist(), hist, int(slots[i]), float(boundary[i]), int(y[i])
        )
    return correct
