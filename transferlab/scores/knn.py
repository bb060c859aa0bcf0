"""Leave-one-out k-nearest-neighbour accuracy (Renggli et al. 2022; Puigcerver et al. 2021)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._registry import register


@dataclass(frozen=True)
class KnnLooResult:
    """Per-sample details of ``knn_loo(..., return_details=True)``."""

    score: float
    neighbors: np.ndarray  # (N, k) int64, sorted by (distance, index)
    distances: np.ndarray  # (N, k) float32 squared Euclidean (cosine: 2 - 2 cos)
    correct: np.ndarray  # (N,) float64 credit per sample (fractional under ties="expected")
    tie_count: np.ndarray  # (N,) int64 neighbours tied at the boundary distance
    classes: np.ndarray  # original label values, index = code


@register("knn_loo")
def knn_loo(features, labels, *, k=1, metric="euclidean", ties="expected", device="auto", return_details=False):
    """Leave-one-out k-NN accuracy."""
    raise NotImplementedError
