"""The one input path of every score: ``prepare()`` and the NaN/inf row scan it runs.

One sequence for all scores (BAD_INPUTS.md): features through ``as_matrix``, labels through
``as_labels`` (length checked against the features), NaN/inf rows raised or omitted, then the
minimum sample count, then the two-class minimum; the order makes N = 1 say what the minimum is.
"""
from __future__ import annotations

import logging
from typing import Callable, NamedTuple, Optional, Tuple, Union

import numpy as np

from transferlab.core import blocks, devices
from transferlab.core.arrays import Labels, Matrix, Targets, as_labels, as_matrix, as_targets, check_labels_omit, check_task

logger = logging.getLogger("transferlab")

# Rows per block when scanning a (possibly memory-mapped) bank on the host; bounds the memory of
# validation passes independently of N.
_SCAN_BYTES = 64 << 20


def scan_rows(m: Matrix) -> Tuple[np.ndarray, float]:
    """(rows holding NaN or +-inf, the largest |x| of the finite rows as a float, 0.0 without any) in one
    read of the bank: the block reader of ``core.blocks`` on the host (a memory-mapped bank's pages are
    released block by block), reductions on the GPU.

    Host blocks: a finite block (the common case) costs two whole-block reductions, max and min, which
    propagate NaN and hold any inf (per-row reductions of short rows were several times slower: a third of
    ``knn_loo(queries=1000)``'s time at N=100k, D=64); only a block that is not finite is scanned row by row."""
    if m.device == "cuda":
        import torch

        t = m.data
        bad = (~torch.isfinite(t).all(dim=1)).cpu().numpy()
        row_top = t.abs().amax(dim=1).to(torch.float64).cpu().numpy()
        return bad, float(row_top[~bad].max(initial=0.0))
    bad = np.zeros(m.n, dtype=bool)
    top = 0.0
    for s, e, blk in blocks.blocks(m, default_bytes=_SCAN_BYTES, bytes_per_value=m.data.dtype.itemsize):
        if blk.data.size == 0:
            continue
        if m.is_bf16:
            # bfloat16 bit patterns: exponent all ones means inf or NaN; |x| is the bits without the sign,
            # which order like the values for finite numbers.
            rows_bad = ((blk.data & 0x7F80) == 0x7F80).any(axis=1)
            bits = (blk.data & 0x7FFF)[~rows_bad]
            bad[s:e] = rows_bad
            if bits.size:
                top = max(top, float((np.uint32(bits.max()) << np.uint32(16)).view(np.float32)))
            continue
        hi, lo = blk.data.max(), blk.data.min()
        if np.isfinite(hi) and np.isfinite(lo):
            top = max(top, float(abs(hi)), float(abs(lo)))
            continue
        rows_bad = ~np.isfinite(blk.data).all(axis=1)
        bad[s:e] = rows_bad
        fin = blk.data[~rows_bad]
        if fin.size:
            top = max(top, float(np.abs(fin).max()))
    return bad, top


def nonfinite_rows(m: Matrix) -> np.ndarray:
    """Boolean mask of rows holding NaN or +-inf (:func:`scan_rows`)."""
    return scan_rows(m)[0]


def check_finite(m: Matrix, nan_policy: str = "raise", bad: Optional[np.ndarray] = None) -> Optional[np.ndarray]:
    """Raise on NaN/inf rows (policy "raise"), or return the indices of the finite rows ("omit").

    Returns None when every row is finite. ``bad``: the mask of :func:`scan_rows`, when already read.
    """
    if nan_policy not in ("raise", "omit"):
        raise ValueError(f"nan_policy must be 'raise' or 'omit', got {nan_policy!r}")
    if bad is None:
        bad = nonfinite_rows(m)
    n_bad = int(bad.sum())
    if n_bad == 0:
        return None
    if nan_policy == "raise":
        first = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{m.name} contains NaN or inf in {n_bad} row(s) (first at row {first}); "
            "clean them or pass nan_policy='omit' to drop those rows"
        )
    logger.warning("nan_policy='omit': dropped %d of %d rows of %s holding NaN or inf", n_bad, m.n, m.name)
    return np.flatnonzero(~bad)


# Extreme but finite magnitudes: the kNN kernels square coordinate differences in float32 tiles (beyond
# about 2^60 a squared distance overflows, below 2^-60 differences underflow: knn_loo(X * 1e19) gave 0.55
# where X gives 1.0), the Gram scores square them in float64 (gbc(X * 1e200) was NaN, reg_hscore(X * 1e150)
# 0.0). Multiplying by a power of two is exact, so a bank whose largest |x| lies outside [2^-40, 2^40] is
# rescaled into [0.5, 1) first; scale-invariant scores (kNN's neighbours, H-scores, GBC, PARC, TransRate,
# SFDA, the standardised probe) then give exactly what a moderate copy of the bank gives.
_UNIT_RANGE = (2.0 ** -40, 2.0 ** 40)


def max_abs(m: Matrix) -> float:
    """The largest |x| of a finite bank (host blocks, or one reduction on the GPU)."""
    if m.device == "cuda":
        return float(m.data.abs().max().item()) if m.n and m.d else 0.0
    top = 0.0
    # The shared block reader: a memory-mapped bank's pages are released block by block (bounded RSS).
    for _, _, blk in blocks.blocks(m, default_bytes=_SCAN_BYTES, bytes_per_value=m.data.dtype.itemsize):
        block = blk.to_float64_host() if m.is_bf16 else blk.data
        if block.size:
            top = max(top, float(np.max(np.abs(block))))
    return top


def unit_exponent(top: float) -> int:
    """The e of :func:`rescaled_to_unit` for a bank whose largest |x| is ``top``: 0 when ``top`` lies in
    [2^-40, 2^40] (or is 0), else the power of two that brings it into [0.5, 1)."""
    if top == 0.0 or _UNIT_RANGE[0] <= top <= _UNIT_RANGE[1]:
        return 0
    return int(np.frexp(top)[1])  # top = f * 2^exponent, f in [0.5, 1)


def scaled_by_power_of_two(m: Matrix, exponent: int) -> Matrix:
    """``m`` * 2^-exponent (exact: a copy, bfloat16 becomes float32, which holds it exactly); ``m`` itself
    when ``exponent`` is 0. The out-of-core kNN paths apply it block by block with the bank's exponent."""
    if not exponent:
        return m
    if m.device == "cuda":
        import torch

        t = m.data.to(torch.float32) if m.is_bf16 else m.data
        data = torch.ldexp(t, torch.tensor(-exponent, device=t.device, dtype=torch.int32)).contiguous()
    else:
        x = m.to_float64_host().astype(np.float32) if m.is_bf16 else np.asarray(m.data)
        data = np.ldexp(x, -exponent).astype(x.dtype, copy=False)
    dtype = "float32" if m.is_bf16 else m.dtype
    return Matrix(data, m.device, dtype, m.name, m.budget)


def rescaled_to_unit(m: Matrix, top: Optional[float] = None) -> Tuple[Matrix, int]:
    """(``m`` * 2^-e, e): a power of two that brings its largest |x| into [0.5, 1) when it lies outside
    [2^-40, 2^40] (a copy: bfloat16 becomes float32, which holds it exactly); else (``m`` itself, 0).
    Squared distances in the rescaled frame are the bank's times 4^-e. ``top``: the largest |x|, when a
    scan already read it (:func:`scan_rows`)."""
    exponent = unit_exponent(max_abs(m) if top is None else top)
    return scaled_by_power_of_two(m, exponent), exponent


def distances_in_bank_scale(dist: np.ndarray, exponent: int) -> np.ndarray:
    """Squared distances computed in a frame scaled by 2^-exponent, back in the bank's own scale (float32;
    inf where float32 cannot hold them)."""
    if not exponent:
        return dist
    with np.errstate(over="ignore"):
        return np.ldexp(np.asarray(dist, dtype=np.float64), 2 * exponent).astype(np.float32)


def _check_fixed_state_fits(state_bytes: int, m: Matrix, what: str) -> None:
    avail = blocks.available_memory()
    if avail is not None and state_bytes > avail:
        raise ValueError(
            f"{what} needs about {blocks.format_bytes(state_bytes)} for its D x D float64 state with n_features="
            f"{m.d} (whatever n_samples={m.n} is), more than the {blocks.format_bytes(avail)} this machine has "
            "available; reduce the features first (e.g. pool or PCA them) or score on a larger machine")


def check_bool(value, name: str) -> bool:
    """A boolean option as a ``bool``: ``True``/``False`` (numpy bools too), else TypeError. Why: a truthy
    string such as ``"false"`` would silently mean True."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool (True or False), got {type(value).__name__} {value!r}")
    return bool(value)


class Prepared(NamedTuple):
    """What :func:`prepare` hands a score: its validated matrix (on ``device`` unless ``place=False``),
    labels, resolved device, and the rows kept by ``nan_policy="omit"`` (None: every row)."""

    matrix: Matrix
    labels: Union[Labels, Targets]  # Targets (float64 (N, T)) when task is "regression" / "multilabel"
    device: str
    kept_rows: Optional[np.ndarray]


def prepare(features, labels, *, nan_policy: str = "raise", min_samples: int = 2, device: str = "auto",
            name: str = "features", max_memory=None,
            cost: Optional[Callable[[Matrix, Labels], Tuple[int, int]]] = None,
            what: str = "this score", too_few: Optional[str] = None, place: bool = True,
            cost_counts_labels: bool = False, rescale: bool = True, fixed_state_must_fit: bool = False,
            task: str = "classification") -> Prepared:
    """The one input path of a ``(features, labels)`` score call, in the order BAD_INPUTS.md fixes:
    features (``as_matrix``), labels (``as_labels``, length checked), the ``max_memory`` budget,
    NaN/inf rows (raised, or omitted with their labels), the minimum sample count, two classes,
    then the device (resolved, and the matrix placed there unless ``place=False``).

    With ``max_memory``, ``cost(m, labels)`` gives the score's (bytes per row of a block, fixed state
    bytes) and the matrix carries the planned ``Budget`` before the first pass (the NaN scan) reads
    the bank; the label remapping's memory is added to the state unless ``cost_counts_labels``. With
    ``rescale`` a bank of extreme magnitude is multiplied by a power of two first (:func:`rescaled_to_unit`,
    a copy; moderate banks are untouched); probabilities pass ``rescale=False``. With
    ``fixed_state_must_fit`` (scores whose state is D x D float64 matrices whatever N is) and no budget, a
    state larger than the memory this machine has available raises up front with what it would need,
    instead of failing (or swapping) after the allocation. ``task``: "classification" (labels remapped,
    two classes needed) or "regression" / "multilabel" (``as_targets``: float64 (N, T) ``Targets``,
    shape, finiteness and indicator columns checked; no class minimum). ``too_few``: the score's own message for fewer than ``min_samples`` rows (a format
    string with ``{n}``); the default names the minimum.
    """
    m = as_matrix(features, name)
    if check_task(task) == "classification":
        lab = as_labels(labels, m.n, "labels", min_classes=1)
    else:
        lab = as_targets(labels, task, m.n, "labels")
    if max_memory is None and fixed_state_must_fit and cost is not None:
        _check_fixed_state_fits(cost(m, lab)[1], m, what)
    if max_memory is not None:
        row_bytes, state_bytes = cost(m, lab)
        if not cost_counts_labels:
            state_bytes += blocks.label_bytes(m.n)
        m = m.with_budget(blocks.plan(max_memory, row_bytes=row_bytes, state_bytes=state_bytes, what=what))
    bad, row_top = scan_rows(m)  # one read: the NaN rows and the magnitude of the rest
    keep = check_finite(m, nan_policy, bad)
    if keep is not None:
        m = m.take(keep)
        lab = lab.take(keep) if isinstance(lab, Targets) else check_labels_omit(lab, keep, min_classes=1)
    if m.n < min_samples:
        msg = too_few or "need at least {min_samples} samples, got n_samples={n}"
        raise ValueError(msg.format(n=m.n, min_samples=min_samples))
    if isinstance(lab, Labels) and lab.n_classes < 2:
        raise ValueError(f"need at least 2 classes, got {lab.n_classes}")
    if rescale:
        m = rescaled_to_unit(m, top=row_top)[0]  # the largest |x| of the kept (finite) rows
    dev = devices.resolve_device(device, m)
    # The bank goes where the score runs: the Gram seam reads a CUDA bank on its GPU (``_gram``).
    return Prepared(devices.place(m, dev) if place else m, lab, dev, keep)
