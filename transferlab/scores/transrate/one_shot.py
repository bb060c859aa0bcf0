"""TransRate (Huang et al. 2022): mutual information between features and labels as coding rates."""
from __future__ import annotations

import numpy as np

from transferlab.core.types import Device, Features, NanPolicy, Targets, Task
from transferlab.scores.registry import require_task

from transferlab.core import linalg
from transferlab.scores import _gram
from transferlab.core.arrays import Matrix
from transferlab.core.inputs import prepare

VARIANTS = ("normalized", "original")


def transrate(
    features: Features,
    labels: Targets,
    *,
    eps: float = 1e-4,
    variant: str = "normalized",
    device: Device = "auto",
    nan_policy: NanPolicy = "raise",
    task: Task = "classification",
) -> float:
    """TransRate: ``R(Z) - R(Z | Y)``, coding rates of the features with and without the labels.

    Huang et al. 2022, "Frustratingly Easy Transferability Estimation".

    Parameters
    ----------
    features : (N, D); labels : (N,).
    eps : the distortion epsilon (1e-4).
    variant : "normalized" (default, SCORES.md) or "original" (the authors' released function).
    device : "auto" | "cpu" | "cuda" (Gram passes and eigensolves on the GPU) | "reference"; nan_policy : "raise" | "omit".

    Definition (``variant="normalized"``)
    -------------------------------------
    Rows L2-normalised, centred, then L2-normalised again, as the authors' pipeline does (a row
    that is all zero, or that equals the mean direction, has no direction: ValueError). With
    lambda_i the eigenvalues of Z^T Z / N, lambda_{c,i} those of Z_c^T Z_c / n_c (rows of class c,
    not re-centred) and rank(Z) the matrix rank of Z:

        R(Z)     = 1/2 sum_i log(1 + lambda_i / eps) / rank(Z)
        R(Z | Y) = sum_c (n_c / N) 1/2 sum_i log(1 + lambda_{c,i} / eps) / rank(Z)

    ``variant="original"``: the released ``transrate(Z, y)``: Z = the features centred (no
    normalisation), ``R(Z) - (1/C) sum_c R(Z_c)`` with R(Z) = 1/2 logdet(I + Z^T Z / (N eps)) and
    no rank division.

    Each Gram is the smaller of Z^T Z (D x D, through the Gram seam) and Z Z^T (materialised rows
    when a class has fewer rows than D); one eigensolve per class.
    """
    require_task("transrate", task)  # classification only: its definition needs classes
    check_options(eps, variant)
    m, lab, dev, _ = prepare(features, labels, nan_policy=nan_policy, device=device)
    if dev == "reference":
        from transferlab.reference.transrate import transrate as oracle

        return oracle(m.to_float64_host(), lab.codes, eps=eps, variant=variant)
    prep = _Prepared(m, variant)
    order = np.argsort(lab.codes, kind="stable")
    bounds = np.r_[0, np.cumsum(lab.counts)]
    lam = prep.eigenvalues(np.arange(m.n))
    class_lams = [prep.eigenvalues(order[bounds[c] : bounds[c + 1]]) for c in range(lab.n_classes)]
    return transrate_from_eigenvalues(lam, class_lams, lab.counts, m.n, m.d, eps, variant)


def check_options(eps, variant) -> None:
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    if not (isinstance(eps, (float, int, np.floating)) and eps > 0):
        raise ValueError(f"eps must be a positive number, got {eps!r}")


def transrate_from_eigenvalues(lam, class_lams, counts, n: int, d: int, eps: float, variant: str) -> float:
    """TransRate from the eigenvalues of Z^T Z / N (``lam``) and of each class's Z_c^T Z_c / n_c
    (``class_lams``, classes in label order, ``counts`` their sizes)."""
    rz = 0.5 * np.sum(np.log1p(lam / eps))
    rzy = np.array([0.5 * np.sum(np.log1p(lam_c / eps)) for lam_c in class_lams])
    if variant == "original":
        return float(rz - rzy.mean())
    rank = _rank(lam * n, n, d)
    return float((rz - np.sum(np.asarray(counts) / n * rzy)) / rank)


def row_norms(m: Matrix, variant: str, first_row: int = 0) -> np.ndarray:
    """r_i = |x_i| (1 for "original"); an all-zero row is an error (row numbers from ``first_row``)."""
    if variant == "original":
        return np.ones(m.n)
    r = np.sqrt(_gram.row_sq_norms(m))
    zero = np.flatnonzero(r == 0)
    if zero.size:
        raise ValueError(f"{m.name} has {zero.size} all-zero row(s) (first at row {int(zero[0]) + first_row}); "
                         "TransRate normalises rows: drop them")
    return r


def normalised_sum(m: Matrix, r: np.ndarray) -> np.ndarray:
    """sum_i x_i / r_i (the numerator of mu)."""
    _, s = _gram.class_sums(m, np.zeros(m.n, dtype=np.int32), 1, row_weight=1.0 / r)
    return s[0]


def row_weights(m: Matrix, r: np.ndarray, mu: np.ndarray, variant: str, first_row: int = 0) -> np.ndarray:
    """w_i = 1 / |x_i / r_i - mu| (1 for "original"); a row equal to the mean direction is an error."""
    if variant == "original":
        return np.ones(m.n)
    # |u_i - mu|^2 by explicit differences (no cancellation for rows near the mean).
    sq = np.empty(m.n)
    for a, b, blk in _gram.row_blocks(m):
        diff = blk / r[a:b, None] - mu
        sq[a:b] = np.einsum("ij,ij->i", diff, diff)
    bad = np.flatnonzero(sq == 0)
    if bad.size:
        raise ValueError(f"{m.name} row {int(bad[0]) + first_row} equals the mean direction after normalisation; "
                         "TransRate cannot normalise it again")
    return 1.0 / np.sqrt(sq)


def subset_gram(sub: Matrix, r: np.ndarray, w: np.ndarray, mu: np.ndarray) -> np.ndarray:
    """Z_S^T Z_S (D x D) of the rows ``sub`` without forming Z:
    Gram(x, scale w/r) - a mu^T - mu a^T + W mu mu^T, a = sum w_i^2 u_i, W = sum w_i^2."""
    scale = w / r
    G = _gram.gram(sub, row_scale=scale)
    _, a = _gram.class_sums(sub, np.zeros(sub.n, dtype=np.int32), 1, row_weight=w * scale)
    a = a[0]
    G -= np.outer(a, mu) + np.outer(mu, a)
    G += np.sum(w * w) * np.outer(mu, mu)
    return G


def gram_eigenvalues(G: np.ndarray, n_s: int, device: str = "cpu") -> np.ndarray:
    """Eigenvalues of a Gram of n_s rows divided by n_s, clipped at 0; the top min(n_s, size) only
    (the rest are zero in exact arithmetic: a D x D Gram of n_s <= D rows has rank <= n_s); solved
    on ``device`` (``core.linalg``)."""
    lam = linalg.eigvalsh(G, device)[-min(n_s, G.shape[0]):]
    return np.maximum(lam, 0.0) / n_s


class _Prepared:
    """Z_i = w_i (x_i / r_i - mu): r_i = |x_i| (1 for "original"), mu the mean of x / r,
    w_i = 1 / |x_i / r_i - mu| (1 for "original"). Gram of any row subset without forming Z for
    large subsets (``subset_gram``)."""

    def __init__(self, m: Matrix, variant: str):
        self.m = m
        self.r = row_norms(m, variant)
        self.mu = normalised_sum(m, self.r) / m.n
        self.w = row_weights(m, self.r, self.mu, variant)

    def eigenvalues(self, rows: np.ndarray) -> np.ndarray:
        """Eigenvalues of Z_S^T Z_S / |S| (the nonzero ones; at most min(|S|, D) values), clipped at 0."""
        n_s = rows.size
        sub = self.m if n_s == self.m.n else self.m.take(rows)
        r, w = self.r[rows], self.w[rows]
        if n_s <= self.m.d:
            Z = (sub.to_float64_host() / r[:, None] - self.mu) * w[:, None]
            G = Z @ Z.T
        else:
            G = subset_gram(sub, r, w, self.mu)
        return gram_eigenvalues(G, n_s, self.m.device)


def _rank(sq_singular: np.ndarray, n: int, d: int) -> int:
    """Matrix rank from squared singular values (eigenvalues of a Gram): numpy's rule
    s > s_max max(N, D) eps, applied to s^2 with the eigensolver's absolute error (~eps s_max^2)."""
    top = np.max(sq_singular)
    return int(np.sum(sq_singular > top * max(n, d) * np.finfo(np.float64).eps))
