"""select.race: the guarantee's coverage measured on many seeded races (wrong-pick rate <= delta, and the
same check failing for a bound made too narrow), the exhaustive fallback equal to knn_loo bit for bit, the
bound against its formula, memory-mapped banks with max_memory, Dask, bad input."""
from __future__ import annotations

import math

import numpy as np
import pytest

import transferlab as tl
from transferlab import race as race_mod

from conftest import class_data, digest


def _column_rows(x, labels, rows, **kw):
    """A per-row score whose value of row i is x[i, 0]: races on populations with known means."""
    return np.asarray(x)[rows, 0].astype(np.float64)


@pytest.fixture
def column_score():
    race_mod.register_per_row("test_column", _column_rows, overwrite=True)
    yield "test_column"
    race_mod._PER_ROW.pop("test_column", None)


def _bernoulli_pool(rng, n, means, shared=0.6):
    """0/1 values per row for models with the given population rates, correlated through a shared row
    difficulty (as kNN credits of two models are); returns the (N, 1) banks and the exact population means."""
    u = rng.random(n)
    banks, exact = [], []
    for p in means:
        own = rng.random(n)
        v = np.where(rng.random(n) < shared, u, own) < p
        banks.append(v.astype(np.float64)[:, None])
        exact.append(float(v.mean()))
    return banks, np.array(exact)


def _wrong_pick_rate(score, races=300, delta=0.1, epsilon=0.0):
    rng = np.random.default_rng(2026)
    y = np.arange(4000) % 2
    wrong = 0
    for r in range(races):
        banks, exact = _bernoulli_pool(rng, 4000, [0.70, 0.67, 0.66, 0.60])
        res = tl.select.race(banks, y, score=score, delta=delta, epsilon=epsilon, first_rows=64, seed=r)
        wrong += exact[int(res.chosen)] < exact.max() - epsilon
    return wrong / races


def test_coverage_wrong_pick_rate_at_most_delta(column_score):
    assert _wrong_pick_rate(column_score, delta=0.1) <= 0.1
    assert _wrong_pick_rate(column_score, races=150, delta=0.1, epsilon=0.02) <= 0.1


def test_coverage_check_fails_for_a_too_narrow_bound(column_score, monkeypatch):
    # The same measurement has power: with the radius cut to 2% it picks wrong far more often than delta.
    real = race_mod.bernstein_serfling_radius
    monkeypatch.setattr(race_mod, "bernstein_serfling_radius", lambda *a: 0.02 * real(*a))
    assert _wrong_pick_rate(column_score, races=150, delta=0.1) > 0.1


def test_race_on_knn_picks_the_exhaustive_winner_in_every_seeded_run():
    X, y = class_data(n=1500, d=8, c=4, sep=1.0, seed=1)
    rng = np.random.default_rng(3)
    banks = {f"m{j}": (X * s + rng.normal(size=X.shape)).astype(np.float32)
             for j, s in enumerate([0.4, 1.5, 0.9, 0.85, 0.2])}
    exact = {k: tl.knn_loo(v, y) for k, v in banks.items()}
    best = max(exact, key=exact.get)
    for seed in range(3):
        res = tl.select.race(banks, y, first_rows=128, seed=seed)
        assert res.chosen == best
        assert res.rows_used[best] < 1500 or res.exact
        for k in banks:
            lo, hi = res.intervals[k]
            assert lo <= res.estimates[k] <= hi
    with pytest.MonkeyPatch.context() as mp:  # the query path only: the same values, so the same race
        mp.setattr(race_mod, "FULL_FRACTION", 2.0)
        alone = tl.select.race(banks, y, first_rows=128, seed=2)
    assert (alone.chosen, alone.estimates, alone.rows_used) == (res.chosen, res.estimates, res.rows_used)


def test_exhaustive_fallback_equals_knn_loo_exactly():
    X, y = class_data(n=700, d=6, c=3, sep=1.0, seed=4)
    X2 = X.copy()  # equal scores: no bound can separate them, so the race uses every row
    before = digest(X, X2, y)
    res = tl.select.race({"a": X, "b": X2}, y, first_rows=50, seed=1)
    assert digest(X, X2, y) == before
    assert res.exact and res.rows_used == {"a": 700, "b": 700} and res.chosen == "a"
    assert res.estimates["a"] == tl.knn_loo(X, y) and res.intervals["a"] == (res.estimates["a"],) * 2
    # every round on the query path (no full pass), then every round but the first on none; k=3, cosine
    kw = {"k": 3, "metric": "cosine"}
    want = {"0": tl.knn_loo(X, y, **kw), "1": tl.knn_loo(X2, y, **kw)}
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(race_mod, "FULL_FRACTION", 2.0)
        res = tl.select.race([X, X2], y, first_rows=50, score_kwargs=kw)
    assert res.exact and res.rounds == [50, 100, 200, 400, 700] and res.estimates == want
    res = tl.select.race([X, X2], y, first_rows=200, score_kwargs=kw)  # 200 >= 700 / 4: a full pass first
    assert res.exact and res.rounds == [200, 400, 700] and res.estimates == want


def test_bernstein_serfling_radius_formula():
    n, N, s, R, d = 100, 1000, 0.3, 2.0, 0.01
    L = math.log(5 / d)
    want = s * math.sqrt(2 * (1 - 99 / 1000) * L / 100) + (7 / 3 + 3 / math.sqrt(2)) * R * L / 100
    assert race_mod.bernstein_serfling_radius(n, N, s, R, d) == pytest.approx(want, rel=1e-15)
    want = s * math.sqrt(2 * (1 - 0.6) * (1 + 1 / 600) * L / 600) + (7 / 3 + 3 / math.sqrt(2)) * R * L / 600
    assert race_mod.bernstein_serfling_radius(600, N, s, R, d) == pytest.approx(want, rel=1e-15)
    assert race_mod.bernstein_serfling_radius(N, N, s, R, d) == 0.0


def _radius_failure_rate(population, n, delta, shrink=1.0, draws=4000, seed=7):
    """How often the mean of n values drawn without replacement undershoots the population mean by more than
    the (shrunk) Bernstein-Serfling radius computed from the sample itself (its 1/n standard deviation)."""
    rng = np.random.default_rng(seed)
    pop = np.asarray(population, dtype=np.float64)
    mu, width = pop.mean(), 1.0
    fails = 0
    for _ in range(draws):
        s = pop[rng.permutation(pop.size)[:n]]
        r = race_mod.bernstein_serfling_radius(n, pop.size, float(s.std()), width, delta)
        fails += mu - s.mean() > shrink * r
    return fails / draws


@pytest.mark.parametrize("population", [
    np.r_[np.ones(8), np.zeros(392)],                      # a rare success: the sample is often all zeros
    np.r_[np.ones(200), np.zeros(200)],                    # the widest variance
    np.linspace(0.0, 1.0, 400) ** 4,                       # skewed, continuous
])
@pytest.mark.parametrize("n", [10, 60, 250])
def test_bernstein_serfling_radius_covers_at_its_level(population, n):
    # The bound itself (not the race): sampling without replacement, each side at delta. A radius built with
    # the wrong constants (log(1/delta) for log(5/delta), a 1/(n-1) variance, rho past N/2) would show here
    # first on the small or the nearly exhausted samples.
    assert _radius_failure_rate(population, n, delta=0.05) <= 0.05


def test_bernstein_serfling_radius_coverage_check_has_power():
    # The same measurement fails for a radius cut to a tenth: it can tell a wrong bound from a right one.
    assert _radius_failure_rate(np.r_[np.ones(200), np.zeros(200)], 60, delta=0.05, shrink=0.1) > 0.05


def test_memory_mapped_banks_with_max_memory(tmp_path):
    X, y = class_data(n=900, d=12, c=3, sep=1.0, seed=5)
    rng = np.random.default_rng(6)
    arrays = [X, (X * 0.3 + rng.normal(size=X.shape)).astype(np.float32)]
    paths = []
    for j, a in enumerate(arrays):
        paths.append(str(tmp_path / f"m{j}.npy"))
        np.save(paths[-1], a)
    got = tl.select.race(paths, y, first_rows=100, max_memory="4MB")
    want = tl.select.race(arrays, y, first_rows=100)
    assert (got.chosen, got.estimates, got.rows_used) == (want.chosen, want.estimates, want.rows_used)
    bank = tl.FeatureBank(arrays[1], y)
    assert tl.select.race({"a": arrays[0], "b": bank}, y, first_rows=100).estimates == {
        "a": want.estimates["0"], "b": want.estimates["1"]}


def test_race_on_dask_equals_local():
    distributed = pytest.importorskip("distributed")
    X, y = class_data(n=600, d=8, c=3, sep=1.0, seed=7)
    banks = [X, X[:, ::-1] * 0.2 + np.random.default_rng(8).normal(size=X.shape).astype(np.float32)]
    want = tl.select.race(banks, y, first_rows=64)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        got = tl.select.race(banks, y, first_rows=64, client=client)
    assert (got.chosen, got.estimates, got.rows_used) == (want.chosen, want.estimates, want.rows_used)


def test_a_remote_race_connects_once_for_all_its_rounds(monkeypatch):
    # scheduler='local' starts a LocalCluster per connect: once per race, not once per round
    distributed = pytest.importorskip("distributed")
    import contextlib

    from transferlab import _dask

    X, y = class_data(n=600, d=8, c=3, sep=1.0, seed=7)
    banks = [X, X[:, ::-1] * 0.2 + np.random.default_rng(8).normal(size=X.shape).astype(np.float32)]
    want = tl.select.race(banks, y, first_rows=16, growth=1.5)
    assert len(want.rounds) >= 3  # the case under test
    opened, closed = [], []

    @contextlib.contextmanager
    def counting(client=None, scheduler=None):
        opened.append(scheduler)
        yield client
        closed.append(scheduler)

    monkeypatch.setattr(_dask, "connect", counting)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        got = tl.select.race(banks, y, first_rows=16, growth=1.5, client=client)
    assert (got.chosen, got.estimates, got.rows_used) == (want.chosen, want.estimates, want.rows_used)
    assert len(opened) == 1 and len(closed) == 1


def test_bad_input(column_score):
    X, y = class_data(n=200, d=4, c=2)
    with pytest.raises(ValueError, match="delta"):
        tl.select.race([X, X], y, delta=1.5)
    with pytest.raises(TypeError, match="delta"):
        tl.select.race([X, X], y, delta="0.1")
    with pytest.raises(ValueError, match="epsilon"):
        tl.select.race([X, X], y, epsilon=-0.1)
    with pytest.raises(ValueError, match="epsilon"):
        tl.select.race([X, X], y, epsilon=float("nan"))
    with pytest.raises(ValueError, match="per-row-mean score"):
        tl.select.race([X, X], y, score="logme")
    with pytest.raises(ValueError, match="at least 2 models"):
        tl.select.race([X], y)
    with pytest.raises(ValueError, match="same N samples"):
        tl.select.race([X, X[:100]], y)
    with pytest.raises(ValueError, match="first_rows"):
        tl.select.race([X, X], y, first_rows=1)
    with pytest.raises(ValueError, match="growth"):
        tl.select.race([X, X], y, growth=1.0)
    with pytest.raises(ValueError, match="queries"):
        tl.select.race([X, X], y, score_kwargs={"queries": 5})
    with pytest.raises(ValueError, match="not a .npy"):
        tl.select.race(["x.csv", X], y)
    with pytest.raises(TypeError, match="banks"):
        tl.select.race("banks/", y)
    with pytest.raises(ValueError, match="left its bounds"):
        tl.select.race([X * 0 + 2.0, X], y, score=column_score)


def test_a_model_whose_rows_fail_is_named_and_nan_policy_is_refused():
    rng = np.random.default_rng(5)
    y = np.arange(200) % 2
    ok, holey = rng.normal(size=(200, 4)), rng.normal(size=(200, 4))
    holey[9, 1] = np.nan
    with pytest.raises(ValueError, match=r"banks\['holey'\]: .*NaN or inf in 1 row"):
        tl.select.race({"ok": ok, "holey": holey}, y, first_rows=200)
    with pytest.raises(ValueError, match="nan_policy"):  # omitted rows would leave drawn rows without values
        tl.select.race({"ok": ok, "holey": holey}, y, score_kwargs={"nan_policy": "omit"})
