"""Float64 oracle of TransRate, written from SCORES.md ("TransRate"): explicit Z, slogdet of the
D x D matrices, numpy's matrix_rank.

normalized: Z = normalise(centre(normalise(X))) by rows;
    R(Z) = 1/2 logdet(I + Z^T Z / (N eps)) / rank(Z),
    R(Z|Y) = sum_c (n_c/N) 1/2 logdet(I + Z_c^T Z_c / (n_c eps)) / rank(Z),   TrR = R(Z) - R(Z|Y)
original (the authors' released function): Z = X centred; R(Z) - (1/C) sum_c R(Z_c), no rank division.
"""
from __future__ import annotations

import numpy as np


def _rate(Z, eps):
    n, d = Z.shape
    sign, logdet = np.linalg.slogdet(np.eye(d) + Z.T @ Z / (n * eps))
    assert sign > 0
    return 0.5 * logdet


def transrate(X, y, *, eps: float = 1e-4, variant: str = "normalized") -> float:
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y)
    classes = np.unique(y)
    if variant == "original":
        Z = X - X.mean(axis=0)
        return float(_rate(Z, eps) - np.mean([_rate(Z[y == c], eps) for c in classes]))
    Z = X / np.linalg.norm(X, axis=1, keepdims=True)
    Z = Z - Z.mean(axis=0)
    Z = Z / np.linalg.norm(Z, axis=1, keepdims=True)
    n = len(y)
    rzy = sum(np.sum(y == c) / n * _rate(Z[y == c], eps) for c in classes)
    return float((_rate(Z, eps) - rzy) / np.linalg.matrix_rank(Z))
