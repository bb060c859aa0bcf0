"""Leave-one-out k-nearest-neighbour accuracy (Renggli et al. 2022; Puigcerver et al. 2021)."""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from fractions import Fraction
from math import comb
from typing import Dict, List, Optional

import numpy as np

from transferlab.core import blocks
from transferlab.core import cpu_threads
from transferlab.core import devices
from transferlab import kernels
from transferlab.core.arrays import Labels, Matrix, as_labels, as_matrix, check_labels_omit
from transferlab.core.inputs import check_finite

METRICS = ("euclidean", "cosine")
TIES = ("expected", "lowest_index")


@dataclass(frozen=True)
class KnnLooResult:
    """Per-sample details of ``knn_loo(..., return_details=True)``."""

    score: float
    neighbors: np.ndarray  # (N, k) int64, sorted by (distance, index)
    distances: np.ndarray  # (N, k) float32 squared Euclidean (cosine: 2 - 2 cos)
    correct: np.ndarray  # (N,) float64 credit per sample (fractional under ties="expected")
    tie_count: np.ndarray  # (N,) int64 neighbours tied at the boundary distance
    classes: np.ndarray  # original label values, index = code
    rows: Optional[np.ndarray] = None  # with queries=: the query rows (the per-sample arrays follow them)


def check_options(k, metric: str, ties: str) -> int:
    """ValueError / TypeError for bad ``metric``, ``ties`` or ``k`` (knn_loo and its stream); int(k)."""
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    if ties not in TIES:
        raise ValueError(f"ties must be one of {TIES}, got {ties!r}")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise TypeError(f"k must be an int, got {type(k).__name__}")
    return int(k)


def knn_loo(
    features,
    labels,
    *,
    k=1,
    metric="euclidean",
    ties="expected",
    device="auto",
    return_details=False,
    nan_policy="raise",
    queries=None,
    seed=0,
    max_memory=None,
):
    """Leave-one-out k-NN accuracy: how often the k nearest *other* samples vote for a sample's label.

    Renggli et al. 2022 ("Which model to transfer?") and Puigcerver et al. 2021 ("Scalable transfer
    learning with expert models") use it as the cheap task-aware proxy of transferability.

    Parameters
    ----------
    features : (N, D) array (numpy incl. read-only memmaps, torch CPU/CUDA, anything array-like);
        float16/bfloat16/float32/float64 are used as they are, int/bool converted to float32.
    labels : (N,) or (N, 1) class labels of any sortable type (remapped with ``np.unique``).
    k : int in [1, N-1], number of neighbours that vote.
    metric : "euclidean" (squared distance ``|x_i|^2 + |x_j|^2 - 2 x_i.x_j`` in float32 tiles,
        clamped at 0) or "cosine" (rows L2-normalised first; the distance is then ``2 - 2 cos``).
        Zero rows have no direction: ``ValueError`` naming them.
    ties : "expected" (default) or "lowest_index"; see below.
    device : "auto" | "cpu" | "cuda" | "reference" (the float64 numpy oracle).
    return_details : return a :class:`KnnLooResult` instead of the float.
    nan_policy : "raise" (default) or "omit" (drop rows with NaN/inf and score the rest; the
        per-sample outputs then refer to the kept rows, neighbour indices to the original rows).
    queries : None (every row), an int q (q distinct rows drawn with ``np.random.default_rng(seed)``)
        or an array of distinct row indices: the score is the mean credit of those rows, their
        neighbours taken from the whole bank (self excluded by index). Equal, bit for bit, to the
        full score's per-sample values on those rows. Runs out of core (below).
    seed : seed of the query draw when ``queries`` is an int.
    max_memory : None or the host memory the score may use (int bytes or a string like "2GB" /
        "512MiB"). With it, or with ``queries``, the bank is streamed: query rows in groups against
        reference blocks sized from the budget (``_C.knn_cross`` and an exact min-merge, see
        ``transferlab.scores.knn.stream``), a memory-mapped bank's pages released block by block;
        the result is bitwise the in-memory one for every budget. The state (the (q, k) lists) must
        fit: ``ValueError`` naming the minimum otherwise. Without either, the in-memory kernel runs.
        The streamed path computes on the CPU kernels (a CUDA bank is copied to the host).

    Definition
    ----------
    Self is excluded by index, never by ``distance == 0``. The neighbours of i are ordered by
    (distance, index). With T the k-th smallest distance, the boundary group G holds every
    j != i with ``d(i, j) == T`` exactly (``tie_count = |G|``) and s of the k nearest lie in G.

    * k = 1, ``ties="expected"``: credit_i = (# of G with label y_i) / |G| (the expected accuracy
      under uniform random tie-breaking: the score does not depend on row order);
      ``ties="lowest_index"``: credit_i = [y_{argmin} == y_i], argmin by (distance, index).
    * k > 1: majority vote of the k nearest; a vote tie goes to the smaller summed distance, then
      to the smaller label. With ``ties="expected"`` and |G| > s the k nearest are the rows closer
      than T plus a uniformly random s-subset of G, and credit_i is the exact probability that the
      vote names y_i: ``sum_a [vote(a) == y_i] prod_c C(h_c, a_c) / C(|G|, s)`` over the numbers
      a_c of members of each class c taken from G (h_c of them in G), evaluated exactly with a
      polynomial product per class (integer arithmetic). G's label histogram comes from an exact
      rescan of those rows with the kernel's own distance function.

    score = (1/N) sum_i credit_i. A class with a single sample cannot be right under leave-one-out:
    such samples count as wrong (one ``UserWarning``).

    Returns
    -------
    float, or KnnLooResult(score, neighbors (N,k), distances (N,k) float32, correct (N,),
    tie_count (N,), classes, rows: the query rows or None).
    """
    k = check_options(k, metric, ties)
    blocks.parse_max_memory(max_memory)
    m = as_matrix(features, "features")
    # Classes are checked after the sample count, so that N = 1 says what the minimum is.
    lab = as_labels(labels, m.n, "labels", min_classes=1)
    if queries is not None or max_memory is not None:
        return _knn_streamed(m, lab, k, metric, ties, device, return_details, nan_policy, queries, seed, max_memory)
    keep = check_finite(m, nan_policy)
    if keep is not None:
        m = m.take(keep)
        lab = check_labels_omit(lab, keep, min_classes=1)
    check_loo_problem(m.n, k, lab, stacklevel=3)
    dev = devices.resolve_device(device, m)
    y = lab.codes

    if dev == "reference":
        from transferlab.reference.knn import knn_loo as oracle

        X = m.to_float64_host()
        if metric == "cosine":
            X = _normalise_host(X, m.name)
        score, idx, dist, correct, tie_count = oracle(X, y, k=k, ties=ties)
        dist = dist.astype(np.float32)
    else:
        placed = devices.place(m, dev)
        if metric == "cosine":
            placed = _normalise(placed)
        if dev == "cuda":
            idx, dist, tie_count, tie_same = _run_cuda(placed, y, k)
        else:
            idx, dist, tie_count, tie_same = kernels.cpu_module().knn_loo(
                placed.data, y, k, placed.is_bf16, cpu_threads.num_threads()
            )
        correct = _credit(placed, y, k, ties, idx, dist, tie_count, tie_same)
        score = float(correct.mean())

    if not return_details:
        return score
    if keep is not None:
        idx = keep[idx]
    return KnnLooResult(score, idx, dist, correct, tie_count, lab.classes)


def _knn_streamed(m: Matrix, lab: Labels, k: int, metric: str, ties: str, device: str, return_details: bool,
                  nan_policy: str, queries, seed, max_memory):
    """knn_loo with ``queries`` and / or ``max_memory``: query rows against reference blocks."""
    from transferlab.scores.knn import stream as sk

    qidx = sk.resolve_queries(queries, m.n, seed)
    if devices.resolve_device(device, m) == "cuda" or m.device == "cuda":
        m = devices.to_host(m)
    q_rows, ref_rows = sk.plan_blocks(m, qidx.size, k, metric, max_memory)  # too small: ValueError here
    keep = check_finite(m.with_budget(blocks.Budget(ref_rows)), nan_policy)
    orig = None
    if keep is not None:
        pos = np.full(m.n, -1, dtype=np.int64)
        pos[keep] = np.arange(keep.size)
        dropped = qidx[pos[qidx] < 0]
        if dropped.size:
            raise ValueError(f"query row {int(dropped[0])} holds NaN or inf and was dropped by nan_policy='omit'; "
                             "choose finite query rows")
        orig, qidx = keep, pos[qidx]
        m = m.take(keep)
        lab = check_labels_omit(lab, keep, min_classes=1)
    check_loo_problem(m.n, k, lab, stacklevel=4)
    order = np.argsort(qidx, kind="stable")
    srt = qidx[order]
    idx, dist, tc, ts = sk.neighbour_lists(m, lab.codes, srt, k, metric=metric, query_rows=q_rows, ref_rows=ref_rows)
    correct = _credit(m, lab.codes, k, ties, idx, dist, tc, ts, rows=srt, metric=metric, max_memory=max_memory)
    back = np.empty_like(order)  # the sorted position of each query as given
    back[order] = np.arange(order.size)
    score = float(correct[back].mean())  # summed in the given order, as the full score's rows
    if not return_details:
        return score
    idx = idx[back]
    rows = qidx
    if orig is not None:
        idx, rows = orig[idx], orig[qidx]
    return KnnLooResult(score, idx, dist[back], correct[back], tc[back], lab.classes, rows=rows)


# ---------------------------------------------------------------------------- helpers
def check_loo_problem(n: int, k: int, lab: Labels, stacklevel: int = 2) -> None:
    """The checks every leave-one-out k-NN entry point shares (local and sharded): k in [1, n-1], at least two
    classes, and one warning when a class has a single sample (it cannot be right under leave-one-out)."""
    if not 1 <= k <= n - 1:
        raise ValueError(
            f"k must be in [1, n_samples-1]: got k={k} with n_samples={n} "
            f"(leave-one-out {k}-NN needs at least {max(k, 1) + 1} samples)"
        )
    if lab.n_classes < 2:
        raise ValueError(f"need at least 2 classes, got {lab.n_classes}")
    singles = int(np.sum(lab.counts == 1))
    if singles:
        warnings.warn(
            f"{singles} class(es) have a single sample; under leave-one-out those samples cannot be "
            "classified correctly and are counted wrong",
            UserWarning,
            stacklevel=stacklevel + 1,
        )



def _zero_rows_error(zero: np.ndarray, name: str) -> ValueError:
    shown = ", ".join(str(int(i)) for i in zero[:10]) + (", ..." if zero.size > 10 else "")
    return ValueError(
        f"metric='cosine' is undefined for zero vectors: {name} has {zero.size} all-zero row(s) "
        f"(rows {shown}); drop them or use metric='euclidean'"
    )


def _normalise_host(X: np.ndarray, name: str) -> np.ndarray:
    """Float64 rows divided by their L2 norms."""
    norms = np.sqrt(np.einsum("ij,ij->i", X, X))
    zero = np.flatnonzero(norms == 0)
    if zero.size:
        raise _zero_rows_error(zero, name)
    return X / norms[:, None]


def _normalise(m: Matrix) -> Matrix:
    """Rows L2-normalised (norms in float64), as float32 on the matrix's device."""
    if m.device == "cuda":
        import torch

        t = m.data.to(torch.float64)
        norms = torch.linalg.vector_norm(t, dim=1)
        zero = torch.nonzero(norms == 0).flatten().cpu().numpy()
        if zero.size:
            raise _zero_rows_error(zero, m.name)
        return Matrix((t / norms[:, None]).to(torch.float32).contiguous(), "cuda", "float32", m.name, m.budget)
    out = np.empty((m.n, m.d), dtype=np.float32)
    step = max(1, (16 << 20) // max(1, 8 * m.d))
    zeros = []
    for s in range(0, m.n, step):
        block = m.to_float64_host(s, s + step)
        norms = np.sqrt(np.einsum("ij,ij->i", block, block))
        zeros.append(np.flatnonzero(norms == 0) + s)
        out[s : s + step] = block / np.where(norms == 0, 1.0, norms)[:, None]
    zero = np.concatenate(zeros)
    if zero.size:
        raise _zero_rows_error(zero, m.name)
    return Matrix(out, "cpu", "float32", m.name, m.budget)


def _run_cuda(m: Matrix, y: np.ndarray, k: int):
    import torch

    mod = kernels.require_cuda()
    dev = m.data.device
    n = m.n
    labels_t = torch.as_tensor(y, dtype=torch.int32, device=dev).contiguous()
    idx = torch.empty((n, k), dtype=torch.int64, device=dev)
    dist = torch.empty((n, k), dtype=torch.float32, device=dev)
    tc = torch.empty((n,), dtype=torch.int64, device=dev)
    ts = torch.empty((n,), dtype=torch.int64, device=dev)
    with torch.cuda.device(dev):
        stream = torch.cuda.current_stream().cuda_stream
        mod.knn_loo(*m.device_view(), labels_t.data_ptr(), k, idx.data_ptr(), dist.data_ptr(), tc.data_ptr(),
                    ts.data_ptr(), stream)
        torch.cuda.current_stream().synchronize()
    return idx.cpu().numpy(), dist.cpu().numpy(), tc.cpu().numpy(), ts.cpu().numpy()


def _credit(m: Matrix, y: np.ndarray, k: int, ties: str, idx, dist, tie_count, tie_same, *, rows=None,
            metric: str = "euclidean", max_memory=None) -> np.ndarray:
    """Per-sample credit from the kernel outputs (see the knn_loo docstring for the rule).

    ``rows``: the bank rows the outputs belong to (the streamed path's queries; default every row,
    in order); the boundary rescan is then streamed too (``m`` is the raw bank, normalised per block
    for ``metric="cosine"``).
    """
    y = np.asarray(y)
    yq = y if rows is None else y[rows]
    if k == 1:
        if ties == "expected":
            return tie_same.astype(np.float64) / tie_count.astype(np.float64)
        return (y[idx[:, 0]] == yq).astype(np.float64)
    labs = y[idx]  # (N, k)
    d64 = dist.astype(np.float64)
    correct = (_vote(labs, d64) == yq).astype(np.float64)
    if ties == "lowest_index":
        return correct
    boundary = dist[:, -1]
    slots = np.sum(dist == boundary[:, None], axis=1)
    ambiguous = np.flatnonzero(tie_count > slots)
    if ambiguous.size == 0:
        return correct
    if rows is not None:
        from transferlab.scores.knn import stream as sk

        offsets, hl, hc = sk.boundary_labels(m, y, rows[ambiguous], boundary[ambiguous], metric=metric,
                                             ref_rows=sk.plan_blocks(m, ambiguous.size, k, metric, max_memory)[1],
                                             n_classes=int(y.max()) + 1)
        for r, i in enumerate(ambiguous):
            hist = {int(c): int(v) for c, v in zip(hl[offsets[r] : offsets[r + 1]], hc[offsets[r] : offsets[r + 1]])}
            closer = dist[i] < boundary[i]
            correct[i] = _expected_vote_credit(labs[i][closer].tolist(), d64[i][closer].tolist(), hist,
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
        cpu_credit = _credit(host, y, k, ties, cidx, cdist, ctc, cts)
        bad = ambiguous[found != tie_count[ambiguous]]
        correct[bad] = cpu_credit[bad]
        keep = found == tie_count[ambiguous]
        ambiguous, offsets_rows = ambiguous[keep], np.flatnonzero(keep)
    else:
        offsets_rows = np.arange(ambiguous.size)
    for r, i in zip(offsets_rows, ambiguous):
        hist = {int(c): int(v) for c, v in zip(hl[offsets[r] : offsets[r + 1]], hc[offsets[r] : offsets[r + 1]])}
        closer = dist[i] < boundary[i]
        correct[i] = _expected_vote_credit(
            labs[i][closer].tolist(), d64[i][closer].tolist(), hist, int(slots[i]), float(boundary[i]), int(y[i])
        )
    return correct


def _vote(labs: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Winning label per row of (N, k) neighbour labels / distances: most votes, then smaller summed
    distance, then smaller label."""
    eq = labs[:, :, None] == labs[:, None, :]
    counts = eq.sum(axis=2)
    sums = np.where(eq, d[:, None, :], 0.0).sum(axis=2)
    best_c, best_s, best_l = counts[:, 0], sums[:, 0], labs[:, 0]
    for p in range(1, labs.shape[1]):
        c, s, lab = counts[:, p], sums[:, p], labs[:, p]
        better = (c > best_c) | ((c == best_c) & ((s < best_s) | ((s == best_s) & (lab < best_l))))
        best_c = np.where(better, c, best_c)
        best_s = np.where(better, s, best_s)
        best_l = np.where(better, lab, best_l)
    return best_l


def _expected_vote_credit(closer_labels: List[int], closer_d: List[float], hist: Dict[int, int], s: int,
                          T: float, y: int) -> float:
    """P(vote == y) when s of the boundary group (label histogram ``hist``) are drawn uniformly.

    For each number a_y of y-members drawn, every other class c must lose to y; its strength only
    grows with its draw a_c, so it loses exactly for a_c <= cap_c. The number of draws is then the
    coefficient of x^(s - a_y) in prod_c sum_{a <= cap_c} C(h_c, a) x^a (exact integers).
    """
    base: Dict[int, int] = {}
    sums: Dict[int, float] = {}
    for lab, dist in zip(closer_labels, closer_d):
        base[lab] = base.get(lab, 0) + 1
        sums[lab] = sums.get(lab, 0.0) + dist
    g = sum(hist.values())
    others = sorted((set(base) | set(hist)) - {y})
    hy = hist.get(y, 0)
    total = 0
    for ay in range(0, min(hy, s) + 1):
        cy = base.get(y, 0) + ay
        if cy == 0:
            continue
        sy = sums.get(y, 0.0) + ay * T
        poly = [1] + [0] * (s - ay)  # ways to draw from the classes seen so far, by draw size
        feasible = True
        for c in others:
            hc = hist.get(c, 0)
            cap = -1
            for a in range(0, min(hc, s - ay) + 1):
                cc, sc = base.get(c, 0) + a, sums.get(c, 0.0) + a * T
                if cc < cy or (cc == cy and (sc > sy or (sc == sy and c > y))):
                    cap = a
                else:
                    break
            if cap < 0:
                feasible = False
                break
            new = [0] * (s - ay + 1)
            for deg, ways in enumerate(poly):
                if ways:
                    for a in range(0, min(cap, s - ay - deg) + 1):
                        new[deg + a] += ways * comb(hc, a)
            poly = new
        if feasible:
            total += comb(hy, ay) * poly[s - ay]
    return float(Fraction(total, comb(g, s)))
