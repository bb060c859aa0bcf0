"""Label placement for the figures of :mod:`transferlab.plot`: text that never piles up.

Two placers, both deterministic and both computed from the renderer's real text extents (no guessing from
character counts):

- :func:`label_points` puts a label beside each point of a scatter. Points are taken in priority order; each
  label tries candidate spots around its point (8 directions, rings further out), and takes the first spot
  whose box lies inside the axes and overlaps neither an earlier label nor any point's marker. A far spot gets a
  thin leader line. A label with no free spot is left out and returned, so that the caller states it in the
  figure (never silently missing). By construction no two placed labels overlap.
- :func:`spread` moves 1-D intervals (e.g. labels of horizontal lines) apart by the least amount so that none
  overlap, keeping their order and staying within bounds where possible.

Labels are anchored in offset points from their data point, so placements survive a change of DPI; place them
after the layout (axes size and limits) is final, since they are computed for that geometry.
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import numpy as np

__all__ = ["label_points", "spread", "renderer_of"]

Box = Tuple[float, float, float, float]  # x0, y0, x1, y1 in display pixels

# (dx, dy, ha, va) unit directions, the most readable first: right, left, above, below, then the diagonals.
_DIRECTIONS = ((1, 0, "left", "center"), (-1, 0, "right", "center"), (0, 1, "center", "bottom"),
               (0, -1, "center", "top"), (1, 1, "left", "bottom"), (-1, 1, "right", "bottom"),
               (1, -1, "left", "top"), (-1, -1, "right", "top"))
_RINGS_PT = (3.0, 9.0, 16.0, 26.0, 40.0)


def renderer_of(fig):
    """The renderer that text extents are measured with (the figure's own canvas)."""
    get = getattr(fig.canvas, "get_renderer", None)
    return get() if get is not None else fig._get_renderer()


def _overlaps(a: Box, b: Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _box(x: float, y: float, w: float, h: float, ha: str, va: str) -> Box:
    x0 = x - (w if ha == "right" else w / 2 if ha == "center" else 0.0)
    y0 = y - (h if va == "top" else h / 2 if va == "center" else 0.0)
    return (x0, y0, x0 + w, y0 + h)


def label_points(ax, xs: Sequence[float], ys: Sequence[float], texts: Sequence[str], *,
                 order: Optional[Sequence[int]] = None, fontsize: float = 6.0, marker_pt: float = 3.0,
                 color: str = "0.15", avoid: Sequence[Tuple[float, float]] = (),
                 backing: bool = False) -> Tuple[list, List[int]]:
    """Label point ``i`` at ``(xs[i], ys[i])`` with ``texts[i]`` without overlaps (see the module docstring).

    order: indices in priority order (default: as given); marker_pt: half the marker size in points (the area
    around each point that no label covers); avoid: more (x, y) data points that no label may cover (e.g.
    unlabelled markers); backing: a thin white box behind each label, legible where grid or reference lines
    run behind it. Returns (the annotation artists, the indices left unlabelled)."""
    fig = ax.figure
    renderer = renderer_of(fig)
    px_per_pt = fig.dpi / 72.0
    pts = ax.transData.transform(np.column_stack([np.asarray(xs, float), np.asarray(ys, float)]))
    frame = ax.get_window_extent(renderer)
    inner = (frame.x0 + 1, frame.y0 + 1, frame.x1 - 1, frame.y1 - 1)
    m = marker_pt * px_per_pt
    more = ax.transData.transform(np.asarray(avoid, float).reshape(-1, 2)) if len(avoid) else np.empty((0, 2))
    obstacles: List[Box] = [(px - m, py - m, px + m, py + m) for px, py in np.vstack([pts, more])
                            if np.isfinite(px) and np.isfinite(py)]
    placed: List[Box] = []
    artists, left_out = [], []
    probe = ax.text(0, 0, "", fontsize=fontsize, transform=None)
    for i in (range(len(texts)) if order is None else order):
        px, py = pts[i]
        if not (np.isfinite(px) and np.isfinite(py)):
            left_out.append(i)
            continue
        probe.set_text(texts[i])
        ext = probe.get_window_extent(renderer)
        w, h = ext.width + 2, ext.height + 2  # a pixel of air around each label
        spot = None
        for ring in _RINGS_PT:
            r = ring * px_per_pt
            for dx, dy, ha, va in _DIRECTIONS:
                k = 0.7071 if dx and dy else 1.0
                b = _box(px + dx * r * k, py + dy * r * k, w, h, ha, va)
                if (b[0] >= inner[0] and b[1] >= inner[1] and b[2] <= inner[2] and b[3] <= inner[3]
                        and not any(_overlaps(b, o) for o in placed) and not any(_overlaps(b, o) for o in obstacles)):
                    spot = (dx * ring * k, dy * ring * k, ha, va, b, ring)
                    break
            if spot is not None:
                break
        if spot is None:
            left_out.append(i)
            continue
        ox, oy, ha, va, b, ring = spot
        placed.append(b)
        arrow = None if ring <= _RINGS_PT[0] else dict(arrowstyle="-", color="0.55", lw=0.5, shrinkA=0, shrinkB=2)
        artists.append(ax.annotate(texts[i], (xs[i], ys[i]), xytext=(ox, oy), textcoords="offset points",
                                   ha=ha, va=va, fontsize=fontsize, color=color, arrowprops=arrow,
                                   annotation_clip=False, zorder=4,
                                   # the backing stays within the pixel of air kept around each label
                                   bbox=dict(boxstyle="square,pad=0.05", fc="white", ec="none", alpha=0.85)
                                   if backing else None))
    probe.remove()
    return artists, left_out


def spread(centres: Sequence[float], heights: Sequence[float], lo: float, hi: float) -> np.ndarray:
    """New centres for intervals ``[c - h/2, c + h/2]`` that do not overlap, keep the order of ``centres``,
    move as little as a push-up-then-pull-down sweep allows, and stay in ``[lo, hi]`` when they fit there."""
    c = np.asarray(centres, dtype=np.float64)
    h = np.asarray(heights, dtype=np.float64)
    idx = np.argsort(c, kind="stable")
    out = c.copy()
    prev_top = lo
    for i in idx:  # push up: each starts above the one below it (and above lo)
        out[i] = max(out[i], prev_top + h[i] / 2)
        prev_top = out[i] + h[i] / 2
    next_bottom = hi
    for i in idx[::-1]:  # pull down from hi where the push went over it
        out[i] = min(out[i], next_bottom - h[i] / 2)
        next_bottom = out[i] - h[i] / 2
    return out
