"""``Report``: every correlation, regret, budget and success figure of a score table against fine-tune
accuracies, per dataset and averaged."""
from __future__ import annotations

import json
import math
import os
import warnings
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from transferlab.pool import ModelPool
from transferlab.select import Selection, agnostic_oracle, hybrid, task_agnostic, task_aware
from transferlab.evaluate._correlation import kendall_tau, pearson, spearman, top_k_recall, weighted_tau
from transferlab.evaluate._regret import (REGRET_KINDS, TIES, budget_to_zero_regret, expected_random_budget_to_zero, expected_random_regret, random_success_rate, regret, success_at)
from transferlab.evaluate._tables import read_finetune, read_scores
from transferlab.core.markdown import md_table as _md

__all__ = ["Report"]

MEAN = "mean"
AGNOSTIC, ORACLE, RANDOM = "task-agnostic", "oracle", "random"
#: What the "oracle" row is, printed with every report that has one (it is not a strategy one can run).
ORACLE_EXPLAINED = ("oracle: each dataset's models ranked by their mean fine-tune accuracy on the *other* "
                    "datasets (Renggli et al.'s upper reference: it needs fine-tune results, so it cannot be run on a "
                    "new task).")

#: Correlation statistics: (key, column title, function).
CORRELATIONS = (
    ("weighted_tau", "wτ", lambda s, t: weighted_tau(s, t, rank=True)),
    ("weighted_tau_gt", "wτ (gt rank)", lambda s, t: weighted_tau(s, t, rank=None)),
    ("kendall_tau", "Kendall τ", kendall_tau),
    ("pearson", "Pearson", pearson),
    ("spearman", "Spearman", spearman),
)
_TITLES = {
    "weighted_tau": "weighted τ (rank=True: mean of both importance rankings)",
    "weighted_tau_gt": "weighted τ (rank=None: importance by fine-tune accuracy)",
    "kendall_tau": "Kendall τ-b",
    "pearson": "Pearson r",
    "spearman": "Spearman ρ",
}


_TIES_NOTE = {"expected": "score ties: expected value over uniformly random tie-breaks",
              "name": "score ties: broken by model name"}


class Report:
    """Evaluation of scores and selection strategies against fine-tune accuracies.

    Build it with :meth:`from_tables`. ``rows`` holds every figure as ``(dataset, subject, statistic, value)``
    where dataset is a dataset name or ``"mean"`` (the mean over datasets); subject is a score name (its
    correlations and its task-aware ranking), ``"task-agnostic"``, ``"oracle"``, ``"random"`` (closed-form
    expectations) or ``"hybrid:<score>"``; statistic is one of ``weighted_tau``, ``weighted_tau_gt``,
    ``kendall_tau``, ``pearson``, ``spearman``, ``recall@B``, ``regret@B``, ``budget_to_zero``, ``success@B``
    (1 when the top-B contains a best model; its mean is the success rate of Renggli et al.'s Figure 7).
    Score ties: with ``ties="expected"`` (default) regret, budget to zero regret and success of a ranking whose
    scores tie are expectations over uniformly random tie-breaks (closed form, like the random strategy);
    ``ties="name"`` breaks them by model name. ``selections[(dataset, subject)]`` holds each strategy's full
    ranking (its ``tied_groups`` too).
    """

    def __init__(self, rows: List[Tuple[str, str, str, float]], *, datasets: List[str], subjects: List[str], kinds: Dict[str, str], budgets: Tuple[int, ...], meta: Dict[str, object], scores: Dict[str, Dict[str, Dict[str, float]]], finetune: Dict[str, Dict[str, float]], selections: Dict[Tuple[str, str], Selection]):
        self.rows: List[Tuple[str, str, str, float]] = rows
        self.datasets: List[str] = datasets
        self.subjects: List[str] = subjects
        self.kinds: Dict[str, str] = kinds
        self.budgets: Tuple[int, ...] = budgets
        self.meta: Dict[str, object] = meta
        self.scores = scores
        self.finetune = finetune
        self.selections: Dict[Tuple[str, str], Selection] = selections
        self._index = {(d, s, st): v for d, s, st, v in rows}

    # --- construction -------------------------------------------------------------------------------------
    @classmethod
    def from_tables(cls, scores: Union[str, "os.PathLike[str]", Mapping[str, Any], Sequence[Any]], finetune: Union[str, "os.PathLike[str]", Mapping[str, Mapping[str, float]]], budgets: Sequence[int] = (1, 2, 3), *,
                    pool: Union[str, ModelPool, None] = "auto", kind: str = "relative",
                    on_mismatch: str = "raise", nan_policy: str = "raise",
                    percent: Optional[bool] = None, ties: str = "expected") -> "Report":
        """Evaluate a long score table against a fine-tune table.

        scores: a CSV path (long ``dataset,model,score,value`` or wide ``dataset,model,<score>...``), a mapping
        ``{score: {dataset: {model: value}}}`` or long rows. finetune: a CSV path (wide ``model,<dataset>...``
        or long ``dataset,model,accuracy``) or ``{dataset: {model: accuracy}}``. Dataset names match
        case-insensitively. Every scored dataset must have fine-tune accuracies; fine-tune datasets without
        scores only inform the oracle (mean accuracy over the other datasets).
        budgets: the budgets B of regret@B and recall@B (success@B is reported for every B up to the pool size).
        pool: ``"auto"`` uses the shipped ImageNet CNN cards when they cover every model (else the task-agnostic
        and hybrid strategies are left out, with a note); a :class:`ModelPool` or a card file path must cover
        every model; ``None`` leaves them out.
        kind: regret kind (``"relative"``, ``"absolute"``, ``"log_odds"``).
        on_mismatch: ``"raise"`` (a score and the fine-tune table covering different models on a dataset raises,
        naming the missing ids) or ``"intersect"`` (evaluate on the common models; dropped ones noted).
        nan_policy: NaN scores raise, or with ``"omit"`` the model is unranked by that score (noted).
        ties: ``"expected"`` (default): exactly equal scores are a tie, every figure the expectation over random
        tie-breaks; ``"name"``: ties broken by model name (the printed order).
        """
        budgets = _check_options(budgets, kind, on_mismatch, nan_policy)
        if ties not in TIES:
            raise ValueError(f"ties must be one of {TIES}, got {ties!r}")
        stab = read_scores(scores)
        ftab = read_finetune(finetune)
        if not stab:
            raise ValueError("scores: the table is empty")
        notes: List[str] = []
        score_names = list(stab)
        datasets = _evaluated_datasets(stab, ftab, on_mismatch, notes)
        models = _common_models(stab, ftab, datasets, on_mismatch, notes)
        all_models = sorted({m for d in datasets for m in models[d]})
        pool_obj, pool_src = cls._resolve_pool(pool, all_models, notes)
        subjects, kinds = _subjects(score_names, pool_obj is not None, len(ftab) >= 2)

        figures = _Figures(budgets, kind, percent, nan_policy, max(len(models[d]) for d in datasets), notes, ties)
        for d in datasets:
            figures.add_dataset(d, models[d], stab, ftab, pool_obj, cls._oracle if ORACLE in kinds else None)
        rows = figures.rows
        rows += _mean_rows(rows, len(datasets))

        meta = {
            "n_datasets": len(datasets),
            "models": {d: models[d] for d in datasets},
            "scores": score_names,
            "budgets": list(budgets),
            "regret_kind": kind,
            "pool": pool_src,
            "nan_policy": nan_policy,
            "on_mismatch": on_mismatch,
            "ties": ties,
            "notes": notes,
        }
        return cls(rows, datasets=datasets, subjects=subjects, kinds=kinds, budgets=budgets, meta=meta,
                   scores={s: {d: {m: stab[s][d][m] for m in models[d]} for d in datasets} for s in score_names},
                   finetune={d: {m: ftab[d][m] for m in models[d]} for d in datasets},
                   selections=figures.selections)

    @staticmethod
    def _resolve_pool(pool, all_models: List[str], notes: List[str]):
        if pool is None or pool is False:
            notes.append("no model pool: task-agnostic and hybrid strategies left out")
            return None, None
        if isinstance(pool, str) and pool == "auto":
            shipped = ModelPool.imagenet_cnns()
            missing = sorted(set(all_models) - set(shipped.names))
            if missing:
                notes.append(f"no model cards for {missing}: task-agnostic and hybrid strategies left out "
                             f"(pass a pool with upstream accuracies)")
                return None, None
            return shipped, "shipped ImageNet CNN cards (torchvision top-1)"
        src = None
        if isinstance(pool, (str, os.PathLike)):
            src = os.fspath(pool)
            pool = ModelPool.load(pool)
        if not isinstance(pool, ModelPool):
            raise TypeError(f"pool must be 'auto', None, a ModelPool or a card file path, got {type(pool).__name__}")
        missing = sorted(set(all_models) - set(pool.names))
        if missing:
            raise ValueError(f"pool: no model cards for {missing}")
        return pool, src or "user pool"

    @staticmethod
    def _oracle(ftab, d: str, ms: List[str], notes: List[str]) -> Optional[Selection]:
        others = [o for o in ftab if o != d and set(ms) <= set(ftab[o])]
        skipped = sorted(o for o in ftab if o != d and o not in others)
        if skipped:
            notes.append(f"{d}: oracle averages without {skipped} (models missing there)")
        if not others:
            notes.append(f"{d}: no other dataset covers its models: oracle left out")
            return None
        table = {d: {m: ftab[d][m] for m in ms}}
        table.update({o: {m: ftab[o][m] for m in ms} for o in others})
        return agnostic_oracle(table, d)

    # --- access -------------------------------------------------------------------------------------------
    def value(self, dataset: str, subject: str, statistic: str) -> float:
        """One figure (dataset ``"mean"`` for the mean over datasets); KeyError if absent."""
        key = (dataset if dataset == MEAN else dataset.lower(), subject, statistic)
        if key not in self._index:
            raise KeyError(f"no {statistic!r} for {subject!r} on {dataset!r}")
        return self._index[key]

    def matrix(self, statistic: str, subjects: Optional[Sequence[str]] = None, *, mean: bool = False) -> Tuple[List[str], List[str], np.ndarray]:
        """``(subjects, datasets, values)`` for one statistic; values has shape (subjects, datasets) with NaN
        where a subject has no such figure; ``mean=True`` appends the mean column."""
        subs = [s for s in (subjects or self.subjects)
                if any((d, s, statistic) in self._index for d in self.datasets)]
        cols = self.datasets + ([MEAN] if mean else [])
        vals = np.array([[self._index.get((d, s, statistic), math.nan) for d in cols] for s in subs],
                        dtype=np.float64).reshape(len(subs), len(cols))
        return subs, cols, vals

    def success_curve(self, subject: str) -> Tuple[np.ndarray, np.ndarray]:
        """``(budgets 1..n, success rate)`` of one strategy over the datasets (Renggli et al., Figure 7)."""
        n = max(len(v) for v in self.meta["models"].values())
        bud = np.arange(1, n + 1)
        return bud, np.array([self._index.get((MEAN, subject, f"success@{b}"), math.nan) for b in bud])

    # --- output -------------------------------------------------------------------------------------------
    def _fmt(self, statistic: str, v: float, mean: bool = False) -> str:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return "n/a"
        if math.isinf(v):
            return "never"
        if statistic.startswith("regret@"):
            return f"{100 * v:.2f}" if self.meta["regret_kind"] == "relative" else f"{v:.3f}"
        if statistic == "budget_to_zero":
            return f"{v:.0f}" if float(v).is_integer() and not mean else f"{v:.2f}"
        if statistic.startswith("success@") or statistic.startswith("recall@"):
            return f"{v:.2f}"
        return f"{v:+.3f}"

    def _regret_unit(self) -> str:
        return {"relative": "relative regret, % of the best fine-tune accuracy",
                "absolute": "absolute regret, in the fine-tune table's unit",
                "log_odds": "log-odds regret"}[self.meta["regret_kind"]]

    def to_markdown(self, *, summary_only: bool = False) -> str:
        """Readable tables: a summary (mean over datasets) of every score and strategy, then per-dataset tables
        of each correlation, regret@B and budget to zero regret, and success rate against budget."""
        m = self.meta
        scores = m["scores"]
        n_models = sorted({len(v) for v in m["models"].values()})
        out = [f"# transferlab evaluate: {len(scores)} scores, "
               f"{'/'.join(map(str, n_models))} models, {len(self.datasets)} datasets",
               "",
               f"regret@B: {self._regret_unit()} when the top B models are fine-tuned; "
               f"budget→0: smallest B with zero regret; random: closed-form expectation; "
               f"{_TIES_NOTE[m.get('ties', 'expected')]}; "
               f"task-agnostic ranking: {m['pool'] or 'not available'}."
               + (f" {ORACLE_EXPLAINED}" if ORACLE in self.subjects else ""),
               ""]
        corr_keys = [k for k, _, _ in CORRELATIONS]
        head = ["subject"] + [t for _, t, _ in CORRELATIONS] + [f"regret@{b}" for b in self.budgets] + ["budget→0"]
        stats = corr_keys + [f"regret@{b}" for b in self.budgets] + ["budget_to_zero"]
        rows = []
        for s in self.subjects:
            rows.append([s] + [self._fmt(st, self._index[(MEAN, s, st)], True) if (MEAN, s, st) in self._index else ""
                               for st in stats])
        out += [f"## Summary: mean over {len(self.datasets)} datasets", "", _md(head, rows), ""]
        if summary_only:
            return "\n".join(out + self._notes())
        for key in corr_keys:
            out += [f"## {_TITLES[key]}", "", self._md_stat(key, [s for s in self.subjects
                                                                  if self.kinds[s] == "score"]), ""]
        for b in self.budgets:
            out += [f"## regret@{b} ({self._regret_unit()})", "", self._md_stat(f"regret@{b}"), ""]
        out += ["## budget to zero regret (smallest B whose top-B contains a best model)", "",
                self._md_stat("budget_to_zero"), ""]
        n = max(len(v) for v in m["models"].values())
        head = ["subject"] + [f"B={b}" for b in range(1, n + 1)]
        rows = [[s] + [self._fmt("success@", v) for v in self.success_curve(s)[1]] for s in self.subjects]
        out += ["## success rate vs budget (fraction of datasets whose best model is in the top B)", "",
                _md(head, rows), ""]
        return "\n".join(out + self._notes())

    def _notes(self) -> List[str]:
        notes = self.meta["notes"]
        return (["Notes:"] + [f"- {n}" for n in notes] + [""]) if notes else []

    def _md_stat(self, statistic: str, subjects=None) -> str:
        subs, cols, vals = self.matrix(statistic, subjects, mean=True)
        rows = [[s] + [self._fmt(statistic, v, c == MEAN) for c, v in zip(cols, row)] for s, row in zip(subs, vals)]
        return _md(["subject"] + cols, rows)

    def to_csv(self, path: Optional[Union[str, "os.PathLike[str]"]] = None) -> str:
        """Every figure as long CSV ``dataset,subject,statistic,value`` (empty value = undefined)."""
        import csv
        import io

        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["dataset", "subject", "statistic", "value"])
        for d, s, st, v in self.rows:
            w.writerow([d, s, st, "" if math.isnan(v) else repr(float(v))])
        text = buf.getvalue()
        if path is not None:
            with open(path, "w", encoding="utf-8", newline="") as f:
                f.write(text)
        return text

    def to_json(self, path: Optional[Union[str, "os.PathLike[str]"]] = None) -> str:
        """``{"meta": ..., "results": {dataset or "mean": {subject: {statistic: value}}}}`` (undefined figures
        are null; a budget to zero regret never reached is the string "inf")."""
        res: Dict[str, Dict[str, Dict[str, object]]] = {}
        for d, s, st, v in self.rows:
            v = None if math.isnan(v) else ("inf" if math.isinf(v) else v)
            res.setdefault(d, {}).setdefault(s, {})[st] = v
        doc = {"meta": dict(self.meta, datasets=self.datasets, subjects=self.subjects, kinds=self.kinds),
               "results": res}
        text = json.dumps(doc, indent=1, ensure_ascii=False) + "\n"
        if path is not None:
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
        return text

    def plot(self, out_dir: Union[str, "os.PathLike[str]"], *, progress: bool = True) -> List[str]:
        """Write the figures (regret per dataset per strategy, success rate vs budget, score vs fine-tune
        accuracy) as PNG files into ``out_dir``; returns their paths. progress: a bar on stderr per figure,
        shown on a terminal only. Needs matplotlib."""
        from transferlab.plot import save_report_plots

        return save_report_plots(self, out_dir, progress=progress)

    def __repr__(self) -> str:
        return (f"Report({len(self.meta['scores'])} scores, {len(self.datasets)} datasets, "
                f"subjects={self.subjects})")


def _omit(d: Mapping[str, float], omitted) -> Dict[str, float]:
    return {k: v for k, v in d.items() if k not in omitted}


def _reaches_best(sel: Selection, ft: Mapping[str, float]) -> bool:
    best = max(ft.values())
    return any(ft[m] == best for m in sel.models)


# --- the steps of Report.from_tables ------------------------------------------------------------------------

def _check_options(budgets, kind: str, on_mismatch: str, nan_policy: str) -> Tuple[int, ...]:
    """Check the regret kind, on_mismatch and nan_policy options; return the budgets sorted and deduplicated
    (ValueError unless they are positive integers)."""
    if kind not in REGRET_KINDS:
        raise ValueError(f"kind must be one of {REGRET_KINDS}, got {kind!r}")
    if on_mismatch not in ("raise", "intersect"):
        raise ValueError(f"on_mismatch must be 'raise' or 'intersect', got {on_mismatch!r}")
    if nan_policy not in ("raise", "omit"):
        raise ValueError(f"nan_policy must be 'raise' or 'omit', got {nan_policy!r}")
    b = sorted({int(x) for x in np.atleast_1d(np.asarray(budgets))}) if budgets is not None else []
    if not b or any(x < 1 for x in b) or np.asarray(budgets).dtype.kind not in "iu":
        raise ValueError(f"budgets must be positive integers, got {budgets!r}")
    return tuple(b)


def _evaluated_datasets(stab, ftab, on_mismatch: str, notes: List[str]) -> List[str]:
    """The scored datasets in order of first appearance that have fine-tune accuracies. Scored datasets without
    them raise (``on_mismatch="raise"``, or when none is left) or are skipped with a note; fine-tune datasets
    without scores are noted (they only inform the oracle)."""
    datasets: List[str] = []
    for s in stab:
        for d in stab[s]:
            if d not in datasets:
                datasets.append(d)
    missing_ds = [d for d in datasets if d not in ftab]
    if missing_ds:
        if on_mismatch == "raise" or len(missing_ds) == len(datasets):
            raise ValueError(f"datasets with scores but no fine-tune accuracies: {missing_ds} "
                             f"(fine-tune table has {sorted(ftab)})")
        notes.append(f"datasets without fine-tune accuracies skipped: {missing_ds}")
        datasets = [d for d in datasets if d in ftab]
    extra_ds = sorted(set(ftab) - set(datasets))
    if extra_ds:
        notes.append(f"fine-tune datasets without scores (used by the oracle only): {extra_ds}")
    return datasets


def _common_models(stab, ftab, datasets: List[str], on_mismatch: str, notes: List[str]) -> Dict[str, List[str]]:
    """``{dataset: sorted models}`` that every score and the fine-tune table cover. Any difference raises
    (``on_mismatch="raise"``, naming the missing ids) or is noted; fewer than 2 common models raise."""
    models: Dict[str, List[str]] = {}
    problems: List[str] = []
    for d in datasets:
        ft_models = set(ftab[d])
        common = set(ft_models)
        for s in stab:
            sm = set(stab[s].get(d, {}))
            if sm != ft_models:
                parts = []
                if ft_models - sm:
                    parts.append(f"no {s} score for {sorted(ft_models - sm)}")
                if sm - ft_models:
                    parts.append(f"no fine-tune accuracy for {sorted(sm - ft_models)}")
                problems.append(f"{d}: " + "; ".join(parts))
            common &= sm
        models[d] = sorted(common)
    if problems:
        if on_mismatch == "raise":
            raise ValueError("model sets do not match (pass on_mismatch='intersect' to evaluate on the "
                             "common models):\n  " + "\n  ".join(problems))
        notes.append("evaluated on the common models only: " + " | ".join(problems))
    for d in datasets:
        if len(models[d]) < 2:
            raise ValueError(f"dataset {d!r}: need at least 2 models with scores and fine-tune "
                             f"accuracies, got {models[d]}")
    return models


def _subjects(score_names: List[str], with_pool: bool, with_oracle: bool) -> Tuple[List[str], Dict[str, str]]:
    """The report's subjects in order and their kind (``"strategy"`` or ``"score"``): task-agnostic (with a
    pool), oracle (with at least 2 fine-tune datasets), random, every score, then hybrid:<score> (with a pool)."""
    subjects: List[str] = []
    kinds: Dict[str, str] = {}
    if with_pool:
        subjects.append(AGNOSTIC)
        kinds[AGNOSTIC] = "strategy"
    if with_oracle:
        subjects.append(ORACLE)
        kinds[ORACLE] = "strategy"
    subjects.append(RANDOM)
    kinds[RANDOM] = "strategy"
    for s in score_names:
        subjects.append(s)
        kinds[s] = "score"
    if with_pool:
        for s in score_names:
            subjects.append(f"hybrid:{s}")
            kinds[f"hybrid:{s}"] = "strategy"
    return subjects, kinds


class _Figures:
    """The figures of a Report under construction: ``rows`` ``(dataset, subject, statistic, value)`` and
    ``selections[(dataset, subject)]``, with the options every figure needs (budgets, regret kind, percent,
    nan_policy, ``n_max`` = the largest pool, for success@1..n_max); notes go to the shared ``notes`` list."""

    def __init__(self, budgets: Tuple[int, ...], kind: str, percent: Optional[bool], nan_policy: str,
                 n_max: int, notes: List[str], ties: str = "expected"):
        self.budgets, self.kind, self.percent, self.nan_policy, self.n_max = budgets, kind, percent, nan_policy, n_max
        self.ties = ties
        self.notes = notes
        self.rows: List[Tuple[str, str, str, float]] = []
        self.selections: Dict[Tuple[str, str], Selection] = {}

    def add_dataset(self, d: str, ms: List[str], stab, ftab, pool_obj: Optional[ModelPool], oracle) -> None:
        """Every figure of dataset ``d`` on its models ``ms``: task-agnostic (with a pool), the oracle (when
        ``oracle(ftab, d, ms, notes)`` is given and returns a ranking), random, then per score its correlations
        and task-aware ranking, and its hybrid (with a pool)."""
        ft = {m: ftab[d][m] for m in ms}
        if pool_obj is not None:
            self.add_strategy(d, ft, AGNOSTIC, task_agnostic(pool_obj.subset(ms)))
        if oracle is not None:
            sel = oracle(ftab, d, ms, self.notes)
            if sel is not None:
                self.add_strategy(d, ft, ORACLE, sel)
        self.add_random(d, ft)
        for s in stab:
            sc = {m: stab[s][d][m] for m in ms}
            self.add_score(d, ft, s, sc)
            if pool_obj is not None:
                self.add_strategy(d, ft, f"hybrid:{s}",
                                  hybrid(pool_obj.subset(ms), sc, name=s, nan_policy=self.nan_policy))

    def add_strategy(self, d: str, ft: Mapping[str, float], subject: str, sel: Selection) -> None:
        """A ranking's regret@B, budget to zero regret (inf when it never reaches a best model) and success@B
        for B = 1..n_max (expected over the tie-breaks of its tied groups unless ``ties="name"``); the ranking is
        kept in ``selections``."""
        self.selections[(d, subject)] = sel
        for bb in self.budgets:
            self.rows.append((d, subject, f"regret@{bb}", regret(sel.top(min(bb, len(sel))), ft, kind=self.kind,
                                                                 percent=self.percent, ties=self.ties)))
        reaches = _reaches_best(sel, ft)
        b0 = budget_to_zero_regret(sel, ft, ties=self.ties) if reaches else math.inf
        self.rows.append((d, subject, "budget_to_zero", float(b0)))
        for bb in range(1, self.n_max + 1):
            p = success_at(sel, ft, min(bb, len(ft)), ties=self.ties) if reaches else 0.0
            self.rows.append((d, subject, f"success@{bb}", float(p)))

    def add_random(self, d: str, ft: Mapping[str, float]) -> None:
        """The random strategy's closed-form expected regret@B, budget to zero regret and success@B."""
        n = len(ft)
        for bb in self.budgets:
            self.rows.append((d, RANDOM, f"regret@{bb}",
                              expected_random_regret(ft, min(bb, n), kind=self.kind, percent=self.percent)))
        self.rows.append((d, RANDOM, "budget_to_zero", expected_random_budget_to_zero(ft)))
        for bb in range(1, self.n_max + 1):
            self.rows.append((d, RANDOM, f"success@{bb}", random_success_rate(ft, min(bb, n))))

    def add_score(self, d: str, ft: Mapping[str, float], s: str, sc: Mapping[str, float]) -> None:
        """Score ``s``'s correlations with ``ft`` and recall@B (NaN/inf models omitted, warnings turned into
        notes), then the figures of its task-aware ranking."""
        sel = task_aware(sc, name=s, nan_policy=self.nan_policy)
        if sel.omitted:
            self.notes.append(f"{d}: {s} is NaN/inf for {list(sel.omitted)} (omitted from its ranking)")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for key, _, fn in CORRELATIONS:
                self.rows.append((d, s, key, fn(_omit(sc, sel.omitted), _omit(ft, sel.omitted))))
            for bb in self.budgets:
                kk = min(bb, len(ft) - len(sel.omitted))
                self.rows.append((d, s, f"recall@{bb}",
                                  top_k_recall(_omit(sc, sel.omitted), _omit(ft, sel.omitted), kk)))
        for w in caught:
            self.notes.append(f"{d}: {s}: {w.message}")
        self.add_strategy(d, ft, s, sel)


def _mean_rows(rows: List[Tuple[str, str, str, float]], n_datasets: int) -> List[Tuple[str, str, str, float]]:
    """The ``"mean"`` rows: each (subject, statistic) averaged over the datasets (NaN when a dataset lacks it;
    NaN propagates: an undefined figure on one dataset leaves the mean undefined)."""
    per: Dict[Tuple[str, str], List[float]] = {}
    for d, s, st, v in rows:
        per.setdefault((s, st), []).append(v)
    return [(MEAN, s, st, float(np.mean(vals)) if len(vals) == n_datasets else math.nan)
            for (s, st), vals in per.items()]
