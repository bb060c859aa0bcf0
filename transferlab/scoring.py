"""Score a whole model pool: every registered score on every model, timed, as one long table.

    res = tl.score_pool("banks/")                       # every bank under banks/, every available score
    res = tl.score_pool({"resnet": X1, "vit": X2}, ["knn_loo", "logme"], labels=y)     # arrays in memory
    res = tl.score_pool("banks/", client=client)        # one Dask task per bank (or scheduler="tcp://...")
    res.to_csv("scores.csv")                            # dataset,model,score,value,seconds
    report = tl.evaluate.Report.from_tables(res.table(), finetune)

``score_pool`` is the one pool entry point: FeatureBanks (objects or directories), arrays with ``labels=``, here
or on a Dask cluster, always returning :class:`PoolScores`. (``score_many`` stays the in-memory, many-models
call returning plain lists; ``transferlab.distributed.score_pool`` / ``score_banks`` are deprecated aliases.)

Each score's registry entry says what it reads (``inputs``): ``"features"`` scores get the features,
``"probs"`` scores get a bank's softmax of ``bank.logits`` (computed once per bank in float32 row blocks; its time is
added to each probs score of that bank) or, for arrays, the ``probs=`` given. Models without logits / probs skip
probs scores, and scores that are not implemented in this build (``NotImplementedError``) are skipped: both leave a
note in ``PoolScores.notes`` instead of failing the pool. Warnings a score emits (e.g. "N < D: scores saturate") are
collected into the notes, one per distinct message with the banks it came from, instead of repeating on stderr for
every bank. Any other error names the score and the bank and is raised (or noted, ``errors=``).

The seconds are the wall-clock of each call (``time.perf_counter``), input preparation included, the figure
users weigh against regret when they pick a proxy (``transferlab.evaluate.cost_quality``); on a cluster, the
worker's.
"""
from __future__ import annotations

import csv
import inspect
import io
import math
import os
import time
import uuid
import warnings
from dataclasses import dataclass, field, replace
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from transferlab.core import linalg
from transferlab.core import cpu_threads
from transferlab.core import devices
from transferlab.bank import FeatureBank, PathLike
from transferlab.core.arrays import check_task
from transferlab.scores import registry

__all__ = ["PoolScores", "score_pool", "find_banks"]

_COLUMNS = ("dataset", "model", "score", "value", "seconds")
_SOFTMAX_BYTES = 32 << 20


@dataclass
class PoolScores:
    """The long table of :func:`score_pool`: one row per (dataset, model, score) with the value and seconds.

    ``extract_seconds``: per dataset and model, what the bank's forward passes took (the other half of a
    proxy's cost, Renggli et al.), written to the CSV as an ``extract_seconds`` column when any is known.
    ``notes``: what was skipped or dropped, and the warnings the scores emitted. ``failures``: with
    ``errors="nan"``, one ``{"dataset", "model", "score", "error"}`` per value that is NaN because its score
    raised (``error`` is ``"ExceptionType: message"``).
    """

    rows: List[Dict[str, Any]]
    notes: List[str] = field(default_factory=list)
    failures: List[Dict[str, str]] = field(default_factory=list)
    #: ``{dataset: {model: seconds}}``: the forward-pass seconds recorded in each bank (``meta.json``
    #: ``extract_seconds``); banks that did not record them and arrays are absent.
    extract_seconds: Dict[str, Dict[str, float]] = field(default_factory=dict)

    def table(self) -> Dict[str, Dict[str, Dict[str, float]]]:
        """``{score: {dataset: {model: value}}}``, what ``Report.from_tables`` takes as ``scores``."""
        return self._nested("value")

    def seconds(self) -> Dict[str, Dict[str, Dict[str, float]]]:
        """``{score: {dataset: {model: seconds}}}``."""
        return self._nested("seconds")

    def _nested(self, key: str) -> Dict[str, Dict[str, Dict[str, float]]]:
        out: Dict[str, Dict[str, Dict[str, float]]] = {}
        for r in self.rows:
            out.setdefault(r["score"], {}).setdefault(r["dataset"], {})[r["model"]] = float(r[key])
        return out

    @property
    def scores(self) -> List[str]:
        return list(dict.fromkeys(r["score"] for r in self.rows))

    @property
    def datasets(self) -> List[str]:
        return list(dict.fromkeys(r["dataset"] for r in self.rows))

    def to_csv(self, path: Optional[Union[str, "os.PathLike[str]"]] = None) -> str:
        """Long CSV ``dataset,model,score,value,seconds`` (values in full precision); written to ``path`` if
        given; returns the text. ``transferlab evaluate --scores`` and ``Report.from_tables`` read it."""
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        ext = self.extract_seconds
        w.writerow(_COLUMNS + (("extract_seconds",) if ext else ()))
        for r in self.rows:
            cells = [r["dataset"], r["model"], r["score"], repr(float(r["value"])), f"{r['seconds']:.6f}"]
            if ext:  # repeated on each score's row of a bank: the CSV stays one long table
                e = ext.get(r["dataset"], {}).get(r["model"])
                cells.append("" if e is None else f"{e:.6f}")
            w.writerow(cells)
        text = buf.getvalue()
        if path is not None:
            with open(path, "w", encoding="utf-8", newline="") as f:
                f.write(text)
        return text

    @classmethod
    def from_csv(cls, path: Union[str, "os.PathLike[str]"]) -> "PoolScores":
        """Read a CSV written by :meth:`to_csv` (the ``seconds`` column may be absent: NaN; the
        ``extract_seconds`` column may be absent or empty: not recorded)."""
        p = os.fspath(path)
        try:
            with open(p, encoding="utf-8-sig", newline="") as f:
                reader = csv.DictReader(f)
                fields = [h.strip().lower() for h in (reader.fieldnames or [])]
                missing = [c for c in _COLUMNS[:4] if c not in fields]
                if missing:
                    raise ValueError(f"{p}: a pool score CSV needs columns {list(_COLUMNS)}, missing {missing}")
                rows = []
                ext: Dict[str, Dict[str, float]] = {}
                for line, rec in enumerate(reader, start=2):
                    rec = {k.strip().lower(): (v or "").strip() for k, v in rec.items() if k}
                    try:
                        rows.append({"dataset": rec["dataset"], "model": rec["model"], "score": rec["score"],
                                     "value": float(rec["value"]),
                                     "seconds": float(rec["seconds"]) if rec.get("seconds") else math.nan})
                        if rec.get("extract_seconds"):
                            ext.setdefault(rec["dataset"], {})[rec["model"]] = float(rec["extract_seconds"])
                    except ValueError:
                        raise ValueError(f"{p}:{line}: not a number in {rec}") from None
        except FileNotFoundError:
            raise ValueError(f"file not found: {p}") from None
        return cls(rows, extract_seconds=ext)

    def to_markdown(self) -> str:
        """A wide table a person reads at a glance: one row per (dataset, model), one column per score."""
        from transferlab.core.markdown import md_table as _md

        scores = self.scores
        cells: Dict[tuple, Dict[str, float]] = {}
        for r in self.rows:
            cells.setdefault((r["dataset"], r["model"]), {})[r["score"]] = r["value"]
        rows = [[d, m] + [f"{v[s]:.4g}" if s in v else "" for s in scores] for (d, m), v in cells.items()]
        return _md(["dataset", "model"] + scores, rows)

    def __repr__(self) -> str:
        return f"PoolScores({len(self.rows)} rows, scores={self.scores}, datasets={self.datasets})"


def find_banks(root: Union[str, "os.PathLike[str]"]) -> List[str]:
    """Every bank directory under ``root`` (``root`` itself when it is one), sorted."""
    r = os.fspath(root)
    if not os.path.isdir(r):
        raise ValueError(f"banks: {r} is not a directory")
    found = []
    for dirpath, dirnames, filenames in os.walk(r):
        if "meta.json" in filenames and FeatureBank.is_bank(dirpath):
            found.append(dirpath)
            dirnames[:] = []  # a bank holds no banks
        dirnames.sort()
    return sorted(found)


def _softmax(logits) -> np.ndarray:
    """Row softmax in float64 blocks (max-shifted), stored float32; bounded extra memory per block."""
    n, z = logits.shape
    out = np.empty((n, z), dtype=np.float32)
    step = max(1, _SOFTMAX_BYTES // max(1, z * 8))
    for s in range(0, n, step):
        out[s:s + step] = linalg.softmax_rows(np.asarray(logits[s:s + step], dtype=np.float64))
    return out


def _send_to_gpu(array, name: str) -> Tuple[Any, float]:
    """(the array on the current CUDA device, seconds the copy took); CUDA tensors stay where they are."""
    if getattr(array, "is_cuda", False):
        return array, 0.0
    t0 = time.perf_counter()
    on_device = devices.to_cuda_array(array, name)
    return on_device, time.perf_counter() - t0


def _value(result) -> float:
    if hasattr(result, "score"):
        result = result.score
    return float(result)


# ------------------------------------------------------------------------------ what to score


@dataclass(frozen=True)
class _Unit:
    """One model of the pool: its names, and where its arrays come from.

    ``path``: a FeatureBank directory, opened where the unit is scored (on a worker: only the path travels).
    ``kind``: "bank" (a FeatureBank: features, labels, logits) or "arrays" (features, the shared ``labels=``,
    ``probs=``). ``origin``: the bank's directory or "in memory" (for messages).
    """

    dataset: str
    model: str
    kind: str
    origin: str
    path: Optional[str] = None
    extract_seconds: float = math.nan  # the bank's recorded forward-pass seconds (NaN: not recorded)

    @property
    def where(self) -> str:
        return f"{self.dataset}/{self.model}"


@dataclass(frozen=True)
class _Npy:
    """A ``.npy`` file, opened read-only (memory-mapped) on whichever machine reads it."""

    path: str

    def load(self) -> np.ndarray:
        return np.load(self.path, mmap_mode="r")


def _is_array(x: Any) -> bool:
    return hasattr(x, "__array__") or hasattr(x, "__dlpack__") or hasattr(x, "__cuda_array_interface__")


def _load(src: Any) -> Any:
    """An array source as an array (runs where the unit is scored): a ``.npy`` file, a loader, or an array."""
    if isinstance(src, _Npy):
        return src.load()
    if callable(src) and not _is_array(src):
        return src()
    return src


def _array_source(x: Any, what: str) -> Any:
    if isinstance(x, (str, os.PathLike)):
        path = os.fspath(x)
        if not path.endswith(".npy"):
            raise ValueError(f"{what}: {path!r} is not a .npy file (np.save); bank directories are given as "
                             "banks='dir' or a list of them, without labels=")
        return _Npy(os.path.abspath(path))
    if isinstance(x, FeatureBank):
        raise TypeError(f"{what} is a FeatureBank: give FeatureBanks as a list, without labels= "
                        "(a bank carries its own labels)")
    if _is_array(x) or callable(x):
        return x
    raise TypeError(f"{what} must be an array, a .npy path or a zero-argument loader, got {type(x).__name__}")


def _bank_entries(banks, open_banks: bool,
                  broken: Optional[List[str]] = None) -> List[Tuple[_Unit, Optional[FeatureBank]]]:
    """FeatureBanks, bank directories and directories holding banks as units (opened when ``open_banks``, else
    named from their meta.json: a cluster opens them on the workers). A bank directory that cannot be read
    (corrupted, incomplete, tampered) raises its ValueError, or, when ``broken`` is a list, is skipped and
    described there."""
    if isinstance(banks, (FeatureBank, str, os.PathLike)):
        banks = [banks]
    if isinstance(banks, Mapping) or not hasattr(banks, "__iter__"):
        raise TypeError(f"banks must be FeatureBank objects or paths, got {type(banks).__name__} "
                        "(arrays: give their labels=)")
    out: List[Tuple[_Unit, Optional[FeatureBank]]] = []
    for b in banks:
        if isinstance(b, FeatureBank):
            out.append((_Unit(b.dataset_id, b.model_id, "bank", b.path or "in memory", b.path,
                              b.extract_seconds), b))
        elif isinstance(b, (str, os.PathLike)):
            if FeatureBank.is_bank(b):
                paths = [os.fspath(b)]
            else:
                paths = find_banks(b)
                if not paths:
                    raise ValueError(f"banks: no feature bank (a directory with meta.json) under {os.fspath(b)}")
            for p in paths:
                try:
                    if open_banks:
                        fb = FeatureBank.open(p)
                        out.append((_Unit(fb.dataset_id, fb.model_id, "bank", p, p, fb.extract_seconds), fb))
                    else:
                        meta = FeatureBank.status(p)
                        secs = meta.get("extract_seconds")
                        out.append((_Unit(str(meta.get("dataset_id")), str(meta.get("model_id")), "bank", p, p,
                                          math.nan if secs is None else float(secs)), None))
                except ValueError as e:
                    if broken is None:
                        raise
                    broken.append(f"skipped the unreadable bank {p}: {e}")
        elif _is_array(b):
            raise ValueError("banks holds arrays: give their labels= (one label vector shared by every model)")
        else:
            raise TypeError(f"banks must be FeatureBank objects or paths, got {type(b).__name__}")
    if not out:
        raise ValueError("banks: nothing to score (empty list)" if not broken else
                         "banks: no readable bank; " + "; ".join(broken))
    seen: Dict[tuple, str] = {}
    for u, _ in out:
        key = (u.dataset, u.model)
        if key in seen:
            raise ValueError(f"two banks for dataset {key[0]!r} and model {key[1]!r}: {seen[key]} and "
                             f"{u.origin}; give each model a distinct model_id")
        seen[key] = u.origin
    return out


def _as_banks(banks) -> List[FeatureBank]:
    """FeatureBanks, bank directories or directories holding banks (or a list of them), opened."""
    return [b for _, b in _bank_entries(banks, open_banks=True)]


def _array_entries(banks, probs, dataset: str) -> List[Tuple[_Unit, Any, Any]]:
    """(unit, features source, probs source or None) of models given as arrays: ``{name: array}`` or a
    sequence of arrays (named "0", "1", ...)."""
    if isinstance(banks, Mapping):
        items = list(banks.items())
        for name, _ in items:
            if not isinstance(name, str) or not name:
                raise TypeError(f"banks: model names must be non-empty strings, got {name!r}")
    elif isinstance(banks, (str, os.PathLike, FeatureBank)) or _is_array(banks) or not hasattr(banks, "__iter__"):
        raise TypeError(f"with labels=, banks must be a mapping {{model name: array}} or a sequence of arrays "
                        f"(one per model), got {type(banks).__name__}")
    else:
        items = [(str(j), x) for j, x in enumerate(banks)]
    if not items:
        raise ValueError("banks: nothing to score (an empty pool)")
    if probs is None:
        probs_of: Dict[str, Any] = {}
    elif isinstance(probs, Mapping):
        probs_of = dict(probs)
    elif isinstance(probs, (str, os.PathLike)) or _is_array(probs) or not hasattr(probs, "__len__"):
        raise TypeError(f"probs must be a mapping {{model name: source probabilities}} or a sequence aligned with "
                        f"banks, got {type(probs).__name__}")
    else:
        if len(probs) != len(items):
            raise ValueError(f"probs has {len(probs)} entries but banks has {len(items)} models")
        probs_of = {str(j): p for j, p in enumerate(probs)}
    unknown = sorted(set(probs_of) - {name for name, _ in items}, key=str)
    if unknown:
        raise ValueError(f"probs names models that are not in banks: {unknown}")
    out = []
    for name, x in items:
        pr = probs_of.get(name)
        out.append((_Unit(dataset, name, "arrays", "in memory"), _array_source(x, f"banks[{name!r}]"),
                    None if pr is None else _array_source(pr, f"probs[{name!r}]")))
    return out


# ------------------------------------------------------------------------------ scoring one unit


def _score_unit(unit: _Unit, data: Any, labels: Any, probs_src: Any, infos: Sequence[Any],
                kwargs_all: Mapping[str, Mapping[str, Any]], device: str, skip=(), stop_on_error: bool = False,
                kernel_threads: Optional[int] = None) -> List[tuple]:
    """Every score of one unit, as events for :class:`_Pool` (which turns them into rows and notes, the same
    whether the units ran here one after another or on workers side by side):

    ``("row", score, row, warnings)``, ``("note", score, text)``, ``("skip", score, text)`` (not implemented:
    the score is dropped for every bank) and ``("error", score, message, exception, seconds)`` (a ValueError,
    TypeError or ArithmeticError of the score; ``errors=`` decides). Scores in ``skip`` are not run; with
    ``stop_on_error`` the unit stops at its first error (the caller raises it).
    """
    if kernel_threads is not None:
        with cpu_threads.threads(kernel_threads):
            return _score_unit(unit, data, labels, probs_src, infos, kwargs_all, device, skip, stop_on_error)
    if unit.kind == "bank":
        bank = data if isinstance(data, FeatureBank) else FeatureBank.open(unit.path)
        features, labels, logits, given_probs = bank.features, bank.labels, bank.logits, None
    else:
        try:
            features, logits = _load(data), None
            given_probs = None if probs_src is None else _load(probs_src)
        except Exception as e:  # noqa: BLE001 - a user's loader: say whose it was, keep the error chained
            raise _same_kind(e, f"loading the arrays of {unit.where}: {type(e).__name__}: {e}") from e
    events: List[tuple] = []
    probs = given_probs
    probs_seconds = 0.0
    on_gpu: Dict[str, Tuple[Any, float]] = {}  # "features" / "probs" sent to the GPU, and the seconds it took
    for info in infos:
        if info.name in skip:
            continue
        if info.inputs == "probs":
            if probs is None and logits is None:
                why = ("the bank has no logits" if unit.kind == "bank" else
                       f"no source probabilities: give probs={{{unit.model!r}: ...}}")
                events.append(("note", info.name, f"{info.name}: skipped for {unit.where} ({why})"))
                continue
            if probs is None:
                t0 = time.perf_counter()
                probs = _softmax(logits)
                probs_seconds = time.perf_counter() - t0
            first, extra = probs, probs_seconds
        else:
            first, extra = features, 0.0
        kw = dict(kwargs_all.get(info.name, {}))
        try:
            params = inspect.signature(info.func).parameters
        except (TypeError, ValueError):  # pragma: no cover - builtins without a signature
            params = {}
        if "device" in params and "device" not in kw:
            kw["device"] = device
        t0 = time.perf_counter()
        try:
            if kw.get("device") == "cuda":  # one copy per bank for all its scores, its time charged to each
                kind = "probs" if info.inputs == "probs" else "features"
                if kind not in on_gpu:
                    on_gpu[kind] = _send_to_gpu(first, kind)
                first, sent = on_gpu[kind]
                extra += sent
                t0 = time.perf_counter()  # the copy is charged through `extra`, to every score of the bank
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                result = info.func(first, labels, **kw)
        except NotImplementedError:
            events.append(("skip", info.name, f"{info.name}: not implemented in this build, skipped"))
            continue
        except (ValueError, TypeError, ArithmeticError) as e:
            msg = f"score {info.name!r} on dataset {unit.dataset!r}, model {unit.model!r}: {e}"
            events.append(("error", info.name, msg, e, time.perf_counter() - t0 + extra))
            if stop_on_error:
                break
            continue
        seconds = time.perf_counter() - t0 + extra
        seen = [f"{w.category.__name__}: {w.message}" for w in caught]
        events.append(("row", info.name, {"dataset": unit.dataset, "model": unit.model, "score": info.name,
                                          "value": _value(result), "seconds": seconds}, seen))
    return events


def _same_kind(exc: BaseException, msg: str) -> BaseException:
    """An error of ``exc``'s kind carrying ``msg`` (which names the dataset, model and score): its own type
    when that type takes a message alone, else its nearest built-in base (``json.JSONDecodeError`` needs
    three arguments: it becomes a ValueError). The caller chains it ``from exc``, so nothing is lost."""
    try:
        return type(exc)(msg)
    except Exception:  # noqa: BLE001 - a constructor with other arguments
        base = next(b for b in type(exc).__mro__ if b.__module__ == "builtins")
        return base(msg)


class _Pool:
    """Rows and notes of a pool from its units' events, fed in bank order (see :func:`_score_unit`)."""

    def __init__(self, errors: str) -> None:
        self.errors = errors
        self.rows: List[Dict[str, Any]] = []
        self.notes: List[str] = []
        self.failures: List[Dict[str, str]] = []
        self.unavailable: Dict[str, str] = {}
        self.warned: Dict[tuple, List[str]] = {}

    def add(self, unit: _Unit, events: Sequence[tuple]) -> None:
        for ev in events:
            kind, name = ev[0], ev[1]
            if name in self.unavailable:
                continue
            if kind == "row":
                self.rows.append(ev[2])
                for msg in ev[3]:  # one note per distinct warning, counting the banks it came from
                    self.warned.setdefault((name, msg), []).append(unit.where)
            elif kind == "note":
                self.notes.append(ev[2])
            elif kind == "skip":
                self.unavailable[name] = unit.where
                self.notes.append(ev[2])
            else:  # "error"
                msg, exc, seconds = ev[2], ev[3], ev[4]
                if self.errors == "raise":
                    raise _same_kind(exc, msg) from exc
                if self.errors == "note":
                    self.unavailable[name] = unit.where
                    self.notes.append(f"{name}: dropped for every bank after an error ({msg})")
                else:  # "nan"
                    self.rows.append({"dataset": unit.dataset, "model": unit.model, "score": name,
                                      "value": math.nan, "seconds": seconds})
                    self.notes.append(f"{name}: NaN for {unit.where} after an error ({msg})")
                    self.failures.append({"dataset": unit.dataset, "model": unit.model, "score": name,
                                          "error": f"{type(exc).__name__}: {exc}"})

    def result(self) -> PoolScores:
        notes = list(self.notes)
        for (name, msg), wheres in self.warned.items():
            notes.append(f"{name}: {msg} ({len(wheres)} bank{'s' if len(wheres) > 1 else ''}: "
                         f"{', '.join(wheres[:3])}{', ...' if len(wheres) > 3 else ''})")
        dropped = set(self.unavailable)
        rows = [r for r in self.rows if r["score"] not in dropped]
        return PoolScores(rows, notes, list(self.failures))


# ------------------------------------------------------------------------------ the pool


def score_pool(banks: Union[PathLike, Sequence[Any], Mapping[str, Any]], scores: Optional[Sequence[str]] = None, *, labels: Any = None, probs: Any = None,
               dataset: Optional[str] = None, device: str = "auto",
               score_kwargs: Optional[Mapping[str, Mapping[str, Any]]] = None, errors: str = "raise",
               client: Any = None, scheduler: Optional[str] = None,
               kernel_threads: Optional[int] = None, task: str = "classification",
               progress: bool = True) -> PoolScores:
    """Every score for every model of a pool, timed; here, or on a Dask cluster with ``client=`` / ``scheduler=``.

    banks: the models, in one of two forms.
        * FeatureBanks: a :class:`~transferlab.bank.FeatureBank`, a bank directory, a directory holding bank
          directories (searched recursively), or a list of any of these. Each (dataset_id, model_id) may appear
          once; each bank carries its labels and logits.
        * Arrays, with ``labels=``: ``{model name: features}`` or a sequence of features (models named "0",
          "1", ...). Features are arrays (numpy incl. memmaps, torch), ``.npy`` paths (opened memory-mapped where
          they are scored: on a cluster only the path travels) or zero-argument loaders (called there).
    scores: registered score names (default: every registered score, ``transferlab.available()``).
    labels: with arrays: the N target labels shared by every model (on a cluster, sent once).
    probs: with arrays: the source probabilities (or logits) the ``inputs="probs"`` scores (LEEP, NCE) read, as
        ``{model name: array-like}`` (or a sequence aligned with ``banks``); a model without them skips those
        scores with a note. (Banks feed those scores the softmax of their logits.)
    dataset: with arrays: the dataset name of the rows (default "data").
    device: passed to every score that takes a ``device`` argument (``"auto"``, ``"cpu"``, ``"cuda"``,
        ``"reference"``). score_kwargs: ``{score: {argument: value}}`` for individual scores.
    errors: ``"raise"`` (default: a ValueError/TypeError/ArithmeticError of a score on a bank is raised, naming
        both), ``"note"`` (that score is dropped for every bank, with a note, and the others go on: a pool report
        stays complete per score) or ``"nan"`` (that one value is NaN, with a note and an entry in
        ``PoolScores.failures``; everything else is kept). With ``"note"`` and ``"nan"`` a bank directory that
        cannot be read (corrupted, incomplete, tampered meta.json) is skipped with a note; ``"raise"`` raises
        its ValueError.
    client / scheduler: run one Dask task per bank (all its scores) on a cluster: ``client`` a
        ``distributed.Client``, or ``scheduler`` an address (``"tcp://10.0.0.5:8786"``; ``"local"`` starts a
        LocalCluster for the call). Bank directories and ``.npy`` paths are opened on the workers (they must
        see the same paths); in-memory arrays and banks are shipped. The values equal the local ones; the
        seconds are the workers'. Needs ``pip install 'transferlab[dask]'``.
    kernel_threads: OpenMP threads of the CPU kernels while scoring (None: the default); on a cluster with
        several Dask threads per machine, 1 avoids oversubscription.
    progress: a bar on stderr, one step per bank, shown on a terminal only (tqdm's rule; logs and pipes stay
        clean); False: none. On a cluster it steps as the banks' results arrive.
    task: ``"classification"`` (default), ``"regression"`` or ``"multilabel"``: passed to every score as
        ``task=``; the labels are then float targets (N,) / (N, T) or 0/1 indicators (N, L). With ``scores``
        None the scores of that task are run (``transferlab.available(task=...)``); named scores that do not
        support it are skipped, each with a note.

    Returns :class:`PoolScores` (rows ordered by dataset, model, then the order of ``scores``).
    """
    if errors not in ("raise", "note", "nan"):
        raise ValueError(f"errors must be 'raise', 'note' or 'nan', got {errors!r}")
    if kernel_threads is not None and (isinstance(kernel_threads, bool) or not isinstance(kernel_threads, int)
                                       or kernel_threads < 0):
        raise ValueError(f"kernel_threads must be None or an int >= 0, got {kernel_threads!r}")
    remote = client is not None or scheduler is not None
    broken: Optional[List[str]] = None if errors == "raise" else []  # unreadable banks, noted and skipped
    if labels is None:
        if probs is not None:
            raise ValueError("probs= goes with banks given as arrays and their labels=; FeatureBanks carry logits")
        if dataset is not None:
            raise ValueError("dataset= names the dataset of banks given as arrays (with labels=); FeatureBanks "
                             "carry their own dataset_id")
        if isinstance(banks, Mapping):
            raise ValueError("banks is a mapping of arrays: give their labels= (one label vector shared by every "
                             "model)")
        entries = [(u, b, None) for u, b in _bank_entries(banks, open_banks=not remote, broken=broken)]
    else:
        if dataset is not None and (not isinstance(dataset, str) or not dataset):
            raise TypeError(f"dataset must be a non-empty string, got {dataset!r}")
        if isinstance(banks, FeatureBank) or (isinstance(banks, (str, os.PathLike)) and not _is_npy(banks)) or (
                isinstance(banks, (list, tuple)) and any(
                    isinstance(b, (FeatureBank, str, os.PathLike)) and not _is_npy(b) for b in banks)):
            raise ValueError("labels= is for banks given as arrays; FeatureBanks (and bank directories) carry "
                             "their own labels")
        entries = _array_entries(banks, probs, dataset or "data")
    entries.sort(key=lambda e: (e[0].dataset, e[0].model))
    check_task(task)
    names = list(registry.available(task=task) if scores is None else scores)
    if isinstance(scores, str):
        names = [scores]
    infos = [registry.get(s) for s in names]  # unknown names raise, listing the available ones
    kwargs_all = dict(score_kwargs or {})
    unknown = sorted(set(kwargs_all) - set(names))
    if unknown:
        raise ValueError(f"score_kwargs names scores that are not scored: {unknown} (scoring {names})")
    infos, task_notes = _for_task(infos, kwargs_all, task)

    from transferlab.core.progress import bar

    pbar = bar(progress, len(entries), "score_pool", unit="bank")
    try:
        if remote:
            res = _score_on_cluster(entries, labels, infos, kwargs_all, device, errors, kernel_threads, client,
                                    scheduler, pbar)
        else:
            pool = _Pool(errors)
            for unit, data, probs_src in entries:
                pool.add(unit, _score_unit(unit, data, labels, probs_src, infos, kwargs_all, device,
                                           skip=set(pool.unavailable), stop_on_error=errors == "raise",
                                           kernel_threads=kernel_threads))
                if pbar is not None:
                    pbar.update(1)
            res = pool.result()
    finally:
        if pbar is not None:
            pbar.close()
    res.notes[:0] = (broken or []) + task_notes
    for unit, _, _ in entries:
        if not math.isnan(unit.extract_seconds):
            res.extract_seconds.setdefault(unit.dataset, {})[unit.model] = unit.extract_seconds
    return res


def _for_task(infos: Sequence[Any], kwargs_all: Dict[str, Dict[str, Any]], task: str) -> Tuple[list, List[str]]:
    """(the scores that support ``task``, a note for each one skipped); ``task=`` added to their arguments
    (only when it is not the default, so scores without a task argument keep working)."""
    if task == "classification":
        return list(infos), []
    keep = [i for i in infos if task in i.tasks]
    notes = [f"{i.name}: skipped (it does not support task={task!r}; scores that do: "
             f"{', '.join(registry.available(task=task))})" for i in infos if task not in i.tasks]
    if not keep:
        raise ValueError(f"none of the requested scores supports task={task!r}; scores that do: "
                         f"{', '.join(registry.available(task=task))}")
    for i in keep:
        kwargs_all[i.name] = {**kwargs_all.get(i.name, {}), "task": task}
    return keep, notes


def _is_npy(x: Any) -> bool:
    return isinstance(x, (str, os.PathLike)) and os.fspath(x).endswith(".npy")


def _pool_task(unit: _Unit, data: Any, labels: Any, probs_src: Any, infos, kwargs_all, device: str,
               kernel_threads: Optional[int]) -> List[tuple]:
    """On a worker: every score of one unit (events; a score's error travels back as an event)."""
    return _score_unit(unit, data, labels, probs_src, infos, kwargs_all, device, kernel_threads=kernel_threads)


def _score_on_cluster(entries, labels, infos, kwargs_all, device, errors, kernel_threads, client,
                      scheduler, pbar=None) -> PoolScores:
    from transferlab._dask import connect  # dask is imported on use only

    def ship(c, x):
        if x is None or isinstance(x, _Npy) or (callable(x) and not _is_array(x)):
            return x  # nothing, a path, or a loader: opened / called on the worker
        [fut] = c.scatter([x], hash=False)
        return fut

    with connect(client, scheduler) as c:
        # hash=False: content-hashed keys would be shared with an earlier call whose futures may still be
        # being released after a failure (its data then vanishes under this call: 'lost dependencies').
        lab_f = None
        if labels is not None:
            [lab_f] = c.scatter([labels], broadcast=True, hash=False)
        futures = []
        for unit, data, probs_src in entries:
            if unit.kind == "bank" and unit.path is not None:
                unit, data = replace(unit, path=os.path.abspath(unit.path)), None  # opened there
            futures.append(c.submit(_pool_task, unit, ship(c, data), lab_f, ship(c, probs_src), infos, kwargs_all,
                                    device, kernel_threads, key=f"tl-pool-{uuid.uuid4().hex}", pure=False))
        pool = _Pool(errors)
        try:
            for (unit, _, _), fut in zip(entries, futures):
                try:
                    events = fut.result()
                    if pbar is not None:
                        pbar.update(1)
                except Exception as e:
                    e.add_note(f"score_pool: while scoring dataset {unit.dataset!r}, model {unit.model!r} "
                               f"({unit.origin}) on the cluster")
                    raise
                pool.add(unit, events)
        except BaseException:
            for f in futures:
                f.cancel()
            raise
    return pool.result()
