"""Float64 oracle of TransRate, written from SCORES.md ("TransRate"): explicit Z, slogdet of the
D x D matrices, numpy's matrix_rank.

normalized: Z = normalise(centre(normalise(X))) by rows;
    R(Z) = 1/2 logdet(I + Z^T Z / (N eps)) / rank(Z),
    R(Z|Y) = sum_c (n_c/N) 1/2 logdet(I + Z_c^T Z_c / (n_c eps)) / rank(Z),   TrR = R(Z) - R(Z|Y)
original (the authors' released function): Z = X centred; R(Z) - (1/C) sum_c R(Z_c), no rank division.

Rows the normalisation cannot divide (an all-zero row; a row equal to the mean direction) raise the
score's ValueError before any division: they used to turn Z into NaN, and LAPACK's LU of a NaN
matrix returns an arbitrary determinant sign (+1 or -1 by pivoting), which tripped an assert.
"""
from __future__ import annotations

import numpy as np


def _rate(Z, eps):
    n, d = Z.shape
    sign, logdet = np.linalg.slogdet(np.eye(d) + Z.T @ Z / (n * eps))
    if not (sign > 0 and np.isfinite(logdet)):  # I + PSD: only non-finite Z gets here
        raise ValueError(f"TransRate oracle: I + Z^T Z / (N eps) is not positive definite (sign={sign}, "
                         f"logdet={logdet}); Z has non-finite entries")
    return 0.5 * logdet


def _unit_rows(Z, what):
    norms = np.linalg.norm(Z, axis=1, keepdims=True)
    bad = np.flatnonzero(norms[:, 0] == 0)
    if bad.size:
        raise ValueError(what.format(count=bad.size, first=int(bad[0])))
    return Z / norms


def transrate(X, y, *, eps: float = 1e-4, variant: str = "normalized") -> float:
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y)
    classes = np.unique(y)
    if variant == "original":
        Z = X - X.mean(axis=0)
        return float(_rate(Z, eps) - np.mean([_rate(Z[y == c], eps) for c in classes]))
    Z = _unit_rows(X, "features has {count} all-zero row(s) (first at row {first}); TransRate normalises rows: "
                      "drop them")
    Z = _unit_rows(Z - Z.mean(axis=0), "features row {first} equals the mean direction after normalisation; "
                   "TransRate cannot normalise it again")
    n = len(y)
    rzy = sum(np.sum(y == c) / n * _rate(Z[y == c], eps) for c in classes)
    return float((_rate(Z, eps) - rzy) / np.linalg.matrix_rank(Z))
