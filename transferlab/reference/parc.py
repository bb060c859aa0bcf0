"""Float64 oracle of PARC's comparison step, written from SCORES.md ("PARC"), on already reduced
probe features F (the PCA and the probe draw are the score's, shared by construction):

    F standardised per column; RDM_F = 1 - corrcoef(F); RDM_Y = 1 - corrcoef(onehot(y));
    PARC = 100 * spearmanr(strict upper triangle of RDM_F, that of RDM_Y)

label_rdm="exact" replaces RDM_Y by its noise-free two values (0 same class, 1 + 1/(C-1) otherwise).
"""
from __future__ import annotations

import numpy as np
from scipy.stats import spearmanr


def parc(F, y, *, n_classes=None, label_rdm: str = "published") -> float:
    F = np.asarray(F, dtype=np.float64)
    y = np.asarray(y)
    c = int(y.max()) + 1 if n_classes is None else n_classes
    std = F.std(axis=0)
    F = (F - F.mean(axis=0)) / np.where(std > 0, std, 1.0)
    # Repeated rows: correlations computed once per distinct row and spread to the copies, so ties that
    # exist in the data stay exact (SCORES.md: the score is a function of the data).
    _, first, inverse = np.unique(F, axis=0, return_index=True, return_inverse=True)
    if first.size == F.shape[0]:
        corr = np.clip(np.corrcoef(F), -1.0, 1.0)
    else:
        corr = np.clip(np.corrcoef(F[first]), -1.0, 1.0)
        np.fill_diagonal(corr, 1.0)
        corr = corr[np.ix_(inverse.reshape(-1), inverse.reshape(-1))]
    # Correlations within rounding error of +-1 (duplicate / collinear rows) tie exactly (SCORES.md: the
    # score is a function of the data), with the score's tolerance.
    tol = 8.0 * max(F.shape[1], 1) * np.finfo(np.float64).eps
    corr[corr >= 1.0 - tol] = 1.0
    corr[corr <= -1.0 + tol] = -1.0
    rdm_f = 1 - corr
    if label_rdm == "published":
        rdm_y = 1 - np.corrcoef(np.eye(c)[y])
    else:
        rdm_y = np.where(y[:, None] == y[None, :], 0.0, 1.0 + 1.0 / (c - 1))
    iu = np.triu_indices(len(y), k=1)
    return float(100 * spearmanr(rdm_f[iu], rdm_y[iu])[0])
