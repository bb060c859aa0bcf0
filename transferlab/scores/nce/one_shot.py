"""NCE: negative conditional entropy (Tran et al. 2019)."""
from __future__ import annotations

import numpy as np

from transferlab.core.types import Device, Features, MemoryBudget, NanPolicy, Targets, Task
from transferlab.scores.registry import require_task

from transferlab.core import blocks
from transferlab.scores import _gram
from transferlab.core.arrays import Matrix
from transferlab.core.inputs import check_bool, prepare

SUM_TOL = 1e-3  # rows of probabilities must sum to 1 within this (SCORES.md, LEEP)


@blocks.checks_max_memory
def nce(
    source_probs: Features,
    labels: Targets,
    *,
    from_logits: bool = False,
    device: Device = "auto",
    nan_policy: NanPolicy = "raise",
    max_memory: MemoryBudget = None,
    task: Task = "classification",
) -> float:
    """NCE: ``-sum_z p(z) H(Y | Z = z)`` with z_i = argmax_z P[i, z], the source model's hard label.

    Tran et al. 2019, "Transferability and hardness of supervised classification tasks".

    Parameters
    ----------
    source_probs : (N, Z) source-model class probabilities (rows on the simplex), or logits with
        ``from_logits=True`` (the argmax of the logits is the argmax of their softmax).
    labels : (N,) target labels (remapped to 0..C-1).
    device : "auto" | "cpu" | "cuda" (validated and arg-maxed on the GPU; only the N hard labels cross) | "reference".
    nan_policy : "raise" or "omit".
    max_memory : None (default) or the host memory the passes may use (int bytes or "2GB"): rows are
        read in blocks sized from it (a float64 copy of each block row; state: the (N,) hard labels
        and the C x Z joint); ``ValueError`` naming the minimum when too small. Same result for every
        budget (docs/out_of_core.md).

    Definition
    ----------
    Joint counts J[y, z] = #{i : y_i = y, z_i = z} / N (integer counts, never one-hot),
    p(z) = sum_y J[y, z], and over the z with p(z) > 0:
    ``NCE = sum_{y,z} J[y, z] log(J[y, z] / p(z)) = -sum_z p(z) H(Y | Z = z)`` (0 log 0 = 0).
    Ties in the argmax go to the lowest source class. NCE <= 0; 0 when z determines y.

    Validation: probabilities must be non-negative with rows summing to 1 within 1e-3; negative
    entries mean logits were passed (pass ``from_logits=True``); this also makes swapping the two
    arguments an error.
    """
    require_task("nce", task)  # classification only: its definition needs classes
    from_logits = check_bool(from_logits, "from_logits")
    m, lab, dev, _ = prepare(source_probs, labels, nan_policy=nan_policy, device=device, name="source_probs",
                             rescale=False, max_memory=max_memory, cost=_memory_cost, what="nce")
    z = hard_labels(m, from_logits)
    if dev == "reference":
        from transferlab.reference.nce import nce as oracle

        return oracle(z, lab.codes)
    return nce_from_joint(joint_counts(z, lab.codes, lab.n_classes, m.d))


def joint_counts(z: np.ndarray, codes: np.ndarray, n_classes: int, n_src: int) -> np.ndarray:
    """``J[y, z] = #{i : y_i = y, z_i = z}`` (int64 (C, Z); a streaming state sums these per chunk)."""
    joint = np.bincount(np.asarray(codes, dtype=np.int64) * n_src + z, minlength=n_classes * n_src)
    return joint.reshape(n_classes, n_src)


def nce_from_joint(joint: np.ndarray) -> float:
    """NCE from the integer joint counts (C, Z) of all N rows (N = their total)."""
    joint = np.asarray(joint).astype(np.float64)
    pz = joint.sum(axis=0)
    nz = joint > 0
    cond = np.where(nz, joint / np.where(pz > 0, pz, 1.0)[None, :], 1.0)
    return float(np.sum(joint[nz] * np.log(cond[nz])) / joint.sum())


def _memory_cost(m: Matrix, lab):
    """(bytes per block row, state): stored row + float64 copy + the checks' temporaries; the (N,)
    hard labels and three C x Z float64 tables."""
    return m.data.dtype.itemsize * m.d + 17 * m.d, 16 * m.n + 24 * lab.n_classes * m.d


def hard_labels(m: Matrix, from_logits: bool) -> np.ndarray:
    """argmax per row (int64), validating probabilities unless ``from_logits``."""
    if m.device == "cuda":
        return _hard_labels_on_device(m, from_logits)
    z = np.empty(m.n, dtype=np.int64)
    for s, e, blk in _gram.row_blocks(m):
        if not from_logits:
            validate_probs_block(blk, s, m.name)
        z[s:e] = np.argmax(blk, axis=1)
    return z


def _hard_labels_on_device(m: Matrix, from_logits: bool) -> np.ndarray:
    """:func:`hard_labels` of a CUDA bank: the checks and the argmax (first maximum, as numpy's) run
    on the GPU in float64 blocks; a block that fails is re-checked on the host for the same message."""
    import torch

    from transferlab.kernels.lda import block_rows

    z = torch.empty(m.n, dtype=torch.int64, device=m.data.device)
    step = block_rows(m.d)
    for s in range(0, m.n, step):
        blk = m.data[s : s + step].to(torch.float64)
        if not from_logits:
            bad = (blk < 0).any(dim=1) | ((blk.sum(dim=1) - 1.0).abs() > SUM_TOL)
            if bool(bad.any()):
                validate_probs_block(blk.cpu().numpy(), s, m.name)
        z[s : s + blk.shape[0]] = torch.argmax(blk, dim=1)
    return z.cpu().numpy()


def validate_probs_block(blk: np.ndarray, start: int, name: str) -> None:
    """ValueError when a block of rows is not on the probability simplex (say what was passed)."""
    neg = np.flatnonzero((blk < 0).any(axis=1))
    if neg.size:
        raise ValueError(
            f"{name} has negative entries (first at row {start + int(neg[0])}): these look like logits; "
            "pass from_logits=True, and check the argument order (source_probs, labels)")
    sums = blk.sum(axis=1)
    bad = np.flatnonzero(np.abs(sums - 1.0) > SUM_TOL)
    if bad.size:
        i = int(bad[0])
        raise ValueError(
            f"{name} rows must sum to 1 (within {SUM_TOL}): row {start + i} sums to {sums[i]:.6g} "
            f"({bad.size} rows off); pass from_logits=True for logits, and check the argument order "
            "(source_probs, labels)")
