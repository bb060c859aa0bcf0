"""Ranking and validation helpers shared by the selection strategies (:mod:`transferlab.select`) and their
evaluation (:mod:`transferlab.evaluate`).

Everything here works on plain ``{model name: value}`` mappings and imports nothing else from transferlab, so
both layers can use it without importing each other's internals.

- :func:`rank_desc`: names by decreasing value, exact ties by name (the tie rule of every ranking).
- :func:`score_map`: validate a ``{model: value}`` mapping (string keys, finite reals, enough models).
- :func:`check_same_models`: raise, naming the ids, when two model sets differ.
- :func:`check_budget`, :func:`check_nan_policy`: argument checks with the library's error messages.
"""
from __future__ import annotations

import math
from typing import Dict, Iterable, List, Mapping, Tuple

import numpy as np

__all__ = ["NAN_POLICIES", "check_budget", "check_nan_policy", "check_same_models", "rank_desc", "score_map"]

#: What a ranking does with NaN or infinite values: ``"raise"`` (ValueError naming the models) or ``"omit"``
#: (drop them).
NAN_POLICIES = ("raise", "omit")


def check_budget(budget, n: int, name: str = "budget") -> int:
    """``budget`` as an int, after checking it is an integer (not a bool) in ``[1, n]``; ``name`` names the
    argument in the TypeError / ValueError raised otherwise."""
    if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {type(budget).__name__}")
    if not 1 <= int(budget) <= n:
        raise ValueError(f"{name} must be in [1, n_models={n}], got {budget}")
    return int(budget)


def check_nan_policy(nan_policy: str) -> None:
    """Raise ValueError unless ``nan_policy`` is one of :data:`NAN_POLICIES`."""
    if nan_policy not in NAN_POLICIES:
        raise ValueError(f"nan_policy must be one of {NAN_POLICIES}, got {nan_policy!r}")


def score_map(scores, name: str = "scores", *, nan_policy: str = "raise",
              min_models: int = 2) -> Tuple[Dict[str, float], Tuple[str, ...]]:
    """Validate a ``{model: value}`` mapping: string keys, real finite values, >= ``min_models`` models.

    Returns the cleaned ``{model: float}`` dict and the models omitted (sorted) under ``nan_policy="omit"``;
    with ``"raise"`` a NaN or infinite value raises ValueError naming the models. ``name`` names the argument
    in error messages. A non-mapping (a list, a ``Selection``) raises TypeError.
    """
    check_nan_policy(nan_policy)
    if not isinstance(scores, Mapping):
        raise TypeError(f"{name} must be a mapping {{model name: value}}, got {type(scores).__name__}")
    out: Dict[str, float] = {}
    bad: List[str] = []
    for model, value in scores.items():
        if not isinstance(model, str):
            raise TypeError(f"{name}: model names must be strings, got {model!r}")
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise TypeError(f"{name}: value of model {model!r} must be a real number, got {value!r}")
        v = float(value)
        if not math.isfinite(v):
            bad.append(model)
            continue
        out[model] = v
    omitted: Tuple[str, ...] = ()
    if bad:
        if nan_policy == "raise":
            raise ValueError(f"{name}: NaN or infinite values for {len(bad)} model(s): {sorted(bad)}; "
                             f"pass nan_policy='omit' to drop them")
        omitted = tuple(sorted(bad))
    if len(out) < min_models:
        raise ValueError(f"{name}: need at least {min_models} models to rank, got {len(out)}"
                         + (f" after omitting {list(omitted)}" if omitted else ""))
    return out, omitted


def check_same_models(a: Iterable[str], b: Iterable[str], a_name: str, b_name: str) -> None:
    """Raise ValueError naming the model ids present in one set and missing from the other."""
    sa, sb = set(a), set(b)
    if sa == sb:
        return
    parts = []
    if sa - sb:
        parts.append(f"missing from {b_name}: {sorted(sa - sb)}")
    if sb - sa:
        parts.append(f"missing from {a_name}: {sorted(sb - sa)}")
    raise ValueError(f"model sets of {a_name} and {b_name} do not match ({'; '.join(parts)})")


def rank_desc(values: Mapping[str, float]) -> List[str]:
    """Names by decreasing value; exact ties by name ascending."""
    return sorted(values, key=lambda m: (-values[m], m))
