"""transferlab: fast, exact transferability scores and model selection with regret.

    import transferlab as tl
    tl.knn_loo(features, labels)          # leave-one-out 1-NN accuracy (Renggli et al.)
    tl.leep(source_probs, labels)         # LEEP (Nguyen et al. 2020)
    tl.sfda(features, labels)             # SFDA (Shao et al. 2022)
    tl.linear_probe(features, labels)     # linear-probe accuracy
    tl.score("sfda", features, labels)    # any registered score by name
    tl.show_config()                      # what was built, SIMD level, threads, CUDA devices
"""
__version__ = "0.1.0"

from ._backend import set_num_threads, threads
from ._config import config, show_config
from . import scores
from .scores import available, knn_loo, leep, linear_probe, score, sfda
from .scores import gbc, hscore, logme, nce, nleep, parc, reg_hscore, transrate
from .scores import score_many, select_ensemble
from . import select

__all__ = [
    "__version__",
    "available",
    "config",
    "knn_loo",
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
