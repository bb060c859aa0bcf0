"""Regret of every strategy and score on the whole zoo, with confidence intervals over tasks and seeds.

    python bench/zoo/regret_ci.py                      # every task of the ground truth, every zoo model
    python bench/zoo/regret_ci.py --tasks mnist-10 digits-10 --scores knn_loo logme

Extracts (or reuses) one FeatureBank per (task, model) under --work (300 training images per task, as the
ground truth's LP-FT runs used), scores every bank, then for every (task, seed) unit takes that seed's
fine-tune accuracies as the truth and computes the relative regret (% of the best accuracy) at budgets 1 and 2
of: task-agnostic (upstream ImageNet/MNIST accuracy from the zoo cards), task-aware by each score, hybrid with
each score, and random selection (closed form). The mean is over all units; the 95% interval is a
hierarchical bootstrap (tasks resampled, then seeds within each task; 10,000 draws, fixed seed), because the
seeds of one task share its data and are not independent. Writes a markdown table to stdout and a JSON file.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Dict, List

import numpy as np

import transferlab as tl
from transferlab import evaluate as ev
from transferlab import select, zoo
from transferlab.extract import extract

HERE = os.path.dirname(os.path.abspath(__file__))
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


def unit_regrets(scores: Dict[str, Dict[str, Dict[str, float]]], truth: Dict[str, Dict[str, Dict[int, float]]],
                 pool, budgets=(1, 2)) -> Dict[str, Dict[tuple, Dict[int, float]]]:
    """{strategy: {(task, seed): {budget: relative regret in %}}}."""
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
                    b: 100 * ev.top_k_regret(sc, acc, k=b) for b in budgets}
                hyb = select.hybrid(pool.subset(sorted(models)), sc, name=s)
                out.setdefault(f"hybrid:{s}", {})[unit] = {b: 100 * ev.regret(hyb.models[:b], acc) for b in budgets}
    return out


def hierarchical_ci(values: Dict[tuple, float], draws: int = 10_000, seed: int = 0):
    """(mean, lo, hi): the mean over units and a 95% percentile interval, tasks then seeds resampled."""
    by_task: Dict[str, List[float]] = {}
    for (task, _), v in values.items():
        by_task.setdefault(task, []).append(v)
    tasks = sorted(by_task)
    rng = np.random.default_rng(seed)
    arrays = [np.asarray(by_task[t]) for t in tasks]
    means = np.empty(draws)
    for i in range(draws):
        picked = rng.integers(0, len(tasks), size=len(tasks))
        means[i] = np.mean(np.concatenate([a[rng.integers(0, a.size, size=a.size)] for a in
                                           (arrays[j] for j in picked)]))
    mean = float(np.mean(list(values.values())))
    return mean, float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", nargs="+", help="zoo tasks (default: every task of the ground truth)")
    ap.add_argument("--models", nargs="+", help="zoo models (default: every model with complete ground truth)")
    ap.add_argument("--scores", nargs="+", default=DEFAULT_SCORES)
    ap.add_argument("--work", default=os.path.join(HERE, "out"), help="banks and scores (default bench/zoo/out)")
    ap.add_argument("--n", type=int, default=300, help="training images per task (default 300, as LP-FT)")
    args = ap.parse_args(argv)

    truth_all = zoo.ground_truth(per_seed=True)
    tasks = args.tasks or sorted(truth_all)
    complete = [m for m in zoo.MODELS if all(len(truth_all[t].get(m, {})) >= 3 for t in tasks)]
    models = args.models or complete
    left_out = sorted(set(zoo.MODELS) - set(models))
    t0 = time.perf_counter()
    paths = extract_all(tasks, models, args.work, args.n)
    t_extract = time.perf_counter() - t0
    t0 = time.perf_counter()
    res = tl.score_pool(paths, args.scores, errors="note")
    t_score = time.perf_counter() - t0
    res.to_csv(os.path.join(args.work, "scores.csv"))
    truth = {t: {m: truth_all[t][m] for m in models} for t in tasks}
    per = unit_regrets(res.table(), truth, zoo.pool(models))

    secs = res.seconds()
    rows, record = [], {}
    for strat, units in per.items():
        r1 = hierarchical_ci({u: v[1] for u, v in units.items()})
        r2 = hierarchical_ci({u: v[2] for u, v in units.items()})
        name = strat.split(":", 1)[-1]
        ms = (1000 * np.mean([s for d in secs.get(name, {}).values() for s in d.values()])
              if strat.startswith("task-aware:") else float("nan"))
        record[strat] = {"regret@1": r1, "regret@2": r2, "units": len(units), "ms_per_bank": ms}
        rows.append((strat, r1, r2, len(units), ms))
    rows.sort(key=lambda r: (not r[0].startswith(("task-agnostic", "random")), r[1][0]))
    out = sys.stdout.write
    out(f"# zoo regret: {len(models)} models x {len(tasks)} tasks x seeds ({len(next(iter(per.values())))} "
        f"(task, seed) units); extraction {t_extract:.0f} s, scoring {t_score:.0f} s\n")
    if left_out:
        out(f"models left out (ground truth incomplete for these tasks): {', '.join(left_out)}\n")
    for note in res.notes:
        out(f"note: {note}\n")
    out("\nrelative regret in % of the best LP-FT accuracy; mean over units [95% hierarchical bootstrap CI]\n\n")
    out("| strategy | regret@1 | regret@2 | units | ms / bank |\n|---|---:|---:|---:|---:|\n")
    for strat, r1, r2, n_units, ms in rows:
        ms_s = "" if np.isnan(ms) else f"{ms:.0f}"
        out(f"| {strat} | {r1[0]:.2f} [{r1[1]:.2f}, {r1[2]:.2f}] | {r2[0]:.2f} [{r2[1]:.2f}, {r2[2]:.2f}] "
            f"| {n_units} | {ms_s} |\n")
    with open(os.path.join(args.work, "regret_ci.json"), "w") as f:
        json.dump({"tasks": tasks, "models": models, "scores": args.scores, "strategies": record}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
