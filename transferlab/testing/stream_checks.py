"""The streaming protocol as checks any registered streaming state must pass, built-in or third-party.

    >>> from transferlab.testing import check_stream
    >>> check_stream("sfda")                          # raises ScoreCheckError listing every failed check
    >>> report = check_stream("my_score", raise_on_failure=False, rtol=1e-12)

The state (``ScoreSpec.stream``) is compared with the one-shot score (``ScoreSpec.fn``) on the same
rows; every check is one property of the protocol (``transferlab/scores/_stream.py``):

* ``chunk_sizes``: chunks of 1, 7 and 97 rows and the whole bank give the one-shot score;
* ``merge_orders``: every pass split across forks that are pickled to a "worker" and back, merged in
  forward, reverse, random and tree order, gives the one-shot score;
* ``memmap``: ``streaming.run`` over a read-only memory-mapped bank gives it, and the file is unchanged;
* ``late_string_labels``: rows sorted by label (each chunk holds one or two classes) with string labels;
* ``pickle_round_trip``: a state pickled mid-pass and loaded finishes with the same bits;
* ``inputs_unchanged``: no check wrote to the caller's arrays;
* ``bad_use``: the one-shot's errors for NaN rows (ValueError), a chunk of another width (ValueError),
  merging something that is not a state (TypeError), ``compute()`` before the passes of a multi-pass
  state are done and ``end_pass()`` with no rows (ValueError).

"The one-shot score" is equality within ``rtol`` (relative; ``rtol=0`` asks for the same bits).
A state whose class sets ``over_bank = True`` (like kNN's) is built over the bank, ``cls(X, y)``.
"""
from __future__ import annotations

import math
import pickle
import tempfile
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

import numpy as np

from transferlab.scores import registry
from transferlab.testing.score_checks import CheckResult, ScoreCheckError, ScoreReport, input_digest, valid_inputs

__all__ = ["STREAM_CHECKS", "check_stream", "merge_order"]

_ORDERS = ("forward", "reverse", "random", "tree")


class _StreamCase:
    """One score's state class, its one-shot value and the rows the checks feed."""

    def __init__(self, name: str, X: Any, y: np.ndarray, params: Dict[str, Any], rtol: float, tmpdir: Path):
        spec = registry.get(name)
        if spec.stream is None:
            raise ValueError(f"score {name!r} has no streaming state (ScoreSpec.stream is None)")
        self.name, self.cls, self.X, self.y, self.params, self.rtol, self.tmpdir = (
            name, spec.stream, X, y, params, rtol, tmpdir)
        self.want = float(spec.fn(X, y, **params))

    def fresh(self, X: Any = None, y: Any = None):
        X, y = (self.X, self.y) if X is None else (X, y)
        if getattr(self.cls, "over_bank", False):
            return self.cls(X, y, **self.params)
        return self.cls(**self.params)

    def same(self, got: float, what: str) -> None:
        ok = got == self.want if self.rtol == 0 else (
            math.isfinite(got) and abs(got - self.want) <= self.rtol * max(abs(self.want), 1e-300))
        if not ok:
            raise AssertionError(f"{what}: got {got!r}, the one-shot score is {self.want!r} (rtol={self.rtol})")


def _chunks(X: Any, y: Any, size: int) -> List[Tuple[Any, Any]]:
    return [(X[s : s + size], y[s : s + size]) for s in range(0, len(y), size)]


def _feed(state, parts: List[Tuple[Any, Any]]) -> float:
    while not state.complete:
        for x, lab in parts:
            state.update(x, lab)
        state.end_pass()
    return float(state.compute())


def _check_chunk_sizes(case: _StreamCase) -> None:
    for size in (1, 7, 97, len(case.y)):
        case.same(_feed(case.fresh(), _chunks(case.X, case.y, size)), f"chunks of {size} rows")


def merge_order(parts: list, order: str) -> list:
    """The states ``parts`` as they are merged in ``order``: "forward", "reverse", "random" (seeded) or
    "tree" (pairs merged into each other, then pairs of those: one state is left)."""
    if order == "tree":
        while len(parts) > 1:
            parts = [parts[i].merge(parts[i + 1]) if i + 1 < len(parts) else parts[i]
                     for i in range(0, len(parts), 2)]
        return parts
    idx = {"forward": range(len(parts)), "reverse": range(len(parts) - 1, -1, -1),
           "random": np.random.default_rng(7).permutation(len(parts))}[order]
    return [parts[i] for i in idx]


def _check_merge_orders(case: _StreamCase) -> None:
    bounds = np.linspace(0, len(case.y), 6).astype(int)
    for order in _ORDERS:
        state = case.fresh()
        while not state.complete:
            parts = []
            for a, b in zip(bounds[:-1], bounds[1:]):
                worker = pickle.loads(pickle.dumps(state.fork()))  # sent to a worker ...
                if getattr(case.cls, "over_bank", False):
                    worker.update(case.X[a:b], case.y[a:b], start=int(a))
                else:
                    worker.update(case.X[a:b], case.y[a:b])
                parts.append(pickle.loads(pickle.dumps(worker)))  # ... and back
            for part in merge_order(parts, order):
                state.merge(part)
            state.end_pass()
        case.same(float(state.compute()), f"merge order {order}")


def _check_memmap(case: _StreamCase) -> None:
    from transferlab.scores import streaming

    path = case.tmpdir / f"{case.name}_bank.npy"
    np.save(path, np.asarray(case.X))
    bank = np.load(path, mmap_mode="r")
    before = input_digest(bank)
    case.same(float(streaming.run(case.name, bank, case.y, chunk_rows=33, **case.params)), "streaming.run on a memmap")
    if input_digest(bank) != before:
        raise AssertionError("streaming.run wrote to the memory-mapped bank")


def _check_late_string_labels(case: _StreamCase) -> None:
    order = np.argsort(case.y, kind="stable")
    names = np.array([f"class-{k:02d}" for k in range(int(np.max(case.y)) + 1)])[np.asarray(case.y)]
    X, y = case.X[order], names[order]
    case.same(_feed(case.fresh(X, y), _chunks(X, y, 25)), "rows sorted by string label")


def _check_pickle_round_trip(case: _StreamCase) -> None:
    half = len(case.y) // 2
    state = case.fresh().update(case.X[:half], case.y[:half])
    copy = pickle.loads(pickle.dumps(state))
    rest = [(case.X[half:], case.y[half:])]
    got, again = _finish(state, rest, case), _finish(copy, rest, case)
    if got != again:
        raise AssertionError(f"a pickled and loaded state finished with {again!r}, the original with {got!r}")
    case.same(got, "a state pickled mid-pass")


def _finish(state, rest, case: _StreamCase) -> float:
    for x, lab in rest:
        state.update(x, lab)
    state.end_pass()
    return _feed(state, [(case.X, case.y)])


def _expect(exc: type, what: str, fn: Callable[[], Any]) -> None:
    try:
        fn()
    except exc:
        return
    except Exception as e:  # noqa: BLE001 - the wrong error is what we report
        raise AssertionError(f"{what}: expected {exc.__name__}, got {type(e).__name__}: {e}") from None
    raise AssertionError(f"{what}: expected {exc.__name__}, nothing was raised")


def _check_bad_use(case: _StreamCase) -> None:
    X = np.array(case.X, dtype=np.float64)
    bad = X.copy()
    bad[3, 0] = np.nan
    if not getattr(case.cls, "over_bank", False):
        _expect(ValueError, "a chunk holding NaN", lambda: case.fresh().update(bad, case.y))
    state = case.fresh().update(case.X[:10], case.y[:10])
    _expect(ValueError, "a chunk of another width", lambda: state.update(X[10:20, :-1], case.y[10:20]))
    _expect(TypeError, "merging something that is not a state", lambda: case.fresh().merge(object()))
    fed = case.fresh().update(case.X, case.y)
    if fed.n_passes > 1:  # a one-pass state (GBC without PCA too) may compute() after its only pass's rows
        _expect(ValueError, "compute() before every pass ended", fed.compute)
    if not getattr(case.cls, "over_bank", False):
        _expect(ValueError, "end_pass() without rows", lambda: case.fresh().end_pass())


STREAM_CHECKS: Dict[str, Callable[[_StreamCase], None]] = {
    "chunk_sizes": _check_chunk_sizes,
    "merge_orders": _check_merge_orders,
    "memmap": _check_memmap,
    "late_string_labels": _check_late_string_labels,
    "pickle_round_trip": _check_pickle_round_trip,
    "bad_use": _check_bad_use,
}


def check_stream(name: str, *, features: Any = None, labels: Any = None, params: Optional[Dict[str, Any]] = None,
                 rtol: float = 1e-9, checks: Optional[Iterable[str]] = None, raise_on_failure: bool = True,
                 seed: int = 0) -> ScoreReport:
    """Run the streaming checks (:data:`STREAM_CHECKS`) against the state of the registered score ``name``.

    features, labels : the rows to stream (default: ``valid_inputs(name, n=240)``, class blobs or
        probabilities as the score's ``inputs`` says). params : the score's keyword options, given to
        both the one-shot function and the state. rtol : the equality the state promises with the
        one-shot score (0: the same bits). Returns a :class:`ScoreReport`; raises
        :class:`ScoreCheckError` when a check fails unless ``raise_on_failure=False``.
    """
    if (features is None) != (labels is None):
        raise ValueError("pass both features and labels, or neither")
    if features is None:
        features, labels = valid_inputs(name, n=240, d=6, c=3, seed=seed)
    labels = np.asarray(labels)
    selected = list(STREAM_CHECKS) if checks is None else list(checks)
    unknown = [c for c in selected if c not in STREAM_CHECKS]
    if unknown:
        raise ValueError(f"unknown checks {unknown}; available: {', '.join(STREAM_CHECKS)}")
    report = ScoreReport(name)
    before = input_digest(features, labels)
    with tempfile.TemporaryDirectory(prefix="tl_stream_check_") as tmp:
        case = _StreamCase(name, features, labels, dict(params or {}), float(rtol), Path(tmp))
        for check in selected:
            try:
                STREAM_CHECKS[check](case)
            except AssertionError as e:
                report.results.append(CheckResult(check, "stream", "fail", str(e)))
            except Exception as e:  # noqa: BLE001 - an unexpected error is a failed check, reported
                report.results.append(CheckResult(check, "stream", "fail", f"{type(e).__name__}: {e}"))
            else:
                report.results.append(CheckResult(check, "stream", "pass"))
    unchanged = input_digest(features, labels) == before
    report.results.append(CheckResult("inputs_unchanged", "stream", "pass" if unchanged else "fail",
                                      "" if unchanged else "a check wrote to the caller's features or labels"))
    if raise_on_failure and not report.ok:
        raise ScoreCheckError(report)
    return report
