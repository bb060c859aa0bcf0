"""The bad-input suite (the table of what every public function does with bad input, one check per row) as checks any registered score must pass.

    >>> from transferlab.testing import check_score
    >>> check_score("knn_loo")            # raises ScoreCheckError listing every failed row
    >>> report = check_score("my_score", raise_on_failure=False)
    >>> print(report)

Third-party scores get the same checks: register the score (``transferlab.scores.register``) and
call :func:`check_score` in your tests. The score is called as ``func(first, labels, **kw)`` where
``first`` is the N x D feature bank (``inputs="features"``) or the N x Z source-class probabilities
(``inputs="probs"``), as its :class:`~transferlab.scores.ScoreInfo` says.

Each check is one row of BAD_INPUTS.md (the row number is in its id) and asserts the error type and
a message keyword, or, for inputs that are defined, a finite float equal to the score of the
equivalent clean input. Every check runs twice: on fresh in-memory arrays and on read-only memory
maps of the same bytes (``np.load(..., mmap_mode="r")``); torch-only inputs run in memory only.
The bytes of every array argument are hashed before and after each call: a score that writes to its
inputs fails (on a read-only map the write itself raises, which also fails the check).

Rows that are not about a single score call (16, 18-20: chunking budgets, the ranking layer, bank
files) are covered by their own test modules. A score raising ``NotImplementedError`` on a valid
input makes the whole report ``not_implemented`` (tests skip it with that reason).
"""
from __future__ import annotations

import hashlib
import inspect
import logging
import math
import re
import tempfile
import tracemalloc
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from transferlab.scores import registry

__all__ = ["CheckResult", "ScoreReport", "ScoreCheckError", "check_score", "CHECKS", "EXEMPTIONS", "input_digest",
           "valid_inputs"]

MODES = ("memory", "memmap")


# ------------------------------------------------------------------------------ results


@dataclass(frozen=True)
class CheckResult:
    check: str  # e.g. "row01_nan_in_first"
    mode: str  # "memory" or "memmap"
    status: str  # "pass", "fail" or "skip"
    detail: str = ""


@dataclass
class ScoreReport:
    """Outcome of :func:`check_score` for one score."""

    name: str
    results: List[CheckResult] = field(default_factory=list)
    not_implemented: Optional[str] = None  # reason, when the score raised NotImplementedError

    @property
    def failures(self) -> List[CheckResult]:
        return [r for r in self.results if r.status == "fail"]

    @property
    def passed(self) -> List[CheckResult]:
        return [r for r in self.results if r.status == "pass"]

    @property
    def ok(self) -> bool:
        return self.not_implemented is None and not self.failures

    def __str__(self) -> str:
        if self.not_implemented is not None:
            return f"score {self.name!r}: not implemented ({self.not_implemented})"
        lines = [
            f"score {self.name!r}: {len(self.passed)} passed, {len(self.failures)} failed, "
            f"{sum(r.status == 'skip' for r in self.results)} skipped"
        ]
        for r in self.failures:
            lines.append(f"  FAIL {r.check} [{r.mode}]: {r.detail}")
        return "\n".join(lines)


class ScoreCheckError(AssertionError):
    """Raised by :func:`check_score` when a score fails bad-input checks; ``.report`` has the details."""

    def __init__(self, report: ScoreReport):
        super().__init__(str(report))
        self.report = report


class _Skip(Exception):
    """A check that does not apply here (no CUDA, no ``k`` parameter, ...)."""


class _Fail(Exception):
    """A check that failed; the message says what was expected and what happened."""


# ------------------------------------------------------------------------------ input hashing


def input_digest(*arrays: Any) -> str:
    """SHA-256 over shape, dtype, strides and bytes of every array (numpy, memmap or torch)."""
    h = hashlib.sha256()
    for a in arrays:
        if hasattr(a, "detach") and hasattr(a, "data_ptr"):  # torch: hash the raw storage bytes
            t = a.detach().cpu().contiguous()
            h.update(str((tuple(t.shape), str(t.dtype), tuple(a.stride()))).encode())
            h.update(t.view(-1).view(__import__("torch").uint8).numpy().tobytes() if t.numel() else b"")
            continue
        a = np.asarray(a)
        h.update(str((a.shape, a.dtype.str, a.strides)).encode())
        h.update(repr(a.tolist()).encode() if a.dtype == object else np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


# ------------------------------------------------------------------------------ the call context


class _Ctx:
    """What a check needs: the score, how to materialise arrays for the current mode, clean data."""

    def __init__(self, info: registry.ScoreInfo, mode: str, tmpdir: Path, seed: int):
        self.info = info
        self.mode = mode
        self.tmpdir = tmpdir
        self.seed = seed
        self._n_files = 0
        self.params = inspect.signature(info.func).parameters
        self.first_name = next(iter(self.params), "features")
        self.probs = info.inputs == "probs"
        self.last_warnings: List[str] = []  # messages of the last successful value() call

    # -- data
    def rng(self, salt: int = 0) -> np.random.Generator:
        return np.random.default_rng([self.seed, salt])

    def clean(self, n: int = 60, d: int = 8, c: int = 3, salt: int = 0) -> Tuple[np.ndarray, np.ndarray]:
        """A valid (first, labels) pair: class blobs, or probabilities of a noisy source model.

        Every class has at least 2 samples. Probabilities are dyadic (exact in float16/bfloat16):
        each row is a permutation of (1/2, 1/4, 1/8, 1/16, 1/16) with its largest mass on a
        source class correlated with the label.
        """
        rng = self.rng(salt)
        y = np.concatenate([np.arange(c), np.arange(c), rng.integers(0, c, size=max(0, n - 2 * c))])[:n]
        y = rng.permutation(y).astype(np.int64)
        if self.probs:
            z = max(d, 2)
            base = np.array([1 / 2, 1 / 4, 1 / 8, 1 / 16, 1 / 16] + [0.0] * max(0, z - 5))[:z]
            base = base / base.sum()  # z < 5: renormalised (then no longer exact in half precision)
            P = np.empty((n, z))
            for i in range(n):
                perm = rng.permutation(z)
                top = (y[i] + rng.integers(0, 2)) % z
                perm[[0, int(np.flatnonzero(perm == top)[0])]] = perm[[int(np.flatnonzero(perm == top)[0]), 0]]
                P[i, perm] = base
            return P, y
        centers = rng.normal(size=(c, d)) * 2.0
        X = centers[y] + rng.normal(size=(n, d))
        return X.astype(np.float32), y

    def put(self, a: Any) -> Any:
        """The array as the check's mode wants it: a private copy in memory, or a read-only memmap."""
        if not isinstance(a, np.ndarray):
            return a
        if self.mode == "memory" or a.dtype == object:
            return a.copy(order="K")
        self._n_files += 1
        path = self.tmpdir / f"{self.mode}_{self._n_files}.npy"
        np.save(path, a)
        return np.load(path, mmap_mode="r")

    # -- calling
    def call(self, first: Any, labels: Any, **kw: Any) -> Tuple[Any, List[warnings.WarningMessage]]:
        """Call the score, proving the inputs were not mutated; returns (result, warnings)."""
        before = input_digest(first, labels)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                out = self.info.func(first, labels, **kw)
            finally:
                after = input_digest(first, labels)
                if after != before:
                    raise _Fail("the score mutated its inputs (input bytes changed during the call)")
        return out, list(caught)

    def value(self, first: Any, labels: Any, *, max_warnings: Optional[int] = None, **kw: Any) -> float:
        """A call that must succeed with a finite float (RuntimeWarnings = floating-point trouble)."""
        try:
            out, caught = self.call(first, labels, **kw)
        except _Fail:
            raise
        except NotImplementedError:
            raise
        except Exception as e:
            raise _Fail(f"expected a finite score, got {type(e).__name__}: {e}") from None
        if isinstance(out, (bool, np.bool_)) or not isinstance(out, (float, int, np.floating, np.integer)):
            raise _Fail(f"expected a float, got {type(out).__name__}")
        if not math.isfinite(float(out)):
            raise _Fail(f"expected a finite score, got {out}")
        self.last_warnings = [str(w.message) for w in caught]
        runtime = [w for w in caught if issubclass(w.category, RuntimeWarning)]
        if runtime:
            raise _Fail(f"floating-point warning during the call: {runtime[0].message}")
        if max_warnings is not None and len(caught) > max_warnings:
            raise _Fail(f"expected at most {max_warnings} warning(s), got {len(caught)}: "
                        + "; ".join(str(w.message) for w in caught[:3]))
        return float(out)

    def raises(self, exc: Any, keywords: Sequence[str], first: Any, labels: Any, **kw: Any) -> None:
        """The call must raise ``exc`` whose message matches every regex in ``keywords``."""
        try:
            out, _ = self.call(first, labels, **kw)
        except _Fail:
            raise
        except NotImplementedError:
            raise
        except exc as e:
            msg = str(e)
            missing = [k for k in keywords if not re.search(k, msg)]
            if missing:
                raise _Fail(f"{type(e).__name__} raised but its message lacks {missing}: {msg!r}") from None
            return
        except Exception as e:
            raise _Fail(f"expected {_names(exc)}, got {type(e).__name__}: {e}") from None
        raise _Fail(f"expected {_names(exc)}, but the call returned {out!r}")


def _names(exc: Any) -> str:
    """An exception type, or a tuple of them, as the messages name it ("ValueError/TypeError")."""
    return exc.__name__ if isinstance(exc, type) else "/".join(t.__name__ for t in exc)


def _same(a: float, b: float, rtol: float, what: str) -> None:
    if not (a == b or abs(a - b) <= rtol * max(abs(a), abs(b))):
        raise _Fail(f"{what}: {a!r} != {b!r} (rtol={rtol:g})")


# ------------------------------------------------------------------------------ the checks
# Each check is f(ctx) and raises _Fail / _Skip; registered with the BAD_INPUTS.md row it covers.

CHECKS: Dict[str, Callable[[_Ctx], None]] = {}
_MEMORY_ONLY = set()


def _check(name: str, memory_only: bool = False):
    def deco(f):
        CHECKS[name] = f
        if memory_only:
            _MEMORY_ONLY.add(name)
        return f

    return deco


def _with_nonfinite(ctx: _Ctx, values: Iterable[float]):
    X, y = ctx.clean(salt=1)
    X = X.astype(np.float64)
    rows = [17, 41, 52][: len(list(values))]
    for r, v in zip(rows, values):
        X[r, 1] = v
    return X, y, rows


@_check("row01_nan_inf_raise")
def _row01_raise(ctx):
    for values in ([np.nan, np.inf], [-np.inf, np.nan, np.inf]):
        X, y, rows = _with_nonfinite(ctx, values)
        ctx.raises(ValueError, ["NaN", ctx.first_name, rf"\b{len(rows)}\b", rf"\b{rows[0]}\b"], ctx.put(X), ctx.put(y))


@_check("row01_nan_policy_omit")
def _row01_omit(ctx):
    if "nan_policy" not in ctx.params:
        raise _Skip("the score has no nan_policy parameter")
    X, y, rows = _with_nonfinite(ctx, [np.nan, -np.inf])
    keep = np.setdiff1d(np.arange(X.shape[0]), rows)
    # "drops those rows and reports how many": a log record or a warning naming the count.
    records: List[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    log = logging.getLogger("transferlab")
    log.addHandler(handler)
    try:
        got = ctx.value(ctx.put(X), ctx.put(y), nan_policy="omit")
    finally:
        log.removeHandler(handler)
    want = ctx.value(ctx.put(np.ascontiguousarray(X[keep])), ctx.put(y[keep]))
    _same(got, want, 1e-12, "nan_policy='omit' vs the score of the finite rows")
    told = [r.getMessage() for r in records] + ctx.last_warnings
    if not any(re.search(rf"\b{len(rows)}\b", m) for m in told):
        raise _Fail(f"nan_policy='omit' dropped {len(rows)} rows without reporting how many "
                    "(no 'transferlab' log record or warning with the count)")


@_check("row02_empty")
def _row02(ctx):
    X, y = ctx.clean()
    ctx.raises(ValueError, ["n_samples=0"], ctx.put(X[:0]), ctx.put(y[:0]))
    ctx.raises(ValueError, ["n_features=0"], ctx.put(np.ascontiguousarray(X[:, :0])), ctx.put(y))


@_check("row03_too_few_samples")
def _row03(ctx):
    X, y = ctx.clean()
    ctx.raises(ValueError, [r"at least|minimum|n_samples"], ctx.put(X[:1]), ctx.put(y[:1]))


@_check("row04_one_class")
def _row04(ctx):
    X, y = ctx.clean()
    ctx.raises(ValueError, [r"need at least 2 classes, got 1"], ctx.put(X), ctx.put(np.zeros_like(y)))


@_check("row05_singleton_class")
def _row05(ctx):
    X, y = ctx.clean()
    y = y.copy()
    y[0] = y.max() + 1  # a class with one sample
    ctx.value(ctx.put(X), ctx.put(y), max_warnings=1)


@_check("row06_labels_remapped")
def _row06(ctx):
    X, y = ctx.clean()
    ref = ctx.value(ctx.put(X), ctx.put(y))
    names = np.array(["cat", "dog", "emu", "fox"])
    variants = {
        "strings": names[y],
        "gaps": y * 7 + 3,
        "negative": y - 10,
        "integral floats": y.astype(np.float64) * 2.0,
        "(N, 1) column": y.reshape(-1, 1),
    }
    for what, lab in variants.items():
        _same(ctx.value(ctx.put(X), ctx.put(lab)), ref, 0.0, f"labels as {what} vs the remapped codes")
    ctx.raises(ValueError, ["continuous"], ctx.put(X), ctx.put(y + 0.5))


@_check("row07_length_mismatch")
def _row07(ctx):
    X, y = ctx.clean()
    n = X.shape[0]
    ctx.raises(ValueError, [rf"\b{n - 1}\b", rf"\b{n}\b"], ctx.put(X), ctx.put(y[:-1]))
    ctx.raises(ValueError, [r"shape"], ctx.put(X), ctx.put(np.stack([y, y], axis=1)))


@_check("row08_feature_ndim")
def _row08(ctx):
    X, y = ctx.clean()
    ctx.raises(ValueError, [r"2-D"], ctx.put(np.ascontiguousarray(X[:, 0])), ctx.put(y))
    ctx.raises(ValueError, [r"pool|reshape"], ctx.put(X.reshape(X.shape[0], 2, -1)), ctx.put(y))
    ctx.raises(ValueError, [r"pool|reshape"], ctx.put(X.reshape(X.shape[0], 2, 2, -1)), ctx.put(y))


@_check("row09_duplicates_row_order")
def _row09(ctx):
    X, y = ctx.clean()
    X = np.concatenate([X, X[:20], X[:10]])
    y = np.concatenate([y, y[:20], (y[:10] + 1) % 3])  # duplicates with the same and other labels
    ref = ctx.value(ctx.put(X), ctx.put(y))
    perm = ctx.rng(9).permutation(X.shape[0])
    got = ctx.value(ctx.put(np.ascontiguousarray(X[perm])), ctx.put(y[perm]))
    _same(got, ref, 1e-6, "score of the permuted rows vs the original order")


@_check("row10_dtypes")
def _row10(ctx):
    X, y = ctx.clean()
    for dt in (np.float16, np.float32, np.float64):
        ctx.value(ctx.put(X.astype(dt)), ctx.put(y))
    if ctx.probs:  # one-hot rows are valid probabilities as int and bool
        onehot = np.zeros(X.shape, dtype=bool)
        onehot[np.arange(X.shape[0]), np.argmax(X, axis=1)] = True
        ctx.value(ctx.put(onehot), ctx.put(y))
        ctx.value(ctx.put(onehot.astype(np.int32)), ctx.put(y))
    else:
        ctx.value(ctx.put(np.round(X * 4).astype(np.int64)), ctx.put(y))
        ctx.value(ctx.put(X > 0), ctx.put(y))
    ctx.raises(TypeError, [r"dtype|complex"], ctx.put(X.astype(np.complex64)), ctx.put(y))
    ctx.raises(TypeError, [r"dtype|object"], X.astype(object), ctx.put(y))


@_check("row10_bfloat16_torch", memory_only=True)
def _row10_bf16(ctx):
    try:
        import torch
    except ImportError:  # pragma: no cover
        raise _Skip("torch is not installed") from None
    X, y = ctx.clean()
    ctx.value(torch.from_numpy(np.asarray(X, dtype=np.float32)).to(torch.bfloat16), y)


@_check("row11_layouts")
def _row11(ctx):
    X, y = ctx.clean()
    X = X.astype(np.float32)
    ref = ctx.value(ctx.put(X), ctx.put(y))
    n, d = X.shape
    wide = np.zeros((n, 2 * d), dtype=np.float32)
    wide[:, ::2] = X
    layouts = {
        "Fortran order": lambda: ctx.put(np.asfortranarray(X)),
        "column-strided view": lambda: ctx.put(wide)[:, ::2],
        "row slice of a wider array": lambda: ctx.put(np.concatenate([X, X], axis=1))[:, :d],
        "negative row stride": lambda: ctx.put(np.ascontiguousarray(X[::-1]))[::-1],
        "negative column stride": lambda: ctx.put(np.ascontiguousarray(X[:, ::-1]))[:, ::-1],
    }
    for what, make in layouts.items():
        _same(ctx.value(make(), ctx.put(y)), ref, 0.0, f"{what} vs the C-contiguous array")
    # Integer and bool banks are converted once to float32: any layout of them too.
    if not ctx.probs:
        Xi = np.round(X * 4).astype(np.int32)
        ref_i = ctx.value(ctx.put(Xi), ctx.put(y))
        _same(ctx.value(ctx.put(np.asfortranarray(Xi)), ctx.put(y)), ref_i, 0.0, "Fortran-order int vs C order")
        _same(ctx.value(ctx.put(np.ascontiguousarray(Xi[::-1]))[::-1], ctx.put(y)), ref_i, 0.0,
              "negative-stride int vs C order")
        Xb = X > 0
        _same(ctx.value(ctx.put(np.asfortranarray(Xb)), ctx.put(y)), ctx.value(ctx.put(Xb), ctx.put(y)), 0.0,
              "Fortran-order bool vs C order")
    # A strided row subset equals the same rows copied.
    sub = ctx.value(ctx.put(np.concatenate([X, X]))[::2], ctx.put(np.concatenate([y, y])[::2]))
    _same(sub, ctx.value(ctx.put(np.ascontiguousarray(np.concatenate([X, X])[::2])),
                         ctx.put(np.concatenate([y, y])[::2])), 0.0, "every-other-row view vs its copy")


@_check("row12_requires_grad", memory_only=True)
def _row12_grad(ctx):
    try:
        import torch
    except ImportError:  # pragma: no cover
        raise _Skip("torch is not installed") from None
    X, y = ctx.clean()
    t = torch.from_numpy(np.asarray(X, dtype=np.float32)).requires_grad_(True)
    ctx.raises(TypeError, [r"detach"], t, y)


@_check("row12_devices", memory_only=True)
def _row12_devices(ctx):
    from transferlab import kernels

    try:
        import torch
    except ImportError:  # pragma: no cover
        raise _Skip("torch is not installed") from None
    X, y = ctx.clean()
    if not torch.cuda.is_available():
        raise _Skip("no CUDA device visible to torch: CUDA tensors cannot be made here")
    t = torch.from_numpy(np.asarray(X, dtype=np.float32)).cuda()
    if kernels.cuda_module() is None:
        ctx.raises(RuntimeError, [r"CUDA"], t, y)
    elif "device" in ctx.params:
        ctx.value(t, y, device="cpu")  # a CUDA tensor scored on the host: moved, not refused


def _many_class_peak(ctx: _Ctx, n: int, c: int) -> int:
    """Peak traced Python/numpy memory of one call on n samples in c equal classes."""
    rng = ctx.rng(13)
    y = rng.permutation(np.repeat(np.arange(c), n // c))
    if ctx.probs:
        X, _ = ctx.clean(n=n, d=8, c=2, salt=13)
    else:
        X = (rng.normal(size=(n, 4)) + (y % 97)[:, None] * 0.1).astype(np.float32)
    Xp, yp = ctx.put(X), ctx.put(y)
    tracemalloc.start()
    try:
        ctx.value(Xp, yp)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@_check("row13_many_classes", memory_only=True)
def _row13(ctx):
    # Memory only: a memory-scaling check (memmaps add nothing) and the most expensive one.
    # N = 20,000 samples in 5,000 and then 10,000 classes. Memory O(C * D) plus a fixed working
    # budget grows by ~nothing between the two; an N x C matrix (one-hot, probabilities, any dtype
    # of one byte or more) grows by >= N * 5,000 bytes. Python allocations, numpy's included, are
    # traced; native kernel buffers are not (O(C * D) by their contracts).
    n, c1, c2 = 20_000, 5_000, 10_000
    p1 = _many_class_peak(ctx, n, c1)
    p2 = _many_class_peak(ctx, n, c2)
    if p2 - p1 > n * (c2 - c1) // 2:
        raise _Fail(f"peak traced memory grows from {p1 / 2**20:.0f} MiB (C={c1}) to {p2 / 2**20:.0f} MiB "
                    f"(C={c2}) at N={n}: looks like an N x C matrix (rule: O(C * D) memory)")


@_check("row14_bad_probabilities")
def _row14(ctx):
    if not ctx.probs:
        raise _Skip("not a probability-input score")
    P, y = ctx.clean()
    ctx.raises(ValueError, [r"logits"], ctx.put(P * 2.0), ctx.put(y))
    logits = ctx.rng(14).normal(size=P.shape)
    ctx.raises(ValueError, [r"logits"], ctx.put(logits), ctx.put(y))
    ref = ctx.value(ctx.put(P), ctx.put(y))
    padded = np.concatenate([P[:, :2], np.zeros((P.shape[0], 1)), P[:, 2:]], axis=1)
    _same(ctx.value(ctx.put(padded), ctx.put(y)), ref, 1e-9, "a zero-mass source class vs without it")


@_check("row15_fewer_samples_than_features")
def _row15(ctx):
    if ctx.probs:
        raise _Skip("not a feature-input score")
    X, y = ctx.clean(n=20, d=64, salt=15)
    ctx.value(ctx.put(X), ctx.put(y))


@_check("row17_k_range")
def _row17(ctx):
    if "k" not in ctx.params:
        raise _Skip("the score has no k parameter")
    X, y = ctx.clean()
    n = X.shape[0]
    for k in (0, -1, n, n + 5):
        ctx.raises(ValueError, [r"k must be in \[1, n_samples-1\]"], ctx.put(X), ctx.put(y), k=k)


# ------------------------------------------------------------------------------ exemptions

#: Documented exceptions to a row: {score name: {check name: reason}}. An exempt check is not run
#: and is reported as "skip" with the reason, so the exemption is visible in every report.
#: Add one only with a reason a user would accept (an algorithm that cannot meet the row).
EXEMPTIONS: Dict[str, Dict[str, str]] = {}


# ------------------------------------------------------------------------------ the runner


def valid_inputs(name: str, n: int = 60, d: int = 8, c: int = 3, seed: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """A valid (first argument, labels) pair for the registered score ``name``: float32 class
    blobs (N x d) for feature scores, dyadic probabilities (N x max(d, 2), float64) for
    probability scores. Every class has at least 2 samples. Deterministic in ``seed``."""
    return _Ctx(registry.get(name), "memory", Path("."), seed).clean(n=n, d=d, c=c)



def check_score(
    name: str,
    *,
    checks: Optional[Iterable[str]] = None,
    modes: Sequence[str] = MODES,
    raise_on_failure: bool = True,
    seed: int = 0,
) -> ScoreReport:
    """Run the BAD_INPUTS.md checks against the registered score ``name``.

    Parameters
    ----------
    name : a name from ``transferlab.scores.available()``.
    checks : subset of :data:`CHECKS` names (default: all).
    modes : "memory" (fresh arrays) and/or "memmap" (read-only ``.npy`` memory maps).
    raise_on_failure : raise :class:`ScoreCheckError` (an AssertionError) when any check fails;
        otherwise return the report. A score that raises ``NotImplementedError`` on valid input
        is never an error: the report says ``not_implemented``.
    """
    info = registry.get(name)
    for m in modes:
        if m not in MODES:
            raise ValueError(f"modes must be among {MODES}, got {m!r}")
    selected = list(CHECKS) if checks is None else list(checks)
    unknown = [c for c in selected if c not in CHECKS]
    if unknown:
        raise ValueError(f"unknown checks {unknown}; available: {', '.join(CHECKS)}")
    report = ScoreReport(name)
    with tempfile.TemporaryDirectory(prefix="tl_check_") as tmp:
        # A valid input first: a NotImplementedError there means "not implemented yet", not a bug.
        try:
            ctx0 = _Ctx(info, "memory", Path(tmp), seed)
            ctx0.value(*ctx0.clean())
        except NotImplementedError as e:
            report.not_implemented = str(e) or "raises NotImplementedError"
            return report
        except _Fail as e:
            report.results.append(CheckResult("baseline_valid_input", "memory", "fail", str(e)))
        for mode in modes:
            for check in selected:
                if mode != "memory" and check in _MEMORY_ONLY:
                    continue
                reason = EXEMPTIONS.get(name, {}).get(check)
                if reason is not None:
                    report.results.append(CheckResult(check, mode, "skip", f"exempt: {reason}"))
                    continue
                ctx = _Ctx(info, mode, Path(tmp), seed)
                try:
                    CHECKS[check](ctx)
                except _Skip as e:
                    report.results.append(CheckResult(check, mode, "skip", str(e)))
                except _Fail as e:
                    report.results.append(CheckResult(check, mode, "fail", str(e)))
                except NotImplementedError as e:
                    report.results.append(CheckResult(check, mode, "fail", f"NotImplementedError: {e}"))
                else:
                    report.results.append(CheckResult(check, mode, "pass"))
    if raise_on_failure and not report.ok and report.not_implemented is None:
        raise ScoreCheckError(report)
    return report
