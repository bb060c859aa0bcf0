"""Float64 oracle of SFDA, written from SCORES.md ("SFDA", steps 1-7).

Slow and literal: per-class biased covariances, the authors' three-step power iteration for the
largest eigenvalue of S_w, the generalized symmetric eigenproblem solved with ``scipy.linalg.eigh``,
ConfMix materialised as a new float64 matrix (the caller's array is never written).
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np
import scipy.linalg


def largest_eigenvalue(S: np.ndarray) -> float:
    """SCORES.md step 2: x = S 1; three times u = Sx/|Sx|, x = Su/|Su|; lambda_max = x^T S u.

    A zero start vector (S 1 = 0, e.g. S = 0) has no direction: the exact largest eigenvalue is
    used instead (the published code returns NaN there).
    """
    x = S.sum(axis=1)
    for _ in range(3):
        t = S @ x
        nt = np.linalg.norm(t)
        if nt == 0:
            return float(np.linalg.eigvalsh(S)[-1])
        u = t / nt
        t = S @ u
        nt = np.linalg.norm(t)
        if nt == 0:
            return float(np.linalg.eigvalsh(S)[-1])
        x = t / nt
    return float(x @ S @ u)


def shrinkage(Sw: np.ndarray, a: float = 5.0) -> float:
    """lambda = max(exp(-a * lambda_max(S_w)), 1e-10)."""
    return max(float(np.exp(-a * largest_eigenvalue(Sw))), 1e-10)


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def fit(X: np.ndarray, y: np.ndarray, lam: Optional[float], a: float = 5.0):
    """Steps 1-4 on X: returns (coef (C, D), intercept (C,), lambda)."""
    N, D = X.shape
    C = int(y.max()) + 1
    priors = np.bincount(y, minlength=C) / N
    means = np.stack([X[y == c].mean(axis=0) for c in range(C)])
    Sw = np.zeros((D, D))
    for c in range(C):
        Zc = X[y == c] - means[c]
        Sw += priors[c] * (Zc.T @ Zc) / Zc.shape[0]
    if lam is None:
        lam = shrinkage(Sw, a)
    Z = X - X.mean(axis=0)
    cov = Z.T @ Z / N
    St = (1 - lam) * cov + lam * (np.trace(cov) / D) * np.eye(D)
    Sw_s = (1 - lam) * Sw + lam * (np.trace(Sw) / D) * np.eye(D)
    Sb = St - Sw_s
    evals, evecs = scipy.linalg.eigh(Sb, Sw_s)
    V = evecs[:, np.argsort(evals)[::-1]]
    coef = (means @ V) @ V.T
    intercept = -0.5 * np.einsum("cd,cd->c", means, coef) + np.log(priors)
    return coef, intercept, lam


def sfda(X: np.ndarray, y: np.ndarray, a: float = 5.0, log: bool = False) -> Tuple[float, float]:
    """Returns (score, lambda) for float64 X (N, D) and codes y in 0..C-1."""
    X = np.array(X, dtype=np.float64)  # a private copy: ConfMix below writes into it
    y = np.asarray(y).astype(np.int64)
    C = int(y.max()) + 1
    coef, intercept, lam = fit(X, y, None, a)
    prob = _softmax(X @ coef.T + intercept)
    prob = _softmax(prob)  # step 5: the published second softmax
    means = np.stack([X[y == c].mean(axis=0) for c in range(C)])
    others = (means.sum(axis=0)[None, :] - means) / (C - 1)
    p = prob[np.arange(len(y)), y]
    Xm = p[:, None] * X + (1 - p)[:, None] * others[y]
    coef2, intercept2, _ = fit(Xm, y, lam, a)
    logits = Xm @ coef2.T + intercept2
    if log:
        return float(_log_softmax(logits)[np.arange(len(y)), y].mean()), lam
    return float(_softmax(logits)[np.arange(len(y)), y].mean()), lam
