"""Transferability scores. Each module holds one score; all of them register themselves.

Semantics: ``../shared/SCORES.md`` (copied into the docstrings). Every score is
"higher = more transferable".
"""
from ._registry import ScoreInfo, available, get, register, score, unregister
from .knn import KnnLooResult, knn_loo
from .leep import leep
from .linear_probe import LinearProbeResult, linear_probe
from .sfda import sfda

__all__ = [
    "ScoreInfo",
    "available",
    "get",
    "register",
    "score",
    "unregister",
    "KnnLooResult",
    "knn_loo",
    "leep",
    "LinearProbeResult",
    "linear_probe",
    "sfda",
]
