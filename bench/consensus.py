"""Does a consensus of scores beat the best single score on held-out benchmarks? (SCORES.md, "Consensus ranking")

    python bench/consensus.py                       # the published table and the zoo (extracts and scores the
                                                    # zoo once into --work, like bench/zoo/regret_ci.py)
    python bench/consensus.py --no-zoo              # the published table only (seconds)
    python bench/consensus.py --zoo-scores S.csv    # the zoo from a scores CSV (score_pool's to_csv)

Two ground truths: (1) the shipped published table: Model-Spider's scores of 9 metrics for 10 ImageNet CNNs
against tllib's fine-tune accuracies on 8 datasets (one unit per dataset); (2) the zoo: transferlab's scores of
16 models on 8 tasks against the LP-FT ground truth (3 seeds per task, a unit per (task, seed)).

Protocol (``transferlab.evaluate.leave_one_benchmark_out``): for each held-out benchmark the consensus members
(2-3 scores, by mean weighted tau) and the best single score are chosen on the *other* benchmarks only, then
evaluated on the held-out one. Reported beside every single score and the consensus of all scores (no choice).
Means over units with a 95% hierarchical bootstrap interval (benchmarks, then seeds; 10,000 draws), the interval
of bench/zoo/regret_ci.py. The verdict compares consensus (LOBO) with (a) the best single chosen the same way and
(b) the single score that is best in hindsight on that metric (chosen after seeing every benchmark: a bar that
favours the single score), on the paired per-unit differences: "beats" = the difference's interval excludes 0.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Dict, List, Optional

import numpy as np

from transferlab import evaluate as ev

HERE = os.path.dirname(os.path.abspath(__file__))
METRICS = ("regret@1", "regret@2", "wtau")
LOWER_IS_BETTER = {"regret@1": True, "regret@2": True, "wtau": False}


def zoo_scores(args) -> Dict[str, Dict[str, Dict[str, float]]]:
    if args.zoo_scores:
        return ev.read_scores(args.zoo_scores)
    path = os.path.join(args.work, "scores.csv")
    if os.path.isfile(path):
        print(f"(reusing zoo scores {os.path.relpath(path)}; delete it to rescore)", file=sys.stderr)
        return ev.read_scores(path)
    sys.path.insert(0, os.path.join(HERE, "zoo"))
    import regret_ci  # the zoo table's own extraction (same banks, same 300 training images per task)

    import transferlab as tl
    from transferlab import zoo
    truth = zoo.ground_truth(per_seed=True)
    paths = regret_ci.extract_all(sorted(truth), list(zoo.MODELS), args.work, 300)
    res = tl.score_pool(paths, regret_ci.DEFAULT_SCORES, errors="note")
    res.to_csv(path)
    return res.table()


def fmt(ci) -> str:
    return f"{ci[0]:.3f} [{ci[1]:.3f}, {ci[2]:.3f}]"


def evaluate(name: str, scores, truth, criterion: str, out) -> dict:
    res = ev.leave_one_benchmark_out(scores, truth, criterion=criterion, budgets=(1, 2))
    n_units = len(res.strategies["consensus (LOBO)"])
    n_bench = len(res.chosen)
    table = {s: {m: ev.hierarchical_ci(res.metric(s, m)) for m in METRICS} for s in res.strategies}
    out(f"\n## {name}: {len(res.candidates)} scores, {n_bench} benchmarks, {n_units} units\n\n")
    if res.excluded:
        out("scores left out (not defined on every benchmark): "
            + "; ".join(f"{s} ({w})" for s, w in sorted(res.excluded.items())) + "\n\n")
    out("| strategy | regret@1 (%) | regret@2 (%) | weighted tau |\n|---|---:|---:|---:|\n")
    singles = sorted((s for s in table if s.startswith("score:")), key=lambda s: -table[s]["wtau"][0])
    for s in ["consensus (LOBO)", "best single (LOBO)", "consensus of all"] + singles:
        out(f"| {s} | " + " | ".join(fmt(table[s][m]) for m in METRICS) + " |\n")
    out("\nmembers chosen with each benchmark held out: "
        + "; ".join(f"{b}: {'+'.join(res.chosen[b])} (single: {res.chosen_single[b]})" for b in sorted(res.chosen))
        + "\n\n")
    verdicts = {}
    out("| paired difference, consensus (LOBO) minus ... | regret@1 | weighted tau |\n|---|---:|---:|\n")
    for label, other in [("best single (LOBO)", lambda m: "best single (LOBO)"),
                         ("best single in hindsight", lambda m: min(
                             singles, key=lambda s: table[s][m][0] if LOWER_IS_BETTER[m] else -table[s][m][0]))]:
        cells = []
        for m in ("regret@1", "wtau"):
            o = other(m)
            a, b = res.metric("consensus (LOBO)", m), res.metric(o, m)
            ci = ev.hierarchical_ci({u: a[u] - b[u] for u in a})
            better = ci[2] < 0 if LOWER_IS_BETTER[m] else ci[1] > 0
            worse = ci[1] > 0 if LOWER_IS_BETTER[m] else ci[2] < 0
            word = "consensus better" if better else ("consensus worse" if worse else "not significant")
            verdicts[f"{m} vs {label}"] = {"other": o, "diff": ci, "verdict": word}
            cells.append(f"{fmt(ci)} vs {o.replace('score:', '')}: {word}")
        out(f"| {label} | " + " | ".join(cells) + " |\n")
    return {"table": table, "chosen": res.chosen, "chosen_single": res.chosen_single, "verdicts": verdicts,
            "units": n_units, "benchmarks": n_bench, "excluded": res.excluded}


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-zoo", action="store_true", help="the published table only")
    ap.add_argument("--zoo-scores", help="a scores CSV of the zoo (dataset,model,score,value)")
    ap.add_argument("--work", default=os.path.join(HERE, "zoo", "out"), help="zoo banks and scores.csv")
    ap.add_argument("--criterion", default="wtau", choices=("wtau", "regret@1"), help="how members are chosen on the training benchmarks")
    ap.add_argument("--json", help="also write the figures to this JSON file")
    args = ap.parse_args(argv)
    out = sys.stdout.write
    out("# consensus ranking, leave-one-benchmark-out (mean over units [95% hierarchical bootstrap CI]; "
        f"members chosen by {args.criterion})\n")
    record = {}
    record["published"] = evaluate(  # the shipped tables (transferlab/data/published, via evaluate.published)
        "published: Model-Spider scores vs tllib fine-tune accuracy (10 ImageNet CNNs)",
        ev.read_scores(ev.published("modelspider_baseline_scores")),
        ev.read_finetune(ev.published("tllib_finetune")), args.criterion, out)
    if not args.no_zoo:
        from transferlab import zoo
        truth = zoo.ground_truth(per_seed=True)
        record["zoo"] = evaluate("zoo: transferlab scores vs LP-FT ground truth (16 models, seeds as units)",
                                 zoo_scores(args), truth, args.criterion, out)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(record, f, indent=1, default=lambda o: list(o) if isinstance(o, tuple) else str(o))
    return 0


if __name__ == "__main__":
    sys.exit(main())
