"""Streaming states of the scores: a bank larger than memory, or split across workers, gives the
number of the one-shot call. The protocol (passes, ``update``/``merge``/``fork``/``end_pass``/
``compute``) is in ``_stream.py``; ``run`` drives it:

    tl.scores.streaming.run("logme", bank_memmap, labels)              # row blocks, every pass
    tl.scores.streaming.run("sfda", lambda: my_chunks(), a=5.0)          # a chunk factory, one call per pass

    state = tl.scores.streaming.stream("logme")   # or LogMEStream()
    for X_chunk, y_chunk in bank:                  # any chunk sizes
        state.update(X_chunk, y_chunk)
    other = LogMEStream().update(X_rest, y_rest)   # e.g. on another worker
    state.merge(other).compute()                   # == tl.logme(all rows, all labels) (to ~1e-12)

Every built-in score has a state (``available_streams()``), kept in its score's package beside the
one-shot function (``transferlab/scores/<score>/stream.py``) and registered in its ``ScoreSpec``: this
module lists none of them. ``from transferlab.scores.streaming import SFDAStream`` (any state's class
name) looks the class up in the registry. States pickle by their class's own module, so a state saved
in one process loads in another that has only run ``import pickle``.
"""
from __future__ import annotations

import inspect
from typing import Any, Callable, Iterable, List, Optional, Tuple

import numpy as np

import transferlab.scores  # noqa: F401  (registers every built-in score and its state)
from transferlab.core import blocks
from transferlab.core.arrays import as_matrix
from transferlab.scores import registry
from transferlab.scores._stream import LabelSlots, ScoreStream
from transferlab.scores._stream_parts import GramStream
from transferlab.scores.registry import available_streams, register_stream

__all__ = ["ScoreStream", "LabelSlots", "GramStream", "register_stream", "stream", "available_streams", "run"]


def _stream_class(name: str) -> type:
    cls = registry.get(name).stream if name in registry.available() else None
    if cls is None:
        raise ValueError(f"no streaming state for score {name!r}; available: {available_streams()}")
    return cls


def _check_stream_task(name: str, cls: type, params: dict) -> None:
    """``task=`` for a state: the score must support it, and the state must take it (LogME and kNN do);
    otherwise one clear error instead of an unexpected-keyword TypeError."""
    task = params.get("task", "classification")
    if task == "classification":
        return
    registry.require_task(name, task)
    if "task" not in inspect.signature(cls.__init__).parameters:
        raise ValueError(f"the streaming state of {name} scores task='classification' only; call "
                         f"transferlab.{name}(features, labels, task={task!r}) on the whole bank")


def stream(name: str, **params: Any) -> ScoreStream:
    """A fresh streaming state of score ``name`` with the one-shot score's keyword options."""
    cls = _stream_class(name)
    _check_stream_task(name, cls, params)
    return cls(**params)


def __getattr__(attr: str) -> type:
    """``streaming.SFDAStream`` etc.: the state class of that name among the registered scores."""
    for name in available_streams():
        cls = registry.get(name).stream
        if cls.__name__ == attr:
            return cls
    raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")


def __dir__() -> List[str]:
    return sorted(set(globals()) | {registry.get(n).stream.__name__ for n in available_streams()})


# ------------------------------------------------------------------------------ the driver

Source = Any  # an array-like bank (with labels) or a callable returning an iterable of (x, labels) chunks


def run(score: Any, source: Source, labels: Any = None, *, chunk_rows: Optional[int] = None, **params: Any) -> float:
    """Stream a whole score: every pass of ``score`` (a name, or a fresh state) over ``source``.

    ``source``: the bank's features (or source probabilities) in any form the scores accept, e.g. a
    read-only ``np.memmap``, read ``chunk_rows`` rows at a time (default: about 64 MiB of rows), with
    ``labels``; or a zero-argument callable returning an iterable of ``(x_chunk, labels_chunk)``,
    called once per pass (it must give the same rows every time). ``params`` go to the state.
    ``"knn_loo"``'s state is built over the bank itself (``KnnLooStream(source, labels, **params)``:
    each chunk's rows are queries against the whole bank), so ``source`` must then be an array.
    """
    cls = _stream_class(score) if isinstance(score, str) else None
    if cls is not None:
        _check_stream_task(score, cls, params)
    if getattr(cls, "over_bank", False):
        st = cls(source, labels, **params)  # built over the reference bank itself (knn_loo)
    else:
        st = stream(score, **params) if isinstance(score, str) else score
    if not isinstance(st, ScoreStream):
        raise TypeError(f"score must be a score name or a streaming state, got {type(score).__name__}")
    if params and not isinstance(score, str):
        raise TypeError("pass options to the state's constructor, not to run(), when score is a state")
    chunks = _chunk_factory(source, labels, chunk_rows)
    while not st.complete:
        for x, y in chunks():
            st.update(x, y)
        st.end_pass()
    return st.compute()


def _chunk_factory(source: Source, labels: Any, chunk_rows: Optional[int]) -> Callable[[], Iterable[Tuple[Any, Any]]]:
    if callable(source) and not hasattr(source, "shape"):
        if labels is not None:
            raise TypeError("labels come from the chunks when source is a chunk factory; pass labels=None")
        return source
    if labels is None:
        raise TypeError("labels are required when source is an array")
    n = len(labels)
    if getattr(source, "shape", (n,))[0] != n:
        raise ValueError(f"labels has length {n} but the source has {source.shape[0]} rows")
    if chunk_rows is None:
        width = int(np.prod(source.shape[1:])) if len(getattr(source, "shape", ())) > 1 else 1
        chunk_rows = max(1, (64 << 20) // max(1, 8 * width))
    if isinstance(chunk_rows, bool) or not isinstance(chunk_rows, (int, np.integer)) or chunk_rows < 1:
        raise ValueError(f"chunk_rows must be an int >= 1, got {chunk_rows!r}")
    step = int(chunk_rows)
    # A memory-mapped bank: the pages of a chunk are dropped from this process once the state has
    # consumed it (the shared block reader's release), so a pass peaks at about one chunk, not the bank.
    mapped = as_matrix(source, "features") if blocks.is_mapped(source) else None

    def chunks():
        for a in range(0, n, step):
            yield source[a : a + step], labels[a : a + step]
            if mapped is not None:
                blocks.release(mapped, a, a + step)

    return chunks
