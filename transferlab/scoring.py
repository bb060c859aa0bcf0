"""Score a whole model pool: every registered score on every feature bank, timed, as one long table.

    res = tl.score_pool("banks/")                       # every bank under banks/, every available score
    res.to_csv("scores.csv")                            # dataset,model,score,value,seconds
    report = tl.evaluate.Report.from_tables(res.table(), finetune)

Each score's registry entry says what it reads (``inputs``): ``"features"`` scores get ``bank.features``,
``"probs"`` scores get the softmax of ``bank.logits`` (computed once per bank in float32 row blocks; its time is
added to each probs score of that bank). Banks without logits skip probs scores, and scores that are not
implemented in this build (``NotImplementedError``) are skipped: both leave a note in ``PoolScores.notes``
instead of failing the pool. Warnings a score emits (e.g. "N < D: scores saturate") are collected into the notes,
one per distinct message with the banks it came from, instead of repeating on stderr for every bank. Any other
error names the score and the bank and is raised.

The seconds are the wall-clock of each call (``time.perf_counter``), input preparation included, the figure
users weigh against regret when they pick a proxy (``transferlab.evaluate.cost_quality``).
"""
from __future__ import annotations

import csv
import inspect
import io
import math
import os
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from transferlab.core import devices
from transferlab.bank import FeatureBank
from transferlab.scores import registry

__all__ = ["PoolScores", "score_pool", "find_banks"]

_COLUMNS = ("dataset", "model", "score", "value", "seconds")
_SOFTMAX_BYTES = 32 << 20


@dataclass
class PoolScores:
    """The long table of :func:`score_pool`: one row per (dataset, model, score) with the value and seconds."""

    rows: List[Dict[str, Any]]
    notes: List[str] = field(default_factory=list)

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
        w.writerow(_COLUMNS)
        for r in self.rows:
            w.writerow([r["dataset"], r["model"], r["score"], repr(float(r["value"])), f"{r['seconds']:.6f}"])
        text = buf.getvalue()
        if path is not None:
            with open(path, "w", encoding="utf-8", newline="") as f:
                f.write(text)
        return text

    @classmethod
    def from_csv(cls, path: Union[str, "os.PathLike[str]"]) -> "PoolScores":
        """Read a CSV written by :meth:`to_csv` (the ``seconds`` column may be absent: NaN)."""
        p = os.fspath(path)
        try:
            with open(p, encoding="utf-8-sig", newline="") as f:
                reader = csv.DictReader(f)
                fields = [h.strip().lower() for h in (reader.fieldnames or [])]
                missing = [c for c in _COLUMNS[:4] if c not in fields]
                if missing:
                    raise ValueError(f"{p}: a pool score CSV needs columns {list(_COLUMNS)}, missing {missing}")
                rows = []
                for line, rec in enumerate(reader, start=2):
                    rec = {k.strip().lower(): (v or "").strip() for k, v in rec.items() if k}
                    try:
                        rows.append({"dataset": rec["dataset"], "model": rec["model"], "score": rec["score"],
                                     "value": float(rec["value"]),
                                     "seconds": float(rec["seconds"]) if rec.get("seconds") else math.nan})
                    except ValueError:
                        raise ValueError(f"{p}:{line}: not a number in {rec}") from None
        except FileNotFoundError:
            raise ValueError(f"file not found: {p}") from None
        return cls(rows)

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


def _as_banks(banks) -> List[FeatureBank]:
    if isinstance(banks, (FeatureBank, str, os.PathLike)):
        banks = [banks]
    out: List[FeatureBank] = []
    for b in banks:
        if isinstance(b, FeatureBank):
            out.append(b)
        elif isinstance(b, (str, os.PathLike)):
            if FeatureBank.is_bank(b):
                out.append(FeatureBank.open(b))
            else:
                paths = find_banks(b)
                if not paths:
                    raise ValueError(f"banks: no feature bank (a directory with meta.json) under {os.fspath(b)}")
                out.extend(FeatureBank.open(p) for p in paths)
        else:
            raise TypeError(f"banks must be FeatureBank objects or paths, got {type(b).__name__}")
    if not out:
        raise ValueError("banks: nothing to score (empty list)")
    seen: Dict[tuple, str] = {}
    for b in out:
        key = (b.dataset_id, b.model_id)
        if key in seen:
            raise ValueError(f"two banks for dataset {key[0]!r} and model {key[1]!r}: {seen[key]} and "
                             f"{b.path or 'in memory'}; give each model a distinct model_id")
        seen[key] = b.path or "in memory"
    return out


def _softmax(logits) -> np.ndarray:
    """Row softmax in float64 blocks (max-shifted), stored float32; bounded extra memory per block."""
    n, z = logits.shape
    out = np.empty((n, z), dtype=np.float32)
    step = max(1, _SOFTMAX_BYTES // max(1, z * 8))
    for s in range(0, n, step):
        block = np.asarray(logits[s:s + step], dtype=np.float64)
        block = np.exp(block - block.max(axis=1, keepdims=True))
        out[s:s + step] = block / block.sum(axis=1, keepdims=True)
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


def score_pool(banks, scores: Optional[Sequence[str]] = None, *, device: str = "auto",
               score_kwargs: Optional[Mapping[str, Mapping[str, Any]]] = None, errors: str = "raise") -> PoolScores:
    """Every score for every bank, timed.

    banks: a :class:`~transferlab.bank.FeatureBank`, a bank directory, a directory holding bank directories
        (searched recursively), or a list of any of these. Each (dataset_id, model_id) may appear once.
    scores: registered score names (default: every registered score, ``transferlab.available()``).
    device: passed to every score that takes a ``device`` argument (``"auto"``, ``"cpu"``, ``"cuda"``,
        ``"reference"``). score_kwargs: ``{score: {argument: value}}`` for individual scores.
    errors: ``"raise"`` (default: a ValueError/TypeError/ArithmeticError of a score on a bank is raised, naming
        both) or ``"note"`` (that score is dropped for every bank, with a note, and the others go on: a pool
        report stays complete per score).

    Returns :class:`PoolScores` (rows ordered by dataset, model, then the order of ``scores``).
    """
    if errors not in ("raise", "note"):
        raise ValueError(f"errors must be 'raise' or 'note', got {errors!r}")
    bank_list = sorted(_as_banks(banks), key=lambda b: (b.dataset_id, b.model_id))
    names = list(registry.available() if scores is None else scores)
    if isinstance(scores, str):
        names = [scores]
    infos = [registry.get(s) for s in names]  # unknown names raise, listing the available ones
    kwargs_all = dict(score_kwargs or {})
    unknown = sorted(set(kwargs_all) - set(names))
    if unknown:
        raise ValueError(f"score_kwargs names scores that are not scored: {unknown} (scoring {names})")

    rows: List[Dict[str, Any]] = []
    notes: List[str] = []
    unavailable: Dict[str, str] = {}
    warned: Dict[tuple, List[str]] = {}
    for bank in bank_list:
        probs = None
        probs_seconds = 0.0
        on_gpu: Dict[str, Tuple[Any, float]] = {}  # "features" / "probs" sent to the GPU, and the seconds it took
        for info in infos:
            if info.name in unavailable:
                continue
            where = f"{bank.dataset_id}/{bank.model_id}"
            if info.inputs == "probs":
                if bank.logits is None:
                    notes.append(f"{info.name}: skipped for {where} (the bank has no logits)")
                    continue
                if probs is None:
                    t0 = time.perf_counter()
                    probs = _softmax(bank.logits)
                    probs_seconds = time.perf_counter() - t0
                first, extra = probs, probs_seconds
            else:
                first, extra = bank.features, 0.0
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
                    result = info.func(first, bank.labels, **kw)
            except NotImplementedError:
                unavailable[info.name] = where
                notes.append(f"{info.name}: not implemented in this build, skipped")
                continue
            except (ValueError, TypeError, ArithmeticError) as e:
                msg = f"score {info.name!r} on dataset {bank.dataset_id!r}, model {bank.model_id!r}: {e}"
                if errors == "raise":
                    raise type(e)(msg) from e
                unavailable[info.name] = where
                notes.append(f"{info.name}: dropped for every bank after an error ({msg})")
                continue
            seconds = time.perf_counter() - t0 + extra
            for wmsg in caught:  # one note per distinct warning, counting the banks it came from
                key = (info.name, f"{wmsg.category.__name__}: {wmsg.message}")
                warned.setdefault(key, []).append(where)
            rows.append({"dataset": bank.dataset_id, "model": bank.model_id, "score": info.name,
                         "value": _value(result), "seconds": seconds})
    for (name, msg), wheres in warned.items():
        notes.append(f"{name}: {msg} ({len(wheres)} bank{'s' if len(wheres) > 1 else ''}: {', '.join(wheres[:3])}"
                     f"{', ...' if len(wheres) > 3 else ''})")
    dropped = set(unavailable)
    rows = [r for r in rows if r["score"] not in dropped]
    return PoolScores(rows, notes)
