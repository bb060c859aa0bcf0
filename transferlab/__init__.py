"""transferlab: fast, exact transferability scores and model selection with regret.

    import transferlab as tl
    tl.knn_loo(features, labels)          # leave-one-out 1-NN accuracy (Renggli et al.)
    tl.knn_accuracy(Xtr, ytr, Xte, yte)   # the train/test k-NN protocol on the same kernel
    tl.leep(source_probs, labels)         # LEEP (Nguyen et al. 2020)
    tl.sfda(features, labels)             # SFDA (Shao et al. 2022)
    tl.linear_probe(features, labels)     # linear-probe accuracy
    tl.score("sfda", features, labels)    # any registered score by name
    tl.extract(model, (images, labels), "banks/task/model")   # a resumable, memory-mapped FeatureBank
    tl.score_pool("banks/")               # every score on every bank, timed (dataset,model,score,value,seconds)
    tl.rank_models({"a": net_a, "b": "path/to/bert"}, (X, y))   # extract + score + rank in one call: a Ranking
    tl.show_config()                      # what was built, SIMD level, threads, CUDA devices
"""
from transferlab._version import __version__

from transferlab.core.cpu_threads import set_num_threads, threads
from transferlab._config import config, show_config
from transferlab import scores
from transferlab.scores import available, knn_accuracy, knn_loo, leep, linear_probe, score, sfda
from transferlab.scores import gbc, hscore, logme, nce, nleep, parc, reg_hscore, transrate
from transferlab.scores import score_many, select_ensemble
from transferlab import select
from transferlab.bank import FeatureBank
from transferlab.extract import extract
from transferlab.scoring import PoolScores, score_pool
from transferlab.front import Ranking, rank_models

__all__ = [
    "__version__",
    "FeatureBank",
    "PoolScores",
    "Ranking",
    "rank_models",
    "extract",
    "score_pool",
    "available",
    "config",
    "knn_loo",
    "knn_accuracy",
    "leep",
    "linear_probe",
    "score",
    "scores",
    "set_num_threads",
    "sfda",
    "show_config",
    "threads",
    "logme",
    "nleep",
    "hscore",
    "reg_hscore",
    "nce",
    "gbc",
    "transrate",
    "parc",
    "score_many",
    "select",
    "select_ensemble",
]
