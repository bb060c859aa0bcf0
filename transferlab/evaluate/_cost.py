"""Cost against quality: each score's wall-clock beside the regret of ranking by it.

    res = tl.score_pool("banks/")
    report = Report.from_tables(res.table(), finetune, pool=zoo.pool())
    rows = cost_quality(res, report)          # one row per score
    print(cost_markdown(rows)); plot_cost_quality(rows, "cost.png")

A score is worth its seconds only if ranking by it lowers regret: the table and the scatter plot put both on
one line per score (mean seconds per (model, dataset) bank, total seconds, mean regret@B of the task-aware
ranking and of the hybrid strategy, both over the report's datasets).

The cost of a proxy is counted as Renggli et al. count it: the extraction seconds (the forward passes that wrote
each bank, recorded in its ``meta.json`` and carried by :class:`~transferlab.PoolScores` and its CSV) plus the
scoring seconds. Both are shown side by side: the forward pass usually dominates, and it is paid once per bank
whichever scores are computed from it. Banks that did not record extraction show "n/a", never a zero.
"""
from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING, Dict, List, Mapping, Optional, Tuple, Union

import numpy as np

if TYPE_CHECKING:  # annotations only: _report imports this module, matplotlib stays optional
    from matplotlib.figure import Figure

    from transferlab.evaluate._report import Report

__all__ = ["cost_quality", "cost_markdown", "cost_quality_figure", "plot_cost_quality"]


Seconds = Dict[str, Dict[str, Dict[str, float]]]
Extract = Dict[str, Dict[str, float]]


def _seconds_table(seconds) -> Tuple[Seconds, Extract]:
    """(scoring seconds ``{score: {dataset: {model: s}}}``, extraction seconds ``{dataset: {model: s}}``)."""
    if hasattr(seconds, "seconds") and callable(seconds.seconds):  # PoolScores
        return seconds.seconds(), dict(getattr(seconds, "extract_seconds", {}) or {})
    if isinstance(seconds, (str, os.PathLike)):
        from transferlab.scoring import PoolScores

        res = PoolScores.from_csv(seconds)
        return res.seconds(), res.extract_seconds
    if isinstance(seconds, Mapping):
        return ({str(s): {str(d): {str(m): float(v) for m, v in per_m.items()} for d, per_m in per_d.items()}
                 for s, per_d in seconds.items()}, {})
    raise TypeError("seconds must be a PoolScores, a pool score CSV path or {score: {dataset: {model: s}}}, "
                    f"got {type(seconds).__name__}")


def _extract_table(extract_seconds) -> Extract:
    if not isinstance(extract_seconds, Mapping) or not all(isinstance(v, Mapping) for v in extract_seconds.values()):
        raise TypeError("extract_seconds must be {dataset: {model: seconds}}, "
                        f"got {type(extract_seconds).__name__}")
    out: Extract = {}
    for d, per_m in extract_seconds.items():
        for m, v in per_m.items():
            v = float(v)
            if not math.isfinite(v) or v < 0:
                raise ValueError(f"extract_seconds[{d!r}][{m!r}] must be a finite number >= 0, got {v!r}")
            out.setdefault(str(d), {})[str(m)] = v
    return out


def cost_quality(seconds: Mapping[str, Mapping[str, float]], report: "Report", *, budgets: Optional[List[int]] = None,
                 extract_seconds: Optional[Mapping[str, Mapping[str, float]]] = None) -> List[Dict[str, object]]:
    """One row per score of ``report``: ``score``, ``banks`` (how many were timed), ``mean_seconds`` (scoring,
    per bank), ``total_seconds``; the extraction beside it: ``extract_banks`` (how many of those banks recorded
    their forward-pass seconds), ``extract_mean_seconds`` and ``extract_total_seconds`` over them, and
    ``proxy_mean_seconds`` (extraction + scoring per bank, Renggli et al.'s cost; NaN unless every timed bank
    recorded its extraction); then for each budget B ``regret@B`` (task-aware ranking by the score, mean over
    datasets) and ``hybrid_regret@B`` (NaN when the report has no hybrid strategy). Scores without timings get
    NaN seconds.

    seconds: a :class:`~transferlab.PoolScores` (its ``extract_seconds`` are used), its CSV (its
    ``extract_seconds`` column), or ``{score: {dataset: {model: s}}}``. extract_seconds: ``{dataset: {model:
    s}}`` to use instead of those carried by ``seconds``."""
    table, ext = _seconds_table(seconds)
    if extract_seconds is not None:
        ext = _extract_table(extract_seconds)
    budgets = list(budgets or report.budgets)
    out: List[Dict[str, object]] = []
    for s in report.meta["scores"]:
        pairs = [(d, m, v) for d, per_m in table.get(s, {}).items() for m, v in per_m.items() if not math.isnan(v)]
        vals = [v for _, _, v in pairs]
        evals = [ext[d][m] for d, m, _ in pairs if m in ext.get(d, {})]
        row: Dict[str, object] = {"score": s, "banks": len(vals),
                                  "mean_seconds": float(np.mean(vals)) if vals else math.nan,
                                  "total_seconds": float(np.sum(vals)) if vals else math.nan,
                                  "extract_banks": len(evals),
                                  "extract_mean_seconds": float(np.mean(evals)) if evals else math.nan,
                                  "extract_total_seconds": float(np.sum(evals)) if evals else math.nan}
        row["proxy_mean_seconds"] = (float(np.mean([v + ext[d][m] for d, m, v in pairs]))
                                     if vals and len(evals) == len(vals) else math.nan)
        for b in budgets:
            row[f"regret@{b}"] = _get(report, s, f"regret@{b}")
            row[f"hybrid_regret@{b}"] = _get(report, f"hybrid:{s}", f"regret@{b}")
        out.append(row)
    return out


def _get(report, subject: str, statistic: str) -> float:
    try:
        return float(report.value("mean", subject, statistic))
    except KeyError:
        return math.nan


def cost_markdown(rows: List[Dict[str, object]], *, percent: bool = True) -> str:
    """The cost/quality rows as a pipe table: per bank, the extraction seconds (forward passes), the scoring ms
    and their sum (the proxy's cost); the total scoring seconds; then the mean regret of the task-aware ranking
    by each score and of its hybrid (in % when ``percent``). A figure not recorded reads "n/a"."""
    from transferlab.core.markdown import md_table as _md

    if not rows:
        return "(no scores)"
    keys = [k for k in rows[0] if "regret@" in k]

    def reg(v):
        v = float(v)
        return "n/a" if math.isnan(v) else (f"{100 * v:.2f}%" if percent else f"{v:.4g}")

    def ms(v):
        v = float(v)
        return "n/a" if math.isnan(v) else f"{1000 * v:.1f}"

    def sec(v):
        v = float(v)
        return "n/a" if math.isnan(v) else f"{v:.3g}" if v < 10 else f"{v:.1f}"

    head = ["score", "banks", "extract s / bank", "score ms / bank", "extract + score s / bank", "score total s"] + [
        (f"hybrid @{k.split('@')[1]}" if k.startswith("hybrid_") else f"task-aware @{k.split('@')[1]}") for k in keys]
    body = [[r["score"], str(r["banks"]), sec(r.get("extract_mean_seconds", math.nan)), ms(r["mean_seconds"]),
             sec(r.get("proxy_mean_seconds", math.nan)),
             "n/a" if math.isnan(float(r["total_seconds"])) else f"{float(r['total_seconds']):.2f}"]
            + [reg(r[k]) for k in keys] for r in rows]
    return _md(head, body)


def plot_cost_quality(rows: List[Dict[str, object]], path: Union[str, "os.PathLike[str]"], *, budget: int = 1,
                      report: Optional["Report"] = None, dpi: int = 110) -> str:
    """Write :func:`cost_quality_figure` as a PNG to ``path`` (headless; its directory is created) and return
    the path."""
    fig = cost_quality_figure(rows, budget=budget, report=report)
    p = os.fspath(path)
    d = os.path.dirname(p)
    if d:
        os.makedirs(d, exist_ok=True)
    fig.savefig(p, dpi=dpi)
    return p


def cost_quality_figure(rows: List[Dict[str, object]], *, budget: int = 1, report: Optional["Report"] = None) -> "Figure":
    """The cost/quality figure (a matplotlib Figure on an Agg canvas). Scatter: seconds per bank (log x where they span a decade) against mean regret@``budget`` (%), one point per score (filled:
    task-aware ranking; hollow: its hybrid), each score in its colour of the other figures. Left panel: the
    scoring seconds; right panel (when the banks recorded their forward passes): extraction + scoring, the
    proxy's cost as Renggli et al. count it. With ``report``, the strategies that cost no scoring
    (task-agnostic, oracle, random) are horizontal lines, labelled beside the axes without overlap."""
    from transferlab._plot_labels import label_points, renderer_of, spread
    from transferlab.plot import _ORACLE_NOTE, BASELINES, _headless_figure, footnote, strategy_styles

    key, hkey = f"regret@{budget}", f"hybrid_regret@{budget}"
    with_extract = any(not math.isnan(float(r.get("proxy_mean_seconds", math.nan))) for r in rows)
    panels = [("mean_seconds", "scoring seconds per (model, dataset) bank")]
    if with_extract:
        panels.append(("proxy_mean_seconds", "extraction + scoring seconds per bank"))
    fig = _headless_figure((6.0 * len(panels) + 1.4, 4.4))
    axes = [fig.add_subplot(1, len(panels), k + 1) for k in range(len(panels))]
    styles = strategy_styles([str(r["score"]) for r in rows])
    lines = []
    if report is not None:
        lines = [(s, 100 * _get(report, s, key)) for s in BASELINES if s in report.subjects]
        lines = [(s, v) for s, v in lines if not math.isnan(v)]
    per_ax = []
    for ax, (xkey, xlabel) in zip(axes, panels):
        pts, hollow = [], []
        for r in rows:
            x = float(r.get(xkey, math.nan))
            if math.isnan(x) or x <= 0:
                continue
            color = styles[str(r["score"])][0]
            y = 100 * float(r.get(key, math.nan))
            if not math.isnan(y):
                ax.scatter([x], [y], color=color, s=45, zorder=3)
                pts.append((x, y, str(r["score"])))
            yh = 100 * float(r.get(hkey, math.nan))
            if not math.isnan(yh):
                ax.scatter([x], [yh], facecolors="none", edgecolors=color, s=45, zorder=3)
                hollow.append((x, yh))
        for k, (s, v) in enumerate(lines):
            ax.axhline(v, color=f"0.{3 + 2 * k}", ls="--", lw=1, zorder=1)
        ys = [p[1] for p in pts] + [h[1] for h in hollow] + [v for _, v in lines]
        top = max(ys) if ys and max(ys) > 0 else 1.0
        ax.set_ylim(-0.06 * top, 1.12 * top)  # regret >= 0; a point or line at 0 stays visible above the edge
        xs = [p[0] for p in pts] + [h[0] for h in hollow]
        wide = bool(xs) and max(xs) / min(xs) >= 10  # a log axis only where the seconds span a decade
        if wide:
            from matplotlib.ticker import FuncFormatter, NullFormatter

            ax.set_xscale("log")
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            ax.xaxis.set_minor_formatter(NullFormatter())
        ax.margins(x=0.25)
        ax.set_xlabel(xlabel + (" (log scale)" if wide else ""))
        ax.grid(True, alpha=0.3)
        per_ax.append((pts, hollow))
    axes[0].set_ylabel(f"mean relative regret@{budget} (%)")
    if with_extract:  # Renggli et al.'s observation, measured: how much of the cost is the forward pass
        both = [r for r in rows if not math.isnan(float(r.get("proxy_mean_seconds", math.nan)))]
        share = (sum(float(r["extract_mean_seconds"]) for r in both)
                 / sum(float(r["proxy_mean_seconds"]) for r in both))
        axes[-1].set_title(f"forward passes: {100 * share:.0f}% of these proxies' cost", fontsize="small")
    fig.suptitle("cost vs quality (filled: task-aware ranking by the score, hollow: its hybrid)",
                 fontsize="medium")
    notes = []
    if not with_extract:
        notes.append("extraction seconds: not recorded in these banks (only scoring is shown)")
    if any(s == "oracle" for s, _ in lines):
        notes.append(_ORACLE_NOTE)
    bottom = footnote(fig, notes)
    fig.tight_layout(rect=(0, bottom, 1 - 1.2 / fig.get_figwidth(), 1))
    # Labels once the geometry is final: the scores beside their points, the baselines right of the axes.
    renderer = renderer_of(fig)
    for ax, (pts, hollow) in zip(axes, per_ax):
        ax.set_xlim(ax.get_xlim())
        ax.set_ylim(ax.get_ylim())
        if pts:
            _, left = label_points(ax, [p[0] for p in pts], [p[1] for p in pts], [p[2] for p in pts], fontsize=8,
                                   marker_pt=4.5, avoid=hollow, backing=True)
            if left:
                ax.text(0.01, 0.99, "unlabelled: " + ", ".join(pts[i][2] for i in sorted(left)), fontsize=6,
                        transform=ax.transAxes, va="top", color="0.3")
    if lines:
        ax = axes[-1]
        texts = [ax.text(1.02, v, s, transform=ax.get_yaxis_transform(), fontsize=7, color="0.3", va="center",
                         ha="left") for s, v in lines]
        ys = [ax.transData.transform((1.0, v))[1] for _, v in lines]
        hs = [t.get_window_extent(renderer).height + 2 for t in texts]
        frame = ax.get_window_extent(renderer)
        inv = ax.transAxes.inverted()
        for t, y in zip(texts, spread(ys, hs, frame.y0, frame.y1)):
            t.set_transform(ax.transAxes)
            t.set_y(inv.transform((frame.x1, y))[1])
    return fig
