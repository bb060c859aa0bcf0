"""NLEEP (Li et al. 2021) as published: scikit-learn ``PCA(n_components=0.8)``, a
``GaussianMixture(n_components=5 C, random_state=123)`` on the reduced features, LEEP of the
posteriors. The published code casts the features to float32 first (``dtype=np.float32``, which
often fails with "ill-defined empirical covariance"); SCORES.md's published numbers come from the
float64 fit, the default here."""
from __future__ import annotations

import numpy as np


def nleep_published(features, labels, dtype=np.float64, component_ratio=5) -> float:
    from sklearn.decomposition import PCA
    from sklearn.mixture import GaussianMixture

    X = np.asarray(features).astype(dtype)
    y = np.asarray(labels)
    n, c = len(y), len(np.unique(y))
    reduced = PCA(n_components=0.8).fit_transform(X)
    k = component_ratio * c
    prob = GaussianMixture(n_components=k, random_state=123).fit(reduced).predict_proba(reduced)
    pyz = np.zeros((c, k))
    for y_ in range(c):
        pyz[y_] = np.sum(prob[y == y_], axis=0) / n
    pz = np.sum(pyz, axis=0)
    py_z = pyz / pz
    py_x = prob @ py_z.T
    return float(np.mean(np.log(py_x[np.arange(n), y])))
