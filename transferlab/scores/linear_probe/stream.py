"""Streaming linear probe: ``tl.linear_probe``'s "lbfgs" protocol over a bank read in chunks.

    st = streaming.stream("linear_probe", C=1.0)   # the one-shot's options and defaults
    while not st.complete:                         # the number of passes is decided as it goes
        for X_chunk, y_chunk in bank_chunks():
            st.update(X_chunk, y_chunk)
        st.end_pass()
    st.compute()                                   # == tl.linear_probe(X, y, C=1.0)

Passes (each reads every row once, in any chunks, order or workers):

1. *keys*: each row's content keys (``linear_probe.content_keys``: a function of the row's values
   only, so chunking cannot change them) and label; O(N) memory (16 bytes + a label slot per row).
   At its end, the one-shot's ``stratified_split`` on those keys gives the split; what is kept is
   a sorted table (key 0, key 1, class) -> share of that group in the train split.
2. *mean*, 3. *var* (``standardize=True`` only): the train rows' mean, then the sum of squared
   deviations from it: the one-shot's two-pass moments.
4. *fit*, once per loss/gradient evaluation of L-BFGS: the summed cross-entropy and its gradient
   over the train rows at the solver's current point. The solver is the one-shot's
   (``core.lbfgs.LBFGS``, reverse communication: this state tells it (f, g) at the end of each
   pass and it names the next point), so the iterates are those of the one-shot up to the
   rounding of the sums (same objective code, ``probe_objective``; same block code,
   ``block_loss_grad``).
5. *accuracy*: validation rows predicted right; ``compute()`` = that count / validation size.

Cross-validation (``cv=K``, the one-shot's default): after the keys pass, the one-shot's
``stratified_folds`` on the same keys gives every row its fold, and passes 2-5 run once per fold in
turn (fold k's train rows are the rows outside it); ``compute()`` = rows predicted right over all
folds / validated rows. ``coef``, ``intercept``, ``mean``, ``scale``, ``loss``, ``n_iter`` are fold
0's (as the one-shot's details); ``converged`` holds for every fold.

Rows find their side of the split in passes 2-5 by recomputing their keys. Exact duplicate rows of
one class share a key, as in the one-shot where they are interchangeable; when such a group
straddles the train/validation cut (k of its n copies in train) every copy enters the train sums
with weight k/n and the validation count with weight 1 - k/n, which gives the one-shot's sums up
to rounding (the validation count is an integer and is rounded back to one).

Workers: ``st.fork()`` in any pass (the solver's memory stays in the parent: forks carry only the
point, the moments and the split table), feed it rows, ``st.merge(part)``; only the parent ends a
pass. Memory: O(N) for the split table, O(C * D) for the sums, O(m * C * D) for the solver.

Differences from the one-shot: sums run in chunk order instead of the one-shot's fixed blocks, so
numbers agree to rounding, not bitwise (the accuracy and the iteration count agree unless a row
sits on a decision boundary or a stopping test is within rounding of its threshold). Not
streamable: ``protocol="renggli"`` (random minibatches), ``split=`` (chunks carry no row
indices), ``return_details=True`` (read ``st.coef``, ``st.intercept``, ``st.mean``, ``st.scale``,
``st.loss``, ``st.n_iter``, ``st.converged`` after the run instead), devices other than the host.
"""
from __future__ import annotations

from typing import Any, List, Optional

import numpy as np

from transferlab.core import devices
from transferlab.core.arrays import as_labels, as_matrix
from transferlab.core.inputs import check_finite
from transferlab.scores._stream import ScoreStream
from transferlab.scores.linear_probe.one_shot import (_BLOCK_BYTES, _Workers, _block_rows, _check_args, block_correct, check_cv, stratified_folds, block_loss_grad, centred_squares, key_multipliers, lbfgs_solver, probe_objective, row_keys, scale_of, split_theta, standardise, stratified_split, warn_max_iter)
from transferlab.core import cpu_threads
from transferlab.core.inputs import check_bool

__all__ = ["LinearProbeStream"]

_KEY = np.dtype([("k0", "<u8"), ("k1", "<u8"), ("c", "<i8")])  # sorts as the canonical order does

def _plus(a, b):
    """Sum of two partial results of a block (arrays, or (loss, gWT, gb) tuples)."""
    if isinstance(a, tuple):
        return tuple(x + y for x, y in zip(a, b))
    return a + b


def _records(keys: np.ndarray, codes: np.ndarray) -> np.ndarray:
    rec = np.empty(keys.shape[0], dtype=_KEY)
    rec["k0"], rec["k1"], rec["c"] = keys[:, 0], keys[:, 1], codes
    return rec


class LinearProbeStream(ScoreStream):
    """Streaming :func:`transferlab.linear_probe` (protocol "lbfgs"; see the module docstring)."""

    def __init__(self, protocol="lbfgs", val_fraction=0.2, seed=0, device="auto", C=1.0, standardize=True,
                 max_iter=1000, tol=1e-6, split=None, return_details=False, nan_policy="raise", cv=5) -> None:
        if protocol == "renggli":
            raise ValueError(
                "protocol='renggli' cannot be streamed: its SGD draws random minibatches from the whole train "
                "split (5 runs x 2500 steps), which needs random access to the rows; stream protocol='lbfgs' "
                "(the default), or call tl.linear_probe(..., protocol='renggli') on the bank (a memory map works)"
            )
        protocol, val_fraction, seed, C, max_iter, tol = _check_args(protocol, val_fraction, seed, C, max_iter, tol)
        cv = check_cv(cv)
        if device not in ("auto", "cpu"):
            raise ValueError(f"the linear_probe stream computes on the host (float64 numpy); device must be "
                             f"'auto' or 'cpu', got {device!r} (CUDA chunks are copied to the host)")
        if split is not None:
            raise ValueError("split= cannot be streamed: chunks carry no row indices. The stream uses the "
                             "one-shot's default content-hash split; call tl.linear_probe(..., split=) instead")
        if return_details:
            raise ValueError("return_details=True is not available on a stream (its rows have no indices); after "
                             "the run read st.coef, st.intercept, st.mean, st.scale, st.loss, st.n_iter, st.converged")
        if nan_policy not in ("raise", "omit"):
            raise ValueError(f"nan_policy must be 'raise' or 'omit', got {nan_policy!r}")
        self._phase = "keys"
        self._mult = None  # content_keys' multipliers (set by the first rows: they depend on D)
        self._opt = None  # the solver: only in the state that ends the fit passes (not in forks)
        super().__init__(protocol=protocol, val_fraction=val_fraction, seed=seed, device=device, C=C,
                         standardize=check_bool(standardize, "standardize"), max_iter=max_iter, tol=tol, split=None,
                         return_details=False, nan_policy=nan_policy, cv=cv)
        self._fold = 0
        self._folds_w: Optional[np.ndarray] = None  # (K, groups): each group's train share per fold
        self._right_total = 0
        self.coef = self.intercept = self.mean = self.scale = None
        self.loss: Optional[float] = None
        self.n_iter: Optional[int] = None
        self.converged: Optional[bool] = None
        self.n_evals: Optional[int] = None
        self.classes: Optional[np.ndarray] = None

    # ------------------------------------------------------------------ passes
    @property
    def n_passes(self) -> int:
        """Passes known so far: the fit decides how many loss evaluations (passes) it needs, so until
        it has converged this is the current pass plus at least the accuracy pass."""
        if self._phase == "done":
            return self.pass_index
        more = 0
        if self._folds_w is not None:  # each later fold: moments, at least one fit pass, accuracy
            more = (self._folds_w.shape[0] - 1 - self._fold) * (4 if self.params["standardize"] else 2)
        return self.pass_index + (1 if self._phase == "accuracy" else 2) + more

    @property
    def phase(self) -> str:
        """What the current pass computes: "keys", "mean", "var", "fit", "accuracy" (or "done")."""
        return self._phase

    def update(self, x: Any, labels: Any) -> "LinearProbeStream":
        if self.params["nan_policy"] == "omit":  # drop NaN/inf rows before anything sees them
            m = as_matrix(x, "features")
            keep = check_finite(m, "omit")
            if keep is not None:
                lab = as_labels(labels, m.n, "labels", min_classes=1)
                if keep.size == 0:
                    return self
                x, labels = m.take(keep), lab.classes[lab.codes[keep]]
        return super().update(x, labels)

    def compute(self) -> float:
        if self._phase not in ("accuracy", "done"):
            raise ValueError(f"LinearProbeStream is in pass {self.pass_index + 1} ({self._phase}); the score needs "
                             "more passes: call end_pass() and feed the same rows again until st.complete")
        return super().compute()

    def fork(self) -> "LinearProbeStream":
        opt, self._opt = self._opt, None  # the solver's memory stays here
        try:
            return super().fork()
        finally:
            self._opt = opt

    # ------------------------------------------------------------------ accumulators
    def _reset_pass(self) -> None:
        phase = self._phase
        if phase == "keys":  # (a fresh state or a first-pass fork: the width comes with the rows)
            self._mult = None
            self._keys: List[np.ndarray] = []
            self._slots: List[np.ndarray] = []
        elif phase == "mean":
            self._total = np.zeros(self.d)
        elif phase == "var":
            self._sq = np.zeros(self.d)
        elif phase == "fit":
            self._loss = 0.0
            self._gWT = np.zeros((self.d, self.n_classes))
            self._gb = np.zeros(self.n_classes)
        elif phase == "accuracy":
            self._right = 0.0

    def _update(self, m, slots) -> None:
        m = devices.to_host(m)
        if self._phase == "keys":
            if self._mult is None:
                self._mult = key_multipliers(self.params["seed"], m.d)
            step = max(1, _BLOCK_BYTES // (8 * m.d))
            for s in range(0, m.n, step):
                self._keys.append(row_keys(m.to_float64_host(s, min(s + step, m.n)), self._mult))
            self._slots.append(np.asarray(slots, dtype=np.int64))
            return
        step = self._step

        def part(s):
            return self._block(m.to_float64_host(s, min(s + step, m.n)), slots[s : s + step])

        starts = range(0, m.n, step)
        if len(starts) == 1:  # one block: no pool, BLAS pinned to one thread (it oversubscribes on small GEMMs)
            with cpu_threads.blas_single_threaded():
                self._add(part(0))
        else:  # fixed blocks on transferlab's threads, added in block order as they come: the one-shot's scheme
            with _Workers() as workers:
                for p in workers.ordered(part, starts):
                    self._add(p)

    def _lookup(self, raw: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """Each row's share of the train split (by its content keys and class)."""
        keys = row_keys(raw, self._mult)
        pos = np.searchsorted(self._k0, keys[:, 0])  # by key 0 (uint64: fast), then checked in full
        pos = np.minimum(pos, self._k0.size - 1)
        ok = (self._k0[pos] == keys[:, 0]) & (self._k1[pos] == keys[:, 1]) & (self._kc[pos] == codes)
        if not ok.all():  # a key 0 shared by several entries (duplicate rows of several classes), or unseen
            rec = _records(keys[~ok], codes[~ok])
            p2 = np.minimum(np.searchsorted(self._table, rec), self._table.size - 1)
            if not np.all(self._table[p2] == rec):
                raise ValueError("a row (or a row with this label) that the first pass did not see: every pass "
                                 "must see the same rows with the same labels")
            pos[~ok] = p2
        return self._wtrain[pos]

    def _block(self, raw: np.ndarray, slots: np.ndarray):
        """One block of rows of a pass after the first: this block's sums for the current phase."""
        codes = self._rank[slots]
        w = self._lookup(raw, codes)
        phase = self._phase
        if phase == "accuracy":
            val = w < 1.0
            if not val.any():
                return 0.0
            X = standardise(raw[val], self.mean, self.scale, np.empty((int(val.sum()), raw.shape[1])))
            right = block_correct(X, codes[val], self._W, self._b)
            return float(np.sum(1.0 - w[val][right]))
        out = None
        for rows, weight in self._train_parts(w):
            if rows.size == 0:
                continue
            X = raw[rows]
            if phase == "mean":
                p = X.sum(axis=0) if weight is None else (X * weight[:, None]).sum(axis=0)
            elif phase == "var":
                p = centred_squares(X, self.mean, weight)
            else:
                X = standardise(X, self.mean, self.scale, np.empty_like(X))
                p = block_loss_grad(X, codes[rows], self._W, self._b, weight)
            out = p if out is None else _plus(out, p)
        return out

    def _add(self, p) -> None:
        if p is None:  # a block without rows of the kind this pass sums
            return
        phase = self._phase
        if phase == "accuracy":
            self._right += p
        elif phase == "mean":
            self._total += p
        elif phase == "var":
            self._sq += p
        else:
            self._loss += p[0]
            self._gWT += p[1]
            self._gb += p[2]

    @staticmethod
    def _train_parts(w: np.ndarray):
        """(rows, weight) of the train rows: whole ones (weight None), then shares of straddling groups."""
        yield np.flatnonzero(w == 1.0), None
        part = np.flatnonzero((w > 0.0) & (w < 1.0))
        yield part, w[part]

    def _merge(self, other: "LinearProbeStream", slots: np.ndarray) -> None:
        if other._phase != self._phase:  # pass_index is checked by the base; phases follow from it
            raise ValueError(f"cannot merge a state in phase {other._phase!r} into one in phase {self._phase!r}")
        phase = self._phase
        if phase == "keys":
            if self._mult is None:
                self._mult = other._mult
            self._keys.extend(other._keys)
            self._slots.extend(slots[s] for s in other._slots)
        elif phase == "mean":
            self._total += other._total
        elif phase == "var":
            self._sq += other._sq
        elif phase == "fit":
            self._loss += other._loss
            self._gWT += other._gWT
            self._gb += other._gb
        elif phase == "accuracy":
            self._right += other._right

    # ------------------------------------------------------------------ ends of passes
    def _end_pass(self) -> None:
        phase = self._phase
        if phase == "keys":
            self._end_keys()
            self._phase = "mean" if self.params["standardize"] else "fit"
            if not self.params["standardize"]:
                self.mean, self.scale = np.zeros(self.d), np.ones(self.d)
                self._start_fit()
        elif phase == "mean":
            self.mean = self._total / self.n_train
            self._phase = "var"
        elif phase == "var":
            self.scale = scale_of(self._sq, self.n_train)
            self._phase = "fit"
            self._start_fit()
        elif phase == "fit":
            self._end_fit()
        elif phase == "accuracy":
            if self._folds_w is None:
                self._score = round(self._right) / self.n_val
                self._phase = "done"
                return
            self._right_total += round(self._right)
            if self._fold + 1 < self._folds_w.shape[0]:
                self._use_fold(self._fold + 1)
                self._phase = "mean" if self.params["standardize"] else "fit"
                if not self.params["standardize"]:
                    self._start_fit()
                return
            self._score = self._right_total / self._n_validated
            self.mean, self.scale = self._mean0, self._scale0  # the details are fold 0's
            self._phase = "done"

    def _end_keys(self) -> None:
        n = self.n
        slots = np.concatenate(self._slots)
        keys = np.concatenate(self._keys)
        self._keys, self._slots = [], []
        counts = np.bincount(slots, minlength=len(self.labels))
        order = self.sorted_slots(counts)  # slots in sorted label order: the one-shot's codes
        if n < 3:
            raise ValueError(f"linear_probe needs at least 3 samples (2 classes, one of them with a sample to "
                             f"validate on), got n_samples={n}")
        if order.size < 2:
            raise ValueError(f"need at least 2 classes, got {order.size}")
        self.n_classes = int(order.size)
        self._rank = np.full(len(self.labels), -1, dtype=np.int64)
        self._rank[order] = np.arange(order.size)
        self.classes = np.asarray([self.labels.values[i] for i in order])
        codes = self._rank[slots]
        # One entry per (key 0, key 1, class): exact duplicates share it; their train share k/n.
        self._table, inv = np.unique(_records(keys, codes), return_inverse=True)
        # the table's columns, contiguous (gathers of 8-byte items are cheaper than of 24-byte records)
        self._k0, self._k1, self._kc = (np.ascontiguousarray(self._table[f]) for f in ("k0", "k1", "c"))
        self._step = _block_rows(self.d, self.n_classes)
        group_size = np.bincount(inv)
        cv = self.params["cv"]
        if cv is None:
            train_idx, val_idx = stratified_split(keys, codes, self.n_classes, self.params["val_fraction"])
            self.n_train, self.n_val = int(train_idx.size), int(val_idx.size)
            is_train = np.zeros(n)
            is_train[train_idx] = 1.0
            self._wtrain = np.bincount(inv, weights=is_train) / group_size
            return
        folds = stratified_folds(keys, codes, self.n_classes, cv)
        self._folds_w = np.stack([np.bincount(inv, weights=(folds != k).astype(np.float64)) / group_size
                                  for k in range(cv)])
        self._fold_sizes = np.bincount(folds[folds >= 0], minlength=cv)
        self._n_validated = int(self._fold_sizes.sum())
        self._n_rows = n
        self._use_fold(0)

    def _use_fold(self, k: int) -> None:
        """Passes 2-5 of fold k: its train shares and sizes."""
        self._fold = k
        self._wtrain = self._folds_w[k]
        self.n_val = int(self._fold_sizes[k])
        self.n_train = self._n_rows - self.n_val

    def _start_fit(self) -> None:
        p = self.params
        self._opt = lbfgs_solver(self.n_classes, self.d, p["max_iter"], p["tol"])
        self._set_point(self._opt.point)

    def _set_point(self, theta: np.ndarray) -> None:
        self._theta = theta
        self._W, self._b = split_theta(theta, self.n_classes, self.d)

    def _end_fit(self) -> None:
        if self._opt is None:
            raise ValueError("this state is a fork: merge it into the state it was forked from, which ends the pass")
        p = self.params
        opt = self._opt
        opt.tell(*probe_objective(self._theta, self._loss, self._gWT.T, self._gb, self.n_train, p["C"]))
        if not opt.done:
            self._set_point(opt.point)
            return
        x, f, nit, status = opt.result
        warn_max_iter(status, p["max_iter"], p["tol"], stacklevel=4)
        self._set_point(x)
        if self._fold == 0:  # with cv, the details are fold 0's (as the one-shot's)
            self.coef, self.intercept = self._W, self._b
            self.loss, self.n_iter, self.converged = float(f), int(nit), status != 1
            self.n_evals = opt.n_evals  # = the number of fit passes
            self._mean0, self._scale0 = self.mean, self.scale
        else:
            self.converged = self.converged and status != 1
            self.n_evals += opt.n_evals
        self._opt = None
        self._phase = "accuracy"

    def _compute(self) -> float:
        if self._phase == "done":
            return self._score
        if self._folds_w is not None:
            if self._fold + 1 < self._folds_w.shape[0]:
                raise ValueError("LinearProbeStream: folds are left to run; call end_pass() and feed the rows "
                                 "again until st.complete")
            return (self._right_total + round(self._right)) / self._n_validated
        return round(self._right) / self.n_val  # during the accuracy pass, once every row is in
