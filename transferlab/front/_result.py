"""The :class:`Ranking` that :func:`~transferlab.front.rank_models` returns.

Order rule: models by decreasing value of the primary score (the first of ``scores``); exact ties by model name,
ascending (the house rule, :func:`transferlab.select.task_aware`, which does the ranking); models the primary
score could not score (NaN, e.g. LEEP on a model without logits) come last, by name. ``selection`` is that
``task_aware`` :class:`~transferlab.select.Selection`, so a Ranking feeds :mod:`transferlab.evaluate` as is.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

from transferlab.core.markdown import md_table
from transferlab.select import Selection

if TYPE_CHECKING:  # annotations only: pandas and matplotlib stay optional
    import pandas
    from matplotlib.axes import Axes

__all__ = ["Ranking"]

LayerChoice = Any  # an int (a hidden-state index), a tuple of ints (their mean) or None (a single output)


def _layer_text(layer: LayerChoice) -> str:
    if layer is None:
        return "-"
    if isinstance(layer, tuple):
        return f"mean(L{layer[0]}-L{layer[-1]})" if len(layer) > 1 else f"L{layer[0]}"
    return f"L{layer}"


@dataclass(frozen=True)
class Ranking:
    """Models ranked by transferability, best first.

    models: names in rank order. scores: score names, the primary first. values / seconds:
    ``{model: {score: float}}`` (NaN where a score could not score a model; seconds of scoring, every layer
    scored for ``layers="best"`` included). layers: ``{model: {score: layer}}``, the hidden state each value
    comes from (an index into ``hidden_states``, a tuple of indices for their mean, None for a model with one
    output). layer_values: ``{model: {score: {layer index: value}}}`` of every layer scored (``"best"`` and lists).
    extraction_seconds: ``{model: seconds}`` of this call's extraction (near zero when read from the cache);
    cached: ``{model: bool}``. layer_rule, task: what was asked. notes: what score_pool skipped or warned.
    selection: the :class:`~transferlab.select.Selection` of the primary score (the models it scored; those it
    could not score are ``selection.omitted`` and end ``models``).
    """

    models: Tuple[str, ...]
    scores: Tuple[str, ...]
    values: Dict[str, Dict[str, float]]
    seconds: Dict[str, Dict[str, float]]
    layers: Dict[str, Dict[str, LayerChoice]]
    layer_values: Dict[str, Dict[str, Dict[int, float]]]
    extraction_seconds: Dict[str, float]
    cached: Dict[str, bool]
    layer_rule: str
    task: str
    selection: Selection
    notes: Tuple[str, ...] = field(default=())

    # --- reading it ------------------------------------------------------------------------------------------

    @property
    def primary(self) -> str:
        """The score the order follows."""
        return self.scores[0]

    @property
    def best(self) -> str:
        """The first model of the ranking."""
        return self.models[0]

    def __len__(self) -> int:
        return len(self.models)

    def __iter__(self):
        return iter(self.models)

    def scores_of(self, score: Optional[str] = None) -> Dict[str, float]:
        """``{model: value}`` of ``score`` (default: the primary), the mapping select and evaluate take."""
        score = self.primary if score is None else score
        if score not in self.scores:
            raise ValueError(f"score must be one of {list(self.scores)}, got {score!r}")
        return {m: self.values[m][score] for m in self.models}

    def table(self) -> List[Dict[str, Any]]:
        """One plain dict per model, in rank order: ``rank``, ``model``, then per score ``<score>``,
        ``<score>_seconds`` and ``<score>_layer``, then ``extraction_seconds`` and ``cached``."""
        rows = []
        for i, m in enumerate(self.models, start=1):
            row: Dict[str, Any] = {"rank": i, "model": m}
            for s in self.scores:
                row[s] = self.values[m][s]
                row[f"{s}_seconds"] = self.seconds[m][s]
                row[f"{s}_layer"] = self.layers[m][s]
            row["extraction_seconds"] = self.extraction_seconds[m]
            row["cached"] = self.cached[m]
            rows.append(row)
        return rows

    def to_frame(self) -> "pandas.DataFrame":
        """:meth:`table` as a pandas DataFrame indexed by model (needs pandas)."""
        try:
            import pandas as pd
        except ImportError as e:
            raise ImportError("Ranking.to_frame needs pandas: pip install pandas (or use Ranking.table(), "
                              "plain dicts)") from e
        return pd.DataFrame(self.table()).set_index("model")

    def to_markdown(self) -> str:
        """A pipe table: model, rank, each score, the layer it was read at, seconds of extraction (this call)
        and of scoring. With ``layers="best"`` (or a list) each value carries its own layer: ``0.8367 (L1)``."""
        per_score = any(self.layer_values[m] for m in self.models)
        show_layer = not per_score and any(v is not None for per in self.layers.values() for v in per.values())
        header = ["model", "rank"] + list(self.scores) + (["layer"] if show_layer else []) + ["extract s", "score s"]
        rows = []
        for i, m in enumerate(self.models, start=1):
            cells: List[object] = [m, i]
            for s in self.scores:
                v, layer = self.values[m][s], self.layers[m][s]
                text = "n/a" if math.isnan(v) else f"{v:.4f}"
                cells.append(text + (f" ({_layer_text(layer)})" if per_score and layer is not None else ""))
            if show_layer:
                cells.append(_layer_text(self.layers[m][self.primary]))
            cells.append(f"{self.extraction_seconds[m]:.2f}" + (" (cached)" if self.cached[m] else ""))
            cells.append(f"{sum(self.seconds[m].values()):.3f}")
            rows.append(cells)
        return md_table(header, rows)

    def __str__(self) -> str:
        head = (f"Ranking of {len(self)} models by {self.primary} (layers={self.layer_rule}, task={self.task}); "
                f"best: {self.best}")
        return "\n".join([head, self.to_markdown()] + [f"note: {n}" for n in self.notes])

    def __repr__(self) -> str:
        return f"Ranking(best={self.best!r}, models={list(self.models)}, scores={list(self.scores)})"

    # --- drawing it ------------------------------------------------------------------------------------------

    def plot(self, score: Optional[str] = None, *, ax: Optional["Axes"] = None) -> "Axes":
        """A horizontal bar chart of ``score`` (default: the primary) per model, best on top, each bar labelled
        with its value (and layer). Draws on ``ax`` (a new figure when None); returns the axes. Needs matplotlib
        (``pip install 'transferlab[plot]'``)."""
        values = self.scores_of(score)
        score = self.primary if score is None else score
        try:
            import matplotlib  # noqa: F401
        except ImportError as e:
            raise ImportError("Ranking.plot needs matplotlib: pip install 'transferlab[plot]'") from e
        if ax is None:
            import matplotlib.pyplot as plt

            _, ax = plt.subplots(figsize=(6.4, 0.9 + 0.45 * len(self)))
        names = list(self.models)[::-1]  # barh draws bottom-up: the best model ends on top
        vals = [values[m] for m in names]
        finite = [v for v in vals if not math.isnan(v)]
        bars = ax.barh(names, [0.0 if math.isnan(v) else v for v in vals],
                       color=["C1" if m == self.best else "C0" for m in names])
        for bar, m, v in zip(bars, names, vals):
            layer = self.layers[m][score]
            text = "n/a" if math.isnan(v) else f"{v:.4g}" + ("" if layer is None else f"  {_layer_text(layer)}")
            ax.annotate(text, (bar.get_width(), bar.get_y() + bar.get_height() / 2), xytext=(3, 0),
                        textcoords="offset points", va="center", fontsize=8)
        if finite:
            lo, hi = min(finite + [0.0]), max(finite + [0.0])
            ax.set_xlim(lo - 0.05 * (hi - lo or 1.0), hi + 0.25 * (hi - lo or 1.0))
        ax.set_xlabel(f"{score} (higher is better)")
        ax.set_title(f"rank_models: {score}, layers={self.layer_rule}")
        return ax
