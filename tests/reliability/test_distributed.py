"""transferlab.distributed on a real (local) Dask cluster: pool scoring and sharded knn_loo equal
to the local results, bitwise."""
from __future__ import annotations

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")

import transferlab  # noqa: E402
from transferlab import _C, distributed as tld  # noqa: E402
from transferlab.scores.knn.partial import Partial, merge_partials  # noqa: E402

# Dask's own housekeeping warnings (ports, scratch dirs, event loop) are not ours.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::ResourceWarning",
                                        "ignore:.*[Pp]ort.*:UserWarning")


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as c:
        with distributed.Client(c) as cl:
            yield cl


def _bank(n=900, d=24, c=5, seed=0, dup=True):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, c, size=n)
    X = (rng.normal(size=(c, d)) * 1.5)[y] + rng.normal(size=(n, d))
    X = np.round(X * 4) / 4  # coarse grid: many exact distance ties
    if dup:
        X[rng.integers(0, n, size=n // 5)] = X[:n // 5]
    return X.astype(np.float32), y


def _same_details(a, b):
    np.testing.assert_array_equal(a.neighbors, b.neighbors)
    assert a.distances.tobytes() == b.distances.tobytes()
    np.testing.assert_array_equal(a.tie_count, b.tie_count)
    assert a.correct.tobytes() == b.correct.tobytes()
    assert np.float64(a.score).tobytes() == np.float64(b.score).tobytes()


@pytest.mark.parametrize("k,ties", [(1, "expected"), (1, "lowest_index"), (5, "expected"), (4, "lowest_index")])
@pytest.mark.parametrize("blocks", [1, 3, 7])
def test_sharded_knn_equals_local_in_memory(client, k, ties, blocks):
    X, y = _bank()
    local = transferlab.knn_loo(X, y, k=k, ties=ties, device="cpu", return_details=True)
    got = tld.knn_loo_sharded(X, y, k=k, ties=ties, n_blocks=blocks, client=client, return_details=True)
    _same_details(got, local)


@pytest.mark.parametrize("dtype", [np.float16, np.float64, np.int32])
def test_sharded_knn_from_npy_path_equals_local(client, tmp_path, dtype):
    X, y = _bank(n=700, seed=1)
    X = (X * 4).astype(dtype) if dtype == np.int32 else X.astype(dtype)
    path = tmp_path / "bank.npy"
    np.save(path, X)
    mm = np.load(path, mmap_mode="r")
    local = transferlab.knn_loo(mm, y, k=3, device="cpu", return_details=True)
    got = tld.knn_loo_sharded(str(path), y, k=3, block_rows=128, client=client, return_details=True)
    _same_details(got, local)


def test_sharded_knn_bfloat16_torch(client):
    torch = pytest.importorskip("torch")
    X, y = _bank(n=500, seed=2)
    t = torch.from_numpy(X).to(torch.bfloat16)
    local = transferlab.knn_loo(t, y, k=2, device="cpu", return_details=True)
    got = tld.knn_loo_sharded(t, y, k=2, n_blocks=4, client=client, return_details=True)
    _same_details(got, local)


def test_sharded_knn_validates_like_knn_loo(client):
    X, y = _bank(n=100)
    bad = X.copy()
    bad[[13, 60]] = np.nan
    with pytest.raises(ValueError, match=r"NaN or inf in 2 row\(s\) \(first at row 13\)"):
        tld.knn_loo_sharded(bad, y, n_blocks=3, client=client)
    with pytest.raises(ValueError, match=r"k must be in \[1, n_samples-1\]"):
        tld.knn_loo_sharded(X, y, k=100, client=client)
    with pytest.raises(ValueError, match="need at least 2 classes, got 1"):
        tld.knn_loo_sharded(X, np.zeros(100), client=client)
    with pytest.raises(ValueError, match="block_rows"):
        tld.knn_loo_sharded(X, y, block_rows=0, client=client)
    with pytest.raises(ValueError, match=r"\.npy"):
        tld.knn_loo_sharded("bank.csv", y, client=client)


def test_distributed_reexports_the_knn_merge():
    """``transferlab.distributed.Partial`` / ``merge_partials`` (documented) are the kNN package's own."""
    assert tld.Partial is Partial and tld.merge_partials is merge_partials


def test_merge_is_order_free_and_matches_kernel():
    """The min-merge of partials over any split of the candidates equals one partial over all."""
    X, y = _bank(n=300, d=6, seed=4)
    y32 = y.astype(np.int32)
    rng = np.random.default_rng(0)
    for k in (1, 3, 10):
        whole = _C.knn_cross(X, 0, X, y32, k, False, 1)
        cuts = [0, 7, 8, 150, 151, 300]  # blocks smaller than k included
        parts = []
        for a, b in zip(cuts[:-1], cuts[1:]):
            idx, dist, found, tc, ts = _C.knn_cross(X, 0, X[a:b], y32[a:b], k, False, 1, a, y32)
            if b - a > 1:  # the backward lists of the swapped call are the same partial
                _, back = _C.knn_cross(X[a:b], a, X, y32, k, False, 2, 0, y32[a:b], True)
                for u, v in zip(back, (idx, dist, found, tc, ts)):
                    assert u.tobytes() == v.tobytes()
            same = np.zeros(idx.shape, bool)
            same[idx >= 0] = (y32[idx[idx >= 0]] == np.broadcast_to(y32[:, None], idx.shape)[idx >= 0])
            parts.append(Partial(idx, dist, same, found, tc, ts))
        for trial in range(3):
            order = rng.permutation(len(parts))
            acc = parts[order[0]]
            for i in order[1:]:
                acc = merge_partials(acc, parts[i])
            np.testing.assert_array_equal(acc.idx, whole[0])
            assert acc.dist.tobytes() == whole[1].tobytes()
            np.testing.assert_array_equal(acc.found, whole[2])
            np.testing.assert_array_equal(acc.tie_count, whole[3])
            np.testing.assert_array_equal(acc.tie_same, whole[4])


def test_knn_cross_kernel_bitwise_equals_knn_loo():
    X, y = _bank(n=650, d=37, seed=5)
    y32 = y.astype(np.int32)
    idx, dist, tc, ts = _C.knn_loo(X, y32, 4, False, 2)
    for a, b in [(0, 650), (0, 1), (100, 400), (640, 650)]:
        bi, bd, bf, btc, bts = _C.knn_cross(X[a:b], a, X, y32, 4, False, 2)
        np.testing.assert_array_equal(bi, idx[a:b])
        assert bd.tobytes() == dist[a:b].tobytes()
        np.testing.assert_array_equal(btc, tc[a:b])
        np.testing.assert_array_equal(bts, ts[a:b])
        assert (bf == 4).all()


def test_knn_cross_argument_errors():
    X = np.ones((5, 3), np.float32)
    lab = np.zeros(5, np.int32)
    with pytest.raises(ValueError, match="k must be"):
        _C.knn_cross(X, 0, X, lab, 0, False, 1)
    with pytest.raises(ValueError, match="features"):
        _C.knn_cross(X, 0, np.ones((5, 4), np.float32), lab, 1, False, 1)
    with pytest.raises(ValueError, match="inside x_all"):
        _C.knn_cross(X, 3, X, lab, 1, False, 1)
    with pytest.raises(ValueError, match="labels"):
        _C.knn_cross(X, 0, X, lab[:3], 1, False, 1)


def _pool_banks(tmp_path):
    """Four models on the same labels: arrays and .npy paths mixed; and their local knn_loo (k=3)."""
    banks, local = {}, {}
    for i in range(4):
        X, y = _bank(n=300, d=8 + i, seed=10)  # same labels (seed), different banks
        X = X + i * np.float32(0.01) * np.arange(X.shape[1], dtype=np.float32)
        if i % 2:
            path = tmp_path / f"m{i}.npy"
            np.save(path, X)
            banks[f"m{i}"] = str(path)
        else:
            banks[f"m{i}"] = X
        local[f"m{i}"] = transferlab.knn_loo(X, y, k=3)
    return banks, y, local


def test_score_pool_equals_local_scores(client, tmp_path):
    banks, y, local = _pool_banks(tmp_path)
    res = transferlab.score_pool(banks, "knn_loo", labels=y, score_kwargs={"knn_loo": {"k": 3}}, client=client,
                                 kernel_threads=1)
    assert isinstance(res, transferlab.PoolScores)
    table = res.table()
    assert set(table) == {"knn_loo"} and set(table["knn_loo"]) == {"data"}
    assert table["knn_loo"]["data"] == local
    assert [r["model"] for r in res.rows] == ["m0", "m1", "m2", "m3"] and all(r["seconds"] > 0 for r in res.rows)
    # the same call here (no client) gives the same values
    here = transferlab.score_pool(banks, "knn_loo", labels=y, score_kwargs={"knn_loo": {"k": 3}}, kernel_threads=1)
    assert here.table() == table


def test_deprecated_distributed_score_pool_forwards(client, tmp_path):
    banks, y, local = _pool_banks(tmp_path)
    with pytest.warns(DeprecationWarning, match="transferlab.score_pool"):
        table = tld.score_pool(banks, y, "knn_loo", score_kwargs={"knn_loo": {"k": 3}}, client=client,
                               kernel_threads=1)
    assert set(table) == {"knn_loo"}
    assert table["knn_loo"] == local
    assert list(table["knn_loo"]) == list(banks)  # the models in the order given


def test_score_pool_errors(client):
    X, y = _bank(n=50)
    bad = X.copy()
    bad[3, 0] = np.inf
    with pytest.raises(ValueError, match="score 'knn_loo' on dataset 'data', model 'broken': .*NaN or inf"):
        transferlab.score_pool({"ok": X, "broken": bad}, ["knn_loo"], labels=y, client=client)
    res = transferlab.score_pool({"ok": X, "broken": bad}, ["knn_loo"], labels=y, client=client, errors="nan")
    table = res.table()["knn_loo"]["data"]
    assert np.isnan(table["broken"]) and np.isfinite(table["ok"])
    assert [(f["model"], f["score"]) for f in res.failures] == [("broken", "knn_loo")]
    assert res.failures[0]["error"].startswith("ValueError: features contains NaN or inf")
    local = transferlab.score_pool({"ok": X, "broken": bad}, ["knn_loo"], labels=y, errors="nan")
    assert local.notes == res.notes and local.failures == res.failures
    noted = transferlab.score_pool({"ok": X, "broken": bad}, ["knn_loo"], labels=y, client=client, errors="note")
    assert noted.rows == [] and any("dropped for every bank" in n for n in noted.notes)
    with pytest.raises(ValueError, match="unknown score"):
        transferlab.score_pool({"ok": X}, ["nope"], labels=y, client=client)
    with pytest.raises(ValueError, match="empty pool"):
        transferlab.score_pool({}, labels=y, client=client)
    skipped = transferlab.score_pool({"ok": X}, ["leep"], labels=y, client=client)
    assert skipped.rows == [] and skipped.notes == [
        "leep: skipped for data/ok (no source probabilities: give probs={'ok': ...})"]


def test_deprecated_score_pool_errors(client):
    X, y = _bank(n=50)
    bad = X.copy()
    bad[3, 0] = np.inf
    with pytest.warns(DeprecationWarning):
        # the failure names model and score (now in transferlab.score_pool's words)
        with pytest.raises(ValueError, match="score 'knn_loo' on dataset 'data', model 'broken': .*NaN or inf"):
            tld.score_pool({"ok": X, "broken": bad}, y, client=client)
        table = tld.score_pool({"ok": X, "broken": bad}, y, client=client, on_error="nan")
        assert np.isnan(table["knn_loo"]["broken"]) and np.isfinite(table["knn_loo"]["ok"])
        assert "knn_loo/broken" in table["_errors"]
        with pytest.raises(ValueError, match="unknown score"):
            tld.score_pool({"ok": X}, y, "nope", client=client)
        with pytest.raises(ValueError, match="empty pool"):
            tld.score_pool({}, y, client=client)
        with pytest.raises(ValueError, match=r"inputs\['ok'\]\['probs'\]"):
            tld.score_pool({"ok": X}, y, "leep", client=client)


def test_score_pool_on_cluster_takes_loaders_probs_and_in_memory_banks(client, tmp_path):
    from transferlab.bank import FeatureBank

    X, y = _bank(n=200, seed=3)
    P = np.random.default_rng(0).dirichlet(np.ones(7), size=200)
    np.save(tmp_path / "probs.npy", P)
    banks = {"loaded": _LoadBank(X), "mapped": X[::-1].copy()}
    probs = {"loaded": str(tmp_path / "probs.npy"), "mapped": P}
    names = ["knn_loo", "leep", "logme"]
    remote = transferlab.score_pool(banks, names, labels=y, probs=probs, dataset="toy", client=client)
    here = transferlab.score_pool(banks, names, labels=y, probs=probs, dataset="toy")
    assert [(r["dataset"], r["model"], r["score"], r["value"]) for r in remote.rows] == [
        (r["dataset"], r["model"], r["score"], r["value"]) for r in here.rows]
    assert len(remote.rows) == 6 and remote.notes == here.notes
    assert remote.table()["leep"]["toy"]["mapped"] == transferlab.leep(P, y)
    # FeatureBank objects without a directory are shipped; their dataset / model ids name the rows
    fb = [FeatureBank(X, y, logits=np.log(P), meta={"model_id": "a", "dataset_id": "t"}),
          FeatureBank(X[:, :5], y, meta={"model_id": "b", "dataset_id": "t"})]
    remote = transferlab.score_pool(fb, names, client=client)
    here = transferlab.score_pool(fb, names)
    assert remote.rows and [(r["model"], r["score"], r["value"]) for r in remote.rows] == [
        (r["model"], r["score"], r["value"]) for r in here.rows]
    assert remote.notes == here.notes == ["leep: skipped for t/b (the bank has no logits)"]


class _LoadBank:
    """A zero-argument loader (runs on the worker)."""

    def __init__(self, X):
        self.X = X

    def __call__(self):
        return self.X


def test_connect_without_client_says_what_to_pass(monkeypatch):
    def no_client():
        raise ValueError("No global client found")

    monkeypatch.setattr(distributed, "get_client", no_client)
    with pytest.raises(ValueError, match="scheduler="):
        with tld.connect():
            pass


def test_default_client_is_used_and_errors_pass_through(client):
    X, y = _bank(n=120)
    assert tld.knn_loo_sharded(X, y, n_blocks=2) == transferlab.knn_loo(X, y)  # the fixture's client
    with pytest.raises(ValueError, match="k must be in"):
        tld.knn_loo_sharded(X, y, k=0)
    with pytest.raises(ValueError, match="not both"):
        with tld.connect(client, scheduler="local"):
            pass


def test_connect_local_scheduler():
    X, y = _bank(n=200)
    with tld.connect(scheduler="local", n_workers=1, threads_per_worker=1, processes=False) as c:
        got = tld.knn_loo_sharded(X, y, n_blocks=2, client=c)
    assert got == transferlab.knn_loo(X, y)


@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.float64])
def test_knn_cross_thread_count_and_simd_free_of_blocking(dtype):
    """knn_cross is bitwise the same for 1, 2 and 3 threads and any split of the query rows."""
    X, y = _bank(n=700, d=19, seed=6)
    X = X.astype(dtype)
    y32 = y.astype(np.int32)
    ref = _C.knn_cross(X, 0, X, y32, 3, False, 1)
    for threads in (2, 3):
        out = _C.knn_cross(X, 0, X, y32, 3, False, threads)
        for a, b in zip(out, ref):
            assert a.tobytes() == b.tobytes()
    pieces = [_C.knn_cross(X[a:b], a, X, y32, 3, False, 2) for a, b in [(0, 250), (250, 251), (251, 700)]]
    for i in range(5):
        assert np.concatenate([p[i] for p in pieces]).tobytes() == ref[i].tobytes()
    # Backward lists (per-thread lists merged at the end) equal the one-sided call, any thread count.
    one_sided = _C.knn_cross(X[300:], 300, X[:300], y32[:300], 3, False, 1, 0, y32[300:])
    for threads in (1, 2, 3):
        _, back = _C.knn_cross(X[:300], 0, X[300:], y32[300:], 3, False, threads, 300, y32[:300], True)
        for a, b in zip(back, one_sided):
            assert a.tobytes() == b.tobytes()


# ------------------------------------------------------------------ FeatureBank directories, and the CLI


def _write_banks(root, n=150):
    from transferlab.bank import BankWriter

    for dataset in ("alpha", "beta"):
        for j, model in enumerate(("good", "bad")):
            rng = np.random.default_rng(hash((dataset, model)) % 2**32)
            y = rng.integers(0, 3, size=n)
            X = ((3.0 if model == "good" else 0.3) * rng.normal(size=(3, 6))[y] + rng.normal(size=(n, 6)))
            w = BankWriter.create_or_resume(root / dataset / model, n=n, d=6, z=4,
                                            identity={"model_id": model, "dataset_id": dataset})
            w.write(0, X.astype(np.float32), y, logits=rng.normal(size=(n, 4)).astype(np.float32))
            w.finalize()


def test_score_pool_of_bank_directories_on_cluster_equals_local(client, tmp_path):
    _write_banks(tmp_path)
    names = ["knn_loo", "leep", "sfda"]
    local = transferlab.score_pool(tmp_path, names)
    remote = transferlab.score_pool(tmp_path, names, client=client)
    key = lambda r: (r["dataset"], r["model"], r["score"])  # noqa: E731
    assert [key(r) for r in remote.rows] == [key(r) for r in local.rows]
    assert [r["value"] for r in remote.rows] == [r["value"] for r in local.rows]
    assert remote.notes == local.notes
    with pytest.raises(ValueError, match="not a directory|no feature bank"):
        transferlab.score_pool(tmp_path / "missing", names, client=client)


def test_deprecated_score_banks_forwards(client, tmp_path):
    _write_banks(tmp_path)
    names = ["knn_loo", "leep", "sfda"]
    local = transferlab.score_pool(tmp_path, names)
    with pytest.warns(DeprecationWarning, match="transferlab.score_pool"):
        remote = tld.score_banks(tmp_path, names, client=client)
    key = lambda r: (r["dataset"], r["model"], r["score"])  # noqa: E731
    assert isinstance(remote, transferlab.PoolScores)
    assert [key(r) for r in remote.rows] == [key(r) for r in local.rows]
    assert [r["value"] for r in remote.rows] == [r["value"] for r in local.rows]
    with pytest.warns(DeprecationWarning):
        with pytest.raises(ValueError, match="not a directory|no feature bank"):
            tld.score_banks(tmp_path / "missing", names, client=client)


def test_cli_score_with_scheduler(client, tmp_path, capsys):
    from transferlab.cli import main

    _write_banks(tmp_path / "banks")
    address = client.scheduler.address
    assert main(["score", str(tmp_path / "banks"), "-o", str(tmp_path / "remote.csv"), "--scores", "knn_loo",
                 "sfda", "--scheduler", address]) == 0
    assert main(["score", str(tmp_path / "banks"), "-o", str(tmp_path / "local.csv"), "--scores", "knn_loo",
                 "sfda"]) == 0
    strip = lambda p: [",".join(l.split(",")[:4]) for l in p.read_text().splitlines()]  # noqa: E731 (no seconds)
    assert strip(tmp_path / "remote.csv") == strip(tmp_path / "local.csv")
    assert len(strip(tmp_path / "local.csv")) == 1 + 2 * 2 * 2


def test_sharded_knn_rescales_extreme_banks(client):
    # Hostile-input defect 5: the workers read every block scaled by the bank's power of two, as knn_loo does.
    X, y = _bank(n=300, seed=7)
    want = transferlab.knn_loo(X, y, k=3, return_details=True)
    got = tld.knn_loo_sharded(np.ldexp(X, 80), y, k=3, n_blocks=3, client=client, return_details=True)
    assert got.score == want.score
    np.testing.assert_array_equal(got.neighbors, want.neighbors)
    np.testing.assert_array_equal(got.correct, want.correct)
    with np.errstate(over="ignore"):
        np.testing.assert_array_equal(got.distances, np.ldexp(want.distances.astype(np.float64), 160).astype(np.float32))
