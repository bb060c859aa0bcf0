"""PARC (Bolya et al. 2021) as published: scikit-learn randomized PCA to 32 dimensions
(random_state=1919, iterated_power=1) on float32 features, per-column standardisation, dense
1 - corrcoef matrices of the features and of the one-hot labels, Spearman correlation of the
lower triangles x 100. Scores the rows it is given (the probe set)."""
from __future__ import annotations

import numpy as np


def parc_published(features, labels) -> float:
    from scipy.stats import spearmanr
    from sklearn.decomposition import PCA

    f = np.asarray(features).astype(np.float32)
    y = np.asarray(labels)
    if f.shape[1] > 32:
        f = PCA(n_components=32, svd_solver="randomized", random_state=1919, iterated_power=1).fit_transform(f)
    f = f.astype(np.float64)
    std = f.std(axis=0)
    f = (f - f.mean(axis=0)) / np.where(std > 0, std, 1.0)
    onehot = np.eye(int(y.max()) + 1)[y]
    dist_imgs = 1 - np.corrcoef(f)
    dist_lbls = 1 - np.corrcoef(onehot)
    il = np.tril_indices(len(y), -1)
    return float(spearmanr(dist_imgs[il], dist_lbls[il])[0] * 100)
