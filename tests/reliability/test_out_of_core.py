"""Out of core (issue 6 item 3): ``max_memory=`` on every chunked score, the shared block reader that
releases a memory-mapped bank's pages, and ``knn_loo(queries=...)``.

* budgets that force many blocks on small read-only memmaps give bitwise the in-memory result;
* the block reader really bounds the RSS (a ~300 MB memmap under max_memory="32MB", and streamed in
  8 MB chunks by ``streaming.run``, in a subprocess);
* bad budgets are clear errors (BAD_INPUTS.md row 16), and a budget too small for the fixed state
  names the minimum;
* ``queries=`` equals the full score's per-sample values on those rows, bit for bit.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

import transferlab as tl
from transferlab.core import blocks
from transferlab.core.arrays import as_matrix
from transferlab.scores.knn import out_of_core as knn_out_of_core

FEATURE_SCORES = ["logme", "hscore", "reg_hscore", "sfda", "knn_loo", "gbc", "parc"]
PROB_SCORES = ["leep", "nce"]
ALL = FEATURE_SCORES + PROB_SCORES


def _bank(tmp_path, n=900, d=12, z=9, c=4, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, c, n)
    X = (rng.standard_normal((n, d)) + 0.8 * y[:, None] + 3.0).astype(np.float32)
    logits = rng.standard_normal((n, z)) + np.eye(c, z)[y] * 2.0
    P = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "P.npy", P.astype(np.float32))
    return (np.load(tmp_path / "X.npy", mmap_mode="r"), np.load(tmp_path / "P.npy", mmap_mode="r"), y)


def _call(name, x, y, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return getattr(tl, name)(x, y, **kw)


def _minimum(name, x, y, **kw) -> int:
    """The smallest budget the score accepts, read from its own error message."""
    with pytest.raises(ValueError, match="the minimum is") as e:
        _call(name, x, y, max_memory=1, **kw)
    return int(str(e.value).split("the minimum is ")[1].split(" ")[0])


@pytest.fixture
def count_blocks(monkeypatch):
    """Counts the blocks handed out by the shared reader (each block of a memmap is released once)."""
    calls = []
    real = blocks.release

    def spy(m, start=0, stop=None):
        calls.append((start, stop))
        return real(m, start, stop)

    monkeypatch.setattr(blocks, "release", spy)
    return calls


# ---------------------------------------------------------------------------- bitwise equality


@pytest.mark.parametrize("name", ALL)
def test_budgets_forcing_many_blocks_are_bitwise_equal(name, tmp_path, count_blocks):
    X, P, y = _bank(tmp_path)
    x = P if name in PROB_SCORES else X
    want = _call(name, np.array(x), y)
    low = _minimum(name, x, y)
    # knn_loo over every row costs (query groups x reference blocks) kernel calls: at the bare minimum
    # both are one row; start a little above it.
    first = int(1.5 * low) if name == "knn_loo" else low
    for budget in (first, first + 3000, 2 * low, "64MiB"):
        count_blocks.clear()
        got = _call(name, x, y, max_memory=budget)
        assert got == want, (name, budget, got, want)
        if budget == first:  # knn_loo: several query groups, each over >= 2 reference blocks (256-row minimum)
            need = 10 if name == "knn_loo" else 20
            assert len(count_blocks) >= need, f"{name}: a small budget should read many blocks, got {len(count_blocks)}"


@pytest.mark.parametrize("name", ["logme", "sfda", "leep"])
def test_float64_and_float16_banks_under_a_budget(name, tmp_path):
    X, P, y = _bank(tmp_path, n=500)
    for dt in (np.float64, np.float16):
        x = np.ascontiguousarray((P if name == "leep" else X), dtype=dt)
        if name == "leep":
            x = x.astype(np.float64)
            x /= x.sum(axis=1, keepdims=True)
            x = x.astype(dt)
        want = _call(name, x, y)
        assert _call(name, x, y, max_memory=3 * _minimum(name, x, y)) == want


def test_logits_and_nan_omit_under_a_budget(tmp_path):
    X, P, y = _bank(tmp_path, n=600)
    logits = np.log(np.array(P)) + 1.5
    assert _call("leep", logits, y, from_logits=True, max_memory=40_000) == _call("leep", logits, y, from_logits=True)
    Xn = np.array(X)
    Xn[[5, 300]] = np.nan
    for name in ("logme", "sfda"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            assert (_call(name, Xn, y, nan_policy="omit", max_memory="64KB")
                    == _call(name, Xn, y, nan_policy="omit"))
    with pytest.raises(ValueError, match="NaN or inf in 2 row"):
        _call("hscore", Xn, y, max_memory="64KB")


def test_budget_does_not_leak_out_of_the_call(tmp_path, count_blocks):
    """The budget travels with the call's matrix (``Matrix.budget``), not with the process: the next
    call without ``max_memory`` reads with the default blocks again, and fresh matrices are unbudgeted."""
    X, _, y = _bank(tmp_path, n=300)
    _call("logme", X, y, max_memory=60_000)
    budgeted = len(count_blocks)
    count_blocks.clear()
    _call("logme", X, y)
    assert len(count_blocks) < budgeted
    assert as_matrix(X).budget == blocks.UNBUDGETED


def test_inputs_never_mutated_and_memmap_stays_readable(tmp_path):
    X, P, y = _bank(tmp_path, n=400)
    before = (np.array(X).tobytes(), np.array(P).tobytes())
    for name in ALL:
        x = P if name in PROB_SCORES else X
        _call(name, x, y, max_memory=max(1_000_000, _minimum(name, x, y)))  # PARC's probe state is ~10 MB
    assert (np.array(X).tobytes(), np.array(P).tobytes()) == before


def test_copy_on_write_memmaps_keep_their_private_edits(tmp_path):
    X, _, y = _bank(tmp_path, n=400)
    cow = np.load(tmp_path / "X.npy", mmap_mode="c")
    cow[:10] += 1.0  # private edits: releasing these pages would silently drop them
    edited = np.array(cow)
    _call("logme", cow, y, max_memory=60_000)
    assert np.array_equal(np.array(cow), edited)
    assert _call("logme", cow, y, max_memory=60_000) == _call("logme", edited, y)


# ---------------------------------------------------------------------------- bad budgets


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("bad,err,match", [
    (0, ValueError, "positive"), (-5, ValueError, "positive"), ("lots", ValueError, "not a size"),
    ("2 parsecs", ValueError, "not a size"), ("", ValueError, "not a size"), (2.5, ValueError, "whole number"),
    (float("nan"), ValueError, "whole number"), (float("inf"), ValueError, "whole number"), (-1e9, ValueError, "positive"),
    (True, TypeError, "bytes"), ([1], TypeError, "bytes"),
])
def test_bad_max_memory(name, bad, err, match, tmp_path):
    X, P, y = _bank(tmp_path, n=60)
    with pytest.raises(err, match=match):
        _call(name, P if name in PROB_SCORES else X, y, max_memory=bad)


@pytest.mark.parametrize("name", ALL)
def test_budget_below_the_state_names_the_minimum(name, tmp_path):
    X, P, y = _bank(tmp_path, n=200)
    x = P if name in PROB_SCORES else X
    kw = {"queries": 20} if name == "knn_loo" else {}  # every row at one-row blocks: 200^2 kernel calls
    low = _minimum(name, x, y, **kw)
    with pytest.raises(ValueError, match=rf"too small for {name}: .* the minimum is {low} bytes"):
        _call(name, x, y, max_memory=low - 1, **kw)
    _call(name, x, y, max_memory=low, **kw)


def test_parse_max_memory_units():
    p = blocks.parse_max_memory
    assert p(None) is None
    assert p(4096) == 4096 and p(np.int64(7)) == 7
    assert p("2GB") == 2 * 10**9 and p("2gb") == 2 * 10**9 and p("1.5 GB") == 1_500_000_000
    assert p("512MiB") == 512 << 20 and p("64KiB") == 64 << 10 and p("3 kB") == 3000 and p("100") == 100
    # An integral float is a size (hostile-input issue, defect 13: max_memory=1.5e9 was a TypeError).
    assert p(1.5e9) == 1_500_000_000 and p(np.float32(4096.0)) == 4096


def test_gram_state_counts_against_the_budget(tmp_path):
    """A wide bank: the D x D state alone exceeds a budget that would hold many rows."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((50, 400)).astype(np.float32)
    y = np.arange(50) % 2
    with pytest.raises(ValueError, match="fixed state needs"):
        _call("hscore", X, y, max_memory="2MB")  # 400^2 float64 x 4 = 5 MB of state


# ---------------------------------------------------------------------------- knn_loo(queries=)


def _full(X, y, **kw):
    return _call("knn_loo", X, y, return_details=True, **kw)


def _same_rows(r, full, rows):
    assert np.array_equal(r.rows, rows)
    assert np.array_equal(r.neighbors, full.neighbors[rows])
    assert np.array_equal(r.distances, full.distances[rows])
    assert np.array_equal(r.tie_count, full.tie_count[rows])
    assert np.array_equal(r.correct, full.correct[rows])
    assert r.score == float(full.correct[rows].mean())


@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_queries_equal_the_full_score_on_those_rows(k, metric, tmp_path):
    X, _, y = _bank(tmp_path, n=700)
    full = _full(X, y, k=k, metric=metric)
    for queries, budget in [(40, None), (np.array([699, 3, 250, 0, 251]), "200KB"), (700, "300KB")]:
        r = _full(X, y, k=k, metric=metric, queries=queries, max_memory=budget)
        rows = knn_out_of_core.resolve_queries(queries, 700, 0)
        _same_rows(r, full, rows)


@pytest.mark.parametrize("k", [1, 2, 4])
def test_queries_with_heavy_ties_and_duplicates(k):
    rng = np.random.default_rng(3)
    X = rng.integers(0, 3, (260, 3)).astype(np.float32)  # many exact duplicates and distance ties
    y = rng.integers(0, 3, 260)
    full = _full(X, y, k=k)
    for ties in ("expected", "lowest_index"):
        full = _full(X, y, k=k, ties=ties)
        r = _full(X, y, k=k, ties=ties, queries=60, seed=1)
        _same_rows(r, full, knn_out_of_core.resolve_queries(60, 260, 1))


@pytest.mark.parametrize("ref_rows,query_rows", [(1, 1000), (7, 3), (7, 1000), (100, 3)])
def test_neighbour_lists_any_block_sizes(ref_rows, query_rows):
    from transferlab.core.arrays import as_matrix

    rng = np.random.default_rng(4)
    X = rng.integers(0, 3, (90, 3)).astype(np.float32)
    y = rng.integers(0, 3, 90).astype(np.int32)
    for k in (1, 3):
        full = _full(X, y, k=k)
        for q in (np.sort(rng.choice(90, 25, replace=False)), np.arange(90), np.arange(40, 70)):
            idx, dist, tc, ts = knn_out_of_core.neighbour_lists(as_matrix(X), y, q, k, query_rows=query_rows,
                                                            ref_rows=ref_rows)
            assert np.array_equal(idx, full.neighbors[q]) and np.array_equal(dist, full.distances[q])
            assert np.array_equal(tc, full.tie_count[q])


def test_queries_draw_is_seeded_and_nan_omit(tmp_path):
    X, _, y = _bank(tmp_path, n=300)
    a = _full(X, y, queries=30, seed=5)
    assert np.array_equal(a.rows, _full(X, y, queries=30, seed=5).rows)
    assert not np.array_equal(a.rows, _full(X, y, queries=30, seed=6).rows)
    Xn = np.array(X)
    Xn[7] = np.inf
    full = _full(Xn, y, nan_policy="omit")
    keep = np.flatnonzero(np.arange(300) != 7)
    r = _full(Xn, y, nan_policy="omit", queries=np.array([0, 8, 299]))
    assert np.array_equal(r.rows, [0, 8, 299])
    pos = np.searchsorted(keep, [0, 8, 299])
    assert np.array_equal(r.neighbors, full.neighbors[pos]) and np.array_equal(r.correct, full.correct[pos])
    with pytest.raises(ValueError, match="query row 7 holds NaN"):
        _full(Xn, y, nan_policy="omit", queries=np.array([7, 8]))


@pytest.mark.parametrize("bad,err,match", [
    (0, ValueError, r"\[1, n_samples"), (301, ValueError, r"\[1, n_samples"), (True, TypeError, "queries"),
    (np.array([1, 1]), ValueError, "repeat"), (np.array([-1]), ValueError, "row indices in"),
    (np.array([300]), ValueError, "row indices in"), (np.array([0.5]), TypeError, "integer"),
    (np.zeros((2, 2), dtype=int), ValueError, "1-D"),
])
def test_bad_queries(bad, err, match, tmp_path):
    X, _, y = _bank(tmp_path, n=300)
    with pytest.raises(err, match=match):
        _call("knn_loo", X, y, queries=bad)


# ---------------------------------------------------------------------------- RSS bound


_CHILD = r"""
import json, sys, warnings
import numpy as np
import transferlab as tl

def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM"):
            return int(line.split()[1]) * 1024
x = np.load(sys.argv[1], mmap_mode="r")
y = np.arange(x.shape[0]) % 7
small = np.ascontiguousarray(x[:2000])
tl.logme(small, y[:2000], max_memory="32MB"); tl.knn_loo(small, y[:2000], queries=10, max_memory="32MB")
base = hwm()  # after imports and a warm-up call: the growth below is the bank's
v = tl.logme(x, y, max_memory="32MB")
a = hwm()
w = tl.knn_loo(x, y, queries=50, max_memory="32MB")
b = hwm()
from transferlab.scores import streaming
streaming.run("sfda", x, y, chunk_rows=4096)  # three passes over the memmap in 8 MB chunks
c = hwm()
print(json.dumps(dict(base=base, logme=a - base, knn=b - base, sfda_stream=c - base)))
"""


@pytest.mark.slow
def test_rss_stays_near_the_budget_on_a_300mb_memmap(tmp_path):
    n, d = 150_000, 512
    path = tmp_path / "big.npy"
    header = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, d))
    offset = header.offset
    del header
    rng = np.random.default_rng(0)
    with open(path, "r+b") as f:  # plain writes: the page cache, not this process's RSS
        f.seek(offset)
        for s in range(0, n, 10_000):
            f.write(rng.standard_normal((min(10_000, n - s), d), dtype=np.float32).tobytes())
    size = os.path.getsize(path)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out = subprocess.run([sys.executable, "-c", _CHILD, str(path)], check=True, capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=root))
    r = json.loads(out.stdout.strip().splitlines()[-1])
    for name in ("logme", "knn", "sfda_stream"):
        assert r[name] < 96 << 20, (name, r[name] / 2**20, size / 2**20)  # a 300 MB bank, a 32 MB budget
