"""GBC (Pándy et al. 2022) as published: scikit-learn PCA to 64 dimensions (full SVD), a dict of
per-class means and floored (1e-4) variances, a Python double loop over ordered class pairs;
spherical Gaussians take the mean variance and the log term is not multiplied by the dimension."""
from __future__ import annotations

import numpy as np


def _distance(mu1, mu2, s1, s2):
    avg = (s1 + s2) / 2
    first = np.sum((mu1 - mu2) ** 2 / avg) / 8
    second = np.sum(np.log(avg)) - 0.5 * np.sum(np.log(s1)) - 0.5 * np.sum(np.log(s2))
    return first + 0.5 * second


def gbc_published(features, labels, gaussian_type="spherical") -> float:
    from sklearn.decomposition import PCA

    f = np.asarray(features, dtype=np.float64)
    y = np.asarray(labels)
    if f.shape[1] > 64:
        f = PCA(n_components=64, svd_solver="full").fit_transform(f)
    stats = {}
    for c in np.unique(y):
        cf = f[y == c]
        stats[c] = (cf.mean(axis=0), np.maximum(cf.var(axis=0), 1e-4))
    total = 0.0
    for c1 in stats:
        for c2 in stats:
            if c1 != c2:
                (m1, v1), (m2, v2) = stats[c1], stats[c2]
                if gaussian_type == "spherical":
                    v1, v2 = np.mean(v1), np.mean(v2)
                total += np.exp(-_distance(m1, m2, v1, v2))
    return float(-total)
