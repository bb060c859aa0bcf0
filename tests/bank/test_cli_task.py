"""task= through the pool layer: score_pool / score_many take it and skip, with a note, the scores that do not
support it; the CLI's `score --task` on .npy arrays and on a bank directory. Values are compared with the
one-shot calls (themselves tested against oracles in tests/scores/test_tasks_*.py) and a hand R^2."""
from __future__ import annotations

import numpy as np
import pytest

import transferlab as tl
from transferlab.bank import FeatureBank
from transferlab.cli import main
from transferlab.evaluate import read_scores


@pytest.fixture
def reg(tmp_path):
    rng = np.random.default_rng(0)
    good = rng.normal(size=(120, 6)).astype(np.float32)
    weak = rng.normal(size=(120, 6)).astype(np.float32)
    y = good[:, 0].astype(np.float64) * 3.0 + 0.2 * rng.normal(size=120)
    np.save(tmp_path / "good.npy", good)
    np.save(tmp_path / "weak.npy", weak)
    np.save(tmp_path / "y.npy", y)
    return tmp_path, good, weak, y


def test_score_pool_task_runs_the_tasks_scores_and_notes_the_others(reg):
    _, good, weak, y = reg
    res = tl.score_pool({"good": good, "weak": weak}, ["knn_loo", "logme", "hscore"], labels=y, task="regression")
    t = res.table()
    assert set(t) == {"knn_loo", "logme"} and set(t["knn_loo"]["data"]) == {"good", "weak"}
    assert t["knn_loo"]["data"]["good"] == tl.knn_loo(good, y, task="regression")
    assert t["logme"]["data"]["weak"] == tl.logme(weak, y, task="regression")
    assert t["knn_loo"]["data"]["good"] > t["knn_loo"]["data"]["weak"]
    assert res.notes == ["hscore: skipped (it does not support task='regression'; scores that do: knn_loo, "
                         "linear_probe, logme, parc)"]
    every = tl.score_pool({"good": good}, labels=y, task="regression")
    assert set(every.table()) == set(tl.available(task="regression"))
    with pytest.raises(ValueError, match="none of the requested scores supports task='regression'"):
        tl.score_pool({"good": good}, ["sfda"], labels=y, task="regression")


def test_score_many_task_skips_with_a_warning(reg):
    _, good, weak, y = reg
    L = np.c_[y > 0, good[:, 1] > 0].astype(int)
    with pytest.warns(UserWarning, match="skipped gbc"):
        out = tl.scores.score_many([good, weak], L, ["knn_loo", "gbc", "logme"], task="multilabel")
    assert set(out) == {"knn_loo", "logme"}
    assert out["knn_loo"] == [tl.knn_loo(good, L, task="multilabel"), tl.knn_loo(weak, L, task="multilabel")]


def test_cli_score_task_regression_on_npy_files(reg, capsys):
    tmp, good, _, y = reg
    out = tmp / "scores.csv"
    rc = main(["score", str(tmp / "good.npy"), str(tmp / "weak.npy"), "--labels", str(tmp / "y.npy"),
               "--task", "regression", "--scores", "knn_loo", "logme", "sfda", "-o", str(out)])
    text = capsys.readouterr().out
    assert rc == 0
    assert "note: sfda: skipped (it does not support task='regression'" in text
    value = read_scores(str(out))["knn_loo"]["data"]["good"]
    # R^2 by hand: 1-NN leave-one-out prediction = the nearest other row's target (continuous data: no ties)
    D = ((good[:, None, :].astype(np.float64) - good[None]) ** 2).sum(axis=2)
    np.fill_diagonal(D, np.inf)
    pred = y[np.argmin(D, axis=1)]
    r2 = 1 - ((y - pred) ** 2).sum() / ((y - y.mean()) ** 2).sum()
    assert value == pytest.approx(r2, rel=1e-9)


def test_cli_score_task_on_a_bank_directory(reg, capsys):
    tmp, good, _, y = reg
    counts = np.round(np.abs(y)).astype(np.int64)  # integer targets (counts) stored as the bank's labels
    FeatureBank.from_arrays(good, counts, path=tmp / "banks" / "good", model_id="good", dataset_id="counts")
    rc = main(["score", str(tmp / "banks"), "--task", "regression", "--scores", "logme", "knn_loo"])
    text = capsys.readouterr().out
    assert rc == 0
    want = tl.logme(good, counts.astype(np.float64), task="regression")
    assert f"{want:.4g}" in text


def test_cli_task_errors_are_one_line_exit_2(reg, capsys):
    tmp, *_ = reg
    rc = main(["score", str(tmp / "good.npy"), "--task", "regression"])
    err = capsys.readouterr().err
    assert rc == 2 and "--labels" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    rc = main(["score", str(tmp / "good.npy"), "--labels", str(tmp / "y.npy"), "--task", "regression",
               "--scores", "sfda"])
    err = capsys.readouterr().err
    assert rc == 2 and "none of the requested scores supports --task regression" in err


def test_cli_info_lists_the_scores_of_each_task(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert f"task=regression   : {', '.join(tl.available(task='regression'))}" in out
    assert f"task=multilabel   : {', '.join(tl.available(task='multilabel'))}" in out


def test_cli_rank_task_regression_orders_by_r2(reg, capsys):
    tmp, good, weak, y = reg
    rc = main(["rank", str(tmp / "weak.npy"), str(tmp / "good.npy"), "--labels", str(tmp / "y.npy"),
               "--task", "regression", "--by", "knn_loo"])
    out = capsys.readouterr().out
    assert rc == 0
    assert tl.knn_loo(good, y, task="regression") > tl.knn_loo(weak, y, task="regression")
    table = [ln.replace(" ", "") for ln in out.splitlines() if ln.startswith("|")]
    assert "task-aware:knn_loo" in table[0]
    assert table[2:4] == ["|1|good|", "|2|weak|"]  # the higher R^2 first
