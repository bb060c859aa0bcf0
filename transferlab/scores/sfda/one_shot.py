"""SFDA: self-challenging Fisher discriminant analysis (Shao et al. 2022)."""
from __future__ import annotations

import math
import warnings
from typing import Any, Tuple

import numpy as np

from transferlab.core.types import Device, Features, MemoryBudget, NanPolicy, Targets, Task
from transferlab.scores.registry import require_task

from transferlab.core import blocks
from transferlab.core import linalg
from transferlab.core.arrays import Matrix
from transferlab.core.inputs import check_bool, prepare
from transferlab.kernels import lda as stats

SOLVERS = ("eigh", "cholesky")

# Logits kept at once by the chunked prediction passes (rows x classes float64).
_LOGIT_BYTES = 32 << 20
# Within-class scatter traces at or below this fraction of the total's are rounding noise (see _fit).
_ZERO_WITHIN = 16 * np.finfo(np.float64).eps
# Largest C for which the anchors' logits (C x C) are precomputed rather than gathered per chunk.
_ANCHOR_LOGITS_BYTES = 64 << 20


@blocks.checks_max_memory
def sfda(
    features: Features,
    labels: Targets,
    *,
    a: float = 5.0,
    log: bool = False,
    device: Device = "auto",
    nan_policy: NanPolicy = "raise",
    solver: str = "cholesky",
    max_memory: MemoryBudget = None,
    task: Task = "classification",
) -> float:
    """SFDA transferability score (Shao et al. 2022, "Not All Models Are Equal: Predicting Model
    Transferability in a Self-challenging Fisher Space"); the authors' published ``SFDA_Score``,
    reproduced exactly but without mutating the input.

    Parameters
    ----------
    features : (N, D) array (numpy incl. read-only memmaps, torch CPU/CUDA, anything array-like);
        float16/bfloat16/float32/float64 are read as they are (upcast per tile, float64 sums).
    labels : (N,) or (N, 1) class labels of any sortable type (remapped with ``np.unique``).
    a : the paper's regularisation constant (default 5.0), see step 2.
    log : return the mean log-probability of the true class instead of the mean probability.
    device : "auto" | "cpu" | "cuda" | "reference" (the float64 numpy oracle).
    nan_policy : "raise" (default) or "omit" (drop rows holding NaN/inf).
    solver : "cholesky" (default: ``coef = M S_w'^-1`` by a Cholesky solve, the route SCORES.md
        names for reproducing the published numbers; the same coefficients as the eigensolve since
        ``V V^T = S_w'^-1`` when all D eigenvectors are kept, about 3x cheaper at D = 2048) or
        "eigh" (the generalized eigensolve of step 4, literally as published).
    max_memory : None (default: historical block sizes) or the host memory the passes may use, int
        bytes or a string like "2GB" / "512MiB": every pass (NaN scan, scatter kernels, the two
        prediction passes) reads row blocks sized from it after the fixed state (about a dozen D x D
        float64 matrices, C x D and C x C tables, a few (N,) vectors) is counted; a memory-mapped
        bank's pages are released block by block. Too small: ``ValueError`` naming the minimum. The
        result is bitwise the same for every budget (docs/out_of_core.md).

    Definition (SCORES.md)
    ----------------------
    1. Priors ``pi_c = n_c / N``, class means ``mu_c``; ``S_w = sum_c pi_c Cov_c`` (biased).
    2. ``lambda = max(exp(-a * lambda_max(S_w)), 1e-10)`` with the authors' estimate of
       ``lambda_max``: ``x = S_w 1``; three times ``u = S_w x / |S_w x|``, ``x = S_w u / |S_w u|``;
       ``lambda_max = x^T S_w u``.
    3. ``S_t = (1-lambda) Cov(X) + lambda tr(Cov(X))/D I``; ``S_w' = (1-lambda) S_w + lambda
       tr(S_w)/D I``; ``S_b = S_t - S_w'``.
    4. ``S_b v = e S_w' v`` (all D eigenvectors, by descending e); ``coef = M V V^T``,
       ``intercept_c = -1/2 mu_c . coef_c + log pi_c``; ``p(y|x) = softmax(X coef^T + intercept)``.
    5. ``p <- softmax(p)`` (the published code's second softmax).
    6. ConfMix: ``x~_i = p_i x_i + (1 - p_i) mu-bar_c`` with ``p_i`` the softened probability of the
       sample's own class c and ``mu-bar_c`` the mean of the other classes' means.
    7. Steps 1, 3, 4 refitted on ``X~`` with the same lambda; the score is
       ``(1/N) sum_i p(y_i | x~_i)`` (``log=True``: ``(1/N) sum_i log p(y_i | x~_i)``).

    Cost: two passes over the bank build the D x D scatter matrices (float64 Gram kernels), the mixed
    rows are never materialised (their statistics follow from p-weighted sums, see
    ``transferlab.kernels.lda.scatter_stats``), plus two D x D generalized eigensolves
    (``scipy.linalg.eigh`` on the CPU, Cholesky reduction + ``torch.linalg.eigh`` on the GPU) and
    two projection passes (N x D x C).

    With N <= D the classes separate perfectly and the score saturates near 1.0: a
    ``UserWarning`` says so.

    Returns
    -------
    float in (0, 1] (``log=True``: <= 0). Higher = more transferable.
    """
    require_task("sfda", task)  # classification only: its definition needs classes
    check_options(a, log, solver)
    m, lab, dev, _ = prepare(features, labels, nan_policy=nan_policy, device=device, max_memory=max_memory,
                             cost=lambda m, lab: _memory_cost(m, lab.n_classes), cost_counts_labels=True, what="sfda",
                             fixed_state_must_fit=True,
                             too_few="sfda needs at least 2 samples (two classes), got n_samples={n}")
    warn_saturation(m.n, m.d, stacklevel=3)
    if dev == "reference":
        from transferlab.reference.sfda import sfda as oracle

        return oracle(m.to_float64_host(), lab.codes, a=float(a), log=bool(log))[0]
    return _sfda(m, lab.codes, lab.n_classes, float(a), bool(log), dev, solver)


def check_options(a, log, solver) -> None:
    """TypeError / ValueError for bad ``a``, ``log`` or ``solver`` (the one-shot score and its stream)."""
    if isinstance(a, bool) or not isinstance(a, (int, float, np.integer, np.floating)) or not math.isfinite(a):
        raise TypeError(f"a must be a finite real number, got {a!r}")
    if a < 0:
        raise ValueError(f"a must be >= 0, got {a}")
    if solver not in SOLVERS:
        raise ValueError(f"solver must be one of {SOLVERS}, got {solver!r}")
    check_bool(log, "log")


def warn_saturation(n: int, d: int, stacklevel: int = 2) -> None:
    """The UserWarning of the N <= D regime (the score saturates near 1.0)."""
    if n <= d:
        warnings.warn(
            f"sfda with n_samples={n} <= n_features={d}: the classes separate perfectly in this "
            "regime and the score saturates near 1.0; use more samples than feature dimensions",
            UserWarning,
            stacklevel=stacklevel,
        )


def _memory_cost(m: Matrix, n_classes: int) -> Tuple[int, int]:
    """(bytes per block row, state) under ``max_memory``: a row's stored bytes, the NaN scan's mask
    (1 byte per feature), its (C,) logits and the softmax temporaries (7 float64 per class); twelve D x D and eight C x D float64
    matrices, the C x C anchor logits and 64 bytes per row (p, its weights, per-row results, labels)."""
    d, c = m.d, int(n_classes)
    return m.data.dtype.itemsize * d + d + 56 * c, 96 * d * d + 64 * c * d + 8 * c * c + 64 * m.n


# ---------------------------------------------------------------------------- the fast path


class _NumpyLA:
    """The small D x D algebra on the host (numpy / scipy LAPACK)."""

    @staticmethod
    def eye(d: int, like):
        return np.eye(d)

    @staticmethod
    def trace(a) -> float:
        return float(np.trace(a))

    @staticmethod
    def norm(v) -> float:
        return float(np.linalg.norm(v))

    @staticmethod
    def eigvalsh_max(a) -> float:
        return float(np.linalg.eigvalsh(a)[-1])

    @staticmethod
    def eigh_desc(Sb, Sw):
        """Eigenvectors of S_b v = e S_w v (S_w-orthonormal), by descending e."""
        import scipy.linalg

        evals, evecs = scipy.linalg.eigh(Sb, Sw)
        return evecs[:, np.argsort(evals)[::-1]]

    @staticmethod
    def solve_spd(Sw, B):
        """S_w^-1 B by Cholesky."""
        import scipy.linalg

        return scipy.linalg.cho_solve(scipy.linalg.cho_factor(Sw, lower=True), B)

    @staticmethod
    def vec(a: np.ndarray, like):
        return a

    @staticmethod
    def log(v):
        return np.log(v)

    @staticmethod
    def host(a) -> np.ndarray:
        return a

    @staticmethod
    def softmax(z):
        return linalg.softmax_rows(z)

    @staticmethod
    def log_softmax(z):
        return linalg.log_softmax_rows(z)

    @staticmethod
    def take_rows(a, ys: np.ndarray):
        return a[ys]

    @staticmethod
    def pick(a, ys: np.ndarray) -> np.ndarray:
        """``a[i, ys[i]]`` per row, on the host."""
        return a[np.arange(a.shape[0]), ys]


class _TorchLA:
    """The same algebra on the tensors' device (torch; no generalized eigh there, so the
    Cholesky reduction LAPACK's sygv does: L L^T = S_w, eigh(L^-1 S_b L^-T), V = L^-T W)."""

    @staticmethod
    def eye(d: int, like):
        import torch

        return torch.eye(d, dtype=torch.float64, device=like.device)

    @staticmethod
    def trace(a) -> float:
        return float(a.trace())

    @staticmethod
    def norm(v) -> float:
        import torch

        return float(torch.linalg.vector_norm(v))

    @staticmethod
    def eigvalsh_max(a) -> float:
        import torch

        return float(torch.linalg.eigvalsh(a)[-1])

    @staticmethod
    def eigh_desc(Sb, Sw):
        import torch

        L = torch.linalg.cholesky(Sw)
        Y = torch.linalg.solve_triangular(L, Sb, upper=False)  # L^-1 S_b
        Cm = torch.linalg.solve_triangular(L, Y.T, upper=False)  # L^-1 S_b L^-T (S_b symmetric)
        evals, W = torch.linalg.eigh(0.5 * (Cm + Cm.T))
        V = torch.linalg.solve_triangular(L.T, W, upper=True)
        return V[:, torch.argsort(evals, descending=True)]

    @staticmethod
    def solve_spd(Sw, B):
        import torch

        return torch.cholesky_solve(B, torch.linalg.cholesky(Sw))

    @staticmethod
    def vec(a: np.ndarray, like):
        import torch

        return torch.as_tensor(a, dtype=torch.float64, device=like.device)

    @staticmethod
    def log(v):
        import torch

        return torch.log(v)

    @staticmethod
    def host(a) -> np.ndarray:
        return a.detach().cpu().numpy()

    # The (rows, C) logits stay on the device: softmaxes and the per-row pick run there and only
    # one float per row crosses (on an H100 the host softmaxes were 0.2 s of SFDA's 0.33 s at N=50k).
    @staticmethod
    def softmax(z):
        return linalg.softmax_rows(z)

    @staticmethod
    def log_softmax(z):
        return linalg.log_softmax_rows(z)

    @staticmethod
    def take_rows(a, ys: np.ndarray):
        return a[_torch_index(ys, a)]

    @staticmethod
    def pick(a, ys: np.ndarray) -> np.ndarray:
        return a.gather(1, _torch_index(ys, a)[:, None])[:, 0].cpu().numpy()


def _la(dev: str):
    return _TorchLA if dev == "cuda" else _NumpyLA


def _largest_eigenvalue(S, la) -> float:
    """SCORES.md step 2 (the authors' three power steps from the row sums). A zero vector on the
    way (S 1 = 0, e.g. S = 0) has no direction: the exact largest eigenvalue is used there."""
    x = S.sum(1)
    u = x
    for _ in range(3):
        t = S @ x
        nt = la.norm(t)
        if nt == 0:
            return la.eigvalsh_max(S)
        u = t / nt
        t = S @ u
        nt = la.norm(t)
        if nt == 0:
            return la.eigvalsh_max(S)
        x = t / nt
    return float(x @ (S @ u))


def _fit(st: stats.ScatterStats, lam: float, la, solver: str) -> Tuple[Any, Any]:
    """Steps 3-4 on scatter statistics: (coef (C, D), intercept (C,))."""
    d = st.means.shape[1]
    Sw = st.within_cov()
    cov = st.total_cov()
    tr_w = la.trace(Sw)
    # within = total - between carries rounding of order eps * tr(total): a trace below that floor
    # is zero in float64 (else every class a single point gives lambda ~ 1 and coefficients ~ 1e16,
    # or the error, depending on the order of the sums: one-shot and streamed would disagree).
    if not tr_w > _ZERO_WITHIN * la.trace(cov):
        raise ValueError(
            "sfda is undefined here: the within-class scatter is zero (every class is a single point); "
            "check the features and labels"
        )
    eye = la.eye(d, Sw)
    St = (1.0 - lam) * cov + (lam * la.trace(cov) / d) * eye
    Sw_s = (1.0 - lam) * Sw + (lam * tr_w / d) * eye
    try:
        if solver == "eigh":
            V = la.eigh_desc(St - Sw_s, Sw_s)
            coef = (st.means @ V) @ V.T
        else:  # V V^T = S_w'^-1 when all D eigenvectors are kept (eigh normalises V^T S_w' V = I)
            coef = la.solve_spd(Sw_s, st.means.T).T
    except Exception as e:  # LinAlgError (scipy) / torch's linalg errors
        if "positive" not in str(e).lower() and "singular" not in str(e).lower():
            raise
        raise ValueError(
            f"sfda: the shrunk within-class scatter is not numerically positive definite (lambda={lam:.3g}); "
            "the features are nearly collinear: pass a smaller `a` (stronger shrinkage) or reduce them first"
        ) from e
    intercept = -0.5 * (st.means * coef).sum(1) + la.log(la.vec(st.priors, coef))
    return coef, intercept


def _chunk_rows(m: Matrix, n_classes: int) -> int:
    """Rows per prediction block: bounds the (rows, C) float64 logits, whatever N (a ``max_memory``
    budget's rows when one is active: its row cost counts the logits)."""
    return m.budget.rows or max(1, _LOGIT_BYTES // (8 * max(n_classes, 1)))


def _softened_own_prob(m: Matrix, y: np.ndarray, coef, intercept, dev: str, la) -> np.ndarray:
    """Steps 4-5 on the bank: the twice-softmaxed probability of each sample's own class (N,)."""
    n, C = m.n, y.max() + 1
    out = np.empty(n, dtype=np.float64)
    for s, e, blk in blocks.blocks(m, _chunk_rows(m, int(C))):
        logits = stats.project(blk, coef, dev, b=intercept)
        out[s:e] = la.pick(la.softmax(la.softmax(logits)), y[s:e])
    return out


def _mixed_true_class(m: Matrix, y: np.ndarray, p: np.ndarray, anchors, coef, intercept, dev: str, la,
                      log: bool) -> float:
    """Step 7's score: the mean over the bank of :func:`_mixed_true_class_sum`."""
    return _mixed_true_class_sum(m, y, p, anchors, coef, intercept, dev, la, log) / m.n


def _mixed_true_class_sum(m: Matrix, y: np.ndarray, p: np.ndarray, anchors, coef, intercept, dev: str, la,
                          log: bool) -> float:
    """Step 7's prediction on x~_i = p_i x_i + (1 - p_i) anchors[y_i] without building x~:
    logits_i = p_i (x_i coef^T) + (1 - p_i)(anchors[y_i] coef^T) + intercept; the sum over these
    rows of the true class's probability (``log``: log-probability)."""
    n = m.n
    C = int(anchors.shape[0])
    anchor_logits = None
    if C * C * 8 <= _ANCHOR_LOGITS_BYTES:
        anchor_logits = anchors @ coef.T  # (C, C)
    per_row = np.empty(n)  # summed once at the end: the sum does not depend on the block size
    for s, e, blk in blocks.blocks(m, _chunk_rows(m, C)):
        ys = y[s:e]
        xw = stats.project(blk, coef, dev)
        if anchor_logits is not None:
            aw = la.take_rows(anchor_logits, ys)
        else:
            aw = la.take_rows(anchors, ys) @ coef.T
        ps = la.vec(p[s:e], xw)[:, None]
        logits = ps * xw + (1.0 - ps) * aw + intercept[None, :]
        per_row[s:e] = la.pick(la.log_softmax(logits) if log else la.softmax(logits), ys)
    return float(per_row.sum())


def _torch_index(ys: np.ndarray, like):
    import torch

    return torch.as_tensor(ys, dtype=torch.int64, device=like.device)


def first_fit(st1: stats.ScatterStats, a: float, la, solver: str) -> Tuple[float, Any, Any]:
    """Steps 2-4 on the bank's statistics: (lambda, coef, intercept) of the first fit."""
    lam = max(math.exp(-a * _largest_eigenvalue(st1.within_cov(), la)), 1e-10)
    coef, intercept = _fit(st1, lam, la, solver)
    return lam, coef, intercept


def confmix_anchors(means):
    """Step 6's anchor of each class: the mean of the other classes' means, (C, D)."""
    return (means.sum(0)[None, :] - means) / (means.shape[0] - 1)


def _sfda(m: Matrix, y: np.ndarray, n_classes: int, a: float, log: bool, dev: str, solver: str = "eigh") -> float:
    y = np.asarray(y, dtype=np.int32)
    return sfda_from_first_stats(m, y, stats.scatter_stats(m, y, n_classes, dev), a, log, dev, solver)


def sfda_from_first_stats(m: Matrix, y: np.ndarray, st1: stats.ScatterStats, a: float, log: bool, dev: str,
                          solver: str = "eigh") -> float:
    """Steps 2-7 given step 1's scatter statistics of the bank (``scatter_stats(m, y, C, dev)``): the batched
    pool path (``scores/_batched.py``) builds those for many models at once and shares them with other scores."""
    la = _la(dev)
    y = np.asarray(y, dtype=np.int32)
    n_classes = int(st1.n_classes)
    lam, coef, intercept = first_fit(st1, a, la, solver)
    p = _softened_own_prob(m, y, coef, intercept, dev, la)
    anchors = confmix_anchors(st1.means)
    st2 = stats.scatter_stats(m, y, n_classes, dev, shift=st1.mean, mix_weight=p, mix_anchors=anchors)
    coef2, intercept2 = _fit(st2, lam, la, solver)
    return _mixed_true_class(m, y, p, anchors, coef2, intercept2, dev, la, log)
