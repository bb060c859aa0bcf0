"""Feature banks: one directory per (model, dataset) holding what every score needs, memory-mapped.

    bank = FeatureBank.open("banks/mnist-10/ccexam-mnist")   # read-only memory maps, verified
    tl.knn_loo(bank.features, bank.labels)                  # every score takes them directly

Directory layout (schema ``transferlab.featurebank`` version 1)::

    features.npy     (N, D)  float32 | float16 | float64   embeddings (penultimate layer)
    logits.npy       (N, Z)  same dtype                    source-class logits (absent when the model has none)
    labels.npy       (N,)    int64                         target labels
    sample_ids.npy   (N,)    int64                         index of each row in the source dataset
    meta.json                                              see below

``meta.json`` holds the schema and version, ``model_id``, ``dataset_id``, ``weights_hash`` (SHA-256 of the
state dict), ``adapter``, ``preprocessing``, ``dtype``, ``n``/``d``/``z``, ``library_versions``,
``rows_written`` (the watermark), ``complete`` and, once complete, ``files`` (SHA-256 and size of each .npy).
``extract_seconds`` (optional) is the wall-clock of the forward passes that wrote the rows (summed over resumed
runs): the extraction half of a proxy's cost as Renggli et al. count it (:attr:`FeatureBank.extract_seconds`).
Banks written before it existed, or resumed from such a bank, have no such field: their cost is unknown (NaN),
never a made-up zero.

Crash safety (BAD_INPUTS rows 19-20):

* the .npy files are created at their final size (``posix_fallocate`` where the file system supports it, so a
  full disk fails at creation rather than on a later page fault) and rows are written with ``pwrite``, so a full
  disk surfaces as ``OSError`` (never as SIGBUS from a memory map);
* the watermark in ``meta.json`` advances only after the rows below it are written and ``fsync``-ed, and
  ``meta.json`` is always replaced atomically (write a temporary file, fsync, ``os.replace``). A killed writer
  therefore leaves a bank whose watermark never overstates what is on disk; reopening the writer resumes there;
* finalising computes the file hashes and sets ``complete`` in one atomic replace. Readers refuse incomplete,
  corrupted (size, header or hash mismatch) and foreign directories with a ``ValueError`` naming the file.
"""
from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import platform
import sys
from typing import Any, Dict, Mapping, Optional, Union

import numpy as np

from transferlab.core.types import ArrayLike

__all__ = ["FeatureBank", "BankWriter", "SCHEMA", "SCHEMA_VERSION", "STORAGE_DTYPES"]

SCHEMA = "transferlab.featurebank"
SCHEMA_VERSION = 1
STORAGE_DTYPES = ("float32", "float16", "float64")
META = "meta.json"
_ARRAYS = ("features", "logits", "labels", "sample_ids")
_HASH_BLOCK = 16 << 20

PathLike = Union[str, "os.PathLike[str]"]


def _pwrite(fd: int, data: bytes, offset: int) -> int:
    """``os.pwrite`` through one indirection, so tests can simulate a full disk (ENOSPC)."""
    return os.pwrite(fd, data, offset)


def library_versions() -> Dict[str, str]:
    """Versions that can change the bytes of a bank (recorded in meta.json)."""
    from transferlab._version import __version__

    out = {"transferlab": __version__, "numpy": np.__version__, "python": platform.python_version()}
    torch = sys.modules.get("torch")
    if torch is not None:
        out["torch"] = torch.__version__
    return out


def file_sha256(path: PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            block = f.read(_HASH_BLOCK)
            if not block:
                break
            h.update(block)
    return h.hexdigest()


def _write_json_atomic(path: str, doc: Mapping[str, Any]) -> None:
    """Replace ``path`` by ``doc`` atomically: readers see the old or the new file, never a torn one."""
    tmp = f"{path}.tmp.{os.getpid()}"
    data = (json.dumps(doc, indent=1, sort_keys=True) + "\n").encode()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[_pwrite(fd, bytes(view), len(data) - len(view)):]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    try:  # persist the rename itself (best effort: not every file system allows fsync on a directory)
        dfd = os.open(os.path.dirname(path) or ".", os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def _npy_header(shape, dtype: np.dtype) -> bytes:
    """The .npy v1 header numpy itself would write for a C-order array (so np.load reads our files)."""
    import io

    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False,
              "shape": tuple(int(s) for s in shape)})
    return buf.getvalue()


def _pid_alive(pid: int) -> bool:
    """True when process ``pid`` runs on this machine (or may: another user's process counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True
    return True


def _remove_stale_meta_tmp(path: str) -> None:
    """Delete the ``meta.json.tmp.<pid>`` files that writers killed mid-replace left in ``path`` (their
    process is gone); a live writer's file is left alone. Best effort: a read-only directory keeps them,
    and reading the bank never depends on them."""
    try:
        names = os.listdir(path)
    except OSError:
        return
    for name in names:
        head, _, pid = name.rpartition(".")
        if head != f"{META}.tmp" or not pid.isdigit() or int(pid) == os.getpid() or _pid_alive(int(pid)):
            continue
        try:
            os.remove(os.path.join(path, name))
        except OSError:
            pass


def _read_meta(path: str) -> Dict[str, Any]:
    """meta.json of ``path``, checked to be ours and of a version we read; ValueError otherwise."""
    mp = os.path.join(path, META)
    if not os.path.isdir(path):
        raise ValueError(f"not a feature bank: {path} is not a directory")
    if not os.path.exists(mp):
        present = sorted(os.listdir(path))[:8]
        raise ValueError(f"not a transferlab feature bank: {mp} is missing (directory holds {present})")
    try:
        with open(mp, encoding="utf-8") as f:
            meta = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise ValueError(f"corrupted feature bank: {mp} is not valid JSON ({type(e).__name__}: {e})") from None
    if not isinstance(meta, dict) or meta.get("schema") != SCHEMA:
        found = meta.get("schema") if isinstance(meta, dict) else type(meta).__name__
        raise ValueError(f"foreign directory: {mp} is not a transferlab feature bank "
                         f"(schema {found!r}, expected {SCHEMA!r})")
    version = meta.get("version")
    if version != SCHEMA_VERSION:
        raise ValueError(f"{mp}: feature bank schema version {version!r} is not supported "
                         f"(this transferlab reads version {SCHEMA_VERSION}); re-extract the bank")
    for key in ("n", "d", "dtype", "rows_written", "complete", "has_logits"):
        if key not in meta:
            raise ValueError(f"corrupted feature bank: {mp} lacks the field {key!r}")
    problem = _meta_problem(meta)
    if problem:
        raise ValueError(f"corrupted feature bank: {mp}: {problem}")
    return meta


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _meta_problem(meta: Mapping[str, Any]) -> Optional[str]:
    """What is wrong with the fields of a meta.json (types, ranges, consistency), or None. Every field the
    reader uses is checked before it is used: a tampered file fails here with its name, never later with
    an AttributeError or a silently wrong read."""
    for key in ("n", "d"):
        if not _is_int(meta[key]) or meta[key] < 1:
            return f"{key} must be an integer >= 1, got {meta[key]!r}"
    for key in ("complete", "has_logits"):
        if not isinstance(meta[key], bool):
            return f"{key} must be true or false, got {meta[key]!r}"
    if meta["dtype"] not in STORAGE_DTYPES:
        return f"dtype must be one of {STORAGE_DTYPES}, got {meta['dtype']!r}"
    if not _is_int(meta["rows_written"]) or not 0 <= meta["rows_written"] <= meta["n"]:
        return f"rows_written must be an integer in [0, n={meta['n']}], got {meta['rows_written']!r}"
    z = meta.get("z")
    if meta["has_logits"] and (not _is_int(z) or z < 1):
        return f"has_logits is true but z (the number of logits) is {z!r}"
    if not meta["has_logits"] and z is not None:
        return f"has_logits is false but z is {z!r}"
    secs = meta.get("extract_seconds")
    if secs is not None and (isinstance(secs, bool) or not isinstance(secs, (int, float))
                             or not math.isfinite(secs) or secs < 0):
        return f"extract_seconds must be a finite number >= 0 (or absent), got {secs!r}"
    files = meta.get("files")
    if files is not None:
        if not isinstance(files, dict):
            return f"files must be a mapping of file name to its bytes and sha256, got {type(files).__name__}"
        for name, rec in files.items():
            if not isinstance(rec, dict) or not _is_int(rec.get("bytes")) or not isinstance(rec.get("sha256"), str):
                return f"files[{name!r}] must hold an integer 'bytes' and a string 'sha256', got {rec!r}"
    return None


def _specs(meta: Mapping[str, Any]) -> Dict[str, tuple]:
    """name -> (shape, dtype) of every array file of a bank described by ``meta``."""
    n, d, dt = int(meta["n"]), int(meta["d"]), np.dtype(meta["dtype"])
    out = {"features": ((n, d), dt), "labels": ((n,), np.dtype("<i8")), "sample_ids": ((n,), np.dtype("<i8"))}
    if meta["has_logits"]:
        out["logits"] = ((n, int(meta["z"])), dt)
    return out


def _rows(arr, name: str, ndim: int) -> int:
    shape = getattr(arr, "shape", None)
    if shape is None or len(shape) != ndim:
        raise ValueError(f"FeatureBank: {name} must be {ndim}-D, got shape {shape}")
    return int(shape[0])


class FeatureBank:
    """Embeddings, source logits, labels and sample ids of one (model, dataset) pair.

    ``features`` (N, D), ``logits`` (N, Z) or None, ``labels`` (N,) int64, ``sample_ids`` (N,) int64 and
    ``meta`` (a dict; ``model_id`` and ``dataset_id`` name the pair). ``path`` is the bank directory, or None
    for an in-memory bank (``extract(..., out=None)``). Banks opened from disk hold read-only memory maps.
    """

    def __init__(self, features: ArrayLike, labels: ArrayLike, *, logits: Optional[ArrayLike] = None, sample_ids: Optional[ArrayLike] = None, meta: Optional[Dict[str, Any]] = None, path: Optional[PathLike] = None):
        n = _rows(features, "features", ndim=2)
        for name, arr, ndim in (("labels", labels, 1), ("logits", logits, 2), ("sample_ids", sample_ids, 1)):
            if arr is not None and _rows(arr, name, ndim) != n:
                raise ValueError(f"{name} has {_rows(arr, name, ndim)} rows but features have {n}")
        self.features = features
        self.labels = labels
        self.logits = logits
        self.sample_ids = sample_ids if sample_ids is not None else np.arange(len(labels), dtype=np.int64)
        self.meta: Dict[str, Any] = dict(meta or {})
        self.path: Optional[str] = path

    @property
    def n(self) -> int:
        return int(self.features.shape[0])

    @property
    def d(self) -> int:
        return int(self.features.shape[1])

    @property
    def model_id(self) -> str:
        return str(self.meta.get("model_id"))

    @property
    def extract_seconds(self) -> float:
        """Seconds the forward passes that wrote this bank took (``meta["extract_seconds"]``); NaN when not
        recorded (a bank from an older version, or built from arrays)."""
        v = self.meta.get("extract_seconds")
        return math.nan if v is None else float(v)

    @property
    def dataset_id(self) -> str:
        return str(self.meta.get("dataset_id"))

    def __len__(self) -> int:
        return self.n

    def __repr__(self) -> str:
        z = "none" if self.logits is None else self.logits.shape[1]
        where = self.path or "in memory"
        return (f"FeatureBank(model={self.model_id!r}, dataset={self.dataset_id!r}, n={self.n}, d={self.d}, "
                f"logits={z}, {where})")

    @classmethod
    def open(cls, path: PathLike, *, verify: bool = True) -> "FeatureBank":
        """Open a complete bank as read-only memory maps.

        Raises ValueError when ``path`` is not a bank (no or foreign ``meta.json``), has another schema
        version, is incomplete (an interrupted extraction: rerun it with the same ``out`` to resume) or is
        corrupted (a missing file, a size or .npy header that disagrees with meta.json, or, with
        ``verify=True``, a SHA-256 mismatch). ``verify=False`` skips only the hashing (a full read of the
        files), for banks too large to hash on every open.
        """
        p = os.fspath(path)
        _remove_stale_meta_tmp(p)
        meta = _read_meta(p)
        if not meta["complete"]:
            raise ValueError(f"incomplete feature bank: {p} has {meta['rows_written']} of {meta['n']} rows "
                             f"written (an interrupted extraction); rerun extract with out={p!r} to resume")
        files = meta.get("files")
        if not isinstance(files, dict):
            raise ValueError(f"corrupted feature bank: {os.path.join(p, META)} is complete but lists no file hashes")
        arrays: Dict[str, np.ndarray] = {}
        for name, (shape, dtype) in _specs(meta).items():
            fp = os.path.join(p, f"{name}.npy")
            rec = files.get(f"{name}.npy")
            if rec is None:
                raise ValueError(f"corrupted feature bank: meta.json has no hash for {fp}")
            if not os.path.exists(fp):
                raise ValueError(f"corrupted feature bank: {fp} is missing")
            size = os.path.getsize(fp)
            if size != rec.get("bytes"):
                raise ValueError(f"corrupted feature bank: {fp} has {size} bytes, meta.json says {rec.get('bytes')}")
            if verify and file_sha256(fp) != rec.get("sha256"):
                raise ValueError(f"corrupted feature bank: {fp} does not match its SHA-256 in meta.json "
                                 f"(the file changed after extraction); re-extract the bank")
            try:
                arr = np.load(fp, mmap_mode="r", allow_pickle=False)
            except ValueError as e:
                raise ValueError(f"corrupted feature bank: {fp} is not a readable .npy file ({e})") from None
            if arr.shape != shape or arr.dtype != dtype:
                raise ValueError(f"corrupted feature bank: {fp} holds {arr.dtype}{arr.shape}, meta.json says "
                                 f"{dtype}{shape}")
            if not arr.flags.c_contiguous:  # a header flipped to fortran_order would read transposed
                raise ValueError(f"corrupted feature bank: {fp} has a Fortran-order header; banks are written "
                                 "row-major (C order)")
            arrays[name] = arr
        return cls(arrays["features"], arrays["labels"], logits=arrays.get("logits"),
                   sample_ids=arrays["sample_ids"], meta=meta, path=p)

    @classmethod
    def from_arrays(cls, features: ArrayLike, labels: ArrayLike, probs: Optional[ArrayLike] = None, *,
                    path: Optional[PathLike] = None, logits: Optional[ArrayLike] = None,
                    model_id: Optional[str] = None, dataset_id: str = "data",
                    dtype: Optional[str] = None) -> "FeatureBank":
        """A bank of arrays you already have: ``features`` (N, D), ``labels`` (N,) and optionally the source
        model's ``probs`` (N, Z) (rows summing to 1) or ``logits`` (N, Z), for LEEP and NCE.

        Validated like a score call (NaN/inf, shapes, lengths, dtypes, at least 2 classes, probabilities that
        are probabilities), never mutated. Labels are remapped to 0..C-1; the classes go to
        ``meta["classes"]``. With ``path`` a normal bank directory is written (refused where one exists) and
        returned opened, so ``tl.score_pool(path)`` and ``transferlab score`` read it; without, the bank is in
        memory. ``dtype``: storage dtype (default: the features' when float16/32/64, else float32).
        ``model_id`` names the model in score tables: by default the directory's name (``path="banks/clean"``
        gives ``"clean"``, so two banks written side by side rank as two models), ``"model"`` without a path.
        """
        from transferlab._bank_arrays import validate_arrays

        if model_id is None:
            name = os.path.basename(os.path.normpath(os.fspath(path))) if path is not None else ""
            model_id = name or "model"

        rows = validate_arrays(features, labels, probs, logits=logits, model_id=model_id, dataset_id=dataset_id,
                               dtype=dtype, storage_dtypes=STORAGE_DTYPES)
        if path is None:
            return cls(rows.features(0, rows.n), rows.codes, logits=rows.logits(0, rows.n),
                       meta=dict(rows.meta, n=rows.n, d=rows.d, z=rows.z, dtype=rows.store, complete=True))
        p = os.fspath(path)
        with BankWriter.create_or_resume(p, n=rows.n, d=rows.d, z=rows.z, dtype=rows.store, identity=rows.meta) as w:
            if w.rows_written:
                raise ValueError(f"path={p!r} holds an incomplete bank of these arrays (an interrupted write); "
                                 "delete it or choose a new directory")
            step = rows.block_rows()
            for s in range(0, rows.n, step):  # by blocks: a memory-mapped input is never read whole
                e = min(rows.n, s + step)
                w.write(s, rows.features(s, e), rows.codes[s:e], logits=rows.logits(s, e))
            return w.finalize()

    @staticmethod
    def is_bank(path: PathLike) -> bool:
        """True when ``path`` holds a meta.json of the transferlab bank schema (complete or not, valid or not:
        a corrupted bank is still a bank, and opening it says what is wrong)."""
        mp = os.path.join(os.fspath(path), META)
        try:
            with open(mp, encoding="utf-8") as f:
                meta = json.load(f)
        except OSError:
            return False
        except (UnicodeDecodeError, ValueError, RecursionError):
            return True  # an unreadable meta.json: a corrupted bank, which opening reports
        return isinstance(meta, dict) and meta.get("schema") == SCHEMA

    @staticmethod
    def status(path: PathLike) -> Dict[str, Any]:
        """meta.json of a bank without opening its arrays (for listings; raises ValueError like ``open``)."""
        return _read_meta(os.fspath(path))


class BankWriter:
    """Writes a bank directory row block by row block; resumable from its watermark.

    ``BankWriter.create_or_resume(path, n=..., d=..., z=..., dtype=..., identity=...)`` creates the files, or,
    when ``path`` already holds an incomplete bank with the same identity (model id, weights hash, dataset id,
    adapter, shapes, dtype), reopens it: ``rows_written`` then says where to continue. A complete bank or one
    with another identity raises ValueError rather than being overwritten.
    Rows must be written in order: ``write(start, ...)`` needs ``start == rows_written``.
    """

    #: meta fields that must agree for a directory to be resumed instead of refused.
    IDENTITY = ("model_id", "weights_hash", "dataset_id", "adapter", "preprocessing", "autocast", "n", "d", "z",
                "has_logits", "dtype")

    def __init__(self, path: str, meta: Dict[str, Any]):
        self.path = path
        self.meta = meta
        self._specs = _specs(meta)
        self._offsets: Dict[str, int] = {}
        self._fds: Dict[str, int] = {}
        for name, (shape, dtype) in self._specs.items():
            fp = os.path.join(path, f"{name}.npy")
            self._offsets[name] = len(_npy_header(shape, dtype))
            self._fds[name] = os.open(fp, os.O_RDWR)

    @property
    def rows_written(self) -> int:
        return int(self.meta["rows_written"])

    @property
    def n(self) -> int:
        return int(self.meta["n"])

    @classmethod
    def create_or_resume(cls, path: PathLike, *, n: int, d: int, z: Optional[int], dtype: str = "float32",
                         identity: Optional[Mapping[str, Any]] = None) -> "BankWriter":
        p = os.fspath(path)
        if dtype not in STORAGE_DTYPES:
            raise ValueError(f"dtype must be one of {STORAGE_DTYPES}, got {dtype!r}")
        if n < 1 or d < 1 or (z is not None and z < 1):
            raise ValueError(f"a bank needs n >= 1, d >= 1 and z >= 1 (or no logits), got n={n}, d={d}, z={z}")
        meta: Dict[str, Any] = {
            "schema": SCHEMA, "version": SCHEMA_VERSION, "n": int(n), "d": int(d),
            "z": None if z is None else int(z), "has_logits": z is not None, "dtype": dtype,
            "rows_written": 0, "complete": False, "library_versions": library_versions(),
        }
        for k, v in (identity or {}).items():
            meta.setdefault(k, v)
        if os.path.isdir(p):
            _remove_stale_meta_tmp(p)
        if os.path.isdir(p) and os.path.exists(os.path.join(p, META)):
            old = _read_meta(p)
            diff = [k for k in cls.IDENTITY if old.get(k) != meta.get(k)]
            if diff:
                raise ValueError(f"{p} holds another feature bank ({', '.join(f'{k}: {old.get(k)!r} != {meta.get(k)!r}' for k in diff)}); "
                                 f"choose another directory or delete it")
            if old["complete"]:
                raise ValueError(f"{p} holds a complete feature bank; open it with FeatureBank.open")
            cls._check_files(p, old)
            return cls(p, old)
        if os.path.isdir(p) and os.listdir(p):
            raise ValueError(f"{p} is not empty and holds no feature bank; choose an empty or new directory")
        os.makedirs(p, exist_ok=True)
        for name, (shape, dt) in _specs(meta).items():
            cls._preallocate(os.path.join(p, f"{name}.npy"), shape, dt)
        _write_json_atomic(os.path.join(p, META), meta)
        return cls(p, meta)

    @staticmethod
    def _preallocate(fp: str, shape, dtype: np.dtype) -> None:
        header = _npy_header(shape, dtype)
        total = len(header) + int(np.prod(shape)) * np.dtype(dtype).itemsize
        fd = os.open(fp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            _pwrite(fd, header, 0)
            try:
                # Reserve the blocks now: a full disk fails here, not as SIGBUS on a later memory-map write.
                os.posix_fallocate(fd, 0, total)
            except (AttributeError, OSError) as e:
                if isinstance(e, OSError) and e.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
                    raise
                os.ftruncate(fd, total)
            os.fsync(fd)
        finally:
            os.close(fd)

    @staticmethod
    def _check_files(p: str, meta: Mapping[str, Any]) -> None:
        for name, (shape, dtype) in _specs(meta).items():
            fp = os.path.join(p, f"{name}.npy")
            want = len(_npy_header(shape, dtype)) + int(np.prod(shape)) * np.dtype(dtype).itemsize
            if not os.path.exists(fp) or os.path.getsize(fp) != want:
                raise ValueError(f"corrupted feature bank: {fp} is missing or has the wrong size; delete {p} "
                                 f"and extract again")

    def write(self, start: int, features: ArrayLike, labels: ArrayLike, *, logits: Optional[ArrayLike] = None, sample_ids: Optional[ArrayLike] = None,
              seconds: Optional[float] = None) -> None:
        """Write rows ``[start, start + len(features))`` and advance the watermark past them.

        ``seconds``: what computing these rows took (the forward pass); added to ``meta["extract_seconds"]``
        with the watermark. A bank resumed from one that did not record it keeps no figure (a partial sum
        would understate the cost).

        On ``OSError`` (e.g. ENOSPC) the watermark stays where it was and the bank stays incomplete: what was
        written before is kept and a later run resumes there.
        """
        if start != self.rows_written:
            raise ValueError(f"rows must be written in order: next row is {self.rows_written}, got start={start}")
        feats = np.asarray(features)
        b = int(feats.shape[0])
        if start + b > self.n:
            raise ValueError(f"writing rows [{start}, {start + b}) overflows the bank of n={self.n} rows")
        blocks = {"features": feats, "labels": np.asarray(labels),
                  "sample_ids": np.arange(start, start + b) if sample_ids is None else np.asarray(sample_ids)}
        if self.meta["has_logits"]:
            if logits is None:
                raise ValueError("this bank stores logits; pass logits=")
            blocks["logits"] = np.asarray(logits)
        elif logits is not None:
            raise ValueError("this bank was created without logits")
        for name, arr in blocks.items():
            shape, dtype = self._specs[name]
            if arr.shape != (b,) + tuple(shape[1:]):
                raise ValueError(f"{name} block has shape {arr.shape}, expected {(b,) + tuple(shape[1:])}")
            data = np.ascontiguousarray(arr, dtype=dtype).tobytes()
            row_bytes = int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize
            offset = self._offsets[name] + start * row_bytes
            view = memoryview(data)
            while view:
                written = _pwrite(self._fds[name], bytes(view), offset)
                view, offset = view[written:], offset + written
        for fd in self._fds.values():
            os.fsync(fd)  # the data is durable before the watermark says so
        meta = dict(self.meta, rows_written=start + b)
        if seconds is not None and (start == 0 or "extract_seconds" in self.meta):
            if isinstance(seconds, bool) or not math.isfinite(float(seconds)) or seconds < 0:
                raise ValueError(f"seconds must be a finite number >= 0, got {seconds!r}")
            meta["extract_seconds"] = float(self.meta.get("extract_seconds", 0.0)) + float(seconds)
        _write_json_atomic(os.path.join(self.path, META), meta)
        self.meta = meta

    def finalize(self) -> FeatureBank:
        """Hash the files and mark the bank complete (one atomic replace of meta.json); returns it opened."""
        if self.rows_written != self.n:
            raise ValueError(f"cannot finalise {self.path}: {self.rows_written} of {self.n} rows written")
        self.close()
        files = {}
        for name in self._specs:
            fp = os.path.join(self.path, f"{name}.npy")
            files[f"{name}.npy"] = {"sha256": file_sha256(fp), "bytes": os.path.getsize(fp)}
        meta = dict(self.meta, complete=True, files=files)
        _write_json_atomic(os.path.join(self.path, META), meta)
        self.meta = meta
        return FeatureBank.open(self.path, verify=False)

    def close(self) -> None:
        for fd in self._fds.values():
            try:
                os.close(fd)
            except OSError:
                pass
        self._fds = {}

    def __enter__(self) -> "BankWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
