"""Float64 oracle of NCE, written from SCORES.md ("NCE"): a literal loop over source classes.

    NCE = -sum_z p(z) H(Y | Z = z),  H(Y | Z = z) = -sum_y p(y|z) log p(y|z),  z_i = argmax_z P[i, z]
"""
from __future__ import annotations

import numpy as np


def nce(z, y) -> float:
    z = np.asarray(z)
    y = np.asarray(y)
    n = len(y)
    total = 0.0
    for zz in np.unique(z):
        ys = y[z == zz]
        pz = len(ys) / n
        _, cnt = np.unique(ys, return_counts=True)
        p = cnt / len(ys)
        total -= pz * float(-(p * np.log(p)).sum())
    return total
