"""The score registry: every score, built-in or third-party, is reachable by name.

    transferlab.scores.available()            -> ["knn_loo", "leep", ...]
    transferlab.score("sfda", X, y, a=5.0)    -> float
    transferlab.scores.register("my_score", inputs="features")(func)

``inputs`` says what the first argument is: "features" (N x D embeddings) or "probs" (N x Z
source-class probabilities, like LEEP). Downstream code (pool scoring, the bad-input suite) uses it
to feed each score the right array.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict, List

INPUT_KINDS = ("features", "probs")


@dataclass(frozen=True)
class ScoreInfo:
    name: str
    func: Callable[..., Any]
    inputs: str
    description: str


_REGISTRY: Dict[str, ScoreInfo] = {}


def register(name: str, *, inputs: str = "features", overwrite: bool = False):
    """Decorator registering ``func(first, labels, **kw) -> float`` under ``name``."""
    if not isinstance(name, str) or not name:
        raise ValueError("score name must be a non-empty string")
    if inputs not in INPUT_KINDS:
        raise ValueError(f"inputs must be one of {INPUT_KINDS}, got {inputs!r}")

    def deco(func: Callable[..., Any]) -> Callable[..., Any]:
        if name in _REGISTRY and not overwrite:
            raise ValueError(f"a score named {name!r} is already registered (pass overwrite=True)")
        doc = (func.__doc__ or "").strip().splitlines()
        _REGISTRY[name] = ScoreInfo(name, func, inputs, doc[0] if doc else "")
        return func

    return deco


def unregister(name: str) -> None:
    """Remove a score (for tests and plugins)."""
    _REGISTRY.pop(name, None)


def available() -> List[str]:
    """Names of every registered score, sorted."""
    return sorted(_REGISTRY)


def get(name: str) -> ScoreInfo:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown score {name!r}; available: {', '.join(available())}") from None


def score(name: str, *args: Any, **kwargs: Any) -> Any:
    """Call the score registered as ``name``."""
    return get(name).func(*args, **kwargs)
