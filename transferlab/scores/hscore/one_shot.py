"""H-score (Bao et al. 2019) and regularised H-score (Ibrahim et al. 2022)."""
from __future__ import annotations

import warnings

import numpy as np

from transferlab.core.types import Device, Features, MemoryBudget, NanPolicy, Targets, Task
from transferlab.scores.registry import require_task

from transferlab.core import blocks
from transferlab.core import linalg
from transferlab.scores import _gram
from transferlab.core.inputs import prepare

PINV_RCOND = 1e-15  # the published codes' np.linalg.pinv(..., rcond=1e-15)


@blocks.checks_max_memory
def hscore(
    features: Features,
    labels: Targets,
    *,
    device: Device = "auto",
    nan_policy: NanPolicy = "raise",
    max_memory: MemoryBudget = None,
    task: Task = "classification",
) -> float:
    """H-score: ``tr(pinv(Cov(X)) Cov(G))`` with G_i = mu_{y_i}, the class mean of sample i.

    Bao et al. 2019, "An information-theoretic approach to transferability in task transfer
    learning". Both covariances unbiased (1/(N-1)); the pseudo-inverse keeps the eigenvalues above
    1e-15 times the largest, as published.

    Computed without the N x D matrix G: with the centred Gram S = sum_i (x_i - mu)(x_i - mu)^T
    = V diag(w) V^T and the centred class sums s_c = n_c (mu_c - mu),
    ``H = sum_c (1/n_c) s_c^T pinv(S) s_c = sum_c sum_j (V^T s_c)_j^2 / (n_c w_j)`` (the (N-1)
    factors cancel). One pass over X, one eigensolve.

    N <= D: Cov(X) is singular and H saturates at C - 1 whatever the features: a UserWarning says
    so (use ``reg_hscore`` there).

    Parameters: features (N, D), labels (N,), device "auto" | "cpu" | "cuda" (Gram pass and eigensolve on the GPU) |
    "reference", nan_policy "raise" | "omit", max_memory as below. Returns a float (higher = more
    transferable).

    max_memory : None (default: the historical block sizes) or the host memory the passes may use,
        int bytes or a string like "2GB" / "512MiB": block rows are derived from it after the fixed
        state (D x D Gram and friends) is counted; a memory-mapped bank's pages are released block by
        block, so peak RSS stays near the budget whatever N. Too small for the state: ``ValueError``
        naming the minimum. The result is bitwise the same for every budget (docs/out_of_core.md).
    """
    require_task("hscore", task)  # classification only: its definition needs classes
    m, lab, dev, _ = prepare(features, labels, nan_policy=nan_policy, device=device, max_memory=max_memory,
                          cost=lambda m, lab: _gram.pass_cost(m, lab.n_classes), what="hscore",
                          fixed_state_must_fit=True)
    _warn_saturation(m.n, m.d, "hscore")
    if dev == "reference":
        from transferlab.reference.hscore import hscore as oracle

        return oracle(m.to_float64_host(), lab.codes)
    mean, S = _gram.mean_and_centred_gram(m)
    counts, sums = _gram.class_sums(m, lab.codes, lab.n_classes, shift=mean)
    return hscore_from_stats(S, sums, counts, device=dev)


@blocks.checks_max_memory
def reg_hscore(
    features: Features,
    labels: Targets,
    *,
    device: Device = "auto",
    nan_policy: NanPolicy = "raise",
    max_memory: MemoryBudget = None,
    task: Task = "classification",
) -> float:
    """Regularised H-score: ``tr(inv(Sigma_a) (1 - a) Cov(G))``, Sigma_a the Ledoit-Wolf shrunk covariance.

    Ibrahim et al. 2022, "Newer is not always better: rethinking transferability metrics, their
    peculiarities, stability and performance". Sigma_a = (1 - a) S/N + a (tr(S)/(N D)) I with S the
    centred Gram and a scikit-learn's ``ledoit_wolf_shrinkage`` of the centred X:

        a = min(b, delta) / delta,  delta = (|S|_F^2/N^2 - (tr S)^2/(N^2 D)) / D,
        b = (sum_i |x_i - mu|^4 / N - |S|_F^2 / N^2) / (N D)       (a = 0 when b = 0).

    Cov(G) is the unbiased between-class covariance as in ``hscore``. Sigma_a has the eigenvectors
    of S, so one eigensolve serves both. Finite for N <= D (no warning needed).

    Parameters as ``hscore`` (``max_memory`` included).
    """
    require_task("reg_hscore", task)  # classification only: its definition needs classes
    m, lab, dev, _ = prepare(features, labels, nan_policy=nan_policy, device=device, max_memory=max_memory,
                          cost=lambda m, lab: _gram.pass_cost(m, lab.n_classes), what="reg_hscore",
                          fixed_state_must_fit=True)
    if dev == "reference":
        from transferlab.reference.hscore import reg_hscore as oracle

        return oracle(m.to_float64_host(), lab.codes)
    mean, S = _gram.mean_and_centred_gram(m)
    counts, sums = _gram.class_sums(m, lab.codes, lab.n_classes, shift=mean)
    fourth = float(np.sum(_gram.row_sq_norms(m, shift=mean) ** 2))
    return reg_hscore_from_stats(S, sums, counts, fourth, m.n, device=dev)


def hscore_from_stats(S: np.ndarray, sums: np.ndarray, counts: np.ndarray, device: str = "cpu") -> float:
    """H-score from the centred Gram S (D, D) and the centred class sums (C, D) (the streaming form)."""
    w, proj = linalg.eigh_desc_projected(S, sums, device)
    keep = np.abs(w) > PINV_RCOND * np.max(np.abs(w))
    between = (proj**2 / np.asarray(counts, dtype=np.float64)[:, None]).sum(axis=0)  # diag of V^T B V
    return float(np.sum(between[keep] / w[keep]))


def reg_hscore_from_stats(S: np.ndarray, sums: np.ndarray, counts: np.ndarray, fourth: float, n: int,
                          device: str = "cpu") -> float:
    """Regularised H-score from the centred Gram, centred class sums and sum_i |x_i - mu|^4."""
    d = S.shape[0]
    w, proj = linalg.eigh_desc_projected(S, sums, device)
    counts = np.asarray(counts, dtype=np.float64)
    a = ledoit_wolf_shrinkage(w.sum(), np.sum(w**2), fourth, n, d)
    shrunk = (1.0 - a) * w / n + a * w.sum() / (n * d)
    keep = np.abs(shrunk) > PINV_RCOND * np.max(np.abs(shrunk))
    between = (proj**2 / counts[:, None]).sum(axis=0) / (n - 1)
    return float(np.sum((1.0 - a) * between[keep] / shrunk[keep]))


def ledoit_wolf_shrinkage(trace: float, frob2: float, fourth: float, n: int, d: int) -> float:
    """scikit-learn's Ledoit-Wolf shrinkage from tr(S), |S|_F^2 and sum_i |x_i - mu|^4 (S centred Gram)."""
    if d == 1:
        return 0.0
    mu = trace / (n * d)
    delta_ = frob2 / n**2
    beta = (fourth / n - delta_) / (d * n)
    delta = (delta_ - 2.0 * mu * trace / n + d * mu**2) / d
    beta = min(beta, delta)
    return 0.0 if beta == 0 else beta / delta


def _warn_saturation(n: int, d: int, name: str) -> None:
    if n <= d:
        warnings.warn(
            f"{name} with n_samples={n} <= n_features={d}: the covariance is singular and the plain "
            "H-score saturates at n_classes - 1; use reg_hscore or more samples",
            UserWarning, stacklevel=3)
