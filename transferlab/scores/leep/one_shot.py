"""LEEP: log expected empirical prediction (Nguyen et al. 2020)."""
from __future__ import annotations

import numpy as np

from transferlab.core.types import Device, Features, MemoryBudget, NanPolicy, Targets, Task
from transferlab.scores.registry import require_task

from transferlab.core import blocks
from transferlab.core import devices
from transferlab.core.arrays import as_labels, as_matrix
from transferlab.scores.leep import _stats as leep_stats
from transferlab.core.inputs import check_bool


@blocks.checks_max_memory
def leep(
    source_probs: Features,
    labels: Targets,
    *,
    from_logits: bool = False,
    device: Device = "auto",
    nan_policy: NanPolicy = "raise",
    max_memory: MemoryBudget = None,
    task: Task = "classification",
) -> float:
    """LEEP: how well the source model's label distribution predicts the target labels.

    Nguyen et al. 2020, "LEEP: A New Measure to Evaluate Transferability of Learned Representations".

    Parameters
    ----------
    source_probs : (N, Z) source-model probabilities of the N target samples over the Z source
        classes (numpy incl. read-only memmaps, torch CPU/CUDA, anything array-like; float16 /
        bfloat16 / float32 / float64 read as they are, converted per tile). Rows must be
        non-negative and sum to 1 within 1e-3 (plus the unit roundoff of the storage dtype:
        2^-8 for bfloat16, 2^-11 for float16); otherwise ``ValueError`` naming the rows
        (negative entries mean logits were passed: use ``from_logits=True``).
    labels : (N,) or (N, 1) target labels of any sortable type (remapped with ``np.unique``).
    from_logits : ``source_probs`` holds logits; the softmax is taken in float64 per row by
        log-sum-exp, inside the passes (never materialised).
    device : "auto" | "cpu" | "cuda" | "reference" (the float64 numpy oracle).
    nan_policy : "raise" (default) or "omit" (drop rows holding NaN/inf, with their labels).
    max_memory : None (default: each pass is one kernel call over the whole matrix) or the host
        memory the passes may use, int bytes or a string like "2GB" / "512MiB": the three passes
        (checks, joint, EEP) then run over row blocks sized from it after the fixed state (the C x Z
        joint, the (N,) log-sum-exp and EEP vectors) is counted; a memory-mapped matrix's pages are
        released block by block. Too small: ``ValueError`` naming the minimum. The result is bitwise
        the same for every budget (docs/out_of_core.md).

    Definition
    ----------
    ``J[y, z] = (1/N) sum_{i : y_i = y} P[i, z]`` (float64), ``P(y | z) = J[y, z] / sum_y J[y, z]``,
    ``EEP_i = sum_z P[i, z] P(y_i | z)``, ``LEEP = (1/N) sum_i log EEP_i`` (<= 0; higher = more
    transferable). Source classes with zero total mass carry no weight and are skipped (the
    classic code returns NaN there). J is one pass over P (``onehot(y)^T P``, float64), EEP a
    second, row-wise.

    Returns
    -------
    float
    """
    require_task("leep", task)  # classification only: its definition needs classes
    from_logits = check_bool(from_logits, "from_logits")
    _reject_swapped(source_probs, labels)
    m = as_matrix(source_probs, "source_probs")
    # Classes are checked after the sample count, so that N = 1 says what the minimum is.
    lab = as_labels(labels, m.n, "labels", min_classes=1)
    if max_memory is not None:
        m = m.with_budget(blocks.plan(max_memory, row_bytes=m.data.dtype.itemsize * m.d,
                                      state_bytes=16 * lab.n_classes * m.d + 24 * m.n + blocks.label_bytes(m.n),
                                      what="leep"))
    if m.n < 2:
        raise ValueError(f"LEEP needs at least 2 samples (of at least 2 classes), got n_samples={m.n}")
    dev = devices.resolve_device(device, m)
    placed = m if dev == "reference" else devices.place(m, dev)
    p = leep_stats.validate_probs(placed, lab, from_logits=from_logits, nan_policy=nan_policy, device=dev)
    if p.labels.n_classes < 2:
        raise ValueError(f"need at least 2 classes, got {p.labels.n_classes}")

    if dev == "reference":
        from transferlab.reference.leep import leep as oracle

        return oracle(p.m.to_float64_host(), p.labels.codes, p.labels.n_classes, from_logits=p.from_logits)[0]
    S = leep_stats.joint_counts(p, device=dev)
    eep = leep_stats.eep(p, leep_stats.conditional(S), device=dev)
    # EEP_i > 0 always (row i itself puts mass on every z where P[i, z] > 0); only a float64
    # underflow of tiny probabilities could give 0, and log(0) = -inf is then the honest answer.
    with np.errstate(divide="ignore"):
        return float(np.mean(np.log(eep)))


def _ndim(x) -> int:
    try:
        return int(x.ndim) if hasattr(x, "ndim") else int(np.ndim(x))
    except Exception:  # ragged lists: as_matrix / as_labels say what is wrong
        return -1


def _reject_swapped(source_probs, labels) -> None:
    """leep(labels, probs) must be an error that says so, never a number."""
    if _ndim(source_probs) == 1 and _ndim(labels) == 2:
        raise ValueError(
            "leep(source_probs, labels): source_probs is 1-D and labels is 2-D; the arguments look "
            "swapped: pass the (N, Z) source probabilities first and the (N,) target labels second"
        )
