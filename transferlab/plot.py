"""Figures of a :class:`~transferlab.evaluate.Report` (matplotlib, an optional extra: ``pip install
transferlab[plot]``; imported only when a figure is drawn).

Display objects follow scikit-learn's pattern: build from a report (``Display.from_report(report, ...)``) or from
arrays, then ``.plot(ax=None)`` draws on ``ax`` (a new figure when None) and keeps ``ax_`` and ``figure_``.

- :class:`RegretDisplay`: regret per dataset per strategy (Renggli et al., Figures 3-6), bars or a heatmap.
- :class:`SuccessRateDisplay`: fraction of datasets whose best model is in the top B, against B (Figure 7).
- :class:`ScoreVsFinetuneDisplay`: a score against fine-tune accuracy on one dataset, one point per model.

:func:`save_report_plots` writes all of them as PNG files without pyplot (an Agg canvas per figure), so it runs
on headless machines and leaves no open figures behind.
"""
from __future__ import annotations

import math
import os
import re
from typing import Dict, List, Mapping, Optional, Sequence

import numpy as np

__all__ = ["RegretDisplay", "ScoreVsFinetuneDisplay", "SuccessRateDisplay", "save_report_plots"]


def _matplotlib():
    try:
        import matplotlib  # noqa: F401
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("transferlab.plot needs matplotlib: pip install 'transferlab[plot]'") from e
    return matplotlib


def _new_axes(ax, figsize):
    if ax is not None:
        return ax
    _matplotlib()
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=figsize)
    return ax


def _headless_figure(figsize):
    """A Figure on an Agg canvas, independent of pyplot and of any GUI backend."""
    _matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig


class RegretDisplay:
    """Regret per dataset (x) per strategy (bars or heatmap rows).

    regrets: (n_strategies, n_datasets) array; strategies, datasets: labels; budget: the B of regret@B;
    unit: the y-axis label. Relative regret is drawn in percent.
    """

    def __init__(self, regrets, strategies: Sequence[str], datasets: Sequence[str], *, budget: int = 1,
                 unit: str = "relative regret (%)", percent: bool = True):
        self.regrets = np.asarray(regrets, dtype=np.float64)
        if self.regrets.shape != (len(strategies), len(datasets)):
            raise ValueError(f"regrets must have shape (n_strategies={len(strategies)}, "
                             f"n_datasets={len(datasets)}), got {self.regrets.shape}")
        self.strategies = list(strategies)
        self.datasets = list(datasets)
        self.budget = budget
        self.unit = unit
        self.percent = percent

    @classmethod
    def from_report(cls, report, *, budget: int = 1, strategies: Optional[Sequence[str]] = None,
                    include_mean: bool = True) -> "RegretDisplay":
        subs, cols, vals = report.matrix(f"regret@{budget}", strategies, mean=include_mean)
        if not subs:
            raise ValueError(f"the report has no regret@{budget} (its budgets are {report.budgets})")
        rel = report.meta["regret_kind"] == "relative"
        return cls(vals * (100.0 if rel else 1.0), subs, cols, budget=budget,
                   unit=("relative regret (%)" if rel else f"{report.meta['regret_kind']} regret"), percent=rel)

    def plot(self, ax=None, *, kind: str = "bar", annotate: bool = True) -> "RegretDisplay":
        if kind not in ("bar", "heatmap"):
            raise ValueError(f"kind must be 'bar' or 'heatmap', got {kind!r}")
        n_s, n_d = self.regrets.shape
        ax = _new_axes(ax, (max(6.0, 0.9 * n_d + 2), 4.0 if kind == "bar" else max(3.0, 0.35 * n_s + 1.5)))
        if kind == "bar":
            width = 0.8 / max(n_s, 1)
            x = np.arange(n_d)
            for i, name in enumerate(self.strategies):
                ax.bar(x + (i - (n_s - 1) / 2) * width, self.regrets[i], width, label=name)
            ax.set_xticks(x)
            ax.set_xticklabels(self.datasets, rotation=30, ha="right")
            ax.set_ylabel(self.unit)
            ax.legend(fontsize="small", ncol=2 if n_s > 6 else 1)
        else:
            im = ax.imshow(self.regrets, aspect="auto", cmap="Reds")
            ax.set_xticks(np.arange(n_d))
            ax.set_xticklabels(self.datasets, rotation=30, ha="right")
            ax.set_yticks(np.arange(n_s))
            ax.set_yticklabels(self.strategies)
            if annotate:
                for i in range(n_s):
                    for j in range(n_d):
                        v = self.regrets[i, j]
                        dark = not math.isnan(v) and v > 0.6 * np.nanmax(self.regrets)
                        ax.text(j, i, "n/a" if math.isnan(v) else f"{v:.2f}", ha="center", va="center",
                                fontsize=7, color="white" if dark else "black")
            ax.figure.colorbar(im, ax=ax, label=self.unit)
        ax.set_title(f"regret@{self.budget} per dataset")
        self.ax_, self.figure_ = ax, ax.figure
        return self


class SuccessRateDisplay:
    """Success rate (fraction of datasets whose best model is in the top B) against the budget B.

    budgets: (n_budgets,) integers; rates: ``{strategy: (n_budgets,) array}``.
    """

    def __init__(self, budgets, rates: Mapping[str, Sequence[float]]):
        self.budgets = np.asarray(budgets)
        self.rates = {k: np.asarray(v, dtype=np.float64) for k, v in rates.items()}
        for k, v in self.rates.items():
            if v.shape != self.budgets.shape:
                raise ValueError(f"rates[{k!r}] must have shape {self.budgets.shape}, got {v.shape}")

    @classmethod
    def from_report(cls, report, *, strategies: Optional[Sequence[str]] = None) -> "SuccessRateDisplay":
        subs = list(strategies) if strategies is not None else list(report.subjects)
        rates = {}
        budgets = None
        for s in subs:
            budgets, r = report.success_curve(s)
            rates[s] = r
        return cls(budgets, rates)

    def plot(self, ax=None) -> "SuccessRateDisplay":
        ax = _new_axes(ax, (7.0, 4.5))
        colors: Dict[str, object] = {}
        cycle = _color_cycle()
        for name, r in self.rates.items():
            base = name.split(":", 1)[1] if name.startswith("hybrid:") else name
            if base not in colors:
                colors[base] = next(cycle)
            baseline = name in ("task-agnostic", "oracle", "random")
            style = "--" if name.startswith("hybrid:") else (":" if baseline else "-")
            ax.step(self.budgets, r, where="post", linestyle=style, color=colors[base], label=name,
                    linewidth=2.2 if baseline else 1.4)
        ax.set_xlabel("budget B (models fine-tuned)")
        ax.set_ylabel("success rate")
        ax.set_ylim(-0.02, 1.02)
        ax.set_xticks(self.budgets)
        ax.set_title("fraction of datasets whose best model is in the top B")
        ax.legend(fontsize="x-small", ncol=2, loc="lower right")
        self.ax_, self.figure_ = ax, ax.figure
        return self


def _color_cycle():
    import itertools

    _matplotlib()
    import matplotlib

    return itertools.cycle(matplotlib.colormaps["tab20"].colors)


class ScoreVsFinetuneDisplay:
    """A score against fine-tune accuracy on one dataset (one point per model, labelled)."""

    def __init__(self, scores: Mapping[str, float], finetune: Mapping[str, float], *, score_name: str = "score",
                 dataset: str = ""):
        missing = sorted(set(scores) ^ set(finetune))
        if missing:
            raise ValueError(f"scores and finetune must cover the same models; unmatched: {missing}")
        self.models = sorted(scores)
        self.scores = np.array([scores[m] for m in self.models], dtype=np.float64)
        self.finetune = np.array([finetune[m] for m in self.models], dtype=np.float64)
        self.score_name = score_name
        self.dataset = dataset

    @classmethod
    def from_report(cls, report, score: str, dataset: str) -> "ScoreVsFinetuneDisplay":
        d = dataset.lower()
        if score not in report.scores or d not in report.scores[score]:
            raise ValueError(f"the report has no {score!r} scores on {dataset!r}")
        return cls(report.scores[score][d], report.finetune[d], score_name=score, dataset=d)

    def plot(self, ax=None, *, annotate: bool = True) -> "ScoreVsFinetuneDisplay":
        ax = _new_axes(ax, (4.5, 3.5))
        ax.scatter(self.scores, self.finetune, s=18)
        if annotate:
            for m, x, y in zip(self.models, self.scores, self.finetune):
                ax.annotate(m, (x, y), fontsize=6, xytext=(2, 2), textcoords="offset points")
        ax.set_xlabel(self.score_name)
        ax.set_ylabel("fine-tune accuracy")
        if self.dataset:
            ax.set_title(self.dataset, fontsize="medium")
        self.ax_, self.figure_ = ax, ax.figure
        return self


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_") or "score"


def save_report_plots(report, out_dir, *, dpi: int = 110) -> List[str]:
    """Write ``regret_at_<B>.png`` (heatmap: every strategy, every dataset and the mean),
    ``regret_at_<B>_bars.png`` (task-agnostic, oracle, random, the best score and its hybrid),
    ``success_rate.png`` and ``score_vs_finetune_<score>.png`` (one panel per dataset) into ``out_dir``
    (created if needed). Returns the paths written."""
    os.makedirs(out_dir, exist_ok=True)
    paths: List[str] = []

    def save(fig, name):
        p = os.path.join(os.fspath(out_dir), name)
        fig.tight_layout()
        fig.savefig(p, dpi=dpi)
        paths.append(p)

    scores = report.meta["scores"]
    for b in report.budgets:
        disp = RegretDisplay.from_report(report, budget=b)
        fig = _headless_figure((max(6.0, 0.9 * len(disp.datasets) + 3), max(3.0, 0.32 * len(disp.strategies) + 1.8)))
        disp.plot(ax=fig.add_subplot(), kind="heatmap")
        save(fig, f"regret_at_{b}.png")

        means = {s: report.value("mean", s, f"regret@{b}") for s in scores}
        best = min(scores, key=lambda s: (means[s], s))
        key = [s for s in ("task-agnostic", "oracle", "random", best, f"hybrid:{best}") if s in report.subjects]
        disp = RegretDisplay.from_report(report, budget=b, strategies=key)
        fig = _headless_figure((max(6.0, 0.9 * len(disp.datasets) + 2), 4.0))
        disp.plot(ax=fig.add_subplot(), kind="bar")
        save(fig, f"regret_at_{b}_bars.png")

    # Two panels so that 2 x n_scores curves stay readable: task-aware scores, then their hybrids; the
    # baselines (task-agnostic, oracle, random) on both.
    base = [s for s in ("task-agnostic", "oracle", "random") if s in report.subjects]
    hyb = [f"hybrid:{s}" for s in scores if f"hybrid:{s}" in report.subjects]
    panels = [("task-aware", base + scores)] + ([("hybrid", base + hyb)] if hyb else [])
    fig = _headless_figure((7.5 * len(panels), 5.0))
    for k, (title, subs) in enumerate(panels):
        disp = SuccessRateDisplay.from_report(report, strategies=subs).plot(ax=fig.add_subplot(1, len(panels), k + 1))
        disp.ax_.set_title(f"{title}: fraction of datasets whose best model is in the top B", fontsize="medium")
    save(fig, "success_rate.png")

    n = len(report.datasets)
    ncol = min(4, n)
    nrow = int(math.ceil(n / ncol))
    for s in scores:
        fig = _headless_figure((3.6 * ncol, 3.0 * nrow))
        for k, d in enumerate(report.datasets):
            ScoreVsFinetuneDisplay.from_report(report, s, d).plot(ax=fig.add_subplot(nrow, ncol, k + 1))
        fig.suptitle(f"{s} vs fine-tune accuracy")
        save(fig, f"score_vs_finetune_{_slug(s)}.png")
    return paths
