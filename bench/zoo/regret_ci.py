"""Regret of every strategy and score on the whole zoo, with confidence intervals over tasks and seeds.

    python bench/zoo/regret_ci.py                      # every task of the ground truth, every zoo model
    python bench/zoo/regret_ci.py --tasks mnist-10 digits-10 --scores knn_loo logme

Extracts (or reuses) one FeatureBank per (task, model) under --work (300 training images per task, as the
ground truth's LP-FT runs used), scores every bank, then for every (task, seed) unit takes that seed's
fine-tune accuracies as the truth and computes the relative regret (% of the best accuracy) at budgets 1 and 2
of: task-agnostic (upstream ImageNet/MNIST accuracy from the zoo cards), task-aware by each score, hybrid with
each score, and random selection (closed form). Score ties count as ties: a task-aware or hybrid pick inside
a group of exactly equal scores is the expected regret over uniformly random tie-breaks (``--ties name``: by
model name, the old behaviour). The mean is over all units; the 95% interval is a hierarchical bootstrap (tasks
resampled, then seeds within each task; 10,000 draws, fixed seed), because the seeds of one task share its
data and are not independent.

Writes the table to stdout and, under --results (default bench/zoo/results/, or bench/zoo/results/perturbed/
with --perturb): ``scores.csv`` (every score of every bank, full precision), ``regret_ci.json`` (the table, the
options, the machine and the library versions) and ``regret_ci.md`` (the README's table).
``tests/zoo/test_zoo_table.py`` recomputes the table from the committed ``scores.csv`` and compares it with
the JSON and the README.

--perturb REL multiplies every extracted feature and logit by ``1 + REL * N(0, 1)`` (seeded) before scoring:
a stand-in for the last-bit differences of another machine (another CPU, another torch kernel).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from typing import Dict, List, Mapping

import numpy as np

import transferlab as tl
from transferlab import evaluate as ev
from transferlab import select, zoo
from transferlab.core import cpu_threads
from transferlab.extract import extract

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")
BUDGETS = (1, 2)
# nleep fits 5C-component mixtures on PCA'd features: minutes per 1280-d bank on 2 cores, left out by default.
DEFAULT_SCORES = ["knn_loo", "leep", "nce", "linear_probe", "logme", "sfda", "hscore", "reg_hscore", "gbc",
                  "transrate", "parc"]


def extract_all(tasks: List[str], models: List[str], work: str, n: int) -> List[str]:
    paths = []
    loaded = {m: zoo.load_model(m) for m in models}
    for t in tasks:
        x, y, _ = zoo.load_task(t, split="train", n=n, seed=0)
        for m, zm in loaded.items():
            p = os.path.join(work, "banks", t, m)
            extract(zm.module, (x, y), p, adapter=zm.adapter, preprocessing=zm.preprocess, model_id=m,
                    dataset_id=t, progress=False)
            paths.append(p)
    return paths


def perturb_banks(paths: List[str], work: str, rel: float, seed: int) -> List[str]:
    """Copies of the banks with features and logits multiplied by ``1 + rel * N(0, 1)`` (one generator per bank,
    seeded by ``seed`` and the bank's position), under ``work/banks_perturbed_<rel>_<seed>/``."""
    from transferlab.bank import FeatureBank

    out = []
    for i, p in enumerate(paths):
        task, model = p.rstrip(os.sep).split(os.sep)[-2:]
        q = os.path.join(work, f"banks_perturbed_{rel:g}_{seed}", task, model)
        if not os.path.exists(os.path.join(q, "meta.json")):
            b = FeatureBank.open(p)
            rng = np.random.default_rng([seed, i])
            feats = np.asarray(b.features)
            noisy = (feats * (1.0 + rel * rng.standard_normal(feats.shape))).astype(feats.dtype)
            logits = None
            if b.logits is not None:
                lg = np.asarray(b.logits)
                logits = (lg * (1.0 + rel * rng.standard_normal(lg.shape))).astype(lg.dtype)
            FeatureBank.from_arrays(noisy, np.asarray(b.labels), logits=logits, path=q, model_id=model,
                                    dataset_id=task)
        out.append(q)
    return out


def unit_regrets(scores: Mapping[str, Mapping[str, Mapping[str, float]]], truth: Dict[str, Dict[str, Dict[int, float]]],
                 pool, budgets=BUDGETS, ties: str = "expected") -> Dict[str, Dict[tuple, Dict[int, float]]]:
    """{strategy: {(task, seed): {budget: relative regret in %}}}; score ties as ``ties`` says."""
    out: Dict[str, Dict[tuple, Dict[int, float]]] = {}
    agn = select.task_agnostic(pool)
    for task, per_model in truth.items():
        seeds = sorted(set.intersection(*(set(v) for v in per_model.values())))
        for seed in seeds:
            acc = {m: per_model[m][seed] for m in per_model}
            unit = (task, seed)
            models = set(acc)
            agn_t = [m for m in agn if m in models]
            out.setdefault("task-agnostic", {})[unit] = {b: 100 * ev.regret(agn_t[:b], acc) for b in budgets}
            out.setdefault("random (expected)", {})[unit] = {
                b: 100 * ev.expected_random_regret(acc, b) for b in budgets}
            for s, per_task in scores.items():
                sc = {m: v for m, v in per_task.get(task, {}).items() if m in models}
                if set(sc) != models:
                    continue
                out.setdefault(f"task-aware:{s}", {})[unit] = {
                    b: 100 * ev.top_k_regret(sc, acc, k=b, ties=ties) for b in budgets}
                hyb = select.hybrid(pool.subset(sorted(models)), sc, name=s)
                out.setdefault(f"hybrid:{s}", {})[unit] = {b: 100 * ev.regret(hyb.top(b), acc, ties=ties)
                                                           for b in budgets}
    return out


def hierarchical_ci(values: Dict[tuple, float], draws: int = 10_000, seed: int = 0):
    """(mean, lo, hi): the mean over units and a 95% percentile interval, tasks then seeds resampled.

    Each draw resamples the tasks with replacement, then each picked task's units with replacement, and takes
    the mean of everything drawn. All draws at once (one (draws, tasks, units) index array) when every task has
    the same number of units, as the zoo's 3 seeds do; a loop otherwise."""
    by_task: Dict[str, List[float]] = {}
    for (task, _), v in values.items():
        by_task.setdefault(task, []).append(v)
    tasks = sorted(by_task)
    rng = np.random.default_rng(seed)
    arrays = [np.asarray(by_task[t], dtype=np.float64) for t in tasks]
    sizes = {a.size for a in arrays}
    if len(sizes) == 1:
        s = sizes.pop()
        grid = np.stack(arrays)  # (tasks, units)
        picked = rng.integers(0, len(tasks), size=(draws, len(tasks)))
        units = rng.integers(0, s, size=(draws, len(tasks), s))
        means = grid[picked[:, :, None], units].mean(axis=(1, 2))
    else:
        means = np.empty(draws)
        for i in range(draws):
            picked = rng.integers(0, len(tasks), size=len(tasks))
            means[i] = np.mean(np.concatenate([a[rng.integers(0, a.size, size=a.size)] for a in
                                               (arrays[j] for j in picked)]))
    mean = float(np.mean(list(values.values())))
    return mean, float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def regret_table(scores: Mapping[str, Mapping[str, Mapping[str, float]]], tasks: List[str], models: List[str],
                 ties: str = "expected") -> Dict[str, dict]:
    """``{strategy: {"regret@1": (mean, lo, hi), "regret@2": ..., "units": n}}`` from a score table
    ``{score: {task: {model: value}}}`` and the shipped ground truth: the whole computation after scoring
    (what the test recomputes from the committed scores)."""
    truth_all = zoo.ground_truth(per_seed=True)
    truth = {t: {m: truth_all[t][m] for m in models} for t in tasks}
    per = unit_regrets(scores, truth, zoo.pool(models), ties=ties)
    table = {}
    for strat, units in per.items():
        rec = {f"regret@{b}": hierarchical_ci({u: v[b] for u, v in units.items()}) for b in BUDGETS}
        rec["units"] = len(units)
        table[strat] = rec
    return table


def sorted_rows(table: Mapping[str, dict]) -> List[str]:
    """Strategies in the README's order: task-agnostic and random first, then by regret@1."""
    return sorted(table, key=lambda s: (not s.startswith(("task-agnostic", "random")), table[s]["regret@1"][0], s))


def markdown(table: Mapping[str, dict]) -> str:
    """The README's table (regret@1 and regret@2, mean [95% CI])."""
    lines = ["| strategy | regret@1 | regret@2 |", "|---|---:|---:|"]
    for strat in sorted_rows(table):
        cells = [f"{table[strat][f'regret@{b}'][0]:.2f} [{table[strat][f'regret@{b}'][1]:.2f}, "
                 f"{table[strat][f'regret@{b}'][2]:.2f}]" for b in BUDGETS]
        name = {"task-agnostic": "task-agnostic (upstream accuracy)"}.get(strat, strat.replace(":", ": ", 1))
        lines.append(f"| {name} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines) + "\n"


def machine() -> Dict[str, object]:
    """Where the table was computed: the machine and the versions that can move a last bit."""
    import numpy
    import scipy
    import sklearn

    info: Dict[str, object] = {"platform": platform.platform(), "machine": platform.machine(),
                               "processor": platform.processor(), "cpu_count": os.cpu_count(),
                               "python": platform.python_version(), "numpy": numpy.__version__,
                               "scipy": scipy.__version__, "scikit-learn": sklearn.__version__,
                               "transferlab": tl.__version__, "threads": cpu_threads.num_threads()}
    try:
        import torch

        info["torch"] = torch.__version__
    except ImportError:
        info["torch"] = None
    try:
        with open("/proc/cpuinfo") as f:
            info["cpu"] = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), None)
    except OSError:
        info["cpu"] = None
    return info


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", nargs="+", help="zoo tasks (default: every task of the ground truth)")
    ap.add_argument("--models", nargs="+", help="zoo models (default: every model with complete ground truth)")
    ap.add_argument("--scores", nargs="+", default=DEFAULT_SCORES)
    ap.add_argument("--work", default=os.path.join(HERE, "out"), help="banks and scores (default bench/zoo/out)")
    ap.add_argument("--n", type=int, default=300, help="training images per task (default 300, as LP-FT)")
    ap.add_argument("--ties", choices=["expected", "name"], default="expected",
                    help="score ties: expected regret over random tie-breaks (default) or broken by model name")
    ap.add_argument("--perturb", type=float, default=0.0, metavar="REL",
                    help="multiply features and logits by 1 + REL * N(0, 1) before scoring (e.g. 1e-6)")
    ap.add_argument("--perturb-seed", type=int, default=0)
    ap.add_argument("--results", help="where scores.csv, regret_ci.json and regret_ci.md go (default "
                                      "bench/zoo/results, or bench/zoo/results/perturbed with --perturb)")
    args = ap.parse_args(argv)
    if args.perturb < 0:
        ap.error("--perturb must be >= 0")
    results = args.results or (os.path.join(RESULTS, "perturbed") if args.perturb else RESULTS)
    os.makedirs(results, exist_ok=True)

    truth_all = zoo.ground_truth(per_seed=True)
    tasks = args.tasks or sorted(truth_all)
    complete = [m for m in zoo.MODELS if all(len(truth_all[t].get(m, {})) >= 3 for t in tasks)]
    models = args.models or complete
    left_out = sorted(set(zoo.MODELS) - set(models))
    t0 = time.perf_counter()
    paths = extract_all(tasks, models, args.work, args.n)
    if args.perturb:
        paths = perturb_banks(paths, args.work, args.perturb, args.perturb_seed)
    t_extract = time.perf_counter() - t0
    t0 = time.perf_counter()
    res = tl.score_pool(paths, args.scores, errors="note")
    t_score = time.perf_counter() - t0
    res.to_csv(os.path.join(results, "scores.csv"))
    table = regret_table(res.table(), tasks, models, ties=args.ties)

    secs = res.seconds()
    for strat, rec in table.items():
        name = strat.split(":", 1)[-1]
        rec["ms_per_bank"] = (1000 * float(np.mean([s for d in secs.get(name, {}).values() for s in d.values()]))
                              if strat.startswith("task-aware:") else None)
    out = sys.stdout.write
    n_units = next(iter(table.values()))["units"]
    out(f"# zoo regret: {len(models)} models x {len(tasks)} tasks x seeds ({n_units} (task, seed) units); "
        f"extraction {t_extract:.0f} s, scoring {t_score:.0f} s"
        + (f"; features perturbed by {args.perturb:g} relative noise" if args.perturb else "") + "\n")
    if left_out:
        out(f"models left out (ground truth incomplete for these tasks): {', '.join(left_out)}\n")
    for note in res.notes:
        out(f"note: {note}\n")
    ties_note = ("score ties: expected regret over uniformly random tie-breaks" if args.ties == "expected"
                 else "score ties: broken by model name")
    out(f"\nrelative regret in % of the best LP-FT accuracy; mean over units [95% hierarchical bootstrap CI]; "
        f"{ties_note}\n\n")
    md = markdown(table)
    out(md)
    with open(os.path.join(results, "regret_ci.md"), "w") as f:
        f.write(md)
    with open(os.path.join(results, "regret_ci.json"), "w") as f:
        json.dump({"command": "python bench/zoo/regret_ci.py " + " ".join(sys.argv[1:] if argv is None else argv),
                   "tasks": tasks, "models": models, "scores": args.scores, "n": args.n, "ties": args.ties,
                   "perturb": args.perturb, "perturb_seed": args.perturb_seed, "machine": machine(),
                   "seconds": {"extract": t_extract, "score": t_score}, "notes": list(res.notes),
                   "strategies": table}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
