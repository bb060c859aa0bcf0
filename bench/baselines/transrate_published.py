"""TransRate (Huang et al. 2022), the authors' released function: coding rates by slogdet of
I + Z^T Z / (n eps) on the centred features, uniform average over classes, no normalisation."""
from __future__ import annotations

import numpy as np


def _coding_rate(Z, eps=1e-4):
    n, d = Z.shape
    _, rate = np.linalg.slogdet(np.identity(d) + 1 / (n * eps) * Z.T @ Z)
    return 0.5 * rate


def transrate_published(features, labels, eps=1e-4) -> float:
    Z = np.asarray(features, dtype=np.float64)
    y = np.asarray(labels)
    Z = Z - np.mean(Z, axis=0, keepdims=True)
    rz = _coding_rate(Z, eps)
    k = int(y.max() + 1)
    rzy = sum(_coding_rate(Z[(y == i).flatten()], eps) for i in range(k))
    return float(rz - rzy / k)
