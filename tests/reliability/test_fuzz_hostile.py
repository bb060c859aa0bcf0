"""The hostile-input fuzz harness: random shapes, dtypes, magnitudes, NaN/inf, duplicate rows and label
kinds thrown at every registered score, every streaming state and the CLI. The contract under test
(BAD_INPUTS.md): a score returns a finite number or raises ValueError/TypeError, never anything else,
and never writes to its inputs; a CLI error is one line with exit status 2.

CI runs a bounded, derandomised number of examples per test; set TRANSFERLAB_FUZZ_EXAMPLES (e.g. 2000)
for a longer hunt, and TRANSFERLAB_FUZZ_SEED to explore other examples.
"""
from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

import transferlab as tl
from transferlab.scores import registry
from transferlab.testing import input_digest

EXAMPLES = int(os.environ.get("TRANSFERLAB_FUZZ_EXAMPLES", "25"))
SEED = int(os.environ.get("TRANSFERLAB_FUZZ_SEED", "0"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize="TRANSFERLAB_FUZZ_SEED" not in os.environ,
                suppress_health_check=list(HealthCheck), database=None)
NAMES = registry.available()
ALLOWED = (ValueError, TypeError)
SCALES = [1.0, 0.0, 1e-30, 1e30, 2.0 ** 80, 1e-300, 1e300]


@st.composite
def banks(draw, probs: bool = False):
    """(features or probabilities, labels) of a random, often hostile, shape and content."""
    n = draw(st.integers(1, 40))
    d = draw(st.integers(1, 9))
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    if probs:
        logits = rng.normal(size=(n, max(d, 2))) * draw(st.sampled_from([1.0, 10.0, 100.0]))
        x = np.exp(logits - logits.max(axis=1, keepdims=True))
        if draw(st.booleans()):
            x /= x.sum(axis=1, keepdims=True)
        if draw(st.booleans()):
            x = logits  # logits passed as probabilities: must be refused, not scored
    else:
        x = rng.normal(size=(n, d)) * draw(st.sampled_from(SCALES))
    if draw(st.booleans()) and n > 1:  # duplicate rows
        x[rng.integers(0, n, size=n // 2)] = x[0]
    if draw(st.integers(0, 4)) == 0:  # a non-finite entry
        x[rng.integers(0, n), rng.integers(0, x.shape[1])] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    dtype = draw(st.sampled_from(["float64", "float32", "float16", "int32", "bool"] if not probs else
                                 ["float64", "float32"]))
    with np.errstate(over="ignore", invalid="ignore"):
        x = x.astype(dtype)
    c = draw(st.integers(1, 5))
    y = rng.integers(0, c, size=n)
    kind = draw(st.sampled_from(["int", "str", "float", "gaps", "negative"]))
    y = {"int": y, "str": np.array([f"c{v}" for v in y]), "float": y.astype(np.float64), "gaps": y * 7 + 3,
         "negative": -y}[kind]
    return x, y


def _check_outcome(call, *arrays):
    before = input_digest(*arrays)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            out = call()
        except ALLOWED:
            out = None
    assert input_digest(*arrays) == before, "the inputs were written to"
    if out is not None:
        value = getattr(out, "score", out)
        assert isinstance(value, (float, np.floating)) and np.isfinite(value), f"returned {value!r}"


@pytest.mark.parametrize("name", NAMES)
@FUZZ
@seed(SEED)
@given(data=st.data())
def test_every_score_is_finite_or_raises_a_clear_error(name, data):
    x, y = data.draw(banks(probs=registry.get(name).inputs == "probs"))
    _check_outcome(lambda: tl.score(name, x, y), x, y)


@pytest.mark.parametrize("name", registry.available_streams())
@FUZZ
@seed(SEED)
@given(data=st.data())
def test_every_stream_is_finite_or_raises_a_clear_error(name, data):
    from transferlab.scores import streaming

    x, y = data.draw(banks(probs=registry.get(name).inputs == "probs"))

    def run():
        with np.errstate(all="ignore"):
            return streaming.run(name, x, y, chunk_rows=max(1, len(y) // 2))

    _check_outcome(run, x, y)


CSV_PIECES = ["dataset,model,score,value\n", "model,aircraft,cars\n", "d1,m1,s,0.5\n", "d1,m2,s,nan\n",
              "d1,m3,s,inf\n", "aircraft,m1,0.7\n", "m1,0.5,0.6\n", "m2,,0.3\n", "\x00\xff", ",,,\n", "d1,m1,s,0.5\n",
              "\"unterminated,\n", "dataset;model;score;value\n", "d2,m1,s,-1e308\n"]


def _cli_exits_0_or_2_with_one_line(argv, banned=()):
    """Runs the CLI on argv: exit 0, or exit 2 with one stderr line, no traceback, none of ``banned`` (API words)."""
    import contextlib
    import io

    from transferlab.cli import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        status = main(argv)
    assert status in (0, 2), (argv, err.getvalue())
    if status == 2:
        msg = err.getvalue()
        assert msg.count("\n") == 1 and "Traceback" not in msg, (argv, msg)
        for api in banned:
            assert api not in msg, (argv, msg)  # flags, not keyword arguments


@FUZZ
@seed(SEED)
@given(scores=st.lists(st.sampled_from(CSV_PIECES), max_size=6), finetune=st.lists(st.sampled_from(CSV_PIECES),
       max_size=6), flags=st.lists(st.sampled_from(["--intersect", "--omit-nan", "--summary", "--pool=none",
                                                       "--kind=log_odds", "--budget=0", "--budget=1"]), max_size=3))
def test_cli_evaluate_on_hostile_tables_exits_0_or_2_with_one_line(scores, finetune, flags, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli")
    (tmp / "s.csv").write_bytes("".join(scores).encode("utf-8", "surrogatepass"))
    (tmp / "f.csv").write_bytes("".join(finetune).encode("utf-8", "surrogatepass"))
    _cli_exits_0_or_2_with_one_line(["evaluate", "--scores", str(tmp / "s.csv"), "--finetune", str(tmp / "f.csv"), *flags])


@FUZZ
@seed(SEED)
@given(scores=st.lists(st.sampled_from(CSV_PIECES), max_size=6),
       pool=st.sampled_from(["none", "zoo", "auto", "nope.json"]))
def test_cli_rank_on_hostile_tables_exits_0_or_2_with_one_line(scores, pool, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli_rank")
    (tmp / "s.csv").write_bytes("".join(scores).encode("utf-8", "surrogatepass"))
    _cli_exits_0_or_2_with_one_line(["rank", "--scores", str(tmp / "s.csv"), "--pool", pool])


META_EDITS = [{}, {"n": "abc"}, {"d": 0}, {"dtype": "foo"}, {"complete": "false"}, {"has_logits": True},
              {"files": "x"}, {"rows_written": -1}, {"model_id": 7}, {"n": 10 ** 30}]
ARGS = ["knn_loo.k=3", "knn_loo.k=0", "knn_loo.k='x'", "leep.from_logits=false", "leep.from_logits=maybe",
        "parc.n_dims=inf", "logme.compat=None", "nope.k=1", "knn_loo", "knn_loo.=1", "sfda.max_memory=1.5e9"]


@FUZZ
@seed(SEED)
@given(edit=st.sampled_from(META_EDITS), feats=st.sampled_from(["ok", "nan", "bytes", "shape", "missing"]),
       args=st.lists(st.sampled_from(ARGS), max_size=2),
       scores=st.lists(st.sampled_from(["knn_loo", "logme", "leep", "parc", "nope"]), min_size=1, max_size=2),
       flags=st.lists(st.sampled_from(["--keep-going", "--device=cpu", "--device=cuda", "--device=gpu"]),
                      max_size=2))
def test_cli_score_on_hostile_banks_exits_0_or_2_with_one_line(edit, feats, args, scores, flags, tmp_path_factory):
    import json

    from transferlab.bank import BankWriter

    tmp = tmp_path_factory.mktemp("cli_score")
    bank = tmp / "banks" / "m"
    rng = np.random.default_rng(0)
    w = BankWriter.create_or_resume(str(bank), n=30, d=4, z=3, identity={"model_id": "m", "dataset_id": "d"})
    w.write(0, rng.normal(size=(30, 4)).astype(np.float32), np.arange(30) % 3,
            logits=rng.normal(size=(30, 3)).astype(np.float32))
    w.finalize()
    meta = json.loads((bank / "meta.json").read_text())
    meta.update(edit)
    (bank / "meta.json").write_text(json.dumps(meta))
    if feats == "nan":
        x = np.load(bank / "features.npy")
        x[3, 1] = np.nan
        np.save(bank / "features.npy", x)
    elif feats == "bytes":
        (bank / "features.npy").write_bytes(b"\x93NUMPY garbage")
    elif feats == "shape":
        np.save(bank / "features.npy", np.zeros((5, 2), np.float32))
    elif feats == "missing":
        (bank / "features.npy").unlink()
    argv = ["score", str(tmp / "banks"), "-o", str(tmp / "out.csv"), "--scores", *scores, *flags]
    for a in args:
        argv += ["--arg", a]
    _cli_exits_0_or_2_with_one_line(argv, banned=("score_kwargs", "device='"))


RACE_FLAGS = ["--delta=0", "--delta=nan", "--delta=0.5", "--delta=x", "--epsilon=-1", "--epsilon=inf", "--epsilon=0.1",
              "--first-rows=1", "--first-rows=2", "--first-rows=1e3", "--growth=1", "--growth=1e308", "--seed=-3",
              "--seed=7", "--max-memory=0", "--max-memory=1KB", "--max-memory=64MB", "--score=logme", "--arg=knn_loo.k=0",
              "--arg=knn_loo.k=29", "--arg=knn_loo.k=3", "--arg=knn_loo.metric=cosine", "--arg=knn_loo.nan_policy=omit",
              "--arg=knn_loo.queries=2", "--arg=leep.k=1", "--quiet"]


@FUZZ
@seed(SEED)
@given(feats=st.sampled_from(["ok", "nan", "short", "1d", "int", "bool", "3d", "zeros", "empty"]),
       labels=st.sampled_from(["ok", "str", "one-class", "float", "short", "2d", "missing"]),
       flags=st.lists(st.sampled_from(RACE_FLAGS), max_size=3))
def test_cli_race_on_hostile_arrays_exits_0_or_2_with_one_line(feats, labels, flags, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli_race")
    rng = np.random.default_rng(0)
    y = np.arange(30) % 3
    np.save(tmp / "a.npy", rng.normal(size=(30, 4)).astype(np.float32))
    b = {"ok": rng.normal(size=(30, 4)), "nan": np.where(np.eye(30, 4) > 0, np.nan, 1.0), "short": np.ones((20, 4)),
         "1d": np.ones(30), "int": rng.integers(0, 5, (30, 4)), "bool": rng.random((30, 4)) > 0.5,
         "3d": np.ones((30, 2, 2)), "zeros": np.zeros((30, 4)), "empty": np.ones((30, 0))}[feats]
    np.save(tmp / "b.npy", b)
    lab = {"ok": y, "str": np.array([f"c{v}" for v in y]), "one-class": np.zeros(30, int), "float": y + 0.5,
           "short": y[:10], "2d": np.stack([y, y], 1), "missing": None}[labels]
    argv = ["race", str(tmp / "a.npy"), str(tmp / "b.npy"), *flags]
    if lab is not None:
        np.save(tmp / "y.npy", lab)
        argv += ["--labels", str(tmp / "y.npy")]
    # flags, not keyword arguments, and no flag race lacks
    _cli_exits_0_or_2_with_one_line(argv, banned=("score_kwargs", "first_rows", "max_memory", "nan_policy=", "task=",
                                                  "banks[", "--omit-nan"))
