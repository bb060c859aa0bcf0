"""H-score (Bao et al. 2019) and regularised H-score (Ibrahim et al. 2022) as published.

Published structure: an N x D matrix g of per-sample class means filled class by class, unbiased
covariances via X_c^T X_c / (N - 1), ``np.linalg.pinv(cov, rcond=1e-15)``; the regularised score
takes scikit-learn's ``LedoitWolf(assume_centered=False)`` on the centred features and multiplies
Cov(g) by (1 - shrinkage).
"""
from __future__ import annotations

import numpy as np


def _cov(X):
    Xc = X - np.mean(X, axis=0, keepdims=True)
    return Xc.T @ Xc / (len(X) - 1)


def _g(f, y):
    g = np.zeros_like(f)
    for c in range(int(y.max()) + 1):
        g[y == c] = np.mean(f[y == c, :], axis=0)
    return g


def hscore_published(features, labels) -> float:
    f = np.asarray(features, dtype=np.float64)
    y = np.asarray(labels)
    return float(np.trace(np.linalg.pinv(_cov(f), rcond=1e-15) @ _cov(_g(f, y))))


def reg_hscore_published(features, labels) -> float:
    from sklearn.covariance import LedoitWolf

    f = np.asarray(features, dtype=np.float64)
    y = np.asarray(labels)
    f = f - np.mean(f, axis=0, keepdims=True)
    est = LedoitWolf(assume_centered=False).fit(f)
    a = est.shrinkage_
    return float(np.trace(np.linalg.pinv(est.covariance_, rcond=1e-15) @ ((1 - a) * _cov(_g(f, y)))))
