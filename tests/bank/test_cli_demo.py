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
    res = demo.run_demo(tasks=TASKS, out=str(tmp_path / "demo"), models=MODELS, n=N, plot=True, stream=buf)
    text = buf.getvalue()
    for part in ("## 1. feature banks", "## 3. fine-tune order", "## 4. regret", "## 5. cost vs quality",
                 "task-agnostic", "hybrid:knn_loo", "transferlab evaluate --scores"):
        assert part in text, part
    assert any(p.endswith("cost_quality.png") for p in res.plots)
    # the oracle row is explained, and the cost table puts extraction beside scoring (recorded in the banks)
    assert ("oracle" in res.report.subjects) == ("oracle: each dataset's models ranked" in text)
    assert all(r["extract_banks"] == r["banks"] > 0 and r["proxy_mean_seconds"] > r["mean_seconds"]
               for r in res.cost)

    out = tmp_path / "cli"
    with demo._pinned_threads():  # as the demo's closing lines say: OMP_NUM_THREADS=2
        assert cli.main(["extract", "--model", *MODELS, "--task", *TASKS, "--n", str(N), "--out",
                         str(out / "banks"), "--quiet"]) == 0
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


@pytest.mark.parametrize("command", ["extract", "score", "rank", "race", "demo", "info", "evaluate"])
def test_help_texts(command, capsys):
    with pytest.raises(SystemExit) as ei:
        cli.main([command, "--help"])
    assert ei.value.code == 0
    text = capsys.readouterr().out
    assert len(text) > 300
    if command in ("extract", "score", "rank", "race"):
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


def test_demo_workload_is_fixed_in_code(monkeypatch):
    """Issue 16: the demo computes the same tasks, models and scores every time: no time budget, no task swapped
    for another when optional data (Fashion-MNIST) is or is not installed."""
    import inspect

    assert "time_budget" not in inspect.signature(demo.run_demo).parameters
    assert set(demo.DEMO_MODELS) <= set(zoo.MODELS) and len(demo.DEMO_MODELS) == 13
    assert all(zoo.task_info(t)["source"] in ("mnist", "digits", "animal") for t in demo.DEMO_TASKS)  # pip data
    for have in (list(zoo.TASKS), [t for t in zoo.TASKS if not t.startswith("fashion")]):
        monkeypatch.setattr(zoo, "available_tasks", lambda have=have: have)
        assert demo._pick_tasks(None) == list(demo.DEMO_TASKS)
    monkeypatch.setattr(zoo, "available_tasks", lambda: ["mnist-high-5", "animal-farm-5"])
    with pytest.raises(demo.DemoSetupError, match=r"\['digits-10'\] is not installed"):
        demo._pick_tasks(None)


def _score_table(text: str) -> str:
    """The score table of the demo's step 2 (its heading, which holds the seconds, left out)."""
    part = text.split("## 2. scores", 1)[1].split("## 3.", 1)[0]
    return part.split("\n", 1)[1]


@needs_zoo
def test_two_demo_runs_print_identical_score_tables_one_beside_a_busy_process(tmp_path, monkeypatch):
    """A slice of the demo (3 models, 2 tasks, 60 images), extracted and scored twice from scratch, the second
    time beside a busy process: the printed score tables are identical (bench/demo_determinism.py does the
    same with the whole demo and two busy processes)."""
    import subprocess
    import sys

    monkeypatch.setattr(zoo, "ground_truth", lambda *a, **k: FAKE_GT)
    texts = []
    for run in range(2):
        busy = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if run else None
        try:
            buf = io.StringIO()
            demo.run_demo(tasks=TASKS, out=str(tmp_path / f"run{run}"), models=MODELS, n=N, plot=False, stream=buf)
        finally:
            if busy is not None:
                busy.kill()
                busy.wait()
        texts.append(buf.getvalue())
    table = _score_table(texts[0])
    assert table.count("\n| ") >= len(MODELS) * len(TASKS) and "knn_loo" in table and "sfda" in table
    assert _score_table(texts[1]) == table
    assert read_scores(str(tmp_path / "run0" / "scores.csv")) == read_scores(str(tmp_path / "run1" / "scores.csv"))


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
    res = demo.run_demo(tasks=TASKS[:1], out=str(tmp_path / "demo"), models=MODELS, n=N, plot=True, stream=buf)
    text = buf.getvalue()
    assert "## 4. regret" in text and "plots skipped: matplotlib is not installed" in text
    assert res.plots == [] and not (tmp_path / "demo" / "plots").exists()
