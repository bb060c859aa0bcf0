"""Float64 oracle of NLEEP, written from SCORES.md ("NLEEP"): PCA by a thin SVD of the centred
features (fewest components whose cumulative explained-variance ratio exceeds var_ratio), scikit-learn's
``GaussianMixture`` (full covariance, float64, ``random_state``), then LEEP written out per sample:

    J[y, k] = (1/N) sum_{i: y_i = y} P[i, k];  P(y|k) = J[y, k] / sum_y J[y, k];
    NLEEP = (1/N) sum_i log sum_k P[i, k] P(y_i|k)   (components with zero mass skipped)
"""
from __future__ import annotations

import numpy as np


def nleep(X, y, *, n_components: int, var_ratio: float = 0.8, random_state=123) -> float:
    from sklearn.mixture import GaussianMixture

    X = np.asarray(X, dtype=np.float64)
    y = np.unique(np.asarray(y), return_inverse=True)[1].reshape(-1)
    Xc = X - X.mean(axis=0)
    _, s, vt = np.linalg.svd(Xc, full_matrices=False)
    ratio = np.cumsum(s**2) / np.sum(s**2)
    k = int(np.searchsorted(ratio, var_ratio, side="right") + 1)
    Z = Xc @ vt[:k].T
    P = GaussianMixture(n_components=n_components, covariance_type="full", random_state=random_state).fit(Z).predict_proba(Z)
    n, c = len(y), int(y.max()) + 1
    J = np.zeros((c, n_components))
    for i in range(n):
        J[y[i]] += P[i] / n
    total = 0.0
    for i in range(n):
        eep = sum(P[i, kk] * J[y[i], kk] / J[:, kk].sum() for kk in range(n_components) if J[:, kk].sum() > 0)
        total += np.log(eep)
    return float(total / n)
