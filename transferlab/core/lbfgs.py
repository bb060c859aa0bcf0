"""One L-BFGS for every fitted probe: the one-shot linear probe evaluates its objective over row
blocks in memory, the streaming probe by one pass over the bank per evaluation; both drive
:class:`LBFGS` (reverse communication), so they run the same algorithm and the same bits."""
from __future__ import annotations

import math
from typing import List, Optional, Tuple

import numpy as np

__all__ = ["LBFGS", "minimize", "dot"]


def dot(a: np.ndarray, b: np.ndarray) -> float:
    # np.sum's pairwise summation is single-threaded, so unlike a threaded BLAS ddot it gives the
    # same bits for any thread count.
    return float(np.sum(a * b))


class LBFGS:
    """L-BFGS in reverse-communication form: the caller evaluates, the solver steps.

        opt = LBFGS(x0, max_iter, gtol, ftol)
        while not opt.done:
            opt.tell(*fun(opt.point))          # (f, g) at opt.point
        x, f, n_iter, status = opt.result

    Why this form: the one-shot probe evaluates ``fun`` by looping over row blocks in memory, the
    streaming probe by one pass over the bank per evaluation (``scores/linear_probe/stream.py``); both drive
    this one solver, so they run the same algorithm. The state is plain attributes (it pickles and
    deep-copies, as streaming states must).

    Minimises a smooth convex function by L-BFGS (two-loop recursion, memory m) with an Armijo
    backtracking line search (quadratic interpolation, safeguarded to [0.1, 0.5] of the step).
    scipy's L-BFGS-B spends ~0.2 s per iteration on its bound bookkeeping at 10^5+ unknowns, as much
    as a loss pass; without bounds the plain recursion costs a few vector operations.
    Stops when ``max|g| <= gtol`` or the relative decrease of f is ``<= ftol`` (status 0), at
    ``max_iter`` iterations (status 1), or when 50 backtracking steps do not decrease f (status 2:
    f is at the precision floor). ``result`` is (x, f, iterations, status).
    """

    _BACKTRACKS = 50

    def __init__(self, x0: np.ndarray, max_iter: int, gtol: float, ftol: float, m: int = 10):
        self.max_iter, self.gtol, self.ftol, self.m = max_iter, gtol, ftol, m
        self.x = np.array(x0, dtype=np.float64)  # a copy
        self.point = self.x  # where the caller evaluates next
        self.f: Optional[float] = None
        self.g: Optional[np.ndarray] = None
        self.S: List[np.ndarray] = []
        self.Y: List[np.ndarray] = []
        self.rho: List[float] = []
        self.it = 0
        self.n_evals = 0
        self.result: Optional[Tuple[np.ndarray, float, int, int]] = None
        self._searching = False  # False: point is x itself (the first evaluation); True: a trial step

    @property
    def done(self) -> bool:
        return self.result is not None

    def tell(self, f: float, g: np.ndarray) -> None:
        """Report ``(f, g)`` at ``self.point``; moves ``point`` on (or sets ``result``)."""
        if self.done:
            raise RuntimeError("L-BFGS has finished; read .result")
        self.n_evals += 1
        if not self._searching:
            self.f, self.g = f, g
            self._next_iteration()
            return
        f_new, g_new = f, g
        if not (f_new <= self.f + 1e-4 * self.step * self.slope):  # Armijo fails: backtrack
            # minimiser of the quadratic through f, slope and f_new, kept in [0.1, 0.5] * step
            step, slope = self.step, self.slope
            t = -slope * step * step / (2.0 * (f_new - self.f - slope * step))
            self.step = min(max(t, 0.1 * step), 0.5 * step) if math.isfinite(t) else 0.1 * step
            self.tries += 1
            if self.tries == self._BACKTRACKS:
                self._finish(self.it, 2)
            else:
                self.point = self.x + self.step * self.q
            return
        x_new = self.point
        s_vec, y_vec = x_new - self.x, g_new - self.g
        sy = dot(s_vec, y_vec)
        if sy > 1e-10 * dot(y_vec, y_vec):  # keep the curvature pairs that keep H positive
            self.S.append(s_vec), self.Y.append(y_vec), self.rho.append(1.0 / sy)
            if len(self.S) > self.m:
                self.S.pop(0), self.Y.pop(0), self.rho.pop(0)
        f = self.f
        decrease = (f - f_new) / max(abs(f), abs(f_new), np.finfo(float).tiny)
        self.x, self.f, self.g = x_new, f_new, g_new
        self.it += 1
        if decrease <= self.ftol:
            self._finish(self.it, 0)
        else:
            self._next_iteration()

    def _next_iteration(self) -> None:
        """Start iteration ``self.it`` at (x, f, g): the two-loop direction and the first trial step."""
        g, S, Y, rho = self.g, self.S, self.Y, self.rho
        if self.it >= self.max_iter:
            self._finish(self.max_iter, 0 if np.max(np.abs(g)) <= self.gtol else 1)
            return
        if np.max(np.abs(g)) <= self.gtol:
            self._finish(self.it, 0)
            return
        q = -g
        alpha = []
        for s_, y_, r_ in zip(reversed(S), reversed(Y), reversed(rho)):
            a = r_ * dot(s_, q)
            alpha.append(a)
            q = q - a * y_
        if S:
            q = q * (dot(S[-1], Y[-1]) / dot(Y[-1], Y[-1]))
            step = 1.0
        else:
            step = 1.0 / math.sqrt(dot(g, g))  # first step: unit length along -g
        for s_, y_, r_, a in zip(S, Y, rho, reversed(alpha)):
            q = q + (a - r_ * dot(y_, q)) * s_
        slope = dot(g, q)
        if slope >= 0:  # not a descent direction (numerical breakdown): restart from steepest descent
            S.clear(), Y.clear(), rho.clear()
            q, step = -g, 1.0 / math.sqrt(dot(g, g))
            slope = dot(g, q)
        self.q, self.step, self.slope, self.tries = q, step, slope, 0
        self._searching = True
        self.point = self.x + step * q

    def _finish(self, n_iter: int, status: int) -> None:
        self.result = (self.x, self.f, n_iter, status)
        self.point = None
        self.S, self.Y, self.rho = [], [], []  # the memory is no longer needed


def minimize(fun, x0: np.ndarray, max_iter: int, gtol: float, ftol: float, m: int = 10):
    """Minimise ``fun(x) -> (f, g)`` with :class:`LBFGS`; returns (x, f, iterations, status)."""
    opt = LBFGS(x0, max_iter, gtol, ftol, m)
    while not opt.done:
        opt.tell(*fun(opt.point))
    return opt.result
