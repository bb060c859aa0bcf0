"""LogME: logarithm of maximum evidence (You et al. 2021)."""
from __future__ import annotations

import warnings
from typing import Tuple

import numpy as np

from transferlab.core.types import Device, Features, MemoryBudget, NanPolicy, Targets, Task
from transferlab.core import blocks
from transferlab.core import linalg
from transferlab.scores import _gram
from transferlab.core.inputs import prepare
from transferlab.scores.registry import require_task

COMPATS = ("exact", "thuml")
MAX_ITER = 11  # the authors' fixed-point iteration count
TOL = 1e-3  # stop when |t_new - t| / t <= TOL, t = alpha / beta
EPS = 1e-5  # added to both denominators of the updates, as published
RANK_RTOL = 1e-10  # exact evidence: directions with sigma^2 <= RANK_RTOL * max sigma^2 are null
_CLASS_BLOCK = 256  # classes per vectorised block (memory O(block * k))


@blocks.checks_max_memory
def logme(
    features: Features,
    labels: Targets,
    *,
    compat: str = "exact",
    device: Device = "auto",
    nan_policy: NanPolicy = "raise",
    max_memory: MemoryBudget = None,
    task: Task = "classification",
) -> float:
    """LogME: mean over classes of the maximised log evidence of a Bayesian linear regression, / N.

    You et al. 2021, "LogME: Practical Assessment of Pre-trained Models for Transfer Learning";
    the fixed-point solver of You et al. 2022, "Ranking and Tuning Pre-trained Models".

    Parameters
    ----------
    features : (N, D) array (numpy incl. memmaps, torch CPU/CUDA, ...); used in float64.
    labels : (N,) class labels of any sortable type (remapped to 0..C-1).
    compat : "exact" (default) or "thuml" (the authors' published number, see below).
    device : "auto" | "cpu" | "cuda" (Gram pass and eigensolve on the GPU) | "reference" (the float64 SVD oracle).
    nan_policy : "raise" or "omit".
    max_memory : None (default: the historical block sizes) or the host memory the passes may use,
        int bytes or a string like "2GB" / "512MiB": block rows are derived from it after the fixed
        state (D x D Gram and friends) is counted; a memory-mapped bank's pages are released block by
        block, so peak RSS stays near the budget whatever N. Too small for the state: ``ValueError``
        naming the minimum. The result is bitwise the same for every budget (docs/out_of_core.md).
    task : "classification" (default), "regression" (labels = float targets (N,) or (N, T)) or
        "multilabel" (labels = a 0/1 indicator matrix (N, L)): the regressed columns are then the
        target (un-normalised) or indicator columns instead of the one-hot class columns, and the score
        is the mean over columns of the maximised evidence / N: the authors'
        ``LogME(regression=True).fit(f, y)`` on those columns (``compat`` as below).

    Definition
    ----------
    For each class c the one-hot column y_c (never materialised) is regressed on X (uncentred)
    with prior precision alpha and noise precision beta; with sigma_i the squared singular values
    of X, x = U^T y_c and t = alpha / beta the fixed point iterates from alpha = beta = 1, at most
    11 times: gamma = sum sigma/(sigma+t), m2 = sum sigma x^2/(t+sigma)^2,
    res2 = sum x^2/(1+sigma/t)^2 + (|y_c|^2 - |x|^2), alpha = gamma/(m2+1e-5),
    beta = (N-gamma)/(res2+1e-5), stopping when |alpha/beta - t|/t <= 1e-3. Then

        L_c = K/2 log alpha + N/2 log beta - 1/2 sum_i log(alpha + beta sigma_i)
              - beta/2 res2 - alpha/2 m2 - N/2 log 2 pi,         score = mean_c L_c / N.

    ``compat="exact"``: the sum runs over the k directions with sigma > 1e-10 sigma_max and K = k
    (the null directions of X cancel exactly in the evidence). ``compat="thuml"``: K = D and the
    sum runs over the authors' directions (N > D: their SVD of X^T X with sqrt(s) > 1e-10; all
    min(N, D) values of the thin SVD of X otherwise); for N <= D that overstates each class by
    (D - k)/(2N) log alpha. For N > D both equal the authors' ``LogME.fit`` to rounding (tested on
    random data and on ReLU features with dead units); only if the authors' SVD returns exact
    zeros for dead units do they differ, and ``compat="thuml"`` then follows theirs.

    Cost: one pass building X^T X (N > D) or X X^T (N <= D) and the class sums, one eigensolve,
    then O(C k) per iteration for all classes at once.
    """
    if compat not in COMPATS:
        raise ValueError(f"compat must be one of {COMPATS}, got {compat!r}")
    require_task("logme", task)
    m, lab, dev, _ = prepare(features, labels, nan_policy=nan_policy, device=device, max_memory=max_memory,
                          cost=_memory_cost, what="logme", task=task)
    targets = None if task == "classification" else lab.values
    if dev == "reference":
        from transferlab.reference.logme import logme as oracle

        if targets is not None:
            return oracle(m.to_float64_host(), None, compat=compat, targets=targets)
        return oracle(m.to_float64_host(), lab.codes, compat=compat)
    if targets is not None:
        sigma, x2 = target_projections(m, targets, compat)
        sq = np.einsum("ij,ij->j", targets, targets)  # |y_t|^2 (the one-hot case's class counts)
    else:
        sigma, x2 = spectral_projections(m, lab.codes, lab.n_classes, compat)
        sq = lab.counts.astype(np.float64)
    d_eff = m.d if compat == "thuml" else sigma.shape[0]
    if m.n < m.d:
        warnings.warn(
            f"LogME with n_samples={m.n} < n_features={m.d}: X has rank <= N, and scores of models "
            "with different D are hard to compare in this regime", UserWarning, stacklevel=2)
    ev = evidences(sigma, x2, sq, m.n, d_eff)
    return float(np.mean(ev))


def target_sums(m, targets: np.ndarray) -> np.ndarray:
    """``Y^T X`` (T, D) in float64: the target-weighted column sums, in one pass of host float64 blocks
    (the regression / multilabel counterpart of the class sums)."""
    out = np.zeros((targets.shape[1], m.d))
    for s, e, blk in _gram.row_blocks(m):
        out += targets[s:e].T @ blk
    return out


def target_projections(m, targets: np.ndarray, compat: str) -> Tuple[np.ndarray, np.ndarray]:
    """(sigma (k,), x2 (T, k)) as :func:`spectral_projections`, for target columns ``targets`` (N, T)."""
    if m.n > m.d:
        return gram_projections(_gram.gram(m), target_sums(m, targets), compat, m.n, m.device)
    X = m.to_float64_host()
    w, U = linalg.eigh_desc(X @ X.T, m.device)
    w = np.maximum(w, 0.0)
    if compat != "thuml":
        keep = w > RANK_RTOL * w[0]
        w, U = w[keep], U[:, keep]
    x = targets.T @ U
    return w, x * x


def _memory_cost(m, lab) -> Tuple[int, int]:
    """Budget model: the Gram family's, plus X (float64) and X X^T with its eigenvectors when N <= D."""
    row, state = _gram.pass_cost(m, lab.n_classes)
    if m.n <= m.d:
        state += 8 * m.n * m.d + 24 * m.n * m.n
    return row, state


def spectral_projections(m, codes: np.ndarray, n_classes: int, compat: str) -> Tuple[np.ndarray, np.ndarray]:
    """(sigma (k,), x2 (C, k)): squared singular values of X and (U^T y_c)^2 for every class.

    N > D: one eigensolve of X^T X; U^T y_c = V^T (class sum of x) / sqrt(sigma).
    N <= D: one eigensolve of X X^T (its eigenvectors are U); U^T y_c = class sum of U's rows.
    """
    if m.n > m.d:
        _, sums = _gram.class_sums(m, codes, n_classes)
        return gram_projections(_gram.gram(m), sums, compat, m.n, m.device)
    X = m.to_float64_host()
    K = X @ X.T
    w, U = linalg.eigh_desc(K, m.device)
    w = np.maximum(w, 0.0)
    if compat != "thuml":
        keep = w > RANK_RTOL * w[0]
        w, U = w[keep], U[:, keep]
    x = np.zeros((n_classes, U.shape[1]))
    np.add.at(x, codes, U)
    return w, x * x


def gram_projections(G: np.ndarray, sums: np.ndarray, compat: str, n: int,
                     device: str = "cpu") -> Tuple[np.ndarray, np.ndarray]:
    """(sigma, x2) from the uncentred Gram X^T X and the class sums of x (the streaming form).

    ``compat="thuml"`` with N > D keeps the authors' directions: their SVD of X^T X with the
    absolute cutoff sqrt(s) > 1e-10 (which near-null directions pass depends on the solver: exact
    zeros from dead units, so use theirs); otherwise the eigenvalues above 1e-10 times the largest.
    """
    if compat == "thuml" and n > G.shape[0]:
        _, w, vh = np.linalg.svd(G)
        proj = sums @ vh.T
        keep = np.sqrt(w) > 1e-10
    else:
        w, proj = linalg.eigh_desc_projected(G, sums, device)
        keep = w > RANK_RTOL * max(w[0], 0.0)
    w = w[keep]
    x = proj[:, keep] / np.sqrt(w)
    return w, x * x


def logme_from_stats(G: np.ndarray, sums: np.ndarray, counts: np.ndarray, n: int, compat: str = "exact",
                     device: str = "cpu") -> float:
    """LogME from sufficient statistics: uncentred Gram (D, D), class sums (C, D), counts (C,).

    Equal to ``logme`` on the rows they summarise; for N <= D with ``compat="thuml"`` the authors'
    N - k null directions of the thin SVD are accounted for as the (D - N + k)/2 log alpha term.
    """
    d = G.shape[0]
    sigma, x2 = gram_projections(G, sums, compat, n, device)
    k = sigma.shape[0]
    d_eff = k if compat == "exact" else (d if n > d else d - n + k)
    return float(np.mean(evidences(sigma, x2, np.asarray(counts, dtype=np.float64), n, d_eff)))


def evidences(sigma: np.ndarray, x2: np.ndarray, counts: np.ndarray, n: int, d_eff: int) -> np.ndarray:
    """Maximised log evidence / N of every class at once (the authors' fixed point, vectorised).

    Each class keeps its own iterate and stops at its own convergence test, exactly as if it were
    solved alone; ``counts`` = |y_c|^2 of the one-hot columns.

    Finite or ValueError, never NaN/inf: features with no direction of nonzero variance (all zero)
    raise. The maximised evidence does not depend on a global scale of the features (alpha absorbs
    it), but the published fixed point does through its EPS and its start at alpha = beta = 1: far
    from unit magnitude (e.g. features times 1e8 with N < D) it under- or overflows. Where it does, the
    evidence is maximised again with sigma rescaled by a power of two (exact) to max(sigma)/N ~ 1;
    inputs of moderate magnitude never take that path, so their values are the published ones.
    """
    if sigma.size == 0 or not np.max(sigma) > 0:
        raise ValueError("LogME is undefined for these features: no direction has nonzero variance "
                         "(all-zero features?)")
    with np.errstate(all="ignore"):  # a non-finite result is caught below, not reported as a warning
        out = _evidences(sigma, x2, counts, n, d_eff)
        if not np.all(np.isfinite(out)):
            scale = 2.0 ** -np.round(np.log2(np.max(sigma) / n))
            out = _evidences(sigma * scale, x2, counts, n, d_eff)
    if not np.all(np.isfinite(out)):
        raise ValueError("LogME's evidence maximisation did not give a finite value on these features "
                         "(degenerate scatter); check the features for constant or duplicated columns")
    return out


def _evidences(sigma: np.ndarray, x2: np.ndarray, counts: np.ndarray, n: int, d_eff: int) -> np.ndarray:
    out = np.empty(x2.shape[0])
    for s in range(0, x2.shape[0], _CLASS_BLOCK):
        out[s : s + _CLASS_BLOCK] = _evidence_block(sigma, x2[s : s + _CLASS_BLOCK], counts[s : s + _CLASS_BLOCK],
                                                    n, d_eff)
    return out


def _evidence_block(sigma, x2, counts, n, d_eff):
    c = x2.shape[0]
    res_x2 = counts - x2.sum(axis=1)
    alpha, beta = np.ones(c), np.ones(c)
    m2, res2 = np.zeros(c), np.zeros(c)
    active = np.arange(c)
    for _ in range(MAX_ITER):
        if active.size == 0:
            break
        t = alpha[active] / beta[active]
        xa = x2[active]
        denom = sigma[None, :] + t[:, None]
        gamma = (sigma[None, :] / denom).sum(axis=1)
        m2_a = (sigma[None, :] * xa / denom**2).sum(axis=1)
        res2_a = (xa / (1.0 + sigma[None, :] / t[:, None]) ** 2).sum(axis=1) + res_x2[active]
        alpha_a = gamma / (m2_a + EPS)
        beta_a = (n - gamma) / (res2_a + EPS)
        alpha[active], beta[active], m2[active], res2[active] = alpha_a, beta_a, m2_a, res2_a
        done = np.abs(alpha_a / beta_a - t) / t <= TOL
        active = active[~done]
    logdet = np.log(alpha[:, None] + beta[:, None] * sigma[None, :]).sum(axis=1)
    ev = (d_eff / 2.0 * np.log(alpha) + n / 2.0 * np.log(beta) - 0.5 * logdet - beta / 2.0 * res2
          - alpha / 2.0 * m2 - n / 2.0 * np.log(2 * np.pi))
    return ev / n
