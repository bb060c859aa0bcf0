"""Plain-text tables: one pipe-table writer for every printed table (CLI, demo, pool scores, reports)."""
from __future__ import annotations

from typing import List, Sequence


def md_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A pipe table padded so it also reads as plain text (first column left, others right aligned)."""
    header = list(header)
    rows = [list(r) for r in rows]
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]

    def line(cells: List[object]) -> str:
        return "| " + " | ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)
                                 for i, (c, w) in enumerate(zip(cells, widths))) + " |"

    sep = "|" + "|".join(("-" * (w + 2)) if i == 0 else ("-" * (w + 1) + ":") for i, w in enumerate(widths)) + "|"
    return "\n".join([line(header), sep] + [line(r) for r in rows])
