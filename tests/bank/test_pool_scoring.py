"""score_pool: every score on every bank, timed; the table feeds Report.from_tables; cost vs quality."""
from __future__ import annotations

import math

import numpy as np
import pytest

import transferlab as tl
from conftest import class_data
from transferlab.bank import BankWriter, FeatureBank
from transferlab.evaluate import Report, cost_markdown, cost_quality, plot_cost_quality, read_scores
from transferlab.pool import ModelCard, ModelPool
from transferlab.scores import register, unregister

MODELS = ("good", "mid", "bad")
DATASETS = ("alpha", "beta")


def _bank(dataset, model, seed, logits=True):
    sep = {"good": 4.0, "mid": 1.0, "bad": 0.2}[model]
    x, y = class_data(n=120, d=8, c=4, sep=sep, seed=seed)
    z = np.random.default_rng(seed).normal(size=(120, 5)) if logits else None
    return FeatureBank(x, y, logits=z, meta={"model_id": model, "dataset_id": dataset})


@pytest.fixture
def banks():
    return [_bank(d, m, 10 * i + j) for i, d in enumerate(DATASETS) for j, m in enumerate(MODELS)]


@pytest.fixture
def dummy_scores():
    seen = {}

    @register("_test_probs", inputs="probs")
    def probs_score(probs, labels, *, device="auto"):
        """Mean top probability (test only)."""
        seen.setdefault("probs", []).append(np.array(probs))
        seen.setdefault("device", []).append(device)
        return float(np.max(probs, axis=1).mean())

    @register("_test_todo")
    def todo(features, labels):
        """Not implemented (test only)."""
        raise NotImplementedError

    yield seen
    unregister("_test_probs")
    unregister("_test_todo")


def test_values_match_direct_calls_and_rows_are_ordered(banks):
    res = tl.score_pool(list(reversed(banks)), ["knn_loo"], score_kwargs={"knn_loo": {"k": 3}})
    assert [(r["dataset"], r["model"]) for r in res.rows] == sorted((d, m) for d in DATASETS for m in MODELS)
    for r, b in zip(res.rows, sorted(banks, key=lambda b: (b.dataset_id, b.model_id))):
        assert r["value"] == tl.knn_loo(b.features, b.labels, k=3)
        assert r["seconds"] > 0
    t = res.table()
    assert set(t) == {"knn_loo"} and set(t["knn_loo"]) == set(DATASETS)
    assert t["knn_loo"]["alpha"]["good"] > t["knn_loo"]["alpha"]["bad"]


def test_probs_scores_get_softmax_and_unimplemented_are_noted(banks, dummy_scores):
    no_logits = _bank("gamma", "good", 99, logits=False)
    res = tl.score_pool(banks + [no_logits], ["knn_loo", "_test_probs", "_test_todo"], device="cpu")
    probs = dummy_scores["probs"][0]
    z = np.asarray(sorted(banks, key=lambda b: (b.dataset_id, b.model_id))[0].logits, dtype=np.float64)
    expect = np.exp(z - z.max(axis=1, keepdims=True))
    expect /= expect.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(probs, expect, rtol=1e-6)
    assert set(dummy_scores["device"]) == {"cpu"}
    assert {r["score"] for r in res.rows} == {"knn_loo", "_test_probs"}
    assert len([r for r in res.rows if r["score"] == "_test_probs"]) == 6  # not for the bank without logits
    assert any("_test_todo: not implemented" in n for n in res.notes)
    assert any("_test_probs: skipped for gamma/good (the bank has no logits)" in n for n in res.notes)


def test_banks_from_directories(tmp_path, banks):
    for b in banks:
        w = BankWriter.create_or_resume(tmp_path / b.dataset_id / b.model_id, n=b.n, d=b.d, z=b.logits.shape[1],
                                        identity={"model_id": b.model_id, "dataset_id": b.dataset_id})
        w.write(0, b.features, b.labels, logits=b.logits)
        w.finalize()
    (tmp_path / "notes").mkdir()  # not a bank: ignored
    from_dir = tl.score_pool(tmp_path, ["knn_loo"])
    from_mem = tl.score_pool(banks, ["knn_loo"])
    assert from_dir.table() == from_mem.table()
    assert tl.score_pool(str(tmp_path / "alpha" / "good"), ["knn_loo"]).table() == \
        {"knn_loo": {"alpha": {"good": from_mem.table()["knn_loo"]["alpha"]["good"]}}}


def test_bad_arguments(banks, tmp_path):
    with pytest.raises(ValueError, match="two banks for dataset 'alpha' and model 'good'"):
        tl.score_pool(banks + [banks[0]], ["knn_loo"])
    with pytest.raises(ValueError, match="unknown score 'nope'"):
        tl.score_pool(banks, ["nope"])
    with pytest.raises(ValueError, match="score_kwargs names scores that are not scored"):
        tl.score_pool(banks, ["knn_loo"], score_kwargs={"sfda": {}})
    with pytest.raises(ValueError, match="no feature bank"):
        tl.score_pool(tmp_path, ["knn_loo"])
    with pytest.raises(ValueError, match=r"score 'knn_loo' on dataset 'alpha', model 'bad': k must be"):
        tl.score_pool(banks, ["knn_loo"], score_kwargs={"knn_loo": {"k": 10_000}})
    with pytest.raises(TypeError, match="FeatureBank objects or paths"):
        tl.score_pool([1], ["knn_loo"])


def _finetune():
    return {"alpha": {"good": 90.0, "mid": 80.0, "bad": 60.0}, "beta": {"good": 70.0, "mid": 85.0, "bad": 50.0}}


def _pool():
    return ModelPool([ModelCard("good", upstream_accuracy=70.0), ModelCard("mid", upstream_accuracy=75.0),
                      ModelCard("bad", upstream_accuracy=60.0)])


def test_table_feeds_report_and_csv_round_trips(banks, tmp_path):
    res = tl.score_pool(banks, ["knn_loo"])
    rep = Report.from_tables(res.table(), _finetune(), pool=_pool())
    path = tmp_path / "scores.csv"
    res.to_csv(path)
    assert path.read_text().splitlines()[0] == "dataset,model,score,value,seconds"
    assert read_scores(str(path)) == res.table()  # full precision: evaluate reads the same numbers
    rep2 = Report.from_tables(str(path), _finetune(), pool=_pool())
    assert rep.rows == rep2.rows
    back = tl.PoolScores.from_csv(path)
    assert back.table() == res.table()
    np.testing.assert_allclose([r["seconds"] for r in back.rows], [r["seconds"] for r in res.rows], atol=1e-6)
    # the task-aware ranking by knn_loo on alpha picks "good": zero regret there
    assert rep.value("alpha", "knn_loo", "regret@1") == 0.0


def test_cost_quality_table_and_plot(banks, tmp_path):
    res = tl.score_pool(banks, ["knn_loo"])
    rep = Report.from_tables(res.table(), _finetune(), pool=_pool())
    rows = cost_quality(res, rep)
    assert len(rows) == 1 and rows[0]["score"] == "knn_loo" and rows[0]["banks"] == 6
    secs = [r["seconds"] for r in res.rows]
    assert rows[0]["total_seconds"] == pytest.approx(sum(secs))
    assert rows[0]["mean_seconds"] == pytest.approx(sum(secs) / 6)
    assert rows[0]["regret@1"] == rep.value("mean", "knn_loo", "regret@1")
    assert rows[0]["hybrid_regret@1"] == rep.value("mean", "hybrid:knn_loo", "regret@1")
    md = cost_markdown(rows)
    assert "ms / bank" in md and "hybrid @1" in md and "knn_loo" in md and f"{100 * rows[0]['regret@1']:.2f}%" in md
    csv_path = tmp_path / "s.csv"
    res.to_csv(csv_path)
    assert cost_quality(str(csv_path), rep)[0]["regret@2"] == rows[0]["regret@2"]
    no_time = cost_quality({"other": {}}, rep)
    assert math.isnan(no_time[0]["mean_seconds"])
    png = plot_cost_quality(rows, tmp_path / "plots" / "cost.png", report=rep)
    with open(png, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_warnings_become_notes(banks):
    import warnings

    @register("_test_warns")
    def warns(features, labels):
        """Warns on every bank (test only)."""
        warnings.warn("N < D: scores saturate", UserWarning)
        return 1.0

    try:
        res = tl.score_pool(banks, ["_test_warns"])  # filterwarnings=error: an escaping warning would fail here
    finally:
        unregister("_test_warns")
    assert len(res.rows) == 6
    assert res.notes == ["_test_warns: UserWarning: N < D: scores saturate (6 banks: alpha/bad, alpha/good, "
                         "alpha/mid, ...)"]


def test_errors_note_drops_the_failing_score_everywhere(banks):
    @register("_test_fails_on_beta")
    def fails(features, labels, *, dataset_hint=None):
        """Raises on one bank (test only)."""
        if features.shape[0] == 120 and float(features[0, 0]) == float(banks[4].features[0, 0]):
            raise ValueError("singular scatter")
        return 0.5

    try:
        with pytest.raises(ValueError, match="score '_test_fails_on_beta' on dataset 'beta', model 'mid': singular"):
            tl.score_pool(banks, ["knn_loo", "_test_fails_on_beta"])
        res = tl.score_pool(banks, ["knn_loo", "_test_fails_on_beta"], errors="note")
    finally:
        unregister("_test_fails_on_beta")
    assert res.scores == ["knn_loo"] and len(res.rows) == 6
    assert any(n.startswith("_test_fails_on_beta: dropped for every bank after an error") for n in res.notes)
    with pytest.raises(ValueError, match="errors must be"):
        tl.score_pool(banks, ["knn_loo"], errors="ignore")


def test_device_cuda_sends_each_bank_once_and_charges_every_score(banks, monkeypatch):
    # device="cuda" without a GPU: a stand-in devices.to_cuda records the copies (the features once per bank,
    # the probabilities once per bank, whatever the number of scores); the scores get the copies, and the
    # copy's time is added to the seconds of every score of that bank.
    import torch

    from transferlab import scoring
    from transferlab.core import devices
    from transferlab.core.arrays import Matrix

    sent = []

    def to_cuda(m):
        sent.append(m.name)
        return Matrix(torch.from_numpy(np.array(m.data)), "cuda", m.dtype, m.name)

    monkeypatch.setattr(devices, "to_cuda", to_cuda)
    got = []

    def feats_a(features, labels, *, device="auto"):
        got.append(("a", type(features), device))
        return 1.0

    def feats_b(features, labels, *, device="auto"):
        got.append(("b", type(features), device))
        return 2.0

    def probs_c(probs, labels, *, device="auto"):
        got.append(("c", type(probs), device))
        return float(np.asarray(probs).max(axis=1).mean())

    register("_test_a")(feats_a)
    register("_test_b")(feats_b)
    register("_test_c", inputs="probs")(probs_c)
    ticks = iter(range(10**6))
    try:
        monkeypatch.setattr(scoring.time, "perf_counter", lambda: float(next(ticks)))
        res = tl.score_pool(banks, ["_test_a", "_test_b", "_test_c"], device="cuda")
        monkeypatch.undo()
        on_host = tl.score_pool(banks, ["_test_c"], device="cpu")
    finally:
        for name in ("_test_a", "_test_b", "_test_c"):
            unregister(name)
    assert sent == ["features", "probs"] * len(banks)
    assert {(t, dev) for _, t, dev in got[: 3 * len(banks)]} == {(torch.Tensor, "cuda")}
    # Fake clock, one tick per read: a bank's copy costs 1 and each call 1; the softmax 1 more for probs.
    for r in res.rows:
        assert r["seconds"] == {"_test_a": 2.0, "_test_b": 2.0, "_test_c": 3.0}[r["score"]], r
    for g, c in zip([r for r in res.rows if r["score"] == "_test_c"], on_host.rows):
        assert g["value"] == pytest.approx(c["value"], rel=1e-6)


@pytest.mark.cuda
def test_score_pool_on_gpu_equals_host(banks):
    names = ["logme", "hscore", "sfda", "knn_loo", "nce", "leep"]
    gpu = tl.score_pool(banks, names, device="cuda")
    cpu = tl.score_pool(banks, names, device="cpu")
    assert [(r["dataset"], r["model"], r["score"]) for r in gpu.rows] == [
        (r["dataset"], r["model"], r["score"]) for r in cpu.rows]
    for g, c in zip(gpu.rows, cpu.rows):
        assert g["value"] == pytest.approx(c["value"], rel=1e-8, abs=1e-12), (g, c)


# ------------------------------------------------------------------ arrays with labels= (the in-memory form)


def _arrays():
    X = {m: _bank("alpha", m, j).features for j, m in enumerate(MODELS)}
    y = _bank("alpha", "good", 0).labels
    return X, y


def test_arrays_with_labels_equal_direct_calls(tmp_path):
    X, y = _arrays()
    before = {m: x.copy() for m, x in X.items()}
    res = tl.score_pool(X, ["knn_loo", "logme"], labels=y, score_kwargs={"knn_loo": {"k": 3}})
    assert isinstance(res, tl.PoolScores) and res.datasets == ["data"]
    assert [(r["model"], r["score"]) for r in res.rows] == [(m, s) for m in sorted(MODELS) for s in ("knn_loo", "logme")]
    for r in res.rows:
        x = X[r["model"]]
        want = tl.knn_loo(x, y, k=3) if r["score"] == "knn_loo" else tl.logme(x, y)
        assert r["value"] == want and r["seconds"] > 0
    for m in MODELS:  # inputs are not mutated
        np.testing.assert_array_equal(X[m], before[m])
    # a sequence names its models "0", "1", ...; .npy paths and loaders are arrays too; dataset= names the rows
    np.save(tmp_path / "mid.npy", X["mid"])
    seq = tl.score_pool([X["good"], str(tmp_path / "mid.npy"), lambda: X["bad"]], "knn_loo", labels=y,
                        dataset="alpha")
    assert seq.table() == {"knn_loo": {"alpha": {"0": tl.knn_loo(X["good"], y), "1": tl.knn_loo(X["mid"], y),
                                                 "2": tl.knn_loo(X["bad"], y)}}}
    # the same values as the bank form of the same arrays
    banks = [FeatureBank(X[m], y, meta={"model_id": m, "dataset_id": "data"}) for m in MODELS]
    assert tl.score_pool(banks, ["knn_loo", "logme"], score_kwargs={"knn_loo": {"k": 3}}).table() == res.table()


def test_arrays_probs_feed_probs_scores_as_given(dummy_scores):
    X, y = _arrays()
    P = {m: np.random.default_rng(j).dirichlet(np.ones(5), size=len(y)) for j, m in enumerate(MODELS)}
    res = tl.score_pool(X, ["knn_loo", "_test_probs"], labels=y, probs={"good": P["good"], "mid": P["mid"]},
                        device="cpu")
    got = res.table()["_test_probs"]["data"]
    assert set(got) == {"good", "mid"}  # "bad" has no probs: skipped with a note
    assert got["good"] == float(np.max(P["good"], axis=1).mean())
    np.testing.assert_array_equal(dummy_scores["probs"][0], P["good"])  # used as given, not softmaxed again
    assert res.notes == ["_test_probs: skipped for data/bad (no source probabilities: give probs={'bad': ...})"]
    # a sequence of probs is aligned with a sequence of banks
    seq = tl.score_pool([X["good"]], ["_test_probs"], labels=y, probs=[P["good"]])
    assert seq.table()["_test_probs"]["data"]["0"] == got["good"]


def test_errors_nan_keeps_the_other_values(banks):
    X, y = _arrays()
    bad = X["bad"].copy()
    bad[7, 2] = np.nan
    res = tl.score_pool({"good": X["good"], "bad": bad}, ["knn_loo", "logme"], labels=y, errors="nan")
    t = res.table()
    assert math.isnan(t["knn_loo"]["data"]["bad"]) and math.isnan(t["logme"]["data"]["bad"])
    assert t["knn_loo"]["data"]["good"] == tl.knn_loo(X["good"], y)
    assert [(f["model"], f["score"]) for f in res.failures] == [("bad", "knn_loo"), ("bad", "logme")]
    assert all("NaN or inf" in f["error"] for f in res.failures)
    assert any(n.startswith("knn_loo: NaN for data/bad after an error (score 'knn_loo' on dataset 'data', "
                            "model 'bad': ") for n in res.notes)
    assert "nan" in res.to_csv()  # a NaN value is written, and read back as NaN
    # errors="note" drops the score everywhere instead
    noted = tl.score_pool({"good": X["good"], "bad": bad}, ["knn_loo"], labels=y, errors="note")
    assert noted.rows == [] and noted.failures == []


def test_array_form_bad_arguments(banks, tmp_path):
    X, y = _arrays()
    with pytest.raises(ValueError, match="give their labels="):
        tl.score_pool(X, ["knn_loo"])
    with pytest.raises(ValueError, match="banks holds arrays: give their labels="):
        tl.score_pool([X["good"]], ["knn_loo"])
    with pytest.raises(ValueError, match="labels= is for banks given as arrays"):
        tl.score_pool(banks, ["knn_loo"], labels=y)
    with pytest.raises(ValueError, match="labels= is for banks given as arrays"):
        tl.score_pool([str(tmp_path)], ["knn_loo"], labels=y)
    with pytest.raises(ValueError, match="labels= is for banks given as arrays"):
        tl.score_pool(tmp_path, ["knn_loo"], labels=y)
    with pytest.raises(TypeError, match="one per model"):
        tl.score_pool(X["good"], ["knn_loo"], labels=y)
    with pytest.raises(ValueError, match="dataset= names the dataset of banks given as arrays"):
        tl.score_pool(banks, ["knn_loo"], dataset="alpha")
    with pytest.raises(ValueError, match="probs= goes with banks given as arrays"):
        tl.score_pool(banks, ["knn_loo"], probs={"good": X["good"]})
    with pytest.raises(ValueError, match=r"probs names models that are not in banks: \['nope'\]"):
        tl.score_pool(X, ["knn_loo"], labels=y, probs={"nope": X["good"]})
    with pytest.raises(ValueError, match="probs has 2 entries but banks has 1 models"):
        tl.score_pool([X["good"]], ["knn_loo"], labels=y, probs=[X["good"], X["good"]])
    with pytest.raises(ValueError, match=r"banks\['good'\]: 'x.csv' is not a .npy file"):
        tl.score_pool({"good": "x.csv"}, ["knn_loo"], labels=y)
    with pytest.raises(TypeError, match=r"banks\['good'\] must be an array"):
        tl.score_pool({"good": 3}, ["knn_loo"], labels=y)
    with pytest.raises(TypeError, match="model names must be non-empty strings"):
        tl.score_pool({1: X["good"]}, ["knn_loo"], labels=y)
    with pytest.raises(ValueError, match="empty pool"):
        tl.score_pool({}, ["knn_loo"], labels=y)
    with pytest.raises(ValueError, match=r"score 'knn_loo' on dataset 'data', model 'bad': labels has length 10"):
        tl.score_pool(X, ["knn_loo"], labels=y[:10])
    with pytest.raises(ValueError, match="errors must be 'raise', 'note' or 'nan'"):
        tl.score_pool(X, ["knn_loo"], labels=y, errors="ignore")
    with pytest.raises(ValueError, match="kernel_threads must be None or an int >= 0"):
        tl.score_pool(X, ["knn_loo"], labels=y, kernel_threads=-1)


def test_kernel_threads_gives_the_same_values():
    X, y = _arrays()
    assert tl.score_pool(X, ["knn_loo"], labels=y, kernel_threads=1).table() == \
        tl.score_pool(X, ["knn_loo"], labels=y).table()
