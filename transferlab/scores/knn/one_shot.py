"""``knn_loo``: leave-one-out k-nearest-neighbour accuracy, the one-shot call (Renggli et al. 2022;
Puigcerver et al. 2021).

Contract: validates its arguments (one-line errors naming the argument; inputs never mutated), then runs
the in-memory kernel (CPU, CUDA, or the float64 reference oracle) or, with ``queries=`` / ``max_memory=``,
the out-of-core path (``out_of_core``), which is bitwise the in-memory result. The rules (options,
vote, ties, normalisation) live in ``rules``, the per-sample credit in ``credit``. Imports ``rules``,
``credit`` and ``out_of_core``; nothing imports it but the package's ``__init__``.
"""
from __future__ import annotations

from typing import Optional, Union

import numpy as np

from transferlab.core.types import ArrayLike, Device, Features, MemoryBudget, NanPolicy, Targets, Task
from transferlab import kernels
from transferlab.core import blocks
from transferlab.core import cpu_threads
from transferlab.core import devices
from transferlab.core.arrays import Labels, Matrix, as_labels, as_matrix, as_targets, check_labels_omit
from transferlab.core.inputs import (check_bool, check_finite, distances_in_bank_scale, prepare, rescaled_to_unit,
                                    scan_rows, unit_exponent)
from transferlab.reference.knn import knn_loo as _oracle
from transferlab.scores.knn.credit import credit
from transferlab.scores.knn.out_of_core import neighbour_lists, plan_blocks, resolve_queries
from transferlab.scores.knn.rules import KnnLooResult, check_loo_problem, check_options, normalise, normalise_host
from transferlab.scores.knn.targets import (ambiguous_rows, bank_members, boundary_members, check_knn_task,
                                           multilabel_score, regression_score)

__all__ = ["knn_loo"]


def knn_loo(
    features: Features,
    labels: Targets,
    *,
    k: int = 1,
    metric: str = "euclidean",
    ties: str = "expected",
    device: Device = "auto",
    return_details: bool = False,
    nan_policy: NanPolicy = "raise",
    queries: Optional[ArrayLike] = None,
    seed: Optional[int] = 0,
    max_memory: MemoryBudget = None,
    task: Task = "classification",
) -> Union[float, "KnnLooResult"]:
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
        ``transferlab.scores.knn.out_of_core``), a memory-mapped bank's pages released block by block;
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

    task : "classification" (default), "regression" (labels = float targets (N,) or (N, T): the score is
        R^2 of the mean target of the k nearest others, ties at the k-th distance entering with equal
        weight) or "multilabel" (labels = 0/1 indicators (N, L): per-label majority vote of the k nearest
        others, a vote tied at k/2 counting 1/2; score = mean per-label accuracy). Same kernels, same
        paths (CPU, CUDA, out of core), same tie rule (``transferlab.scores.knn.targets``);
        ``return_details`` is for classification.

    Returns
    -------
    float, or KnnLooResult(score, neighbors (N,k), distances (N,k) float32, correct (N,),
    tie_count (N,), classes, rows: the query rows or None).
    """
    k = check_options(k, metric, ties)
    return_details = check_bool(return_details, "return_details")
    blocks.parse_max_memory(max_memory)
    if check_knn_task(task, return_details) != "classification":
        return _knn_loo_targets(features, labels, k, metric, ties, device, nan_policy, queries, seed, max_memory, task)
    if queries is not None or max_memory is not None:
        m = as_matrix(features, "features")
        lab = as_labels(labels, m.n, "labels", min_classes=1)
        return _knn_streamed(m, lab, k, metric, ties, device, return_details, nan_policy, queries, seed, max_memory)
    m, lab, dev, keep = prepare(features, labels, nan_policy=nan_policy, device=device, min_samples=k + 1, place=False,
                                rescale=False,  # kNN rescales after placing (and reports distances in the bank scale)
                                too_few=f"k must be in [1, n_samples-1]: got k={k} with n_samples={{n}} "
                                        f"(leave-one-out {k}-NN needs at least {k + 1} samples)")
    check_loo_problem(m.n, k, lab, stacklevel=3)  # the single-sample-class warning
    y = lab.codes

    if dev == "reference":
        X = m.to_float64_host()
        if metric == "cosine":
            X = normalise_host(X, m.name)
        score, idx, dist, correct, tie_count = _oracle(X, y, k=k, ties=ties)
        dist = dist.astype(np.float32)
    else:
        placed = devices.place(m, dev)
        exponent = 0
        if metric == "cosine":
            placed = normalise(placed)
        else:
            placed, exponent = rescaled_to_unit(placed)
        if dev == "cuda":
            idx, dist, tie_count, tie_same = _run_cuda(placed, y, k)
        else:
            idx, dist, tie_count, tie_same = kernels.cpu_module().knn_loo(
                placed.data, y, k, placed.is_bf16, cpu_threads.num_threads()
            )
        correct = credit(placed, y, k, ties, idx, dist, tie_count, tie_same)
        score = float(correct.mean())
        dist = distances_in_bank_scale(dist, exponent)

    if not return_details:
        return score
    if keep is not None:
        idx = keep[idx]
    return KnnLooResult(score, idx, dist, correct, tie_count, lab.classes)


def _too_few(k: int) -> str:
    return (f"k must be in [1, n_samples-1]: got k={k} with n_samples={{n}} "
            f"(leave-one-out {k}-NN needs at least {k + 1} samples)")


def _knn_loo_targets(features, labels, k: int, metric: str, ties: str, device: str, nan_policy: str, queries, seed,
                     max_memory, task: str) -> float:
    """knn_loo with regression targets or multilabel indicators (``targets``): the classification path's
    kernels and block plans, then R^2 / per-label accuracy (``targets.regression_score`` / ``multilabel_score``)."""
    score_of = regression_score if task == "regression" else multilabel_score
    if queries is not None or max_memory is not None:
        m = as_matrix(features, "features")
        Y = as_targets(labels, task, m.n, "labels").values
        qidx = resolve_queries(queries, m.n, seed)
        if devices.resolve_device(device, m) == "cuda" or m.device == "cuda":
            m = devices.to_host(m)
        q_rows, ref_rows = plan_blocks(m, qidx.size, k, metric, max_memory)
        bad, row_top = scan_rows(m.with_budget(blocks.Budget(ref_rows)))
        keep = check_finite(m, nan_policy, bad)
        exponent = 0 if metric == "cosine" else unit_exponent(row_top)
        if exponent:
            q_rows, ref_rows = plan_blocks(m, qidx.size, k, metric, max_memory, scaled=True)
        if keep is not None:
            pos = np.full(m.n, -1, dtype=np.int64)
            pos[keep] = np.arange(keep.size)
            if np.any(pos[qidx] < 0) and queries is not None:
                raise ValueError("a query row holds NaN or inf and was dropped by nan_policy='omit'; choose finite "
                                 "query rows")
            qidx, m, Y = pos[qidx], m.take(keep), as_targets(Y[keep], task, name="labels").values
            qidx = qidx[qidx >= 0]  # queries=None: every kept row
        if not 1 <= k <= m.n - 1:
            raise ValueError(_too_few(k).format(n=m.n))
        srt = np.sort(qidx)
        idx, dist, tc, _ = neighbour_lists(m, np.zeros(m.n, dtype=np.int32), srt, k, metric=metric, query_rows=q_rows,
                                           ref_rows=ref_rows, exponent=exponent)
        members_of = bank_members(m, lambda pos: srt[pos], metric=metric, exponent=exponent, ref_rows=ref_rows)
        return score_of(Y, Y[srt], idx, dist, tc, k, ties, members_of)
    m, tg, dev, _ = prepare(features, labels, nan_policy=nan_policy, device=device, min_samples=k + 1, place=False,
                            rescale=False, too_few=_too_few(k), task=task)
    Y = tg.values
    if dev == "reference":
        from transferlab.reference.knn import knn_targets

        X = m.to_float64_host()
        return knn_targets(normalise_host(X, m.name) if metric == "cosine" else X, Y, k=k, ties=ties, task=task)
    placed = devices.place(m, dev)
    placed = normalise(placed) if metric == "cosine" else rescaled_to_unit(placed)[0]
    host = devices.to_host(placed)
    if dev == "cuda":
        idx, dist, tc = consistent_lists(host, k, ties, *_run_cuda(placed, np.zeros(m.n, dtype=np.int32), k)[:3])
    else:
        idx, dist, tc, _ = kernels.cpu_module().knn_loo(host.data, None, k, host.is_bf16, cpu_threads.num_threads())

    def members_in_memory(rows, T):
        return boundary_members(host.take(rows), host, T, self_rows=rows)

    return score_of(Y, Y, idx, dist, tc, k, ties, members_in_memory)


def consistent_lists(host: Matrix, k: int, ties: str, idx: np.ndarray, dist: np.ndarray, tc: np.ndarray):
    """(idx, dist, tie_count) of another kernel (the GPU's) when the CPU rescan of their boundary groups finds
    every tied row they count, else the CPU kernel's lists. Why: the rescan uses the CPU distances, which may
    differ from the GPU's in the last bit; lists and boundary groups must come from one distance function."""
    _, _, amb = ambiguous_rows(dist, tc)
    if ties == "expected" and amb.size:
        sizes = np.array([g.size for g in boundary_members(host.take(amb), host, dist[amb, -1], self_rows=amb)])
        if np.any(sizes != tc[amb]):
            idx, dist, tc, _ = kernels.cpu_module().knn_loo(host.data, None, k, host.is_bf16, cpu_threads.num_threads())
    return idx, dist, tc


def _knn_streamed(m: Matrix, lab: Labels, k: int, metric: str, ties: str, device: str, return_details: bool,
                  nan_policy: str, queries, seed, max_memory):
    """knn_loo with ``queries`` and / or ``max_memory``: query rows against reference blocks."""
    qidx = resolve_queries(queries, m.n, seed)
    if devices.resolve_device(device, m) == "cuda" or m.device == "cuda":
        m = devices.to_host(m)
    q_rows, ref_rows = plan_blocks(m, qidx.size, k, metric, max_memory)  # too small: ValueError here
    bad, row_top = scan_rows(m.with_budget(blocks.Budget(ref_rows)))  # one read: NaN rows and magnitudes
    keep = check_finite(m, nan_policy, bad)
    # Extreme magnitudes: every block is read scaled by the bank's power of two (as the in-memory path).
    exponent = 0 if metric == "cosine" else unit_exponent(row_top)
    if exponent:
        q_rows, ref_rows = plan_blocks(m, qidx.size, k, metric, max_memory, scaled=True)
    orig = None
    if keep is not None:
        pos = np.full(m.n, -1, dtype=np.int64)
        pos[keep] = np.arange(keep.size)
        dropped = qidx[pos[qidx] < 0]
        if dropped.size and queries is not None:
            raise ValueError(f"query row {int(dropped[0])} holds NaN or inf and was dropped by nan_policy='omit'; "
                             "choose finite query rows")
        orig, qidx = keep, pos[qidx]
        qidx = qidx[qidx >= 0]  # queries=None: every kept row (a budget alone must not refuse omitted rows)
        m = m.take(keep)
        lab = check_labels_omit(lab, keep, min_classes=1)
    check_loo_problem(m.n, k, lab, stacklevel=4)
    order = np.argsort(qidx, kind="stable")
    srt = qidx[order]
    idx, dist, tc, ts = neighbour_lists(m, lab.codes, srt, k, metric=metric, query_rows=q_rows, ref_rows=ref_rows,
                                        exponent=exponent)
    correct = credit(m, lab.codes, k, ties, idx, dist, tc, ts, rows=srt, metric=metric, max_memory=max_memory,
                     exponent=exponent)
    dist = distances_in_bank_scale(dist, exponent)
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
    with devices.cuda_launch(m.data, synchronize=True) as stream:
        mod.knn_loo(*m.device_view(), labels_t.data_ptr(), k, idx.data_ptr(), dist.data_ptr(), tc.data_ptr(),
                    ts.data_ptr(), stream)
    return idx.cpu().numpy(), dist.cpu().numpy(), tc.cpu().numpy(), ts.cpu().numpy()
