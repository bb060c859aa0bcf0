"""Float64 oracle of GBC, written from SCORES.md ("GBC"): PCA by a thin SVD of the centred features,
class statistics and one Bhattacharyya distance per ordered pair, in plain loops.

    spherical: D_B = |mu1 - mu2|^2 / (8 s) + 1/2 (log s - 1/2 log s1 - 1/2 log s2), s = (s1 + s2)/2,
               s_c = mean_d max(var_c,d, 1e-4)
    diagonal:  D_B = sum_d [(mu1_d - mu2_d)^2 / (8 s_d) + 1/2 (log s_d - 1/2 log s1_d - 1/2 log s2_d)]
    GBC = -sum_{c1 != c2} exp(-D_B)
"""
from __future__ import annotations

import numpy as np


def gbc(X, y, *, gaussian: str = "spherical", pca_dims=64) -> float:
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y)
    if pca_dims is not None and X.shape[1] > pca_dims:
        Xc = X - X.mean(axis=0)
        _, _, vt = np.linalg.svd(Xc, full_matrices=False)
        X = Xc @ vt[: min(pca_dims, X.shape[0])].T
    stats = []
    for c in np.unique(y):
        f = X[y == c]
        stats.append((f.mean(axis=0), np.maximum(f.var(axis=0), 1e-4)))
    total = 0.0
    for i, (m1, v1) in enumerate(stats):
        for j, (m2, v2) in enumerate(stats):
            if i == j:
                continue
            if gaussian == "spherical":
                v1s, v2s = v1.mean(), v2.mean()
                s = (v1s + v2s) / 2
                db = np.sum((m1 - m2) ** 2) / (8 * s) + 0.5 * (np.log(s) - 0.5 * np.log(v1s) - 0.5 * np.log(v2s))
            else:
                s = (v1 + v2) / 2
                db = np.sum((m1 - m2) ** 2 / (8 * s) + 0.5 * (np.log(s) - 0.5 * np.log(v1) - 0.5 * np.log(v2)))
            total += np.exp(-db)
    return float(-total)
