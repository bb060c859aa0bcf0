"""The authors' LogME (``LogME.fit``, fixed-point version), re-implemented from SCORES.md.

Structure and costs as published: features cast to float64; N > D: SVD of the D x D matrix X^T X,
U = X V / s for the directions with s > 1e-10; N <= D: thin SVD of X; then, per class, a one-hot
column y_c, x = U^T y_c and the fixed point (alpha = beta = 1, at most 11 iterations, stop when
|t_new - t|/t <= 1e-3, 1e-5 in both updates). The evidence is D/2 log alpha + ... (D, not the rank).
"""
from __future__ import annotations

import numpy as np


def _truncated_svd(f):
    _, s, vh = np.linalg.svd(f.T @ f)
    s = np.sqrt(s)
    k = int(np.sum(s > 1e-10))
    s, vh = s[:k], vh[:k]
    u = (f @ vh.T) / s[None, :]
    return u, s, vh


def logme_published(features, labels) -> float:
    f = np.asarray(features).astype(np.float64)
    y = np.asarray(labels)
    n, d = f.shape
    if n > d:
        u, s, _ = _truncated_svd(f)
    else:
        u, s, _ = np.linalg.svd(f, full_matrices=False)
    sigma = (s**2).reshape(-1, 1)
    evidences = []
    for c in range(int(y.max()) + 1):
        y_ = (y == c).astype(np.float64).reshape(-1, 1)
        x = u.T @ y_
        x2 = x**2
        res_x2 = (y_**2).sum() - x2.sum()
        alpha, beta = 1.0, 1.0
        for _ in range(11):
            t = alpha / beta
            gamma = (sigma / (sigma + t)).sum()
            m2 = (sigma * x2 / ((t + sigma) ** 2)).sum()
            res2 = (x2 / ((1 + sigma / t) ** 2)).sum() + res_x2
            alpha = gamma / (m2 + 1e-5)
            beta = (n - gamma) / (res2 + 1e-5)
            t_ = alpha / beta
            if abs(t_ - t) / t <= 1e-3:
                break
        evidence = (d / 2.0 * np.log(alpha) + n / 2.0 * np.log(beta) - 0.5 * np.sum(np.log(alpha + beta * sigma))
                    - beta / 2.0 * res2 - alpha / 2.0 * m2 - n / 2.0 * np.log(2 * np.pi))
        evidences.append(evidence / n)
    return float(np.mean(evidences))
