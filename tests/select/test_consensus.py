"""select.consensus (SCORES.md "Consensus ranking") on hand cases and against a scipy rankdata oracle; the
leave-one-benchmark-out protocol against an independent brute-force oracle, and its no-leak property."""
import copy
import itertools

import numpy as np
import pytest
from scipy import stats

from transferlab import evaluate as ev
from transferlab import select
from transferlab.consensus import consensus_scores


def test_consensus_hand_case_with_ties():
    # ranks (1 = lowest): a: x1 y2 z3; b: x3 y2 z1; c: x1 y2.5 z2.5 (y, z tied) -> means x 5/3, y 13/6, z 13/6
    scores = {"a": {"x": 1, "y": 2, "z": 3}, "b": {"x": 3, "y": 2, "z": 1}, "c": {"x": 0, "y": 5, "z": 5}}
    sel = select.consensus(scores)
    assert sel.models == ("y", "z", "x")  # y, z tied at 13/6: by name
    assert sel.values == pytest.approx((13 / 6, 13 / 6, 5 / 3), abs=1e-15)
    assert sel.rules == ("consensus:mean_rank",) * 3 and sel.strategy == "consensus:mean_rank"
    assert sel.tied_groups == (("y", "z"), ("x",))  # equal mean ranks are one tied group
    assert select.consensus(scores, 1).models == ("y",)


def test_consensus_weights_hand_case():
    scores = {"a": {"x": 1, "y": 2, "z": 3}, "b": {"x": 3, "y": 2, "z": 1}}
    # equal weights: every model has mean rank 2 -> by name
    assert select.consensus(scores).models == ("x", "y", "z")
    # a weighted 3:1: z = (3*3 + 1)/4 = 2.5, y = 2, x = (3 + 3)/4 = 1.5
    sel = select.consensus(scores, weights={"a": 3, "b": 1})
    assert sel.models == ("z", "y", "x") and sel.values == pytest.approx((2.5, 2.0, 1.5))
    # a zero weight leaves the other score's ranking
    assert select.consensus(scores, weights={"a": 0, "b": 1}).models == ("x", "y", "z")


def test_consensus_equals_scipy_rankdata_oracle_and_ignores_scales():
    rng = np.random.default_rng(3)
    models = [f"m{i}" for i in range(12)]
    raw = {s: rng.integers(0, 5, size=12).astype(float) for s in ("s1", "s2", "s3")}  # many ties
    w = {"s1": 0.5, "s2": 2.0, "s3": 1.0}
    scores = {s: dict(zip(models, v)) for s, v in raw.items()}
    oracle = sum(w[s] * stats.rankdata(raw[s], method="average") for s in raw) / sum(w.values())
    keys, omitted = consensus_scores(scores, weights=w)
    assert omitted == ()
    np.testing.assert_allclose([keys[m] for m in models], oracle, rtol=0, atol=1e-12)
    expected = sorted(models, key=lambda m: (-oracle[models.index(m)], m))
    assert select.consensus(scores, weights=w).models == tuple(expected)
    # a strictly increasing transform of a member (GBC ~ -1e5 vs LogME ~ 1) changes nothing
    scaled = dict(scores, s2={m: -1e5 + 1e3 * np.exp(v) for m, v in scores["s2"].items()})
    assert select.consensus(scaled, weights=w).models == tuple(expected)


def test_consensus_bad_inputs_and_no_mutation():
    scores = {"a": {"x": 1.0, "y": 2.0}, "b": {"x": 2.0, "y": 1.0}}
    before = copy.deepcopy(scores)
    with pytest.raises(ValueError, match=r"missing from scores_by_name\['b'\]: \['z'\]"):
        select.consensus({"a": {"x": 1, "y": 2, "z": 3}, "b": {"x": 1, "y": 2}})
    with pytest.raises(ValueError, match="method must be one of"):
        select.consensus(scores, method="borda")
    with pytest.raises(ValueError, match="weights"):
        select.consensus(scores, weights={"a": 1})
    with pytest.raises(ValueError, match=r"weights\['a'\] must be finite and >= 0"):
        select.consensus(scores, weights={"a": -1, "b": 1})
    with pytest.raises(ValueError, match="at least one weight must be > 0"):
        select.consensus(scores, weights={"a": 0, "b": 0})
    with pytest.raises(TypeError, match="scores_by_name must be a mapping"):
        select.consensus([scores["a"], scores["b"]])
    with pytest.raises(ValueError, match="need at least one score"):
        select.consensus({})
    nan = {"a": {"x": 1.0, "y": float("nan"), "z": 0.0}, "b": {"x": 2.0, "y": 1.0, "z": 3.0}}
    with pytest.raises(ValueError, match=r"NaN or infinite values .*\['y'\]"):
        select.consensus(nan)
    sel = select.consensus(nan, nan_policy="omit")
    assert sel.omitted == ("y",) and set(sel.models) == {"x", "z"}
    assert scores == before


# --- leave-one-benchmark-out ------------------------------------------------------------------------------

def _random_benchmarks(seed, n_bench=4, n_models=7, n_scores=4):
    rng = np.random.default_rng(seed)
    models = [f"m{i}" for i in range(n_models)]
    truth, scores = {}, {}
    for b in range(n_bench):
        acc = rng.uniform(50, 90, n_models)
        truth[f"b{b}"] = dict(zip(models, acc))
        for s in range(n_scores):
            noise = rng.normal(0, 10 * (s + 1), n_models)  # scores of decreasing quality
            scores.setdefault(f"s{s}", {})[f"b{b}"] = dict(zip(models, acc + noise))
    return scores, truth


def _oracle_taus(scores, truth, max_members=3):
    """{subset: {benchmark: scipy weightedtau of the subset's mean rankdata}}, subsets of 2..max_members."""
    out = {}
    for r in range(2, max_members + 1):
        for sub in itertools.combinations(sorted(scores), r):
            out[sub] = {}
            for b, acc in truth.items():
                ms = sorted(acc)
                keys = np.mean([stats.rankdata([scores[s][b][m] for m in ms]) for s in sub], axis=0)
                out[sub][b] = stats.weightedtau([acc[m] for m in ms], keys).statistic
    return out


def _oracle_choice(scores, truth, held_out, taus=None):
    """Brute force with scipy only: the subset with the best mean weightedtau over the other benchmarks
    (ties: fewer members, then names)."""
    taus = taus or _oracle_taus(scores, truth)
    return min(taus, key=lambda sub: (-np.mean([t for b, t in taus[sub].items() if b != held_out]), len(sub),
                                      sub))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_lobo_choice_equals_brute_force_oracle_and_evaluates_on_the_held_out_benchmark(seed):
    scores, truth = _random_benchmarks(seed)
    res = ev.leave_one_benchmark_out(scores, truth)
    assert set(res.chosen) == set(truth)
    taus = _oracle_taus(scores, truth)
    for b, acc in truth.items():
        assert res.chosen[b] == _oracle_choice(scores, truth, b, taus)
        ms = sorted(acc)
        keys = np.mean([stats.rankdata([scores[s][b][m] for m in ms]) for s in res.chosen[b]], axis=0)
        got = res.strategies["consensus (LOBO)"][(b, None)]
        assert got["wtau"] == pytest.approx(stats.weightedtau([acc[m] for m in ms], keys).statistic, abs=1e-12)
        # exactly tied mean ranks at the top: regret@1 is the mean over the tie-breaks (issue 18)
        tops = [m for m, kv in zip(ms, keys) if kv == keys.max()]
        best = max(acc.values())
        assert got["regret@1"] == pytest.approx(np.mean([100 * (best - acc[m]) / best for m in tops]))
        # every single score is reported on every unit, unchosen
        for s in scores:
            v = [scores[s][b][m] for m in ms]
            assert res.strategies[f"score:{s}"][(b, None)]["wtau"] == pytest.approx(
                stats.weightedtau([acc[m] for m in ms], v).statistic, abs=1e-12)


def test_lobo_no_leak_held_out_data_never_changes_its_own_choice():
    scores, truth = _random_benchmarks(5, n_bench=5)
    res = ev.leave_one_benchmark_out(scores, truth)
    rng = np.random.default_rng(11)
    changed_any = False
    for b in truth:
        s2, t2 = copy.deepcopy(scores), copy.deepcopy(truth)
        # make the held-out benchmark favour the worst score outright: a leaky protocol would pick it
        t2[b] = {m: float(v) for m, v in zip(sorted(truth[b]), rng.uniform(50, 90, len(truth[b])))}
        for s in s2:
            s2[s][b] = dict(t2[b]) if s == "s3" else {m: float(v) for m, v in zip(sorted(t2[b]),
                                                                                 rng.normal(size=len(t2[b])))}
        r2 = ev.leave_one_benchmark_out(s2, t2)
        assert r2.chosen[b] == res.chosen[b] and r2.chosen_single[b] == res.chosen_single[b]
        leaky = _oracle_choice(s2, t2, held_out=None)  # choosing with b included
        changed_any |= leaky != res.chosen[b]
    assert changed_any  # the perturbation is strong enough that looking at b would have changed a choice


def test_lobo_per_seed_units_and_bootstrap():
    scores, flat = _random_benchmarks(7, n_bench=3)
    truth = {b: {m: {0: a, 1: a + 1.0} for m, a in acc.items()} for b, acc in flat.items()}
    res = ev.leave_one_benchmark_out(scores, truth, budgets=(1,))
    assert set(res.strategies["consensus (LOBO)"]) == {(b, s) for b in flat for s in (0, 1)}
    vals = {(b, s): float(i) for i, (b, s) in enumerate(sorted(res.strategies["consensus (LOBO)"]))}
    mean, lo, hi = ev.hierarchical_ci(vals, draws=2000)
    assert mean == pytest.approx(2.5) and lo <= mean <= hi and lo >= 0.5 and hi <= 4.5


def test_lobo_bad_inputs():
    scores, truth = _random_benchmarks(0, n_bench=3)
    with pytest.raises(ValueError, match="criterion must be one of"):
        ev.leave_one_benchmark_out(scores, truth, criterion="spearman")
    with pytest.raises(ValueError, match="at least 2 benchmarks"):
        ev.leave_one_benchmark_out(scores, {"b0": truth["b0"]})
    with pytest.raises(ValueError, match="max_members must be an integer >= 2"):
        ev.leave_one_benchmark_out(scores, truth, max_members=1)
    partial = copy.deepcopy(scores)
    del partial["s1"]["b2"]
    res = ev.leave_one_benchmark_out(partial, truth)
    assert "s1" in res.excluded and "s1" not in res.candidates


def test_lobo_on_the_published_table_runs_and_never_picks_on_the_held_out_benchmark():
    scores = ev.read_scores(ev.published("modelspider_baseline_scores"))
    truth = ev.read_finetune(ev.published("tllib_finetune"))
    res = ev.leave_one_benchmark_out(scores, truth)
    assert len(res.candidates) == 9 and len(res.chosen) == 8
    taus = _oracle_taus(scores, truth)
    for b in truth:
        assert res.chosen[b] == _oracle_choice(scores, truth, b, taus)


def test_lobo_a_constant_consensus_is_never_chosen():
    # s0 and s1 rank every benchmark in opposite orders: their consensus is constant (weighted tau undefined)
    scores, truth = _random_benchmarks(4, n_bench=3, n_scores=3)
    for b, acc in truth.items():
        scores["s0"][b] = dict(acc)
        scores["s1"][b] = {m: -v for m, v in acc.items()}
    res = ev.leave_one_benchmark_out(scores, truth, max_members=2)
    assert all(v["wtau"] == pytest.approx(1.0) for v in res.strategies["score:s0"].values())
    for b in truth:
        assert res.chosen[b] != ("s0", "s1")
