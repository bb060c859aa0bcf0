"""Figures of a :class:`~transferlab.evaluate.Report` (matplotlib, an optional extra: ``pip install
transferlab[plot]``; imported only when a figure is drawn).

Display objects follow scikit-learn's pattern: build from a report (``Display.from_report(report, ...)``) or from
arrays, then ``.plot(ax=None)`` draws on ``ax`` (a new figure when None) and keeps ``ax_`` and ``figure_``.

- :class:`RegretDisplay`: regret per dataset per strategy (Renggli et al., Figures 3-6), bars, a heatmap, or
  one panel of bars per dataset.
- :class:`SuccessRateDisplay`: fraction of datasets whose best model is in the top B, against B (Figure 7).
- :class:`ScoreVsFinetuneDisplay`: a score against fine-tune accuracy on one dataset, one point per model.

What a reader can rely on (tests/select/test_plots.py checks it on the drawn figures): no two texts overlap and
none leaves the figure (model labels are placed by :mod:`transferlab._plot_labels`, and a label with no free
spot is named in the panel instead); every strategy has its own colour and its own line style and marker
(:func:`strategy_styles`, the same in every figure); every strategy asked for is drawn, or named under the figure
as left out; the oracle row is explained wherever it appears.

:func:`save_report_plots` writes all of them as PNG files without pyplot (an Agg canvas per figure), so it runs
on headless machines and leaves no open figures behind; :func:`report_figures` yields the same figures.
"""
from __future__ import annotations

import math
import os
import re
from typing import TYPE_CHECKING, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from transferlab.core.types import ArrayLike

if TYPE_CHECKING:  # annotations only: matplotlib is imported when a figure is drawn
    from matplotlib.axes import Axes

    from transferlab.evaluate import Report

__all__ = ["RegretDisplay", "ScoreVsFinetuneDisplay", "SuccessRateDisplay", "report_figures", "save_report_plots",
           "strategy_styles"]


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

    def __init__(self, regrets: ArrayLike, strategies: Sequence[str], datasets: Sequence[str], *, budget: int = 1,
                 unit: str = "relative regret (%)", percent: bool = True, missing: Sequence[str] = (),
                 note: str = ""):
        self.regrets = np.asarray(regrets, dtype=np.float64)
        if self.regrets.shape != (len(strategies), len(datasets)):
            raise ValueError(f"regrets must have shape (n_strategies={len(strategies)}, "
                             f"n_datasets={len(datasets)}), got {self.regrets.shape}")
        self.strategies = list(strategies)
        self.datasets = list(datasets)
        self.budget = budget
        self.unit = unit
        self.percent = percent
        self.missing = list(missing)  # strategies asked for that have no regret: stated in the figure
        self.note = note

    @classmethod
    def from_report(cls, report: "Report", *, budget: int = 1, strategies: Optional[Sequence[str]] = None,
                    include_mean: bool = True) -> "RegretDisplay":
        subs, cols, vals = report.matrix(f"regret@{budget}", strategies, mean=include_mean)
        if not subs:
            raise ValueError(f"the report has no regret@{budget} (its budgets are {report.budgets})")
        missing = [s for s in (strategies or []) if s not in subs]  # report.matrix drops them: say so
        rel = report.meta["regret_kind"] == "relative"
        return cls(vals * (100.0 if rel else 1.0), subs, cols, budget=budget,
                   unit=("relative regret (%)" if rel else f"{report.meta['regret_kind']} regret"), percent=rel,
                   missing=missing)

    def plot(self, ax: Optional["Axes"] = None, *, kind: str = "bar", annotate: bool = True) -> "RegretDisplay":
        """kind: "bar" (grouped bars on one axes), "heatmap", or "panels" (one panel of horizontal bars per
        dataset, strategy names on the shared axis, each value written at its bar; ``ax`` must then be None or
        a Figure to draw into). Undefined values are written "n/a" where the bar would be, and strategies
        without any regret (``missing``) are named under the figure: nothing asked for is silently absent."""
        if kind == "panels":
            return self._plot_panels(ax)
        if kind not in ("bar", "heatmap"):
            raise ValueError(f"kind must be 'bar', 'heatmap' or 'panels', got {kind!r}")
        n_s, n_d = self.regrets.shape
        ax = _new_axes(ax, (max(6.0, 0.9 * n_d + 2), 4.0 if kind == "bar" else max(3.0, 0.35 * n_s + 1.5)))
        if kind == "bar":
            width = 0.8 / max(n_s, 1)
            x = np.arange(n_d)
            styles = strategy_styles(self.strategies)
            for i, name in enumerate(self.strategies):
                xi = x + (i - (n_s - 1) / 2) * width
                ax.bar(xi, np.nan_to_num(self.regrets[i]), width, label=name, color=styles[name][0])
                for xj in xi[np.isnan(self.regrets[i])]:
                    ax.text(xj, 0, "n/a", rotation=90, ha="center", va="bottom", fontsize=6, color="0.3")
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
                                fontsize=7, color="white" if dark else "black").set_in_layout(False)
            ax.figure.colorbar(im, ax=ax, label=self.unit)
        ax.set_title(f"regret@{self.budget} per dataset")
        self.ax_, self.figure_ = ax, ax.figure
        if self.missing:
            self.footnote_ = footnote(ax.figure, [_missing_text(self.missing, self.budget)])
        return self

    def _plot_panels(self, fig=None) -> "RegretDisplay":
        n_s, n_d = self.regrets.shape
        ncol = min(5, n_d)
        nrow = int(math.ceil(n_d / ncol))
        if fig is None:
            fig = _headless_figure(self.panels_size(n_s, n_d))
        axes = fig.subplots(nrow, ncol, sharey=True, squeeze=False)
        styles = strategy_styles(self.strategies)
        y = np.arange(n_s)[::-1]  # the first strategy on top
        top = np.nanmax(self.regrets) if np.isfinite(self.regrets).any() else 1.0
        top = top if top > 0 else 1.0
        for k in range(nrow * ncol):
            ax = axes[k // ncol][k % ncol]
            if k >= n_d:
                ax.set_visible(False)
                continue
            v = self.regrets[:, k]
            ax.barh(y, np.nan_to_num(v), color=[styles[s][0] for s in self.strategies], height=0.75)
            for yi, vi in zip(y, v):
                txt = "n/a" if math.isnan(vi) else (f"{vi:.2f}" if self.percent else f"{vi:.3g}")
                ax.text((0 if math.isnan(vi) else vi) + 0.02 * top, yi, txt, va="center", ha="left",
                        fontsize=6, color="0.3" if math.isnan(vi) else "0.1").set_in_layout(False)
            ax.set_xlim(0, 1.3 * top)
            ax.set_title(self.datasets[k], fontsize="medium", fontweight="bold" if self.datasets[k] == "mean"
                         else "normal")
            ax.tick_params(axis="x", labelsize=7)
            ax.xaxis.set_major_locator(_max_n(3))
            if k % ncol == 0:
                ax.set_yticks(y)
                ax.set_yticklabels(self.strategies, fontsize=7)
            if k // ncol == nrow - 1 or k + ncol >= n_d:
                ax.set_xlabel(self.unit, fontsize=7)
        fig.suptitle(f"regret@{self.budget}: what choosing the top {self.budget} by each strategy loses "
                     f"(lower is better)", fontsize="medium")
        notes = ([self.note] if self.note else []) + ([_missing_text(self.missing, self.budget)]
                                                       if self.missing else [])
        self.footnote_ = footnote(fig, notes)
        self.ax_, self.figure_ = axes[0][0], fig
        self.axes_ = [axes[k // ncol][k % ncol] for k in range(n_d)]
        return self

    @staticmethod
    def panels_size(n_strategies: int, n_datasets: int) -> Tuple[float, float]:
        ncol = min(5, n_datasets)
        nrow = int(math.ceil(n_datasets / ncol))
        return (1.2 + 2.3 * ncol, 0.9 + nrow * (0.6 + 0.16 * n_strategies))


def footnote(fig, notes: Sequence[str], *, fontsize: float = 7.0) -> float:
    """Write ``notes`` under the axes of ``fig``, wrapped to its width; returns the height they take, as a
    fraction of the figure (the ``rect`` bottom to give ``tight_layout``)."""
    import textwrap

    if not notes:
        return 0.0
    per_line = max(20, int(fig.get_figwidth() * 72 / (fontsize * 0.56)))
    lines = [w for n in notes for part in n.split("\n") for w in textwrap.wrap(part, per_line)]
    fig.text(0.01, 0.005, "\n".join(lines), fontsize=fontsize, color="0.25", va="bottom", ha="left")
    return (len(lines) * fontsize * 1.35 / 72 + 0.06) / fig.get_figheight()


def _missing_text(missing: Sequence[str], budget: int) -> str:
    return f"not shown (no regret@{budget} in the report): {', '.join(missing)}"


def _max_n(n: int):
    from matplotlib.ticker import MaxNLocator

    return MaxNLocator(n)


#: Strategies that use no score: drawn in greys/black, always with these styles.
BASELINES = ("task-agnostic", "oracle", "random")
_BASELINE_STYLE = {"task-agnostic": ("black", "-", "s"), "oracle": ("0.45", "--", "D"),
                   "random": ("0.70", ":", "o")}
# Distinct hues (tab10 without its grey, then darker/paler ones that stay apart from them and from the greys).
_HUES = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf",
         "#000080", "#808000", "#800000", "#00a087", "#f0027f", "#7570b3", "#e6ab02")
_MARKERS = ("^", "v", "<", ">", "P", "X", "*", "h", "p", "d", "8", "H", "1", "2", "3", "4")
_LINES = ("-", "--", "-.", (0, (1, 1)), (0, (5, 1, 1, 1, 1, 1)), (0, (3, 2)))


def strategy_styles(names: Sequence[str]) -> Dict[str, Tuple[object, object, str]]:
    """``{name: (colour, line style, marker)}`` with a distinct colour and a distinct (line style, marker)
    for every name of ``names``, once each base score is given its place: ``hybrid:X`` shares X's colour
    and marker (they are drawn in separate panels) but gets a dashed line. Baselines are black/greys."""
    out: Dict[str, Tuple[object, object, str]] = {}
    bases: List[str] = []
    for n in names:
        b = n.split(":", 1)[1] if n.startswith("hybrid:") else n
        if b not in BASELINES and b not in bases:
            bases.append(b)
    for n in names:
        if n in BASELINES:
            out[n] = _BASELINE_STYLE[n]
            continue
        b = n.split(":", 1)[1] if n.startswith("hybrid:") else n
        i = bases.index(b)
        line = _LINES[i % len(_LINES)] if not n.startswith("hybrid:") else _LINES[(i + 1) % len(_LINES)]
        out[n] = (_HUES[i % len(_HUES)], line, _MARKERS[i % len(_MARKERS)])
    return out


class SuccessRateDisplay:
    """Success rate (fraction of datasets whose best model is in the top B) against the budget B.

    budgets: (n_budgets,) integers; rates: ``{strategy: (n_budgets,) array}``.
    """

    def __init__(self, budgets: Sequence[int], rates: Mapping[str, Sequence[float]]):
        self.budgets = np.asarray(budgets)
        self.rates = {k: np.asarray(v, dtype=np.float64) for k, v in rates.items()}
        for k, v in self.rates.items():
            if v.shape != self.budgets.shape:
                raise ValueError(f"rates[{k!r}] must have shape {self.budgets.shape}, got {v.shape}")

    @classmethod
    def from_report(cls, report: "Report", *, strategies: Optional[Sequence[str]] = None) -> "SuccessRateDisplay":
        subs = list(strategies) if strategies is not None else list(report.subjects)
        rates = {}
        budgets = None
        for s in subs:
            budgets, r = report.success_curve(s)
            rates[s] = r
        return cls(budgets, rates)

    def plot(self, ax: Optional["Axes"] = None, *, nudge: float = 0.004) -> "SuccessRateDisplay":
        """One step curve per strategy, each with its own colour, line style and marker
        (:func:`strategy_styles`); the legend sits outside the axes. Curves that coincide are drawn
        ``nudge`` apart vertically (stated under the axes) so that none hides another."""
        ax = _new_axes(ax, (8.5, 4.5))
        names = list(self.rates)
        styles = strategy_styles(names)
        for k, name in enumerate(names):
            color, line, marker = styles[name]
            off = (k - (len(names) - 1) / 2) * nudge
            ax.step(self.budgets, self.rates[name] + off, where="post", linestyle=line, color=color,
                    marker=marker, markersize=4, label=_legend_name(name),
                    linewidth=2.0 if name in BASELINES else 1.3, zorder=3 if name in BASELINES else 2)
        ax.set_xlabel("budget B (models fine-tuned)")
        ax.set_ylabel("success rate")
        ax.set_ylim(-0.02 - len(names) * nudge / 2, 1.02 + len(names) * nudge / 2)
        ax.set_xticks(self.budgets)
        ax.set_title("fraction of datasets whose best model is in the top B")
        ax.legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
        if nudge:
            ax.text(0.0, -0.16, f"equal curves are drawn up to {nudge * len(names) / 2:.2f} apart so that each "
                    "stays visible", transform=ax.transAxes, fontsize=6, color="0.35", va="top")
        self.ax_, self.figure_ = ax, ax.figure
        return self


def _legend_name(name: str) -> str:
    return {"oracle": "oracle (upper reference)"}.get(name, name)


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
    def from_report(cls, report: "Report", score: str, dataset: str) -> "ScoreVsFinetuneDisplay":
        d = dataset.lower()
        if score not in report.scores or d not in report.scores[score]:
            raise ValueError(f"the report has no {score!r} scores on {dataset!r}")
        return cls(report.scores[score][d], report.finetune[d], score_name=score, dataset=d)

    def plot(self, ax: Optional["Axes"] = None, *, annotate: bool = True) -> "ScoreVsFinetuneDisplay":
        """Draw the points; with ``annotate``, label them (:meth:`label`: call that yourself, after the
        layout, when you change the axes' size afterwards)."""
        ax = _new_axes(ax, (4.5, 3.5))
        ax.scatter(self.scores, self.finetune, s=18, zorder=3)
        ax.set_xlabel(self.score_name)
        ax.set_ylabel("fine-tune accuracy")
        ax.margins(x=0.12, y=0.12)  # air for the labels of the extreme points
        _few_ticks(ax)
        if self.dataset:
            ax.set_title(self.dataset, fontsize="medium")
        self.ax_, self.figure_ = ax, ax.figure
        self.unlabelled_: List[str] = []
        if annotate:
            self.label()
        return self

    def label(self) -> List[str]:
        """Label the points without overlap (best models by fine-tune accuracy or by score first); the models
        with no free spot are named in a corner note. Returns those models."""
        from transferlab._plot_labels import label_points

        ax = self.ax_
        ax.autoscale_view()
        ax.set_xlim(ax.get_xlim())  # freeze: the placement is computed for these limits
        ax.set_ylim(ax.get_ylim())
        n = len(self.models)
        by_ft = np.argsort(-self.finetune, kind="stable")
        by_sc = np.argsort(-self.scores, kind="stable")
        rank = np.empty(n, int)
        rank[by_ft] = np.arange(n)
        rank_sc = np.empty(n, int)
        rank_sc[by_sc] = np.arange(n)
        order = sorted(range(n), key=lambda i: (min(rank[i], rank_sc[i]), rank[i]))
        self.labels_, left = label_points(ax, self.scores, self.finetune, self.models, order=order)
        self.unlabelled_ = [self.models[i] for i in sorted(left)]
        if self.unlabelled_:
            ax.text(0.01, 0.01, "unlabelled: " + ", ".join(self.unlabelled_), transform=ax.transAxes,
                    fontsize=5, color="0.35", va="bottom", ha="left", wrap=True)
        return self.unlabelled_


def _few_ticks(ax) -> None:
    """At most 3 ticks on x (score values can be long: -0.00825) and 4 on y, in 8 pt: small panels stay
    legible, and each tick is a text to lay out."""
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(3))
    ax.yaxis.set_major_locator(MaxNLocator(4))
    ax.tick_params(labelsize=8)


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_") or "score"


def report_figures(report: "Report") -> Iterator[Tuple[str, object]]:
    """``(file name, Figure)`` of every figure :func:`save_report_plots` writes, drawn one at a time (each a
    matplotlib Figure on an Agg canvas, laid out and labelled, ready for ``savefig``)."""
    for name, draw in _figure_plan(report):
        yield name, draw()


def _figure_plan(report) -> List[Tuple[str, object]]:
    """(file name, draw(fig) -> None) of every figure of a report, in the order they are written."""
    scores = list(report.meta["scores"])
    plan: List[Tuple[str, object]] = []
    for b in report.budgets:
        plan.append((f"regret_at_{b}.png", lambda b=b: _regret_heatmap(report, b)))
        plan.append((f"regret_at_{b}_bars.png", lambda b=b: _regret_bars(report, b, scores)))
    plan.append(("success_rate.png", lambda: _success_figure(report, scores)))
    for s in scores:
        plan.append((f"score_vs_finetune_{_slug(s)}.png", lambda s=s: _score_vs_finetune_figure(report, s)))
    return plan


def _regret_heatmap(report, b: int):
    disp = RegretDisplay.from_report(report, budget=b)
    fig = _headless_figure((max(6.0, 0.9 * len(disp.datasets) + 3), max(3.0, 0.32 * len(disp.strategies) + 1.8)))
    # Margins from the longest strategy and dataset names (a few measured strings), not tight_layout: it
    # measures every artist of the figure, the cell values included, in a pass as long as the drawing itself.
    left = _text_inches(fig, disp.strategies, 10) + 0.25
    bottom = 0.5 * _text_inches(fig, disp.datasets, 10) + 0.35  # the dataset names are rotated by 30 degrees
    w, h = fig.get_figwidth(), fig.get_figheight()
    fig.subplots_adjust(left=left / w, right=1 - 0.1 / w, bottom=bottom / h, top=1 - 0.4 / h)
    disp.plot(ax=fig.add_subplot(), kind="heatmap")
    return fig


def _text_inches(fig, strings: Sequence[str], fontsize: float) -> float:
    """Width in inches of the widest of ``strings`` at ``fontsize`` (measured by the figure's renderer)."""
    from transferlab._plot_labels import renderer_of

    probe = fig.text(0, 0, "", fontsize=fontsize)
    r = renderer_of(fig)
    width = 0.0
    for st in strings:
        probe.set_text(st)
        width = max(width, probe.get_window_extent(r).width)
    probe.remove()
    return width / fig.dpi


def _regret_bars(report, b: int, scores: List[str]):
    """Baselines, every score (task-aware) and the hybrid of the score with the lowest mean regret@b; the
    other hybrids are named under the figure (they are all in the heatmap)."""
    means = {s: report.value("mean", s, f"regret@{b}") for s in scores}
    finite = [s for s in scores if not math.isnan(means[s])]
    best = min(finite, key=lambda s: (means[s], s)) if finite else None
    wanted = [s for s in BASELINES if s in report.subjects] + scores
    hybrids = [f"hybrid:{s}" for s in scores if f"hybrid:{s}" in report.subjects]
    note = ""
    if best is not None and f"hybrid:{best}" in hybrids:
        wanted.append(f"hybrid:{best}")
        others = [h for h in hybrids if h != f"hybrid:{best}"]
        if others:
            note = (f"hybrid strategies: only hybrid:{best} (the lowest mean regret@{b}) is shown here; "
                    f"all {len(hybrids)} are in regret_at_{b}.png")
    if _ORACLE_NOTE and "oracle" in wanted:
        note = (note + "\n" if note else "") + _ORACLE_NOTE
    disp = RegretDisplay.from_report(report, budget=b, strategies=wanted)
    disp.note = note
    n_extra = note.count("\n") + (1 if note else 0) + (1 if disp.missing else 0)
    w, h = RegretDisplay.panels_size(len(disp.strategies), len(disp.datasets))
    fig = _headless_figure((w, h + 0.15 * n_extra))
    disp.plot(fig, kind="panels")
    # Fixed margins (inches) from the longest strategy name rather than tight_layout's pass over every text.
    ncol = min(5, len(disp.datasets))
    nrow = int(math.ceil(len(disp.datasets) / ncol))
    _fixed_margins(fig, ncol, nrow, left=_text_inches(fig, disp.strategies, 7) + 0.2, right=0.1,
                   bottom=disp.footnote_ * fig.get_figheight() + 0.45, top=0.55, wspace=0.15, hspace=0.75)
    return fig


#: How the figures explain the oracle row (Renggli et al.'s impractical upper reference).
_ORACLE_NOTE = ("oracle: models ranked by their mean fine-tune accuracy on the other datasets (Renggli et al.): it "
                "needs fine-tune results, so it is an upper reference, not a strategy one can run")


def _success_figure(report, scores: List[str]):
    # Two panels so that 2 x n_scores curves stay readable: task-aware scores, then their hybrids; the
    # baselines (task-agnostic, oracle, random) on both.
    base = [s for s in BASELINES if s in report.subjects]
    hyb = [f"hybrid:{s}" for s in scores if f"hybrid:{s}" in report.subjects]
    panels = [("task-aware", base + scores)] + ([("hybrid", base + hyb)] if hyb else [])
    fig = _headless_figure((8.5 * len(panels), 5.2))
    for k, (title, subs) in enumerate(panels):
        disp = SuccessRateDisplay.from_report(report, strategies=subs).plot(ax=fig.add_subplot(1, len(panels), k + 1))
        disp.ax_.set_title(f"{title}: fraction of datasets whose best model is in the top B", fontsize="medium")
    bottom = footnote(fig, [_ORACLE_NOTE] if "oracle" in base else [])
    fig.tight_layout(rect=(0, bottom, 1, 1))
    return fig


def _score_vs_finetune_figure(report, s: str):
    n = len(report.datasets)
    ncol = min(4, n)
    nrow = int(math.ceil(n / ncol))
    fig = _headless_figure((3.6 * ncol, 3.0 * nrow + 0.3))
    # A fixed layout (inches) instead of tight_layout: these panels all look alike (at most 4 ticks a side,
    # short tick labels), and measuring every tick label of every panel was a third of `evaluate --plot`.
    _fixed_margins(fig, ncol, nrow, left=0.8, right=0.15, bottom=0.5, top=0.6, wspace=0.55, hspace=0.6)
    disps = [ScoreVsFinetuneDisplay.from_report(report, s, d).plot(ax=fig.add_subplot(nrow, ncol, k + 1),
                                                                     annotate=False)
             for k, d in enumerate(report.datasets)]
    for k, disp in enumerate(disps):  # axis titles once per row / column: the suptitle names the score
        if k % ncol:
            disp.ax_.set_ylabel("")
        if k + ncol < n:
            disp.ax_.set_xlabel("")
    fig.suptitle(f"{s} (x) vs fine-tune accuracy (y)")
    for disp in disps:  # labels are placed for the final geometry
        disp.label()
    return fig


def _fixed_margins(fig, ncol: int, nrow: int, *, left: float, right: float, bottom: float, top: float,
                   wspace: float, hspace: float) -> None:
    """subplots_adjust from margins and gaps in inches."""
    w, h = fig.get_figwidth(), fig.get_figheight()
    aw = max(0.5, (w - left - right - (ncol - 1) * wspace) / ncol)
    ah = max(0.5, (h - bottom - top - (nrow - 1) * hspace) / nrow)
    fig.subplots_adjust(left=left / w, right=1 - right / w, bottom=bottom / h, top=1 - top / h,
                        wspace=wspace / aw, hspace=hspace / ah)


def save_report_plots(report: "Report", out_dir: Union[str, "os.PathLike[str]"], *, dpi: int = 110, progress: bool = True) -> List[str]:
    """Write ``regret_at_<B>.png`` (heatmap: every strategy, every dataset and the mean),
    ``regret_at_<B>_bars.png`` (one panel per dataset: the baselines, every score and the best score's
    hybrid; what is left out is named in the figure), ``success_rate.png`` and
    ``score_vs_finetune_<score>.png`` (one panel per dataset, models labelled without overlap) into ``out_dir``
    (created if needed). progress: a bar on stderr, one step per figure (shown on a terminal only). Returns
    the paths written."""
    from transferlab.core.progress import bar

    os.makedirs(out_dir, exist_ok=True)
    paths: List[str] = []
    plan = _figure_plan(report)
    pbar = bar(progress, len(plan), "figures", unit="fig")
    try:
        for name, fig in report_figures(report):
            p = os.path.join(os.fspath(out_dir), name)
            fig.savefig(p, dpi=dpi)
            paths.append(p)
            if pbar is not None:
                pbar.update(1)
    finally:
        if pbar is not None:
            pbar.close()
    return paths
