"""``knn_accuracy``: Renggli et al.'s train/test k-NN protocol (fit on a train split, score a held-out split).

Contract: the same kernel as ``knn_loo`` in its cross form (``_C.knn_cross``: test rows as queries against
the train bank, nothing excluded, the distance bits of ``knn_loo``), the same vote and tie rule
(``targets.class_credit``; regression / multilabel through ``targets``), the same input checks (one-line
errors naming the argument; inputs never mutated). Labels of both splits are remapped together, so a test
class absent from the train split is simply never predicted. Runs on the CPU kernels (a CUDA bank is
copied to the host: the cross kernel has no CUDA variant). Imports ``rules``, ``targets``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Union

import numpy as np

from transferlab import kernels
from transferlab.core import cpu_threads, devices
from transferlab.core.arrays import as_labels, as_matrix, as_targets, check_task
from transferlab.core.inputs import check_bool, check_finite, max_abs, scaled_by_power_of_two, unit_exponent
from transferlab.scores.knn.rules import check_options, normalise
from transferlab.scores.knn.targets import (boundary_members, check_knn_task, class_credit, multilabel_score,
                                           regression_score)

__all__ = ["knn_accuracy"]

_FAR = 1 << 62  # a query row offset beyond every train row: the kernel excludes nothing


def knn_accuracy(train_features: Any, train_labels: Any, test_features: Any, test_labels: Any, *, k: int = 1,
                 metric: str = "euclidean", ties: str = "expected", task: str = "classification",
                 nan_policy: str = "raise", return_details: bool = False) -> Union[float, "KnnAccuracyResult"]:
    """k-NN accuracy of the test split with the train split as the bank (Renggli et al. 2022's protocol).

    Parameters
    ----------
    train_features : (N_train, D); test_features : (N_test, D); any form ``knn_loo`` accepts.
    train_labels, test_labels : class labels (any sortable type, remapped together); with
        ``task="regression"`` float targets (N,) or (N, T); with ``task="multilabel"`` 0/1 indicators (N, L).
    k : int in [1, N_train]; metric : "euclidean" | "cosine"; ties : "expected" | "lowest_index".
    task : "classification" | "regression" (score = R^2 of the test targets) | "multilabel" (mean
        per-label accuracy).
    nan_policy : "raise" or "omit" (rows with NaN/inf dropped from either split).
    return_details : classification only: a :class:`KnnAccuracyResult` (per test row credit ``correct``
        and the score's standard error ``se``) instead of the float.

    Definition: ``knn_loo``'s, with the test rows as queries and every train row a candidate (no row is
    excluded): the k nearest train rows by (distance, index) vote; with ``ties="expected"`` the
    boundary group at the k-th distance fills the remaining slots uniformly at random and the credit is
    the exact expectation (k = 1: the fraction of tied train rows with the test row's label).
    """
    k = check_options(k, metric, ties)
    return_details = check_bool(return_details, "return_details")
    check_task(task)
    if return_details and task != "classification":
        raise ValueError(f"return_details=True is for task='classification'; with task={task!r} call without it")
    check_knn_task(task, False)
    A = as_matrix(train_features, "train_features")
    Bq = as_matrix(test_features, "test_features")
    if A.d != Bq.d:
        raise ValueError(f"train_features have n_features={A.d} but test_features have n_features={Bq.d}")
    A, Bq = devices.to_host(A), devices.to_host(Bq)
    if task == "classification":
        ytr, yte = _joint_labels(train_labels, test_labels, A.n, Bq.n)
    else:
        ytr = as_targets(train_labels, task, A.n, "train_labels").values
        yte = as_targets(test_labels, task, Bq.n, "test_labels").values
        if ytr.shape[1] != yte.shape[1]:
            raise ValueError(f"train_labels have {ytr.shape[1]} columns but test_labels have {yte.shape[1]}")
    keep_a, keep_b = check_finite(A, nan_policy), check_finite(Bq, nan_policy)
    if keep_a is not None:
        A, ytr = A.take(keep_a), ytr[keep_a]
    if keep_b is not None:
        Bq, yte = Bq.take(keep_b), yte[keep_b]
    if not 1 <= k <= A.n:
        raise ValueError(f"k must be in [1, n_train]: got k={k} with n_train={A.n}")
    if metric == "cosine":
        A, Bq = normalise(A), normalise(Bq)
    else:
        # Extreme magnitudes: both splits scaled by the same power of two (exact), as knn_loo does.
        e = unit_exponent(max(max_abs(A), max_abs(Bq)))
        A, Bq = scaled_by_power_of_two(A, e), scaled_by_power_of_two(Bq, e)

    def members_of(rows, T):
        return boundary_members(Bq.take(rows), A, T)

    if task == "classification":
        idx, dist, _, tc, ts = kernels.cpu_module().knn_cross(Bq.data, _FAR, A.data, ytr, k, A.is_bf16,
                                                               cpu_threads.num_threads(), 0, yte)
        credit = np.asarray(class_credit(ytr, yte, idx, dist, tc, ts, k, ties, members_of), dtype=np.float64)
        if return_details:
            return KnnAccuracyResult(float(credit.mean()), credit)
        return float(credit.mean())
    idx, dist, _, tc, _ = kernels.cpu_module().knn_cross(Bq.data, _FAR, A.data, None, k, A.is_bf16,
                                                          cpu_threads.num_threads(), 0)
    score_of = regression_score if task == "regression" else multilabel_score
    return score_of(ytr, yte, idx, dist, tc, k, ties, members_of)


@dataclass(frozen=True)
class KnnAccuracyResult:
    """Details of ``knn_accuracy(..., return_details=True)``: the score and each (kept) test row's credit."""

    score: float
    correct: np.ndarray  # (N_test,) float64 credit per test row (fractional under ties="expected")

    @property
    def se(self) -> float:
        """Standard error of ``score`` over the test rows, ``std(correct, ddof=1) / sqrt(N_test)``."""
        from transferlab.core.paired import standard_error

        return standard_error(self.correct)


def _joint_labels(train_labels, test_labels, n_train: int, n_test: int):
    """int32 codes of both splits over their joint sorted classes (each split's shape checked by name)."""
    a = as_labels(train_labels, n_train, "train_labels", min_classes=1)
    b = as_labels(test_labels, n_test, "test_labels", min_classes=1)
    try:
        classes = np.unique(np.concatenate([a.classes, b.classes]))
    except TypeError as e:
        raise TypeError(f"train_labels and test_labels mix label types that cannot be sorted ({e})") from e
    if classes.size < 2:
        raise ValueError(f"need at least 2 classes, got {classes.size}")
    code = {v: i for i, v in enumerate(classes.tolist())}
    remap = lambda lab: np.array([code[v] for v in lab.classes.tolist()], dtype=np.int32)[lab.codes]  # noqa: E731
    return remap(a), remap(b)
