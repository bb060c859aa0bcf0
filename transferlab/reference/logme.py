"""Float64 oracle of LogME, written from SCORES.md ("LogME").

Independent of the fast path: a thin SVD of X (never the Gram), an explicit one-hot column per
class and a scalar fixed-point loop per class.

    sigma_i = s_i^2 (squared singular values), x = U^T y_c, t = alpha / beta
    iterate (alpha = beta = 1, at most 11 times):
        gamma = sum sigma/(sigma + t); m2 = sum sigma x^2/(t + sigma)^2;
        res2 = sum x^2/(1 + sigma/t)^2 + (|y_c|^2 - |x|^2)
        alpha = gamma/(m2 + 1e-5); beta = (N - gamma)/(res2 + 1e-5); stop if |alpha/beta - t|/t <= 1e-3
    L_c = K/2 log alpha + N/2 log beta - 1/2 sum log(alpha + beta sigma) - beta/2 res2 - alpha/2 m2 - N/2 log 2pi

compat="exact": sum over sigma > 1e-10 sigma_max, K = that count. compat="thuml": K = D and the
authors' directions (the count of sqrt(singular values of X^T X) > 1e-10 for N > D; all min(N, D) thin-SVD values for N <= D).
Score = mean_c L_c / N. ``targets`` (N, T) float (regression targets or multilabel indicators):
the regressed columns are those columns instead of the one-hot ones (the authors' regression=True).
"""
from __future__ import annotations

import numpy as np


def logme(X, y, *, compat: str = "exact", targets=None) -> float:
    X = np.asarray(X, dtype=np.float64)
    if targets is None:
        y = np.unique(np.asarray(y), return_inverse=True)[1].reshape(-1)
        columns = [(y == c).astype(np.float64) for c in range(int(y.max()) + 1)]
    else:
        t = np.asarray(targets, dtype=np.float64)
        columns = [t[:, j] for j in range(t.reshape(t.shape[0], -1).shape[1])] if t.ndim == 2 else [t]
    n, d = X.shape
    U, s, _ = np.linalg.svd(X, full_matrices=False)
    sigma = s**2
    if compat == "thuml":
        keep = np.ones_like(s, dtype=bool)
        if n > d:
            # The authors count directions on the singular values of X^T X (sqrt > 1e-10): dead
            # units give tiny nonzero values there (solver-dependent: gesdd with vectors), exact zeros
            # in the SVD of X.
            k_auth = int(np.sum(np.sqrt(np.linalg.svd(X.T @ X)[1]) > 1e-10))  # with vectors, as they call it
            keep = np.arange(s.size) < k_auth
        dim = d
    else:
        keep = sigma > 1e-10 * sigma.max()
        dim = int(keep.sum())
    U, sigma = U[:, keep], sigma[keep]
    out = []
    for yc in columns:
        x = U.T @ yc
        x2 = x**2
        res_x2 = yc @ yc - x2.sum()
        alpha = beta = 1.0
        for _ in range(11):
            t = alpha / beta
            gamma = np.sum(sigma / (sigma + t))
            m2 = np.sum(sigma * x2 / (t + sigma) ** 2)
            res2 = np.sum(x2 / (1.0 + sigma / t) ** 2) + res_x2
            alpha = gamma / (m2 + 1e-5)
            beta = (n - gamma) / (res2 + 1e-5)
            if abs(alpha / beta - t) / t <= 1e-3:
                break
        ev = (dim / 2.0 * np.log(alpha) + n / 2.0 * np.log(beta) - 0.5 * np.sum(np.log(alpha + beta * sigma))
              - beta / 2.0 * res2 - alpha / 2.0 * m2 - n / 2.0 * np.log(2 * np.pi))
        out.append(ev / n)
    return float(np.mean(out))
