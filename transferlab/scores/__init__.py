"""Transferability scores. Each module holds one score; all of them register themselves.

Semantics: ``../shared/SCORES.md`` (copied into the docstrings). Every score is
"higher = more transferable".
"""
from ._registry import ScoreInfo, available, get, register, score, unregister
from .knn import KnnLooResult, knn_loo
from .leep import leep
from .linear_probe import LinearProbeResult, linear_probe
from .sfda import sfda
from .logme import logme
from .nleep import nleep
from .hscore import hscore, reg_hscore
from .nce import nce
from .gbc import gbc
from .transrate import transrate
from .parc import parc
from ._many import EnsembleSelection, score_many, select_ensemble

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
    "logme",
    "nleep",
    "hscore",
    "reg_hscore",
    "nce",
    "gbc",
    "transrate",
    "parc",
    "EnsembleSelection",
    "score_many",
    "select_ensemble",
]
