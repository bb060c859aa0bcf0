"""Proxy cost as Renggli et al. count it: the forward-pass seconds are recorded in the bank (meta.json
``extract_seconds``) when it is written, travel through score_pool and its CSV, and cost_quality shows them beside
the scoring seconds. A fake clock (one tick per reading) makes every expected figure a hand count."""
from __future__ import annotations

import json
import math
import os
import sys
import types

import numpy as np
import pytest

import transferlab as tl
from transferlab import bank as bank_mod
from transferlab.bank import BankWriter, FeatureBank
from transferlab.evaluate import Report, cost_markdown, cost_quality

N, D = 30, 4


def _rows(seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(N) % 3
    return (rng.normal(size=(N, D)) + y[:, None]).astype(np.float32), y


def _write(path, seconds_per_block, *, model="m", upto=N, block=10, seed=0):
    x, y = _rows(seed)
    w = BankWriter.create_or_resume(path, n=N, d=D, z=None, identity={"model_id": model, "dataset_id": "t"})
    for s in range(w.rows_written, upto, block):
        w.write(s, x[s:s + block], y[s:s + block], seconds=seconds_per_block)
    return w


def test_writer_sums_the_seconds_of_every_block_and_across_a_resume(tmp_path):
    _write(tmp_path / "b", 0.25, upto=20).close()
    assert FeatureBank.status(tmp_path / "b")["extract_seconds"] == 0.5
    bank = _write(tmp_path / "b", 1.0).finalize()  # resumed at row 20: one more block
    assert bank.extract_seconds == 1.5 and bank.meta["extract_seconds"] == 1.5


def test_a_bank_without_the_field_opens_and_reads_nan(tmp_path):
    w = BankWriter.create_or_resume(tmp_path / "old", n=N, d=D, z=None, identity={"model_id": "m", "dataset_id": "t"})
    x, y = _rows()
    w.write(0, x, y)  # an older writer: no seconds
    bank = w.finalize()
    assert "extract_seconds" not in bank.meta and math.isnan(bank.extract_seconds)
    assert math.isnan(FeatureBank(x, y).extract_seconds)


def test_a_bank_resumed_from_one_without_the_field_records_no_partial_sum(tmp_path):
    w = BankWriter.create_or_resume(tmp_path / "b", n=N, d=D, z=None, identity={"model_id": "m", "dataset_id": "t"})
    x, y = _rows()
    w.write(0, x[:10], y[:10])
    w.close()
    bank = _write(tmp_path / "b", 2.0).finalize()
    assert "extract_seconds" not in bank.meta  # 20 rows timed of 30 would understate the cost


@pytest.mark.parametrize("bad", [-1.0, "1.0", True, float("nan"), float("inf")])
def test_tampered_extract_seconds_is_refused_naming_the_field(tmp_path, bad):
    _write(tmp_path / "b", 0.5).finalize()
    mp = tmp_path / "b" / "meta.json"
    meta = json.loads(mp.read_text())
    meta["extract_seconds"] = bad
    mp.write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="extract_seconds must be a finite number >= 0") as info:
        FeatureBank.open(tmp_path / "b")
    assert "meta.json" in str(info.value)


def test_writer_refuses_bad_seconds(tmp_path):
    x, y = _rows()
    w = BankWriter.create_or_resume(tmp_path / "b", n=N, d=D, z=None, identity={"model_id": "m", "dataset_id": "t"})
    with pytest.raises(ValueError, match="seconds must be a finite number >= 0"):
        w.write(0, x[:10], y[:10], seconds=-1.0)
    assert w.rows_written == 0  # nothing advanced
    w.close()


class _Clock:
    """time.perf_counter stand-in: each reading is one second later than the one before."""

    def __init__(self):
        self.t = 0.0

    def __call__(self):
        self.t += 1.0
        return self.t


def test_extract_records_one_tick_per_batch_in_memory_and_on_disk(tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")
    extract_mod = sys.modules["transferlab.extract"]  # the module (tl.extract is the function)

    model = torch.nn.Sequential(torch.nn.Linear(5, 3))
    x, y = torch.randn(50, 5), torch.arange(50) % 2
    monkeypatch.setattr(extract_mod, "time", types.SimpleNamespace(perf_counter=_Clock()))
    # 50 rows in batches of 16: 4 forward passes; two readings each, one tick apart
    mem = tl.extract(model, (x, y), batch_size=16, progress=False, adapter=lambda m, b: (m(b), None))
    assert mem.meta["extract_seconds"] == 4.0
    disk = tl.extract(model, (x, y), tmp_path / "bank", batch_size=16, progress=False,
                      adapter=lambda m, b: (m(b), None))
    assert disk.extract_seconds == 4.0 and FeatureBank.open(tmp_path / "bank").extract_seconds == 4.0


def _pool_banks(root):
    """Two models on two datasets; the forward passes "took" 3 s (good) and 0.5 s (bad), 1 s more on beta."""
    secs = {"good": 3.0, "bad": 0.5}
    for j, (m, sep) in enumerate((("good", 3.0), ("bad", 0.1))):
        for ds in ("alpha", "beta"):
            rng = np.random.default_rng(j)
            y = np.arange(60) % 3
            x = (rng.normal(size=(60, D)) + sep * y[:, None]).astype(np.float32)
            w = BankWriter.create_or_resume(os.path.join(root, ds, m), n=60, d=D, z=None,
                                            identity={"model_id": m, "dataset_id": ds})
            w.write(0, x, y, seconds=secs[m] + (ds == "beta"))
            w.finalize()


def test_score_pool_carries_them_to_the_csv_and_cost_quality(tmp_path):
    _pool_banks(tmp_path / "banks")
    res = tl.score_pool(str(tmp_path / "banks"), ["knn_loo"])
    assert res.extract_seconds == {"alpha": {"good": 3.0, "bad": 0.5}, "beta": {"good": 4.0, "bad": 1.5}}
    path = tmp_path / "s.csv"
    res.to_csv(path)
    assert path.read_text().splitlines()[0] == "dataset,model,score,value,seconds,extract_seconds"
    back = tl.PoolScores.from_csv(path)
    assert back.extract_seconds == res.extract_seconds and back.table() == res.table()
    ft = {"alpha": {"good": 0.9, "bad": 0.5}, "beta": {"good": 0.8, "bad": 0.6}}
    rep = Report.from_tables(path, ft, pool=None)
    for src in (res, str(path)):
        (row,) = cost_quality(src, rep)
        score_secs = [r["seconds"] for r in res.rows]
        assert row["extract_banks"] == 4
        assert row["extract_mean_seconds"] == pytest.approx((3.0 + 0.5 + 4.0 + 1.5) / 4)
        assert row["extract_total_seconds"] == pytest.approx(9.0)
        assert row["proxy_mean_seconds"] == pytest.approx((9.0 + sum(score_secs)) / 4, rel=1e-5)
    md = cost_markdown([row])
    head, _, body = md.splitlines()[:3]
    cells = dict(zip([c.strip() for c in head.split("|")], [c.strip() for c in body.split("|")]))
    assert cells["extract s / bank"] == "2.25"
    assert float(cells["extract + score s / bank"]) == pytest.approx(row["proxy_mean_seconds"], rel=1e-2)
    # given explicitly, they replace what the pool carried
    (row,) = cost_quality(res, rep, extract_seconds={"alpha": {"good": 1.0}})
    assert row["extract_banks"] == 1 and row["extract_mean_seconds"] == 1.0 and math.isnan(row["proxy_mean_seconds"])
    with pytest.raises(ValueError, match=r"extract_seconds\['alpha'\]\['good'\] must be a finite number"):
        cost_quality(res, rep, extract_seconds={"alpha": {"good": -1.0}})
    with pytest.raises(TypeError, match="extract_seconds must be"):
        cost_quality(res, rep, extract_seconds=[1.0])


def test_banks_without_extraction_seconds_read_not_available(tmp_path):
    x, y = _rows()
    res = tl.score_pool([FeatureBank(x, y, meta={"model_id": m, "dataset_id": "t"}) for m in ("a", "b")],
                        ["knn_loo"])
    assert res.extract_seconds == {}
    assert "extract_seconds" not in res.to_csv()  # the CSV of older versions, unchanged
    rep = Report.from_tables(res.table(), {"t": {"a": 0.5, "b": 0.7}}, pool=None)
    (row,) = cost_quality(res, rep)
    assert row["extract_banks"] == 0 and math.isnan(row["extract_mean_seconds"])
    assert math.isnan(row["proxy_mean_seconds"])
    body = cost_markdown([row]).splitlines()[2]
    assert body.count("n/a") >= 2  # extraction and the sum: not recorded, never 0
