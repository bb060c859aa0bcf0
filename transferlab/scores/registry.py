"""The score registry: one :class:`ScoreSpec` per score, built-in or third-party.

Everything that lists or dispatches scores reads it, and nothing else keeps a list of scores:
``transferlab.available()``, ``transferlab.score(name, ...)``, the CLI's score list, ``score_pool`` /
``score_many`` (which array each score takes), the streaming registry
(``transferlab.scores.streaming.stream(name)``) and ``transferlab.testing.check_score`` /
``check_stream``::

    transferlab.scores.available()              -> ["gbc", "hscore", "knn_loo", ...]
    transferlab.score("sfda", X, y, a=5.0)      -> float
    transferlab.scores.register(ScoreSpec("my_score", my_score, stream=MyStream, reference=my_oracle))
    transferlab.scores.register("my_score", inputs="features")(my_score)     # decorator form

``inputs`` says what the first argument is: "features" (N x D embeddings) or "probs" (N x Z source
class probabilities or logits, like LEEP). ``tasks`` names the label kinds the score accepts.
``stream`` is its streaming state class (a ``ScoreStream`` subclass; None: no streaming state),
``reference`` its float64 oracle (``transferlab.reference``; None: none).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

from transferlab.core.arrays import TASKS, check_task

INPUT_KINDS = ("features", "probs")

__all__ = ["ScoreSpec", "ScoreInfo", "INPUT_KINDS", "TASKS", "register", "register_stream", "unregister",
           "available", "available_streams", "get", "score", "require_task"]


@dataclass(frozen=True)
class ScoreSpec:
    """What the library knows about one score."""

    name: str
    fn: Callable[..., Any]
    inputs: str = "features"
    tasks: Tuple[str, ...] = ("classification",)
    stream: Optional[type] = None
    reference: Optional[Callable[..., Any]] = None
    description: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError("score name must be a non-empty string")
        if not callable(self.fn):
            raise TypeError(f"ScoreSpec({self.name!r}): fn must be callable, got {type(self.fn).__name__}")
        if self.inputs not in INPUT_KINDS:
            raise ValueError(f"inputs must be one of {INPUT_KINDS}, got {self.inputs!r}")
        tasks = (self.tasks,) if isinstance(self.tasks, str) else tuple(self.tasks)
        unknown = [t for t in tasks if t not in TASKS]
        if not tasks or unknown:
            raise ValueError(f"tasks must be a non-empty subset of {TASKS}, got {self.tasks!r}")
        object.__setattr__(self, "tasks", tasks)
        if self.stream is not None and not isinstance(self.stream, type):
            raise TypeError(f"ScoreSpec({self.name!r}): stream must be a ScoreStream class")
        if not self.description:
            doc = (self.fn.__doc__ or "").strip().splitlines()
            object.__setattr__(self, "description", doc[0] if doc else "")

    @property
    def func(self) -> Callable[..., Any]:
        """The score function (the name the registry used before ``ScoreSpec``)."""
        return self.fn


ScoreInfo = ScoreSpec  # the earlier name of the entry type

_REGISTRY: Dict[str, ScoreSpec] = {}


def _add(spec: ScoreSpec, overwrite: bool) -> ScoreSpec:
    if spec.name in _REGISTRY and not overwrite:
        raise ValueError(f"a score named {spec.name!r} is already registered (pass overwrite=True)")
    if spec.stream is not None:
        spec.stream.score_name = spec.name  # the state knows which score it streams (merge checks, errors)
    _REGISTRY[spec.name] = spec
    return spec


def register(name: Union[str, ScoreSpec], *, inputs: str = "features", tasks: Tuple[str, ...] = ("classification",),
             stream: Optional[type] = None, reference: Optional[Callable[..., Any]] = None, overwrite: bool = False
             ) -> Union[ScoreSpec, Callable[[Callable[..., Any]], Callable[..., Any]]]:
    """Register a score.

    ``register(ScoreSpec(...))`` registers the entry and returns it; ``register(name, inputs=...,
    ...)`` is a decorator of ``func(first, labels, **kw) -> float`` that returns ``func``.
    """
    if isinstance(name, ScoreSpec):
        return _add(name, overwrite)
    if not isinstance(name, str) or not name:
        raise ValueError("score name must be a non-empty string")
    if inputs not in INPUT_KINDS:
        raise ValueError(f"inputs must be one of {INPUT_KINDS}, got {inputs!r}")

    def deco(func: Callable[..., Any]) -> Callable[..., Any]:
        _add(ScoreSpec(name, func, inputs, tasks, stream, reference), overwrite)
        return func

    return deco


def register_stream(name: str) -> Callable[[type], type]:
    """Class decorator attaching a streaming state class to the registered score ``name``."""

    def deco(cls: type) -> type:
        spec = get(name)
        if spec.stream is not None and spec.stream is not cls:
            raise ValueError(f"a streaming state for {name!r} is already registered")
        _add(dataclasses.replace(spec, stream=cls), overwrite=True)
        return cls

    return deco


def unregister(name: str) -> None:
    """Remove a score (for tests and plugins)."""
    _REGISTRY.pop(name, None)


def available(task: Optional[str] = None) -> List[str]:
    """Names of every registered score (those supporting ``task`` when given), sorted."""
    if task is not None:
        check_task(task)
    return sorted(n for n, s in _REGISTRY.items() if task is None or task in s.tasks)


def require_task(name: str, task: str) -> str:
    """``task`` if the score ``name`` supports it (as its registry entry records), else the one error
    every score raises: ``"<name> does not support task='<task>'; scores that do: ..."``."""
    check_task(task)
    spec = _REGISTRY.get(name)
    tasks = spec.tasks if spec is not None else ("classification",)
    if task not in tasks:
        raise ValueError(f"{name} does not support task={task!r}; scores that do: {', '.join(available(task))}")
    return task


def available_streams() -> List[str]:
    """Names of the registered scores that have a streaming state, sorted."""
    return sorted(n for n, s in _REGISTRY.items() if s.stream is not None)


def get(name: str) -> ScoreSpec:
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown score {name!r}; available: {', '.join(available())}") from None


def score(name: str, *args: Any, **kwargs: Any) -> Any:
    """Call the score registered as ``name``."""
    return get(name).fn(*args, **kwargs)
