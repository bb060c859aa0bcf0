"""Racing a pool: find the model with the best per-row-mean score without scoring every row of every model.

    res = tl.select.race({"resnet": X1, "vit": X2, "effnet": X3}, y)           # knn_loo, delta=0.05
    res.chosen, res.estimates, res.intervals, res.rows_used, res.seconds, res.exhaustive_seconds

Why it works. ``knn_loo`` is a mean over rows of a per-row credit in [0, 1], and ``knn_loo(queries=rows)``
gives each row's credit exactly (the neighbours of a query row come from the model's *whole* bank), so the
credits of a random subset of rows are a sample, without replacement, from the finite population whose
mean is the exhaustive score. All models are scored on the *same* rows (the first n of one seeded random
permutation of 0..N-1), so the per-row differences between two models are paired: row difficulty cancels.

Rounds. The rows used grow geometrically, n_1 < n_2 < ... < n_R = N (``first_rows``, times ``growth``), a
schedule fixed before any row is scored. After each round, the leader L is the surviving model with the
highest mean credit on the rows so far (ties: the earlier model). For each other survivor j the paired
differences ``d_i = c_L,i - c_j,i`` (values in [-1, 1]) give a lower confidence bound

    LCB(L, j) = mean(d) - r,   r = s * sqrt(2 rho log(5/delta') / n) + kappa * 2 * log(5/delta') / n

the empirical Bernstein-Serfling bound for sampling without replacement (Bardenet & Maillard 2015,
Bernoulli 21(3), Theorem 3): s the standard deviation of d over the n rows (1/n normalisation), rho =
1 - (n-1)/N for n <= N/2 else (1 - n/N)(1 + 1/n), kappa = 7/3 + 3/sqrt(2), range 2, and
``delta' = delta / ((M - 1) R)`` for M models. The constants (log(5/delta), kappa, the two cases of rho, the
1/n standard deviation, the range b - a) are the theorem's (probability 1 - 5 delta for log(1/delta)),
checked against an independent implementation of the bound; ``tests/select/test_race.py`` also measures the
bound's own coverage on populations chosen to strain it (rare successes, nearly exhausted samples). Then

* j is eliminated when LCB(L, j) > 0 (worse than the leader);
* the race stops with L when LCB(L, j) >= -epsilon for every survivor j (L is within epsilon of each), in
  particular when L is the only survivor;
* at n = N every estimate is the exhaustive score: the survivors are ranked exactly (ties: earlier model).

Guarantee (``delta``, ``epsilon``). With probability at least ``1 - delta`` over the row permutation, the
chosen model's exhaustive score is at least the best exhaustive score in the pool minus ``epsilon``.
Proof sketch: let b be a model with the best exhaustive score. The bounds used on pairs (L, b), L != b, at the
R rounds are at most (M - 1) R events of probability <= delta' each of failing; outside their union, b is
never eliminated (LCB(L, b) <= d(L, b) <= 0) and at a stop the chosen L has d(L, b) >= LCB(L, b) >= -epsilon.
If the race runs out of rows the answer is the exhaustive one: ``RaceResult.exact`` is True and the chosen
model's score equals ``knn_loo`` bit for bit (the credits of all N rows, summed in row order). The bound is
conservative (often far from delta in practice); ``tests/select/test_race.py`` measures the wrong-pick rate
on many seeded races.

Scores. ``score="knn_loo"`` (options through ``score_kwargs``, e.g. ``{"k": 5, "metric": "cosine"}``; its
``max_memory=`` streams each model's bank in bounded blocks, so memory-mapped banks stay on disk) or any
score registered with :func:`register_per_row`: a function ``(features, labels, rows, **kw) -> values of
those rows in [lo, hi]`` whose mean over all N rows is the score. The linear probe is not registered: its
per-row out-of-fold correctness needs the folds' fitted probes, i.e. the whole fit, so racing saves nothing.

Banks: ``{name: bank}`` or a sequence (names "0", "1", ...); a bank is an (N, D) array, a ``.npy`` path
(memory-mapped) or a :class:`transferlab.FeatureBank`; all on the same N rows and labels. ``client=`` /
``scheduler=`` score the models of each round as Dask tasks (one per surviving model; ``.npy`` paths are
opened on the workers, arrays are shipped). A torch tensor on a CUDA device races too, but only its full
pass runs on the device: ``knn_loo(queries=)`` has no CUDA kernel, so each query round copies the bank to the
host and scores the rows there (the device's full kernel is fast enough that an early full pass is often the
cheaper plan on a GPU; not measured here: no GPU was lent).
"""
from __future__ import annotations

import contextlib
import math
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from transferlab.core.types import ArrayLike, MemoryBudget
from transferlab.core.arrays import as_labels
from transferlab.core.paired import paired_difference

__all__ = ["RaceResult", "race", "register_per_row", "per_row_scores", "bernstein_serfling_radius"]

_KAPPA = 7.0 / 3.0 + 3.0 / math.sqrt(2.0)

# A round that adds at least this fraction of the N rows runs a registered full pass instead (same values, bit
# for bit). Chosen where the two cost the same: knn_loo's query path (``_C.knn_cross``) measured 1.7-2.2x the
# symmetric kernel's cost per row on 2 cores (N=20,000 at D=32/128/768 and N=100,000 at D=64, 1,000 to N/4 query
# rows; ``python bench/bench_knn_cross.py --rounds 5``; 1,000 rows at D=32, 7 ms calls, reached 2.8x in noisier
# 2-round runs), so q query rows cost q / N times 1.7-2.2 full passes: one pass at q = 0.45-0.60 N. Each query
# row costs N D multiply-adds against N D / 2 for a row of the full pass, hence ~2x.
FULL_FRACTION = 0.5


@dataclass(frozen=True)
class RaceResult:
    """What :func:`race` found.

    chosen: the model picked. estimates: each model's mean per-row value on the rows it was scored on (the
    exhaustive score where ``rows_used == n_rows``). intervals: a two-sided confidence interval on each
    model's exhaustive score (empirical Bernstein-Serfling, each side at ``delta'``; exact where all rows were
    used). rows_used: rows each model was scored on. eliminated: ``{model: rows used when eliminated}``.
    seconds: wall-clock of the race. exhaustive_seconds: what scoring every row of every model would have
    cost, estimated from the race's own timings: a model's full pass where one ran, else its query-path time per
    row times N (the query path costs about twice the symmetric full kernel per row, so this overstates
    the exhaustive knn_loo about twofold; bench/bench_race.py times that directly). exhaustive_rows = M * N.
    exact: whether the answer is the exhaustive one (every row of the survivors scored).
    """

    chosen: str
    estimates: Dict[str, float]
    intervals: Dict[str, Tuple[float, float]]
    rows_used: Dict[str, int]
    eliminated: Dict[str, int]
    seconds: float
    exhaustive_seconds: float
    n_rows: int
    score: str
    delta: float
    epsilon: float
    exact: bool
    rounds: List[int] = field(default_factory=list)

    @property
    def rows_scored(self) -> int:
        """Query rows scored over all models."""
        return int(sum(self.rows_used.values()))

    @property
    def exhaustive_rows(self) -> int:
        return self.n_rows * len(self.rows_used)


# ------------------------------------------------------------------------------ per-row scores

_PER_ROW: Dict[str, Tuple[Callable[..., np.ndarray], Tuple[float, float]]] = {}
_FULL: Dict[str, Callable[..., np.ndarray]] = {}


def register_per_row(name: str, fn: Callable[..., np.ndarray], bounds: Tuple[float, float] = (0.0, 1.0), *,
                     full: Optional[Callable[..., np.ndarray]] = None, overwrite: bool = False) -> None:
    """Make ``race(score=name)`` available: ``fn(features, labels, rows, **kw)`` returns the values of ``rows``
    (int64 indices) within ``bounds``, and the score is their mean over all rows. ``full(features, labels,
    **kw)``, if given, returns all N values at once, bit for bit ``fn`` on every row, for less than scoring
    a fraction of the rows one by one (knn_loo: the symmetric in-memory kernel, N^2 D / 2 against q N D for q
    query rows): the race uses it for a round that adds at least ``FULL_FRACTION`` of the rows, and the model's
    later rounds then cost nothing. ``rows_used`` still counts the rows the decisions used."""
    if not isinstance(name, str) or not name:
        raise ValueError("name must be a non-empty string")
    if not callable(fn):
        raise TypeError(f"fn must be callable, got {type(fn).__name__}")
    lo, hi = (float(b) for b in bounds)
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ValueError(f"bounds must be finite (lo, hi) with lo < hi, got {bounds!r}")
    if name in _PER_ROW and not overwrite:
        raise ValueError(f"a per-row score named {name!r} is already registered (pass overwrite=True)")
    _PER_ROW[name] = (fn, (lo, hi))
    _FULL.pop(name, None)
    if full is not None:
        _FULL[name] = full


def per_row_scores() -> List[str]:
    """The scores :func:`race` accepts."""
    return sorted(_PER_ROW)


def _knn_rows(features, labels, rows: np.ndarray, **kw) -> np.ndarray:
    from transferlab.scores.knn.one_shot import knn_loo

    return np.asarray(knn_loo(features, labels, queries=rows, return_details=True, **kw).correct, dtype=np.float64)


def _knn_full(features, labels, **kw) -> np.ndarray:
    from transferlab.scores.knn.one_shot import knn_loo

    return np.asarray(knn_loo(features, labels, return_details=True, **kw).correct, dtype=np.float64)


register_per_row("knn_loo", _knn_rows, full=_knn_full)


# ------------------------------------------------------------------------------ the bound


def bernstein_serfling_radius(n: int, population: int, std: float, value_range: float, delta: float) -> float:
    """One-sided radius r with P(mean_N - mean_n > r) <= delta for n values drawn without replacement from N
    (Bardenet & Maillard 2015, Theorem 3; ``std`` with the 1/n normalisation). 0 once n == N."""
    if n >= population:
        return 0.0
    rho = 1.0 - (n - 1) / population if n <= population / 2 else (1.0 - n / population) * (1.0 + 1.0 / n)
    log_term = math.log(5.0 / delta)
    return std * math.sqrt(2.0 * rho * log_term / n) + _KAPPA * value_range * log_term / n


# ------------------------------------------------------------------------------ banks


def _bank_items(banks) -> List[Tuple[str, Any]]:
    if isinstance(banks, Mapping):
        items = [(str(k), v) for k, v in banks.items()]
    elif isinstance(banks, (str, bytes)) or not hasattr(banks, "__len__"):
        raise TypeError("banks must be a mapping {name: bank} or a sequence of banks (arrays, .npy paths, "
                        "FeatureBanks)")
    else:
        items = [(str(j), v) for j, v in enumerate(banks)]
    if len(items) < 2:
        raise ValueError(f"banks: a race needs at least 2 models, got {len(items)}")
    return items


def _open(bank: Any) -> Any:
    """An array-like of the bank's features (a .npy path memory-mapped, a FeatureBank's features)."""
    if isinstance(bank, (str, os.PathLike)):
        path = os.fspath(bank)
        if not path.endswith(".npy"):
            raise ValueError(f"banks: {path!r} is not a .npy file (pass arrays, .npy paths or FeatureBanks)")
        return np.load(path, mmap_mode="r")
    return getattr(bank, "features", bank)


def _rows_of(x: Any, name: str) -> int:
    shape = getattr(x, "shape", None)
    if shape is None or len(shape) != 2:
        raise ValueError(f"banks[{name!r}] must be an (N, D) feature array, got shape {shape}")
    return int(shape[0])


def _check_number(value, what: str, ok: Callable[[float], bool], where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{what} must be a number, got {type(value).__name__}")
    v = float(value)
    if not ok(v):
        raise ValueError(f"{what} must be {where}, got {value!r}")
    return v


def _schedule(n: int, first_rows: int, growth: float) -> List[int]:
    out, cur = [], float(min(first_rows, n))
    while True:
        out.append(int(min(n, round(cur))))
        if out[-1] >= n:
            return out
        cur = max(cur * growth, out[-1] + 1)


# ------------------------------------------------------------------------------ the race


def _score_rows(fn, bounds, name, x, codes, rows, kw) -> np.ndarray:
    try:
        v = np.asarray(fn(x, codes, rows, **kw), dtype=np.float64).reshape(-1)
    except (ValueError, TypeError) as e:
        if type(e) in (ValueError, TypeError):  # subclasses carry more than a message: re-raised as they are
            raise type(e)(f"banks[{name!r}]: {e}") from None  # which model of the pool, as the shape checks say
        raise
    if v.shape[0] != rows.shape[0]:
        raise ValueError(f"the per-row score returned {v.shape[0]} values for {rows.shape[0]} rows of {name!r}")
    if not np.all((v >= bounds[0]) & (v <= bounds[1])):
        raise ValueError(f"the per-row score of {name!r} left its bounds {bounds} (or is NaN)")
    return v


def _score_round(fn, full, bounds, name, x, codes, rows, n, kw) -> Tuple[np.ndarray, bool]:
    """(values, whether they are every row's): the full pass when it is given and the round adds at least
    ``FULL_FRACTION`` of the rows, else the values of ``rows``."""
    if full is not None and rows.shape[0] >= FULL_FRACTION * n:
        every = _score_rows(lambda x, c, r, **k: full(x, c, **k), bounds, name, x, codes, np.arange(n), kw)
        return every, True
    return _score_rows(fn, bounds, name, x, codes, rows, kw), False


def _remote_rows(fn, full, bounds, name, bank, codes, rows, n, kw) -> Tuple[np.ndarray, bool, float]:
    """One model's rows on a Dask worker: (values, every row's, seconds)."""
    t0 = time.perf_counter()
    v, every = _score_round(fn, full, bounds, name, _open(bank), codes, rows, n, kw)
    return v, every, time.perf_counter() - t0


def _lower_bounds(values: np.ndarray, leader: int, alive: List[int], population: int, diff_range: float,
                  delta: float) -> Dict[int, float]:
    """``{j: LCB(leader, j)}`` for every other survivor j: the mean paired difference of the leader's and j's
    values (``values``: models x the rows drawn so far) minus its Bernstein-Serfling radius at ``delta``."""
    n_r = values.shape[1]
    lcb = {}
    for j in alive:
        if j == leader:
            continue
        pd = paired_difference(values[leader], values[j])
        std = pd.se * math.sqrt(max(pd.n - 1, 0))  # the 1/n standard deviation of d
        lcb[j] = pd.mean - bernstein_serfling_radius(n_r, population, std, diff_range, delta)
    return lcb


def _check_options(score: str, delta: Any, epsilon: Any, first_rows: Any, growth: Any, max_memory: MemoryBudget,
                   score_kwargs: Optional[Mapping[str, Any]]):
    """race's options checked before any bank is opened (also by ``transferlab race``, before it reads its
    inputs): (per-row fn, bounds, full pass or None, delta, epsilon, the score's keyword arguments)."""
    from transferlab.core.blocks import parse_max_memory

    if score not in _PER_ROW:
        raise ValueError(f"score must be a per-row-mean score, one of {per_row_scores()}, got {score!r} "
                         "(register others with transferlab.race.register_per_row)")
    fn, bounds = _PER_ROW[score]
    full = _FULL.get(score)
    delta = _check_number(delta, "delta", lambda v: 0.0 < v < 1.0, "in (0, 1)")
    epsilon = _check_number(epsilon, "epsilon", lambda v: 0.0 <= v < math.inf, "a finite number >= 0")
    if isinstance(first_rows, bool) or not isinstance(first_rows, (int, np.integer)) or first_rows < 2:
        raise ValueError(f"first_rows must be an int >= 2, got {first_rows!r}")
    if isinstance(growth, bool) or not isinstance(growth, (int, float)) or not growth > 1.0 or not math.isfinite(growth):
        raise ValueError(f"growth must be a number > 1, got {growth!r}")
    kw = dict(score_kwargs or {})
    if "queries" in kw or "return_details" in kw:
        raise ValueError("score_kwargs: race chooses the query rows itself (drop 'queries' / 'return_details')")
    if kw.get("nan_policy", "raise") != "raise":  # omitted rows would leave the race's rows without values
        raise ValueError("score_kwargs: a race needs every row's value; drop nan_policy and clean the NaN/inf rows")
    if max_memory is not None:
        parse_max_memory(max_memory)  # a bad budget fails here, not after the first banks are opened
        kw["max_memory"] = max_memory
    return fn, bounds, full, delta, epsilon, kw


def race(banks: Union[Mapping[str, Any], Sequence[Any]], labels: ArrayLike, *, score: str = "knn_loo", delta: float = 0.05, epsilon: float = 0.0,
         first_rows: int = 1024, growth: float = 2.0, seed: int = 0, max_memory: MemoryBudget = None,
         score_kwargs: Optional[Mapping[str, Any]] = None, client: Any = None, scheduler: Optional[str] = None
         ) -> RaceResult:
    """Race a pool of models on growing random rows; return the best (within ``epsilon``, with probability
    ``>= 1 - delta``) without scoring every row of every model. The rule and the guarantee are in the module
    docstring (``transferlab.race``).

    banks: ``{name: bank}`` or a sequence; a bank is an (N, D) array (numpy, memmap, torch), a ``.npy`` path
        or a FeatureBank; all on the same N rows. labels: the N labels (any sortable type, remapped once).
    score: a per-row-mean score (:func:`per_row_scores`; ``"knn_loo"`` by default).
    delta: in (0, 1), the allowed probability of a pick worse than best - epsilon. epsilon: >= 0, the slack
        in the score's units (0: the best model itself, with probability >= 1 - delta).
    first_rows, growth: the row schedule (first round's rows, factor per round, up to N).
    seed: the row permutation. max_memory: passed to the score (knn_loo streams its blocks within it); the
        race itself holds M x N float64 per-row values (8 bytes per row and model) beside the banks.
    score_kwargs: the score's options (e.g. ``{"k": 5}``). client / scheduler: score each round's models
        as Dask tasks (``transferlab._dask.connect``).
    """
    fn, bounds, full, delta, epsilon, kw = _check_options(score, delta, epsilon, first_rows, growth, max_memory,
                                                          score_kwargs)
    items = _bank_items(banks)
    names = [nm for nm, _ in items]
    if len(set(names)) != len(names):
        raise ValueError("banks: model names must be distinct")
    opened = [_open(b) for _, b in items]
    n = _rows_of(opened[0], names[0])
    for nm, x in zip(names[1:], opened[1:]):
        if _rows_of(x, nm) != n:
            raise ValueError(f"every model must embed the same N samples: banks[{names[0]!r}] has {n} rows, "
                             f"banks[{nm!r}] has {_rows_of(x, nm)}")
    codes = as_labels(labels, n, "labels", min_classes=2).codes
    m = len(items)
    sched = _schedule(n, int(first_rows), float(growth))
    delta_p = delta / ((m - 1) * len(sched))
    perm = np.random.default_rng(seed).permutation(n).astype(np.int64)
    values = np.zeros((m, n))  # per-row values at their row positions (exhaustive: the score's own order)
    used = np.zeros(m, dtype=np.int64)
    spent = np.zeros(m)
    alive = list(range(m))
    eliminated: Dict[str, int] = {}
    t_start = time.perf_counter()
    width = bounds[1] - bounds[0]

    complete = np.zeros(m, dtype=bool)  # every value of the model already known (a full pass ran)
    full_seconds = np.full(m, np.nan)  # the full pass's own time, where one ran

    def store(j: int, rows: np.ndarray, v: np.ndarray, every: bool, sec: float) -> None:
        if every:
            values[j] = v
            complete[j] = True
            full_seconds[j] = sec
        else:
            values[j, rows] = v
            spent[j] += sec

    def run_round(lo: int, hi: int) -> None:
        rows = perm[lo:hi]
        todo = [j for j in alive if not complete[j]]
        if client is None and scheduler is None:
            for j in todo:
                t0 = time.perf_counter()
                v, every = _score_round(fn, full, bounds, names[j], opened[j], codes, rows, n, kw)
                sec = time.perf_counter() - t0
                store(j, rows, v, every, sec)
        elif todo:
            if not dask:  # connected once, on the first remote round: scheduler='local' starts one cluster
                from transferlab._dask import connect

                dask.append(session.enter_context(connect(client, scheduler)))
            futs = {j: dask[0].submit(_remote_rows, fn, full, bounds, names[j], items[j][1], codes, rows, n, kw,
                                      pure=False)
                    for j in todo}
            for j, f in futs.items():
                store(j, rows, *f.result())
        used[alive] = hi

    dask: List[Any] = []  # the Dask client of a remote race, shared by its rounds
    with contextlib.ExitStack() as session:
        prev = 0
        chosen = None
        for n_r in sched:
            run_round(prev, n_r)
            prev = n_r
            rows = perm[:n_r]
            means = {j: float(values[j, rows].mean()) for j in alive}
            if n_r >= n:
                break
            leader = max(alive, key=lambda j: (means[j], -j))
            lcb = _lower_bounds(values[:, rows], leader, alive, n, 2.0 * width, delta_p)
            for j, b in lcb.items():
                if b > 0.0:
                    alive.remove(j)
                    eliminated[names[j]] = n_r
            if all(b >= -epsilon for j, b in lcb.items() if j in alive):
                chosen = leader
                break
    exact = chosen is None
    if exact:  # every row of the survivors: their exhaustive scores (summed in row order, as the score does)
        totals = {j: float(values[j].mean()) for j in alive}
        chosen = max(alive, key=lambda j: (totals[j], -j))
    estimates, intervals = {}, {}
    for j in range(m):
        k = int(used[j])
        v = values[j, perm[:k]]
        if k >= n:
            est = float(values[j].mean())
            estimates[names[j]], intervals[names[j]] = est, (est, est)
            continue
        est = float(v.mean())
        r = bernstein_serfling_radius(k, n, float(v.std()), width, delta_p)
        estimates[names[j]] = est
        intervals[names[j]] = (max(bounds[0], est - r), min(bounds[1], est + r))
    seconds = time.perf_counter() - t_start
    # every row of every model: a model's full pass as timed, else its query-path time per row times N
    exhaustive = float(sum(full_seconds[j] if complete[j] else spent[j] / used[j] * n for j in range(m)))
    return RaceResult(chosen=names[chosen], estimates=estimates, intervals=intervals,
                      rows_used={names[j]: int(used[j]) for j in range(m)}, eliminated=eliminated,
                      seconds=seconds, exhaustive_seconds=exhaustive, n_rows=n, score=score, delta=delta,
                      epsilon=epsilon, exact=exact, rounds=[s for s in sched if s <= int(used.max())])
