"""TransRate (Huang et al. 2022): mutual information between features and labels as coding rates."""
from __future__ import annotations

import numpy as np

from . import _gram
from .._arrays import Matrix
from ._common import prepare
from ._registry import register

VARIANTS = ("normalized", "original")


@register("transrate")
def transrate(features, labels, *, eps=1e-4, variant="normalized", device="auto", nan_policy="raise"):
    """TransRate: ``R(Z) - R(Z | Y)``, coding rates of the features with and without the labels.

    Huang et al. 2022, "Frustratingly Easy Transferability Estimation".

    Parameters
    ----------
    features : (N, D); labels : (N,).
    eps : the distortion epsilon (1e-4).
    variant : "normalized" (default, SCORES.md) or "original" (the authors' released function).
    device : "auto" | "cpu" | "cuda" (Gram on the host) | "reference"; nan_policy : "raise" | "omit".

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
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    if not (isinstance(eps, (float, int, np.floating)) and eps > 0):
        raise ValueError(f"eps must be a positive number, got {eps!r}")
    m, lab, dev = prepare(features, labels, nan_policy=nan_policy, device=device)
    if dev == "reference":
        from ..reference.transrate import transrate as oracle

        return oracle(m.to_float64_host(), lab.codes, eps=eps, variant=variant)
    prep = _Prepared(m, variant)
    lam = prep.eigenvalues(np.arange(m.n))
    rz = 0.5 * np.sum(np.log1p(lam / eps))
    order = np.argsort(lab.codes, kind="stable")
    bounds = np.r_[0, np.cumsum(lab.counts)]
    rzy = np.empty(lab.n_classes)
    for c in range(lab.n_classes):
        lam_c = prep.eigenvalues(order[bounds[c] : bounds[c + 1]])
        rzy[c] = 0.5 * np.sum(np.log1p(lam_c / eps))
    if variant == "original":
        return float(rz - rzy.mean())
    rank = _rank(lam * m.n, m.n, m.d)
    return float((rz - np.sum(lab.counts / m.n * rzy)) / rank)


class _Prepared:
    """Z_i = w_i (x_i / r_i - mu): r_i = |x_i| (1 for "original"), mu the mean of x / r,
    w_i = 1 / |x_i / r_i - mu| (1 for "original"). Gram of any row subset without forming Z for
    large subsets: sum_i w_i^2 (u_i - mu)(u_i - mu)^T = Gram(x, scale w/r) - a mu^T - mu a^T + W mu mu^T
    with a = sum w_i^2 u_i and W = sum w_i^2."""

    def __init__(self, m: Matrix, variant: str):
        self.m = m
        if variant == "original":
            self.r = np.ones(m.n)
        else:
            self.r = np.sqrt(_gram.row_sq_norms(m))
            zero = np.flatnonzero(self.r == 0)
            if zero.size:
                raise ValueError(f"{m.name} has {zero.size} all-zero row(s) (first at row {int(zero[0])}); "
                                 "TransRate normalises rows: drop them")
        _, s = _gram.class_sums(m, np.zeros(m.n, dtype=np.int32), 1, row_weight=1.0 / self.r)
        self.mu = s[0] / m.n
        if variant == "original":
            self.w = np.ones(m.n)
        else:
            # |u_i - mu|^2 by explicit differences (no cancellation for rows near the mean).
            sq = np.empty(m.n)
            for a, b, blk in _gram.row_blocks(m):
                diff = blk / self.r[a:b, None] - self.mu
                sq[a:b] = np.einsum("ij,ij->i", diff, diff)
            bad = np.flatnonzero(sq == 0)
            if bad.size:
                raise ValueError(f"{m.name} row {int(bad[0])} equals the mean direction after normalisation; "
                                 "TransRate cannot normalise it again")
            self.w = 1.0 / np.sqrt(sq)

    def eigenvalues(self, rows: np.ndarray) -> np.ndarray:
        """Eigenvalues of Z_S^T Z_S / |S| (the nonzero ones; at most min(|S|, D) values), clipped at 0."""
        n_s = rows.size
        sub = self.m if n_s == self.m.n else self.m.take(rows)
        r, w = self.r[rows], self.w[rows]
        if n_s <= self.m.d:
            Z = (sub.to_float64_host() / r[:, None] - self.mu) * w[:, None]
            G = Z @ Z.T
        else:
            scale = w / r
            G = _gram.gram(sub, row_scale=scale)
            _, a = _gram.class_sums(sub, np.zeros(n_s, dtype=np.int32), 1, row_weight=w * scale)
            a = a[0]
            G -= np.outer(a, self.mu) + np.outer(self.mu, a)
            G += np.sum(w * w) * np.outer(self.mu, self.mu)
        lam = np.linalg.eigvalsh(G)
        return np.maximum(lam, 0.0) / n_s


def _rank(sq_singular: np.ndarray, n: int, d: int) -> int:
    """Matrix rank from squared singular values (eigenvalues of a Gram): numpy's rule
    s > s_max max(N, D) eps, applied to s^2 with the eigensolver's absolute error (~eps s_max^2)."""
    top = np.max(sq_singular)
    return int(np.sum(sq_singular > top * max(n, d) * np.finfo(np.float64).eps))
