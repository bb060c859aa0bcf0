"""Past one machine, on Dask: shard ``knn_loo`` by row blocks, and the cluster helpers of ``score_pool``.

    from distributed import Client
    import transferlab as tl
    from transferlab import distributed as tld

    with Client("tcp://scheduler:8786") as client:          # or scheduler="tcp://..." below
        res = tl.score_pool({"resnet50": "banks/resnet50.npy", "vit_b16": "banks/vit_b16.npy"},
                            ["knn_loo", "logme"], labels=labels, client=client)
        res.table()["knn_loo"]["data"]                       # {model: value}, what select.task_aware takes
        acc = tld.knn_loo_sharded("banks/huge.npy", labels, k=1, block_rows=200_000, client=client)

Pool scoring on a cluster is ``transferlab.score_pool(..., client=)`` (one Dask task per bank, every value
equal to the local one, a :class:`transferlab.PoolScores` back); this module's ``score_pool`` (the
``{score: {model: value}}`` form) and ``score_banks`` are deprecated aliases of it. ``connect`` resolves the
client both use.

Sharded k-NN (``knn_loo_sharded``). ``features`` is a path to a ``.npy`` file (opened with
``mmap_mode="r"`` *on the worker*: only paths travel, so the files must be visible to the workers, e.g.
on a shared file system) or an array (shipped to the cluster). The bank is cut into row blocks
B_0..B_{m-1}. Task (I, J), I <= J, computes for every row of B_I its k nearest rows of B_J other than
itself (self excluded by global index) and, from the same distance tiles, for every row of B_J its k
nearest rows of B_I, with ``_C.knn_cross``, whose distances are bitwise those of ``knn_loo`` (same packed
micro-kernels, csrc/knn/knn_cross.h): N^2 d / 2 multiply-adds in all, like the local kernel. The partial
lists of B_I are then min-merged pairwise in a tree by (distance, global index), tie counts carried as in
csrc/knn/knn_cross.h (``Partial`` / ``merge_partials``, from ``transferlab.scores.knn.partial``). The
merged neighbours, distances and tie counts equal the local kernel's bit for bit, hence so do the
per-sample credit and the score. A worker holds two blocks at a time; the client holds O(N k) results and
the labels. With ``k > 1`` and ``ties="expected"``, rows whose boundary tie group is larger than the slots
left need the exact label histogram of that group (``knn_loo``'s rescan); it is computed on the client
against the (memory-mapped) bank, which touches the bank once per such row.
"""
from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from transferlab import scoring as _scoring
from transferlab.scoring import PoolScores
from transferlab._dask import connect
from transferlab.core import devices
from transferlab import kernels
from transferlab.core.arrays import Matrix, as_labels, as_matrix
from transferlab.core.inputs import distances_in_bank_scale, scaled_by_power_of_two, scan_rows, unit_exponent
from transferlab.scores.knn.credit import credit as _knn_credit
from transferlab.scores.knn.partial import Partial, merge_partials, partial_from_kernel
from transferlab.scores.knn.rules import KnnLooResult, check_loo_problem, check_options
from transferlab.scores import registry

__all__ = ["knn_loo_sharded", "connect", "Partial", "merge_partials", "score_pool", "score_banks"]

PathLike = Union[str, "os.PathLike[str]"]
BankLike = Union[PathLike, Callable[[], Any], Any]


# ------------------------------------------------------------------------------ the client


# ------------------------------------------------------------------------------ bank sources


@dataclass(frozen=True)
class _NpyRows:
    """Rows [start, stop) of a ``.npy`` file, opened read-only on whichever worker runs the task."""

    path: str
    start: int = 0
    stop: Optional[int] = None

    def load(self) -> np.ndarray:
        return np.load(self.path, mmap_mode="r")[self.start : self.stop]


def _is_path(x: Any) -> bool:
    return isinstance(x, (str, os.PathLike))


def _materialise(bank: Any) -> Any:
    """A task argument as an array (runs on the worker)."""
    if isinstance(bank, _NpyRows):
        return bank.load()
    if callable(bank) and not hasattr(bank, "__array__") and not hasattr(bank, "__dlpack__"):
        return bank()
    return bank


def _source(bank: BankLike) -> Any:
    if _is_path(bank):
        path = os.fspath(bank)
        if not path.endswith(".npy"):
            raise ValueError(f"bank path {path!r}: transferlab.distributed reads .npy files (np.save)")
        return _NpyRows(path)
    return bank


# ------------------------------------------------------------------------------ pool scoring (deprecated aliases)


def score_pool(
    banks: Mapping[str, BankLike],
    labels: Any,
    scores: Union[str, Sequence[str]] = ("knn_loo",),
    *,
    client: Any = None,
    scheduler: Optional[str] = None,
    inputs: Optional[Mapping[str, Mapping[str, BankLike]]] = None,
    score_kwargs: Optional[Mapping[str, Mapping[str, Any]]] = None,
    kernel_threads: Optional[int] = None,
    on_error: str = "raise",
) -> Dict[str, Dict[str, float]]:
    """Deprecated: use ``transferlab.score_pool(banks, scores, labels=labels, client=client)``, which returns a
    :class:`transferlab.PoolScores` (``.table()[score]["data"]`` is this function's ``{model: value}``).

    Forwards to it (one Dask task per model, all its scores) and returns the earlier form.

    Parameters
    ----------
    banks : model name -> feature bank (``.npy`` path, loader callable, or array).
    labels : the target labels (shared by every model; small, sent once).
    scores : registered score names. A score with ``inputs="probs"`` reads the model's source
        probabilities from ``inputs[model]["probs"]`` (a bank-like as above) instead of its features.
    score_kwargs : score name -> keyword arguments (e.g. ``{"knn_loo": {"k": 3}}``).
    kernel_threads : OpenMP threads per task (None: the worker's default).
    on_error : "raise" (default: the first failure, naming model and score) or "nan" (record NaN
        and go on; the failures are in the returned dict under ``"_errors"``).
    client / scheduler : as :func:`connect` (neither: the current default client).

    Returns
    -------
    ``{score: {model: value}}``, plus ``"_errors": {"score/model": "ExceptionType: message"}`` when
    ``on_error="nan"`` recorded failures.
    """
    warnings.warn("transferlab.distributed.score_pool is deprecated: use transferlab.score_pool(banks, scores, "
                  "labels=labels, client=client), which returns a PoolScores (.table()[score]['data'] is "
                  "{model: value})", DeprecationWarning, stacklevel=2)
    if isinstance(scores, str):
        scores = [scores]
    scores = list(scores)
    if on_error not in ("raise", "nan"):
        raise ValueError(f"on_error must be 'raise' or 'nan', got {on_error!r}")
    if not banks:
        raise ValueError("empty pool: banks has no models")
    names = {str(model): model for model in banks}
    if len(names) != len(banks):
        raise ValueError("banks: two models have the same name once written as strings")
    infos = {s: registry.get(s) for s in scores}
    unknown = sorted(set(score_kwargs or {}) - set(scores))
    if unknown:
        raise ValueError(f"score_kwargs for scores not requested: {unknown}")
    probs: Dict[str, Any] = {}
    for s, info in infos.items():
        if info.inputs != "probs":
            continue
        for model in banks:
            try:
                probs[str(model)] = (inputs or {})[model]["probs"]
            except KeyError:
                raise ValueError(f"score {s!r} takes source probabilities: give inputs[{model!r}]['probs']") from None
    with connect(client, scheduler) as c:
        res = _scoring.score_pool({str(m): bank for m, bank in banks.items()}, scores, labels=labels,
                                  probs=probs or None, score_kwargs=score_kwargs, kernel_threads=kernel_threads,
                                  errors="raise" if on_error == "raise" else "nan", client=c)
    values = {(r["score"], r["model"]): r["value"] for r in res.rows}
    out: Dict[str, Dict[str, float]] = {s: {names[m]: values[(s, m)] for m in names if (s, m) in values}
                                        for s in scores}
    if res.failures:
        out["_errors"] = {f"{f['score']}/{names[f['model']]}": f["error"] for f in res.failures}  # type: ignore
    return out


def score_banks(banks: Union[PathLike, Sequence[PathLike], Mapping[str, Any]], scores: Optional[Sequence[str]] = None, *, client: Any = None, scheduler: Optional[str] = None,
                device: str = "auto", score_kwargs: Optional[Mapping[str, Mapping[str, Any]]] = None,
                errors: str = "raise", **local_kw: Any) -> "PoolScores":
    """Deprecated: use ``transferlab.score_pool(banks, scores, client=client)`` (or ``scheduler=``).

    ``transferlab.score_pool`` over FeatureBank directories on a Dask cluster, one task per bank; ``client`` /
    ``scheduler`` / ``local_kw`` as :func:`connect` (neither: the current default client). Returns a
    :class:`transferlab.PoolScores`.
    """
    warnings.warn("transferlab.distributed.score_banks is deprecated: use transferlab.score_pool(banks, scores, "
                  "client=client) (or scheduler=ADDRESS)", DeprecationWarning, stacklevel=2)
    with connect(client, scheduler, **local_kw) as c:
        return _scoring.score_pool(banks, scores, device=device, score_kwargs=score_kwargs, errors=errors, client=c)


# ------------------------------------------------------------------------------ sharded knn_loo


def _block_data(src: Any, is_bf16: bool) -> np.ndarray:
    """A block as the kernel takes it: bfloat16 blocks are already uint16 bit patterns (from the
    client's Matrix); anything else goes through as_matrix like the local path (int -> float32,
    Fortran order copied), block by block."""
    data = _materialise(src)
    return data if is_bf16 else as_matrix(data, "features").data


def _scaled_block(src: Any, is_bf16: bool, exponent: int) -> Tuple[np.ndarray, bool]:
    """(block data, is_bf16) as the kernel reads it: scaled by 2^-exponent for an extreme-magnitude bank
    (bfloat16 then becomes float32), as the in-memory path does."""
    data = _block_data(src, is_bf16)
    if not exponent:
        return data, is_bf16
    m = scaled_by_power_of_two(Matrix(data, "cpu", "bfloat16" if is_bf16 else str(data.dtype), "features"), exponent)
    return m.data, m.is_bf16


def _cross_task(q_src: Any, q_off: int, q_lab: np.ndarray, c_src: Any, c_off: int, c_lab: np.ndarray, k: int,
                is_bf16: bool, threads: int, both: bool, exponent: int = 0):
    """Partial lists of block q over block c, and (``both``) of block c over block q from the same
    distance tiles (one pass for the pair: distances are symmetric bitwise)."""
    (q, bf16), (c, _) = _scaled_block(q_src, is_bf16, exponent), _scaled_block(c_src, is_bf16, exponent)
    out = kernels.cpu_module().knn_cross(q, q_off, c, c_lab, k, bf16, threads, c_off, q_lab, both)
    if both:
        fwd, back = out
        return partial_from_kernel(fwd, q_lab, c_lab, c_off), partial_from_kernel(back, c_lab, q_lab, q_off)
    return partial_from_kernel(out, q_lab, c_lab, c_off)


def _pick(pair: Tuple[Partial, Partial], i: int) -> Partial:
    return pair[i]


def _scan_task(src: Any, offset: int, is_bf16: bool) -> Tuple[np.ndarray, float]:
    """(global indices of the block's rows holding NaN or inf, the largest |x| of its finite rows)."""
    data = _block_data(src, is_bf16)
    bad, top = scan_rows(Matrix(data, "cpu", "bfloat16" if is_bf16 else str(data.dtype), "features"))
    return np.flatnonzero(bad).astype(np.int64) + offset, top


def _merge_task(*parts: Partial) -> Partial:
    out = parts[0]
    for p in parts[1:]:
        out = merge_partials(out, p)
    return out


def _blocks(n: int, block_rows: Optional[int], n_blocks: Optional[int]) -> List[Tuple[int, int]]:
    if block_rows is not None and n_blocks is not None:
        raise ValueError("give block_rows or n_blocks, not both")
    if n_blocks is not None:
        if isinstance(n_blocks, bool) or not isinstance(n_blocks, (int, np.integer)) or n_blocks < 1:
            raise ValueError(f"n_blocks must be a positive int, got {n_blocks!r}")
        block_rows = math.ceil(n / min(int(n_blocks), n))
    if block_rows is None:
        block_rows = max(1, math.ceil(n / 8))
    if isinstance(block_rows, bool) or not isinstance(block_rows, (int, np.integer)) or block_rows < 1:
        raise ValueError(f"block_rows must be a positive int, got {block_rows!r}")
    return [(s, min(n, s + int(block_rows))) for s in range(0, n, int(block_rows))]


def knn_loo_sharded(
    features: BankLike,
    labels: Any,
    *,
    k: int = 1,
    ties: str = "expected",
    block_rows: Optional[int] = None,
    n_blocks: Optional[int] = None,
    client: Any = None,
    scheduler: Optional[str] = None,
    kernel_threads: int = 0,
    merge_fan_in: int = 4,
    return_details: bool = False,
) -> Union[float, "KnnLooResult"]:
    """``knn_loo`` (Euclidean) on a bank sharded by row blocks over a Dask cluster.

    Same validation, definition and result as :func:`transferlab.knn_loo` (bitwise: neighbours,
    distances, tie counts, per-sample credit, score), for ``metric="euclidean"`` and
    ``nan_policy="raise"``. ``features`` is a ``.npy`` path (workers open their blocks with
    ``mmap_mode="r"``: nothing but paths and results travel) or an array (blocks are scattered).
    ``block_rows`` / ``n_blocks`` set the sharding (default 8 blocks); m (m + 1) / 2 tasks for m
    blocks, ``block_rows^2 * d`` multiply-adds each. ``kernel_threads``: OpenMP threads per task
    (0 = the worker machine's default).
    """
    k = check_options(k, "euclidean", ties)
    if not isinstance(merge_fan_in, int) or merge_fan_in < 2:
        raise ValueError(f"merge_fan_in must be an int >= 2, got {merge_fan_in!r}")
    src = _source(features)
    host = src.load() if isinstance(src, _NpyRows) else _materialise(src)
    m = as_matrix(host, "features")
    if m.device != "cpu":
        m = devices.to_host(m)
    lab = as_labels(labels, m.n, "labels", min_classes=1)
    check_loo_problem(m.n, k, lab, stacklevel=3)
    n, y = m.n, lab.codes
    blocks = _blocks(n, block_rows, n_blocks)
    with connect(client, scheduler) as c:
        if isinstance(src, _NpyRows):
            handles = [_NpyRows(src.path, a, b) for a, b in blocks]
        else:
            handles = c.scatter([m.data[a:b] for a, b in blocks], hash=False)
        lab_blocks = [y[a:b] for a, b in blocks]
        # NaN / inf scan on the workers, one block each (check_finite's message, global rows).
        scans = c.gather([c.submit(_scan_task, h, a, m.is_bf16, pure=False) for h, (a, _) in zip(handles, blocks)])
        bad = np.concatenate([b for b, _ in scans])
        if bad.size:
            raise ValueError(
                f"features contains NaN or inf in {bad.size} row(s) (first at row {int(bad.min())}); "
                "clean them (knn_loo_sharded has no nan_policy='omit': drop those rows from the bank)"
            )
        # Extreme magnitudes: the workers read every block scaled by the bank's power of two.
        exponent = unit_exponent(max(top for _, top in scans))
        # Block pairs I <= J, each computed once: the diagonal one-sided, the others both ways.
        lists: List[List[Any]] = [[] for _ in blocks]
        for I, (a, _) in enumerate(blocks):
            for J in range(I, len(blocks)):
                fut = c.submit(_cross_task, handles[I], a, lab_blocks[I], handles[J], blocks[J][0], lab_blocks[J],
                               k, m.is_bf16, kernel_threads, J != I, exponent, pure=False)
                if J == I:
                    lists[I].append(fut)
                else:
                    lists[I].append(c.submit(_pick, fut, 0, pure=False))
                    lists[J].append(c.submit(_pick, fut, 1, pure=False))
        merged = []
        for level in lists:
            while len(level) > 1:  # tree min-merge, fixed order (the merge is exact in any order)
                level = [c.submit(_merge_task, *level[s : s + merge_fan_in], pure=False)
                         for s in range(0, len(level), merge_fan_in)]
            merged.append(level[0])
        parts: List[Partial] = c.gather(merged)
    idx = np.concatenate([p.idx for p in parts])
    dist = np.concatenate([p.dist for p in parts])
    tie_count = np.concatenate([p.tie_count for p in parts])
    tie_same = np.concatenate([p.tie_same for p in parts])
    correct = _knn_credit(scaled_by_power_of_two(m, exponent), y, k, ties, idx, dist, tie_count, tie_same)
    dist = distances_in_bank_scale(dist, exponent)
    score = float(correct.mean())
    if not return_details:
        return score
    return KnnLooResult(score, idx, dist, correct, tie_count, lab.classes)
