"""End to end on the published tables (transferlab/data/published/, shipped as package data): Model-Spider scores of 10 ImageNet CNNs against
the tllib and SFDA fine-tune accuracies. Expected figures are recomputed here independently (csv module, plain
Python, scipy), never copied from the code under test."""
import csv
import itertools
import json
import math

import numpy as np
import pytest
from scipy import stats

from transferlab.evaluate import Report, published, read_finetune, read_scores

SCORES = published("modelspider_baseline_scores")
TLLIB = published("tllib_finetune")
SFDA1 = published("sfda_finetune_group1_supervised")
SFDA2 = published("sfda_finetune_group2_selfsupervised")
METRICS = ["H-Score", "LEEP", "LogME", "NCE", "NLEEP", "OTCE", "PACTranDirichlet", "GBC", "LFC"]
# torchvision ImageNet top-1: resnet152 (78.312) is the task-agnostic pick among the 10 CNNs.
IMAGENET_TOP1 = {"googlenet": 69.778, "inception_v3": 77.294, "resnet50": 76.130, "resnet101": 77.374,
                 "resnet152": 78.312, "densenet121": 74.434, "densenet169": 75.600, "densenet201": 76.896,
                 "mobilenet_v2": 71.878, "mnasnet1_0": 73.456}


def _raw():
    """The two tables read with the csv module only; 'Pet' -> 'pets' by hand."""
    scores = {}
    with open(SCORES, newline="") as f:
        for row in csv.DictReader(f):
            ds = {"Pet": "pets"}.get(row["Dataset"], row["Dataset"]).lower()
            for m in METRICS:
                scores.setdefault(m, {}).setdefault(ds, {})[row["Model"]] = float(row[m])
    ft = {}
    with open(TLLIB, newline="") as f:
        for row in csv.DictReader(f):
            for ds, v in row.items():
                if ds != "model":
                    ft.setdefault(ds, {})[row["model"]] = float(v)
    return scores, ft


@pytest.fixture(scope="module")
def report():
    return Report.from_tables(SCORES, TLLIB, budgets=(1, 2, 3))


@pytest.fixture(scope="module")
def report_by_name():
    return Report.from_tables(SCORES, TLLIB, budgets=(1, 2, 3), ties="name")


def _order(d):
    return sorted(d, key=lambda m: (-d[m], m))


def test_readers_normalise_dataset_names():
    scores, ft = read_scores(SCORES), read_finetune(TLLIB)
    raw_scores, raw_ft = _raw()
    assert scores == raw_scores and ft == raw_ft
    assert sorted(scores["LogME"]) == sorted(ft)  # 'Pet' matched 'pets'


def test_correlations_match_scipy(report):
    scores, ft = _raw()
    for s in METRICS:
        for d in ft:
            models = sorted(ft[d])
            x = [scores[s][d][m] for m in models]
            y = [ft[d][m] for m in models]
            assert report.value(d, s, "weighted_tau") == pytest.approx(stats.weightedtau(y, x).statistic, abs=1e-12)
            assert report.value(d, s, "weighted_tau_gt") == pytest.approx(
                stats.weightedtau(y, x, rank=None).statistic, abs=1e-12)
            assert report.value(d, s, "kendall_tau") == pytest.approx(stats.kendalltau(x, y).statistic, abs=1e-12)
            assert report.value(d, s, "pearson") == pytest.approx(stats.pearsonr(x, y).statistic, abs=1e-12)
            assert report.value(d, s, "spearman") == pytest.approx(stats.spearmanr(x, y).statistic, abs=1e-12)
        mean = np.mean([stats.weightedtau([ft[d][m] for m in sorted(ft[d])],
                                          [scores[s][d][m] for m in sorted(ft[d])]).statistic for d in ft])
        assert report.value("mean", s, "weighted_tau") == pytest.approx(mean, abs=1e-12)


def test_regret_budget_and_success_recomputed(report_by_name):
    report = report_by_name
    scores, ft = _raw()
    for s in METRICS:
        b0 = []
        for d in ft:
            best = max(ft[d].values())
            order = _order(scores[s][d])
            for k in (1, 2, 3):
                got = max(ft[d][m] for m in order[:k])
                assert report.value(d, s, f"regret@{k}") == pytest.approx((best - got) / best, abs=1e-15)
            first_best = next(i + 1 for i, m in enumerate(order) if ft[d][m] == best)
            assert report.value(d, s, "budget_to_zero") == first_best
            b0.append(first_best)
            # hybrid: resnet152 (ImageNet top-1), then the score's ranking without it
            hyb = ["resnet152"] + [m for m in order if m != "resnet152"]
            for k in (1, 2, 3):
                got = max(ft[d][m] for m in hyb[:k])
                assert report.value(d, f"hybrid:{s}", f"regret@{k}") == pytest.approx((best - got) / best, abs=1e-15)
        for bb in range(1, 11):
            assert report.value("mean", s, f"success@{bb}") == pytest.approx(np.mean([v <= bb for v in b0]))


def _tie_break_orders(sc):
    """Every order of the models that breaks the exact score ties of ``sc`` (highest score first)."""
    levels = sorted(set(sc.values()), reverse=True)
    groups = [sorted(m for m in sc if sc[m] == v) for v in levels]
    for parts in itertools.product(*(itertools.permutations(g) for g in groups)):
        yield [m for p in parts for m in p]


def test_expected_over_tie_breaks_by_enumeration(report):
    """Default ties="expected": every figure is the mean over all tie-breaking orders, enumerated here."""
    scores, ft = _raw()
    n_tied = 0
    for s in METRICS:
        for d in ft:
            orders = list(_tie_break_orders(scores[s][d]))
            n_tied += len(orders) > 1
            best = max(ft[d].values())
            for k in (1, 2, 3):
                want = np.mean([(best - max(ft[d][m] for m in o[:k])) / best for o in orders])
                assert report.value(d, s, f"regret@{k}") == pytest.approx(want, abs=1e-14)
            firsts = [next(i + 1 for i, m in enumerate(o) if ft[d][m] == best) for o in orders]
            assert report.value(d, s, "budget_to_zero") == pytest.approx(np.mean(firsts), abs=1e-14)
            for bb in (1, 2, 5):
                assert report.value(d, s, f"success@{bb}") == pytest.approx(np.mean([f <= bb for f in firsts]))
    assert n_tied > 0  # the published table has exact score ties: the check above covers them
    assert "expected value over uniformly random tie-breaks" in report.to_markdown(summary_only=True)


def test_task_agnostic_oracle_random_by_hand(report):
    _, ft = _raw()
    # aircraft: ImageNet order resnet152 (85.3), resnet101 (85.6), inception_v3 (88.8 = best)
    assert report.value("aircraft", "task-agnostic", "regret@1") == pytest.approx((88.8 - 85.3) / 88.8)
    assert report.value("aircraft", "task-agnostic", "regret@2") == pytest.approx((88.8 - 85.6) / 88.8)
    assert report.value("aircraft", "task-agnostic", "budget_to_zero") == 3
    assert report.selections[("aircraft", "task-agnostic")].models[:3] == ("resnet152", "resnet101", "inception_v3")
    for d in ft:
        others = [o for o in ft if o != d]
        means = {m: sum(ft[o][m] for o in others) / len(others) for m in ft[d]}
        top = _order(means)[0]
        best = max(ft[d].values())
        assert report.value(d, "oracle", "regret@1") == pytest.approx((best - ft[d][top]) / best)
        # random, budget 1: the mean single-model regret; budget to zero: (n + 1) / (m + 1)
        assert report.value(d, "random", "regret@1") == pytest.approx(
            np.mean([(best - v) / best for v in ft[d].values()]))
        m_best = sum(v == best for v in ft[d].values())
        assert report.value(d, "random", "budget_to_zero") == pytest.approx(11 / (m_best + 1))


def test_outputs_markdown_csv_json(report, tmp_path):
    md = report.to_markdown()
    for text in ["Summary: mean over 8 datasets", "hybrid:LogME", "weighted τ (rank=None", "Kendall τ-b",
                 "Pearson r", "regret@1", "regret@3", "budget to zero regret", "| pets", "aircraft"]:
        assert text in md
    # LogME's mean relative regret@1, in percent with 2 decimals, in its summary row
    scores, ft = _raw()
    r1 = np.mean([(max(ft[d].values()) - ft[d][_order(scores["LogME"][d])[0]]) / max(ft[d].values()) for d in ft])
    row = next(line for line in md.splitlines() if line.startswith("| LogME "))
    assert f"{100 * r1:.2f}" in row
    text = report.to_csv(tmp_path / "r.csv")
    with open(tmp_path / "r.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(report.rows) and text.startswith("dataset,subject,statistic,value")
    assert float(next(r["value"] for r in rows if (r["dataset"], r["subject"], r["statistic"]) ==
                      ("dtd", "NCE", "kendall_tau"))) == report.value("dtd", "NCE", "kendall_tau")
    doc = json.loads(report.to_json(tmp_path / "r.json"))
    assert doc["results"]["mean"]["LogME"]["regret@1"] == pytest.approx(r1)
    assert doc["meta"]["regret_kind"] == "relative" and len(doc["meta"]["datasets"]) == 8


def test_long_format_gives_the_same_report(tmp_path):
    scores, ft = _raw()
    with open(tmp_path / "s.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["dataset", "model", "score", "value"])
        for s in METRICS:
            for d in scores[s]:
                for m, v in scores[s][d].items():
                    w.writerow([d.upper(), m, s, repr(v)])
    with open(tmp_path / "f.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["Dataset", "Model", "Accuracy"])
        for d in ft:
            for m, v in ft[d].items():
                w.writerow([d, m, v])
    a = Report.from_tables(SCORES, TLLIB)
    b = Report.from_tables(tmp_path / "s.csv", tmp_path / "f.csv")
    assert sorted(a.rows) == sorted(b.rows)


def test_sfda_tables():
    # group 1 has resnet34, which Model-Spider did not score: a mismatch names it
    with pytest.raises(ValueError, match=r"no fine-tune accuracy|no H-Score score for \['resnet34'\]"):
        Report.from_tables(SCORES, SFDA1)
    r = Report.from_tables(SCORES, SFDA1, on_mismatch="intersect")
    assert r.meta["models"]["pets"] == sorted(IMAGENET_TOP1)
    assert any("flowers" in n and "oracle" in n for n in r.meta["notes"])
    scores, _ = _raw()
    sfda = read_finetune(SFDA1)
    models = sorted(IMAGENET_TOP1)
    for d in r.datasets:
        y = [sfda[d][m] for m in models]
        x = [scores["LogME"][d][m] for m in models]
        assert r.value(d, "LogME", "weighted_tau") == pytest.approx(stats.weightedtau(y, x).statistic, abs=1e-12)
    # the oracle averages over the 10 other SFDA datasets (incl. flowers, food, voc2007)
    d = "cars"
    others = [o for o in sfda if o != d]
    means = {m: np.mean([sfda[o][m] for o in others]) for m in models}
    assert r.selections[(d, "oracle")].models == tuple(_order(means))
    # group 2 (self-supervised ResNet-50s) shares no model with the scores
    with pytest.raises(ValueError, match="byol"):
        Report.from_tables(SCORES, SFDA2)


def test_pool_options(tmp_path):
    r = Report.from_tables(SCORES, TLLIB, pool=None)
    assert "task-agnostic" not in r.subjects and "hybrid:LogME" not in r.subjects
    from transferlab.pool import ModelCard, ModelPool

    # a user pool where googlenet has the best upstream accuracy
    pool = ModelPool([ModelCard(m, upstream_accuracy=(99.0 if m == "googlenet" else a)) for m, a in IMAGENET_TOP1.items()])
    pool.to_json(tmp_path / "cards.json")
    r = Report.from_tables(SCORES, TLLIB, pool=tmp_path / "cards.json")
    assert r.selections[("dtd", "task-agnostic")].models[0] == "googlenet"
    with pytest.raises(ValueError, match=r"no model cards for \['resnet50'\]"):
        Report.from_tables(SCORES, TLLIB, pool=pool.subset([m for m in pool.names if m != "resnet50"]))


def test_nan_in_report():
    scores, ft = _raw()
    scores["LogME"]["dtd"]["resnet50"] = math.nan
    with pytest.raises(ValueError, match=r"resnet50.*nan_policy='omit'"):
        Report.from_tables(scores, ft)
    r = Report.from_tables(scores, ft, nan_policy="omit")
    assert "resnet50" not in r.selections[("dtd", "LogME")].models
    assert any("resnet50" in n for n in r.meta["notes"])
