"""Float64 oracles of the H-score and the regularised H-score, written from SCORES.md.

Literal and slow: the N x D matrix G of class means is built, covariances by np.cov (unbiased),
``pinv`` by SVD with rcond 1e-15; the Ledoit-Wolf shrinkage of the regularised score is written out
from its formula (Ledoit & Wolf 2004 in scikit-learn's normalisation):

    X centred, S = X^T X / N, mu = tr(S)/D,
    delta = |S - mu I|_F^2 / D,  b = (1/(N^2 D)) sum_i |x_i x_i^T - S|_F^2,  a = min(b, delta)/delta
    Sigma_a = (1 - a) S + a mu I,   H_a = tr(inv(Sigma_a) (1 - a) Cov(G)).
"""
from __future__ import annotations

import numpy as np


def _between(X, y):
    G = np.zeros_like(X)
    for c in np.unique(y):
        G[y == c] = X[y == c].mean(axis=0)
    return np.atleast_2d(np.cov(G, rowvar=False))


def hscore(X, y) -> float:
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y)
    cov_f = np.atleast_2d(np.cov(X, rowvar=False))
    return float(np.trace(np.linalg.pinv(cov_f, rcond=1e-15) @ _between(X, y)))


def reg_hscore(X, y) -> float:
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y)
    n, d = X.shape
    Xc = X - X.mean(axis=0)
    S = Xc.T @ Xc / n
    mu = np.trace(S) / d
    if d == 1:
        a = 0.0
    else:
        delta = np.sum((S - mu * np.eye(d)) ** 2) / d
        # sum_i |x_i x_i^T - S|_F^2 = sum_i |x_i|^4 - N |S|_F^2
        b = (np.sum(np.sum(Xc**2, axis=1) ** 2) - n * np.sum(S**2)) / (n**2 * d)
        b = min(b, delta)
        a = 0.0 if b == 0 else b / delta
    sigma = (1 - a) * S + a * mu * np.eye(d)
    return float(np.trace(np.linalg.pinv(sigma, rcond=1e-15) @ ((1 - a) * _between(Xc, y))))
