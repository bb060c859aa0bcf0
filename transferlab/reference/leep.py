"""Float64 oracle of LEEP, written from SCORES.md ("LEEP (Nguyen et al. 2020)").

    J[y, z]   = (1/N) sum_{i : y_i = y} P[i, z]
    P(y | z)  = J[y, z] / sum_y J[y, z]        (source classes z with zero total mass are skipped)
    EEP_i     = sum_z P[i, z] * P(y_i | z)
    LEEP      = (1/N) sum_i log EEP_i

With logits L the probabilities are ``softmax(L)`` in float64 by log-sum-exp. Plain numpy, no
chunking: the ground truth of the tests and ``device="reference"``.
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np


def softmax_rows(L: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64: exp(L - logsumexp(L))."""
    L = np.asarray(L, dtype=np.float64)
    m = L.max(axis=1, keepdims=True)
    lse = m + np.log(np.exp(L - m).sum(axis=1, keepdims=True))
    return np.exp(L - lse)


def joint(P: np.ndarray, y: np.ndarray, n_classes: Optional[int] = None) -> np.ndarray:
    """J (C x Z) = (1/N) onehot(y)^T P, in float64."""
    P = np.asarray(P, dtype=np.float64)
    y = np.asarray(y).astype(np.int64)
    C = int(y.max()) + 1 if n_classes is None else int(n_classes)
    onehot = np.zeros((P.shape[0], C))
    onehot[np.arange(P.shape[0]), y] = 1.0
    return onehot.T @ P / P.shape[0]


def conditional(J: np.ndarray) -> np.ndarray:
    """P(y | z) = J[y, z] / sum_y J[y, z]; columns with zero mass are all zero (skipped)."""
    mass = J.sum(axis=0)
    out = np.zeros_like(J)
    live = mass > 0
    out[:, live] = J[:, live] / mass[live]
    return out


def leep(P: np.ndarray, y: np.ndarray, n_classes: Optional[int] = None, from_logits: bool = False
         ) -> Tuple[float, np.ndarray, np.ndarray, np.ndarray]:
    """Returns (score, J (C x Z), P(y|z) (C x Z), EEP (N,)), all float64."""
    P = softmax_rows(P) if from_logits else np.asarray(P, dtype=np.float64)
    y = np.asarray(y).astype(np.int64)
    J = joint(P, y, n_classes)
    cond = conditional(J)
    eep = np.einsum("iz,iz->i", P, cond[y])
    return float(np.mean(np.log(eep))), J, cond, eep
