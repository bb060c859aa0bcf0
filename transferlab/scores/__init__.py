"""Transferability scores: one package per score (``transferlab/scores/<score>/``) holding its one-shot
function, its streaming state and its ``ScoreSpec``; importing this package registers them all.

Every score is "higher = more transferable"; each docstring gives the exact definition.
"""
from transferlab.scores.registry import (ScoreInfo, ScoreSpec, available, available_streams, get, register,
                                         register_stream, score, unregister)
from transferlab.scores.knn import KnnLooResult, knn_accuracy, knn_loo
from transferlab.scores.leep import leep
from transferlab.scores.linear_probe import LinearProbeResult, linear_probe
from transferlab.scores.sfda import sfda
from transferlab.scores.logme import logme
from transferlab.scores.nleep import nleep
from transferlab.scores.hscore import hscore, reg_hscore
from transferlab.scores.nce import nce
from transferlab.scores.gbc import gbc
from transferlab.scores.transrate import transrate
from transferlab.scores.parc import parc
from transferlab.scores._many import EnsembleSelection, score_many, select_ensemble

__all__ = [
    "ScoreInfo",
    "ScoreSpec",
    "available_streams",
    "register_stream",
    "available",
    "get",
    "register",
    "score",
    "unregister",
    "KnnLooResult",
    "knn_loo",
    "knn_accuracy",
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
