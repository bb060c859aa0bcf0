"""GBC: Gaussian Bhattacharyya coefficient (Pándy et al. 2022)."""
from __future__ import annotations

import functools
from typing import Optional, Tuple

import numpy as np

from transferlab.core.types import Device, Features, MemoryBudget, NanPolicy, Targets, Task
from transferlab.scores.registry import require_task

from transferlab.core import blocks
from transferlab.scores import _gram
from transferlab.core.inputs import prepare

GAUSSIANS = ("spherical", "diagonal")
VAR_FLOOR = 1e-4  # published: tf.maximum(variance, 1e-4) per dimension
_PAIR_BLOCK_BYTES = 32 << 20


@blocks.checks_max_memory
def gbc(
    features: Features,
    labels: Targets,
    *,
    gaussian: str = "spherical",
    pca_dims: Optional[int] = 64,
    device: Device = "auto",
    nan_policy: NanPolicy = "raise",
    max_memory: MemoryBudget = None,
    task: Task = "classification",
) -> float:
    """GBC: ``-sum_{c1 != c2} exp(-D_B(c1, c2))`` over class-conditional Gaussians.

    Pándy et al. 2022, "Transferability Estimation using Bhattacharyya Class Separability".

    Parameters
    ----------
    features : (N, D); labels : (N,).
    gaussian : "spherical" (default, as published) or "diagonal".
    pca_dims : exact PCA (one eigensolve of the centred Gram) to this many dimensions when
        D > pca_dims (64 as published; capped at N); None keeps the features as they are.
    device : "auto" | "cpu" | "cuda" (PCA pass, eigensolve and projection on the GPU) | "reference"; nan_policy : "raise" | "omit".
    max_memory : host memory for the passes over the bank (bytes, or "2GB", "512MiB"; None = no
        budget). The state counted against it includes the reduced (N, K) rows; see
        docs/out_of_core.md. The result does not depend on it.

    Definition
    ----------
    Per class c in the reduced space: mean mu_c and population per-dimension variance, floored at
    1e-4 per dimension. Spherical: sigma_c = mean over dimensions of those floored variances, and
    ``D_B = |mu1 - mu2|^2 / (8 sigma_bar) + 1/2 (log sigma_bar - 1/2 log sigma1 - 1/2 log sigma2)``
    with sigma_bar = (sigma1 + sigma2)/2 (the log term is not multiplied by the dimension, as in
    the published code). Diagonal: the same per dimension, summed over dimensions.
    Higher (closer to 0) = more separable classes = more transferable. The score is invariant to
    the signs of the principal axes.
    """
    require_task("gbc", task)  # classification only: its definition needs classes
    check_options(gaussian, pca_dims)
    m, lab, dev, _ = prepare(features, labels, nan_policy=nan_policy, device=device, max_memory=max_memory,
                          cost=functools.partial(_memory_cost, pca_dims=pca_dims), what="gbc",
                          fixed_state_must_fit=pca_dims is not None)  # the PCA's D x D Gram
    if dev == "reference":
        from transferlab.reference.gbc import gbc as oracle

        return oracle(m.to_float64_host(), lab.codes, gaussian=gaussian, pca_dims=pca_dims)
    Z = reduce(m, pca_dims)  # the PCA's eigensolve runs where the bank is (m.device)
    means, var = class_moments(Z, lab.codes, lab.n_classes, lab.counts)
    return gbc_from_moments(means, var, gaussian)


def _memory_cost(m, lab, pca_dims) -> Tuple[int, int]:
    """Budget model: the Gram family's passes, plus the reduced rows Z (N, K) float64 and the two
    (N, K) temporaries of the class moments."""
    row, state = _gram.pass_cost(m, lab.n_classes)
    k = m.d if pca_dims is None else min(int(pca_dims), m.d)
    return row, state + 24 * m.n * k


def gbc_from_moments(means, var, gaussian):
    """GBC from the per-class means and population variances (C, K) of the reduced features."""
    return float(-bhattacharyya_coefficient_sum(means, np.maximum(var, VAR_FLOOR), gaussian))


def check_options(gaussian, pca_dims) -> None:
    if gaussian not in GAUSSIANS:
        raise ValueError(f"gaussian must be one of {GAUSSIANS}, got {gaussian!r}")
    if pca_dims is not None and (isinstance(pca_dims, bool) or not isinstance(pca_dims, (int, np.integer))
                                 or pca_dims < 1):
        raise ValueError(f"pca_dims must be a positive int or None, got {pca_dims!r}")


def reduce(m, pca_dims):
    """(N, K) float64: the exact PCA projection (centred) when D > pca_dims, else the features."""
    if pca_dims is None or m.d <= pca_dims:
        return m.to_float64_host()
    mean, comps, _ = _gram.pca(m, n_components=min(pca_dims, m.n))
    return _gram.project(m, comps, -(comps @ mean))


def class_moments(Z, codes, n_classes, counts):
    """Per-class means and population variances of the rows of Z (two passes: no cancellation)."""
    means = np.zeros((n_classes, Z.shape[1]))
    np.add.at(means, codes, Z)
    means /= counts[:, None]
    dev = Z - means[codes]
    var = np.zeros_like(means)
    np.add.at(var, codes, dev * dev)
    return means, var / counts[:, None]


def bhattacharyya_coefficient_sum(means, var, gaussian):
    """sum over ordered pairs c1 != c2 of exp(-D_B), in blocks of c1 (memory O(block * C * K))."""
    c, k = means.shape
    if gaussian == "spherical":
        var = var.mean(axis=1, keepdims=True)
    logv = np.log(var)
    step = max(1, _PAIR_BLOCK_BYTES // max(1, 8 * c * k))
    total = 0.0
    for s in range(0, c, step):
        mu1, v1, lv1 = means[s : s + step, None, :], var[s : s + step, None, :], logv[s : s + step, None, :]
        vbar = (v1 + var[None]) / 2.0
        first = ((mu1 - means[None]) ** 2 / vbar).sum(axis=2) / 8.0
        second = (np.log(vbar) - 0.5 * lv1 - 0.5 * logv[None]).sum(axis=2)
        db = first + 0.5 * second
        coef = np.exp(-db)
        rows = np.arange(s, min(c, s + step))
        coef[rows - s, rows] = 0.0  # c1 == c2 is not a pair
        total += coef.sum()
    return total
