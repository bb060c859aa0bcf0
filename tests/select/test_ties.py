"""Ties are part of the answer (issue 18): tied groups of the strategies, and every evaluation figure as the
mean over the tie-breaking orders, checked against hand enumeration of those orders."""
import itertools

import numpy as np
import pytest

from transferlab import evaluate as ev
from transferlab.pool import ModelCard, ModelPool
from transferlab.select import Selection, hybrid, task_aware

# three-way tie at the top: a, b, c score 0.9; their fine-tune accuracies differ
SCORES = {"a": 0.9, "b": 0.9, "c": 0.9, "d": 0.5, "e": 0.1}
FT = {"a": 0.70, "b": 0.80, "c": 0.60, "d": 0.90, "e": 0.50}
BEST = 0.90


def _orders():
    for head in itertools.permutations(["a", "b", "c"]):
        yield list(head) + ["d", "e"]


def test_top_k_regret_three_way_tie_is_the_mean_over_the_three_tie_breaks():
    # k = 1: each of a, b, c first with probability 1/3
    by_hand = np.mean([(BEST - 0.70) / BEST, (BEST - 0.80) / BEST, (BEST - 0.60) / BEST])
    assert ev.top_k_regret(SCORES, FT, k=1) == pytest.approx(by_hand, abs=1e-15)
    assert ev.top_k_regret(SCORES, FT, k=1, ties="name") == pytest.approx((BEST - 0.70) / BEST)  # "a" by name
    # k = 2: the best of a uniform pair of {a, b, c}: pairs ab, ac, bc -> 0.8, 0.7, 0.8
    pairs = np.mean([(BEST - 0.80) / BEST, (BEST - 0.70) / BEST, (BEST - 0.80) / BEST])
    assert ev.top_k_regret(SCORES, FT, k=2) == pytest.approx(pairs, abs=1e-15)
    # k = 4 reaches d whatever the tie-break
    assert ev.top_k_regret(SCORES, FT, k=4) == 0.0
    for kind in ("absolute", "log_odds"):
        want = np.mean([ev.regret(o[:2], FT, kind=kind) for o in _orders()])
        assert ev.top_k_regret(SCORES, FT, k=2, kind=kind) == pytest.approx(want, abs=1e-15)


def test_budget_to_zero_and_success_with_ties():
    # best model d behind the tie: always at position 4
    assert ev.budget_to_zero_regret(SCORES, FT) == 4
    ft = dict(FT, d=0.1, b=0.95)  # now b (in the tie) is the only best model
    firsts = [o.index("b") + 1 for o in _orders()]
    assert ev.budget_to_zero_regret(SCORES, ft) == pytest.approx(np.mean(firsts))  # (3 + 1) / (1 + 1) = 2
    assert ev.budget_to_zero_regret(SCORES, ft, ties="name") == 2
    for bb in range(1, 6):
        assert ev.success_at(SCORES, ft, bb) == pytest.approx(np.mean([f <= bb for f in firsts]))
    assert ev.success_at(SCORES, ft, 1, ties="name") == 0.0  # "a" first by name


def test_two_best_inside_a_tie():
    ft = {"a": 0.9, "b": 0.9, "c": 0.6, "d": 0.5, "e": 0.4}
    firsts = [next(i + 1 for i, m in enumerate(o) if ft[m] == 0.9) for o in _orders()]
    assert ev.budget_to_zero_regret(SCORES, ft) == pytest.approx(np.mean(firsts))  # (3 + 1) / (2 + 1)
    assert ev.success_at(SCORES, ft, 1) == pytest.approx(2 / 3)


def test_task_aware_groups_and_regret_of_a_cut_selection():
    sel = task_aware(SCORES, name="s")
    assert sel.tied_groups == (("a", "b", "c"), ("d",), ("e",))
    assert sel.models == ("a", "b", "c", "d", "e")  # printed order: by name
    top2 = sel.top(2)
    assert top2.models == ("a", "b") and top2.tied_groups == (("a", "b", "c"),)
    want = np.mean([ev.regret(o[:2], FT) for o in _orders()])
    assert ev.regret(top2, FT) == pytest.approx(want, abs=1e-15)
    assert ev.regret(top2, FT, ties="name") == ev.regret(["a", "b"], FT)
    assert ev.top_k_regret(sel, FT, k=2) == pytest.approx(want, abs=1e-15)
    assert task_aware(SCORES, ties="none").tied_groups == tuple((m,) for m in "abcde")
    # a plain list has no ties
    assert ev.top_k_regret(list(sel), FT, k=1) == ev.regret(["a"], FT)


def test_hybrid_groups():
    pool = ModelPool([ModelCard(m, upstream_accuracy=acc) for m, acc in
                      {"a": 0.5, "b": 0.6, "c": 0.7, "d": 0.1, "e": 0.9}.items()])
    sel = hybrid(pool, SCORES, name="s")
    assert sel.models == ("e", "a", "b", "c", "d")
    assert sel.tied_groups == (("e",), ("a", "b", "c"), ("d",))
    # budget 2: e, then one of the tied three
    want = np.mean([ev.regret(["e", m], FT) for m in "abc"])
    assert ev.regret(sel.top(2), FT) == pytest.approx(want, abs=1e-15)
    assert ev.top_k_regret(sel, FT, k=2) == pytest.approx(want, abs=1e-15)
    rep = ev.Report.from_tables({"s": {"t": SCORES}}, {"t": FT}, budgets=(1, 2), pool=pool)
    assert rep.value("t", "hybrid:s", "regret@2") == pytest.approx(want, abs=1e-15)
    assert rep.value("t", "s", "regret@1") == pytest.approx(ev.top_k_regret(SCORES, FT, k=1), abs=1e-15)


def test_statistical_ties_from_per_row_samples():
    rng = np.random.default_rng(0)
    n = 300
    base = (rng.random(n) < 0.85).astype(float)
    close = base.copy()
    close[np.flatnonzero(base)[:3]] = 0.0  # 3 rows fewer: not significant
    poor = base.copy()
    poor[np.flatnonzero(base)[:60]] = 0.0
    samples = {"x": base, "y": close, "z": poor}
    scores = {m: float(v.mean()) for m, v in samples.items()}
    sel = task_aware(scores, ties="statistical", alpha=0.05, samples=samples)
    assert sel.models == ("x", "y", "z")
    assert sel.tied_groups == (("x", "y"), ("z",))
    assert task_aware(scores).tied_groups == (("x",), ("y",), ("z",))  # exact: no tie
    ft = {"x": 0.7, "y": 0.8, "z": 0.75}
    assert ev.top_k_regret(sel, ft, k=1) == pytest.approx(np.mean([(0.8 - 0.7) / 0.8, 0.0]), abs=1e-15)


class _Details:
    def __init__(self, correct):
        self.correct = correct


def test_statistical_accepts_score_details_and_checks_arguments():
    samples = {"x": _Details(np.array([1.0, 1, 1, 0])), "y": _Details(np.array([1.0, 1, 0, 0]))}
    sel = task_aware({"x": 0.75, "y": 0.5}, ties="statistical", samples=samples)
    assert sel.tied_groups == (("x", "y"),)  # 1 discordant row of 4: no evidence
    with pytest.raises(ValueError, match="needs samples"):
        task_aware({"x": 0.75, "y": 0.5}, ties="statistical")
    with pytest.raises(ValueError, match=r"no per-row values for models \['y'\]"):
        task_aware({"x": 0.75, "y": 0.5}, ties="statistical", samples={"x": [1, 0]})
    with pytest.raises(ValueError, match="ties must be one of"):
        task_aware({"x": 0.75, "y": 0.5}, ties="random")
    with pytest.raises(ValueError, match="ties must be one of"):
        ev.top_k_regret(SCORES, FT, ties="exact")
    with pytest.raises(ValueError, match="alpha"):
        task_aware({"x": 0.75, "y": 0.5}, ties="statistical", samples=samples, alpha=2)


def test_selection_rejects_groups_that_do_not_partition_its_models():
    with pytest.raises(ValueError, match="groups"):
        Selection(("a", "b"), ("r", "r"), "s", groups=(("b", "a"),))
    with pytest.raises(ValueError, match="groups"):
        Selection(("a",), ("r",), "s", groups=(("a",), ("b",)))
    assert Selection(("a",), ("r",), "s", groups=(("a", "b"),)).tied_groups == (("a", "b"),)


def test_cli_evaluate_ties_flag(tmp_path, capsys):
    from transferlab.cli import main

    sc, ft = tmp_path / "scores.csv", tmp_path / "ft.csv"
    sc.write_text("dataset,model,score,value\n" + "".join(f"t,{m},s,{v}\n" for m, v in SCORES.items()))
    ft.write_text("dataset,model,accuracy\n" + "".join(f"t,{m},{v}\n" for m, v in FT.items()))
    assert main(["evaluate", "--scores", str(sc), "--finetune", str(ft), "--pool", "none", "--budget", "1",
                 "--json", str(tmp_path / "e.json"), "--summary"]) == 0
    assert "expected value over uniformly random tie-breaks" in capsys.readouterr().out
    import json

    got = json.loads((tmp_path / "e.json").read_text())["results"]["t"]["s"]["regret@1"]
    assert got == pytest.approx(ev.top_k_regret(SCORES, FT, k=1), abs=1e-15)
    assert main(["evaluate", "--scores", str(sc), "--finetune", str(ft), "--pool", "none", "--budget", "1",
                 "--json", str(tmp_path / "n.json"), "--ties", "name"]) == 0
    got = json.loads((tmp_path / "n.json").read_text())["results"]["t"]["s"]["regret@1"]
    assert got == pytest.approx((BEST - 0.70) / BEST)


def test_consensus_exposes_its_ties():
    from transferlab.select import consensus

    # a and b swap places between the two scores: equal mean ranks, a tie
    sel = consensus({"s1": {"a": 3, "b": 2, "c": 1}, "s2": {"a": 2, "b": 3, "c": 1}})
    assert sel.tied_groups == (("a", "b"), ("c",))
    ft = {"a": 0.5, "b": 0.9, "c": 0.1}
    assert ev.top_k_regret(sel, ft, k=1) == pytest.approx(np.mean([(0.9 - 0.5) / 0.9, 0.0]), abs=1e-15)
