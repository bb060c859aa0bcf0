"""What the command line (:mod:`transferlab.cli`, :mod:`transferlab._cli_pool`) and the demo
(:mod:`transferlab.demo`) share: resolving the ``--pool`` / ``--finetune`` specs ('zoo', 'auto', 'none', a file)
and the per-dataset fine-tune order of every strategy that ``transferlab rank`` and the demo print.

It sits below both, so that neither imports the other for these.
"""
from __future__ import annotations

import os
from typing import List, Tuple

__all__ = ["rank_tables", "resolve_finetune", "resolve_pool"]


def resolve_pool(spec: str):
    """'zoo' -> the zoo's cards; 'none' -> None; anything else ('auto', a card file) is passed through."""
    if spec is None or str(spec).lower() == "none":
        return None
    if str(spec).lower() == "zoo":
        from transferlab import zoo

        return zoo.pool()
    return spec


def resolve_finetune(spec: str):
    """'zoo' -> the shipped zoo ground truth; anything else is passed through (a CSV path)."""
    if str(spec).lower() == "zoo":
        from transferlab import zoo

        return zoo.ground_truth()
    return spec


def _pool_for(spec, models):
    """The ModelPool of ``models`` described by ``spec`` ('zoo', 'auto', 'none', a card file or a ModelPool)."""
    from transferlab.pool import ModelPool

    if spec is None or (isinstance(spec, str) and spec.lower() == "none"):
        return None
    if isinstance(spec, str) and spec.lower() == "zoo":
        from transferlab import zoo

        return zoo.pool(sorted(models))
    if isinstance(spec, str) and spec.lower() == "auto":
        spec = ModelPool.imagenet_cnns()
    p = ModelPool.load(spec) if isinstance(spec, (str, os.PathLike)) else spec
    missing = sorted(set(models) - set(p.names))
    if missing:
        raise ValueError(f"pool: no model cards for {missing}")
    return p.subset(models)


def rank_tables(scores_table, pool) -> List[Tuple[str, List[str], List[List[str]]]]:
    """(dataset, header, rows) per dataset of ``{score: {dataset: {model: value}}}``: one column per strategy
    (task-agnostic when ``pool`` is not None, then task-aware and hybrid per score), one row per position."""
    from transferlab.select import hybrid, task_agnostic, task_aware

    datasets = list(dict.fromkeys(d for per_d in scores_table.values() for d in per_d))
    out = []
    for d in datasets:
        models = sorted({m for s in scores_table for m in scores_table[s].get(d, {})})
        p = _pool_for(pool, models)
        cols: List[Tuple[str, List[str]]] = []
        if p is not None:
            cols.append(("task-agnostic", list(task_agnostic(p))))
        for s in scores_table:
            sc = scores_table[s].get(d)
            if not sc or len(sc) < 2:
                continue
            cols.append((f"task-aware:{s}", list(task_aware(sc, name=s, nan_policy="omit"))))
            if p is not None:
                cols.append((f"hybrid:{s}", list(hybrid(p.subset(sc), sc, name=s, nan_policy="omit"))))
        if not cols:
            raise ValueError(f"dataset {d!r}: nothing to rank (each score has fewer than 2 models and there are "
                             "no model cards); rank needs at least 2 models per dataset")
        n = max(len(c) for _, c in cols)
        rows = [[str(i + 1)] + [c[i] if i < len(c) else "" for _, c in cols] for i in range(n)]
        out.append((d, ["#"] + [name for name, _ in cols], rows))
    return out


def check_output(flag: str, path, *, directory: bool = False) -> None:
    """Refuse, in CLI terms and before any work, an output path that cannot be written: a file where a
    directory is wanted (or the reverse), or a file whose directory does not exist."""
    if path is None:
        return
    import os

    p = os.fspath(path)
    if directory:
        if os.path.exists(p) and not os.path.isdir(p):
            raise ValueError(f"{flag} {p}: a file exists there; give a directory (it is created if missing)")
        return
    if os.path.isdir(p):
        raise ValueError(f"{flag} {p} is a directory; give a file name")
    parent = os.path.dirname(p) or "."
    if not os.path.isdir(parent):
        raise ValueError(f"{flag} {p}: the directory {parent} does not exist")

