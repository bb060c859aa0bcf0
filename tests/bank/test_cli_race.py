"""`transferlab race` (the command line of tl.select.race): on .npy files and bank directories the CLI's
choice, estimates, intervals and rows equal the library's on the same inputs and options; --json reads back as
the same RaceResult; a race that runs out of rows says "exact" and its estimates equal knn_loo per model (and
the float64 reference to 1e-12); every bad invocation is one line in flag terms with exit status 2."""
from __future__ import annotations

import json

import numpy as np
import pytest

import transferlab as tl
from transferlab._cli_race import result_dict
from transferlab.bank import BankWriter, FeatureBank
from transferlab.cli import main
from transferlab.race import RaceResult
from transferlab.reference import knn as ref_knn

N = 1200


def _pool(rng, n, spreads, d=8, c=4):
    """Features of models whose class clusters are blurred by ``spreads`` (small: separable, a high knn_loo)."""
    y = rng.integers(0, c, n)
    centres = rng.normal(size=(c, d)) * 2.0
    return {name: (centres[y] + s * rng.normal(size=(n, d))).astype(np.float32) for name, s in spreads.items()}, y


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Three models as .npy files (one clearly best) and as bank directories of dataset 'toy'."""
    t = tmp_path_factory.mktemp("race")
    feats, y = _pool(np.random.default_rng(0), N, {"sharp": 0.3, "blurred": 1.6, "noise": 6.0})
    for name, x in feats.items():
        np.save(t / f"{name}.npy", x)
        FeatureBank.from_arrays(x, y, path=t / "banks" / "toy" / name, dataset_id="toy")
    np.save(t / "labels.npy", y)
    return t, feats, y


def _run(argv, capsys):
    status = main(argv)
    out = capsys.readouterr()
    return status, out.out, out.err


def _same(res: RaceResult, lib: RaceResult) -> None:
    """Everything but the wall-clock equal, exactly."""
    for f in ("chosen", "estimates", "intervals", "rows_used", "eliminated", "n_rows", "score", "delta", "epsilon",
              "exact", "rounds"):
        assert getattr(res, f) == getattr(lib, f), f


def _from_json(path) -> RaceResult:
    d = json.loads(path.read_text())
    d["intervals"] = {m: tuple(v) for m, v in d["intervals"].items()}
    return RaceResult(**d)


FLAGS = [
    ([], {}),
    (["--first-rows", "64", "--growth", "1.5", "--seed", "3", "--delta", "0.1", "--epsilon", "0.01",
      "--arg", "knn_loo.k=3"],
     dict(first_rows=64, growth=1.5, seed=3, delta=0.1, epsilon=0.01, score_kwargs={"k": 3})),
    (["--first-rows", "32", "--max-memory", "1MB", "--arg", "knn_loo.metric=cosine"],
     dict(first_rows=32, max_memory="1MB", score_kwargs={"metric": "cosine"})),
]


@pytest.mark.parametrize("flags,kwargs", FLAGS)
def test_npy_inputs_race_as_the_library_does(data, flags, kwargs, capsys, tmp_path):
    t, _, y = data
    paths = [str(t / f"{m}.npy") for m in ("sharp", "blurred", "noise")]
    status, out, err = _run(["race", *paths, "--labels", str(t / "labels.npy"), "--json", str(tmp_path / "r.json"),
                             *flags], capsys)
    assert status == 0, err
    lib = tl.select.race({"sharp": paths[0], "blurred": paths[1], "noise": paths[2]}, y, **kwargs)
    res = _from_json(tmp_path / "r.json")
    _same(res, lib)
    assert f"chosen: {lib.chosen}\n" in out
    for m, est in lib.estimates.items():  # the table shows the library's numbers
        lo, hi = lib.intervals[m]
        gone = lib.eliminated.get(m)
        cells = [m, f"{est:.4f}", f"[{lo:.4f}, {hi:.4f}]", f"{lib.rows_used[m]} / {N}",
                 "survivor" if gone is None else f"after {gone} rows"]
        assert any([c.strip() for c in line.split("|")[1:-1]] == cells for line in out.splitlines()), (m, out)


def test_a_stopped_race_states_its_guarantee(data, capsys):
    t, _, y = data
    status, out, err = _run(["race", str(t / "sharp.npy"), str(t / "noise.npy"), "--labels", str(t / "labels.npy"),
                             "--first-rows", "64", "--delta", "0.2", "--epsilon", "0.05"], capsys)
    lib = tl.select.race({"sharp": str(t / "sharp.npy"), "noise": str(t / "noise.npy")}, y, first_rows=64,
                         delta=0.2, epsilon=0.05)
    assert status == 0 and not lib.exact and lib.rows_used["sharp"] < N, (err, lib)  # the case under test
    assert "guarantee: with probability >= 0.8 the pick's knn_loo is within 0.05 of the best model's" in out
    assert "exact:" not in out
    ratio = out.split("high where they ran as queries): ")[1].split("x")[0]
    assert float(ratio) > 0


def test_bank_directories_race_as_the_library_does(data, capsys, tmp_path):
    t, feats, y = data
    status, out, err = _run(["race", str(t / "banks"), "--first-rows", "64", "--json", str(tmp_path / "r.json")],
                            capsys)
    assert status == 0, err
    # the directory's banks in path order, named by their model_id, with their features memory-mapped
    banks = {m: FeatureBank.open(t / "banks" / "toy" / m) for m in sorted(feats)}
    lib = tl.select.race(banks, y, first_rows=64)
    _same(_from_json(tmp_path / "r.json"), lib)
    assert list(lib.estimates) == ["blurred", "noise", "sharp"] and lib.chosen == "sharp"
    # a bank directory and a .npy file of the same rows race together (--dataset names the file's dataset)
    status, out, err = _run(["race", str(t / "banks" / "toy" / "blurred"), str(t / "sharp.npy"), "--labels",
                             str(t / "labels.npy"), "--dataset", "toy", "--first-rows", "64"], capsys)
    assert status == 0 and "chosen: sharp\n" in out, err


def test_json_round_trips(data, capsys, tmp_path):
    t, _, _ = data
    path = tmp_path / "r.json"
    status, out, err = _run(["race", str(t / "banks"), "--first-rows", "64", "--json", str(path)], capsys)
    assert status == 0, err
    d = json.loads(path.read_text())
    assert set(d) >= {"chosen", "estimates", "intervals", "rows_used", "eliminated", "seconds", "exhaustive_seconds",
                      "exact", "rounds", "delta", "epsilon"}
    res = _from_json(path)
    assert result_dict(res) == d  # back to the same JSON, every float as written
    assert res.seconds > 0 and res.exhaustive_seconds > 0
    assert f"chosen: {res.chosen}\n" in out and f"race {res.seconds:.3g} s" in out


def test_a_race_out_of_rows_is_exact_and_equals_knn_loo(capsys, tmp_path):
    # two equally good models (the same features up to a rotation): no bound separates them, so the race runs
    # out of rows and every survivor's estimate is its exhaustive knn_loo
    rng = np.random.default_rng(1)
    feats, y = _pool(rng, 400, {"a": 1.2})
    q, _ = np.linalg.qr(rng.normal(size=(8, 8)))
    feats["b"] = (feats["a"].astype(np.float64) @ q).astype(np.float32)
    for m, x in feats.items():
        np.save(tmp_path / f"{m}.npy", x)
    np.save(tmp_path / "y.npy", y)
    status, out, err = _run(["race", str(tmp_path / "a.npy"), str(tmp_path / "b.npy"), "--labels",
                             str(tmp_path / "y.npy"), "--first-rows", "16", "--json", str(tmp_path / "r.json")], capsys)
    assert status == 0, err
    res = _from_json(tmp_path / "r.json")
    assert res.exact and "exact: the race ran out of rows" in out and "guarantee:" not in out
    assert res.rows_used == {"a": 400, "b": 400}
    for m, x in feats.items():
        assert res.estimates[m] == tl.knn_loo(x, y)  # bit for bit
        assert res.intervals[m] == (res.estimates[m], res.estimates[m])
        assert abs(res.estimates[m] - ref_knn.knn_loo(x.astype(np.float64), y)[0]) < 1e-12
    assert res.chosen == max(res.estimates, key=lambda m: (res.estimates[m], m == "a"))


def test_quiet_prints_only_the_chosen_model(data, capsys):
    t, _, _ = data
    status, out, err = _run(["race", str(t / "banks"), "--quiet"], capsys)
    assert status == 0 and out == "sharp\n", err


def _bad(t, other):
    """(argv, words the one-line error must contain)."""
    ok = [str(t / "sharp.npy"), str(t / "noise.npy"), "--labels", str(t / "labels.npy")]
    return [
        (ok + ["--delta", "0"], ["--delta must be in (0, 1), got 0"]),
        (ok + ["--delta", "1"], ["--delta must be in (0, 1), got 1"]),
        (ok + ["--delta", "nan"], ["--delta must be in (0, 1), got nan"]),
        (ok + ["--delta", "2"], ["--delta must be in (0, 1), got 2"]),
        (ok + ["--delta", "abc"], ["--delta must be a number, got 'abc'"]),
        (ok + ["--epsilon", "-0.1"], ["--epsilon must be a finite number >= 0, got -0.1"]),
        (ok + ["--epsilon", "inf"], ["--epsilon must be a finite number >= 0"]),
        (ok + ["--first-rows", "1"], ["--first-rows must be an int >= 2, got 1"]),
        (ok + ["--first-rows", "2.5"], ["--first-rows must be an integer, got '2.5'"]),
        (ok + ["--growth", "1"], ["--growth must be a number > 1, got 1"]),
        (ok + ["--seed", "-1"], ["--seed must be an integer >= 0"]),
        (ok + ["--score", "logme"], ["--score must be a per-row-mean score, one of knn_loo, got 'logme'"]),
        (ok + ["--max-memory", "lots"], ["--max-memory", "is not a size"]),
        (ok + ["--arg", "knn_loo.k=0"], ["--arg knn_loo.k must be in [1, n_samples-1]"]),
        (ok + ["--arg", "knn_loo.nope=1"], ["--arg knn_loo.nope: knn_loo has no argument 'nope'"]),
        (ok + ["--arg", "logme.k=1"], ["--arg names 'logme'", "--score knn_loo"]),
        (ok + ["--arg", "knn_loo.queries=[1]"], ["--arg knn_loo.queries", "chooses the query rows"]),
        (ok + ["--arg", "knn_loo"], ["--arg 'knn_loo'", "SCORE.NAME=VALUE"]),
        (ok + ["--json", str(t)], ["--json", "is a directory"]),
        (ok + ["--json", str(t / "no" / "r.json")], ["--json", "does not exist"]),
        ([str(t / "sharp.npy"), str(other / "short.npy"), "--labels", str(t / "labels.npy")],
         ["short.npy", "length 1200", "n_samples=600"]),
        ([str(t / "banks" / "toy" / "sharp"), str(other / "banks" / "short")],
         ["every INPUT must hold the same N rows", "has 1200", "has 600"]),
        ([str(t / "banks" / "toy" / "sharp"), str(other / "banks" / "relabelled")],
         ["label their 1200 rows differently"]),
        ([str(t / "banks"), str(other / "banks" / "elsewhere")], ["2 datasets (toy, elsewhere)", "one dataset"]),
        ([str(t / "sharp.npy"), str(t / "noise.npy")], ["sharp.npy: no labels", "--labels"]),
        ([str(t / "banks"), "--labels", str(t / "labels.npy")], ["--labels goes with array-file inputs"]),
        ([str(t / "sharp.npy"), "--labels", str(t / "labels.npy")], ["at least 2 models", "sharp.npy"]),
        ([str(t / "sharp.npy"), str(other / "empty"), "--labels", str(t / "labels.npy")],
         ["INPUT: no feature bank", "empty"]),
        ([str(t / "sharp.npy"), str(other / "nowhere"), "--labels", str(t / "labels.npy")],
         ["INPUT", "nowhere: no such file or directory"]),
        ([str(t / "sharp.npy"), str(other / "notes.txt"), "--labels", str(t / "labels.npy")],
         ["notes.txt: neither a bank directory nor an array file"]),
        ([str(t / "sharp.npy"), str(t / "sharp.npy"), "--labels", str(t / "labels.npy")], ["both be model 'sharp'"]),
        ([str(t / "sharp.npy"), str(other / "holey.npy"), "--labels", str(t / "labels.npy")],
         ["holey.npy", "NaN or inf in 1 row(s) (first at row 7)", "clean them"]),
        ([str(t / "banks" / "toy" / "sharp"), str(other / "banks" / "holey")],
         ["model 'holey': ", "NaN or inf in 1 row(s) (first at row 7)", "clean them"]),
        (ok + ["--arg", "knn_loo.nan_policy=omit"], ["--arg knn_loo.nan_policy", "clean the NaN/inf rows"]),
    ]


def test_every_bad_invocation_is_one_line_in_flag_terms_with_exit_2(data, capsys, tmp_path):
    t, feats, y = data
    np.save(tmp_path / "short.npy", feats["sharp"][:600])
    FeatureBank.from_arrays(feats["noise"][:600], y[:600], path=tmp_path / "banks" / "short", dataset_id="toy")
    FeatureBank.from_arrays(feats["noise"], np.roll(y, 1), path=tmp_path / "banks" / "relabelled", dataset_id="toy")
    FeatureBank.from_arrays(feats["noise"], y, path=tmp_path / "banks" / "elsewhere", dataset_id="elsewhere")
    (tmp_path / "empty").mkdir()
    holey = feats["noise"].copy()
    holey[7, 2] = np.nan
    np.save(tmp_path / "holey.npy", holey)
    w = BankWriter.create_or_resume(tmp_path / "banks" / "holey", n=N, d=holey.shape[1], z=None,
                                    identity={"model_id": "holey", "dataset_id": "toy"})
    w.write(0, holey, y)  # a bank with a NaN row (from_arrays would refuse to write one)
    w.finalize()
    (tmp_path / "notes.txt").write_text("x")
    for argv, words in _bad(t, tmp_path):
        status, out, err = _run(["race", *argv], capsys)
        assert status == 2, (argv, err)
        assert err.count("\n") == 1 and err.startswith("transferlab race: error: "), (argv, err)
        for w in words:
            assert w in err, (argv, w, err)
        for api in ("first_rows", "score_kwargs", "max_memory", "delta must", "banks:", "banks[", "nan_policy=",
                    "--omit-nan"):
            assert api not in err.replace("--delta must", ""), (argv, err)
        assert out == "", (argv, out)


def test_flags_are_checked_before_the_inputs_are_read(tmp_path, capsys):
    # a missing input and a bad flag: the flag is named (nothing is read for a typo in a flag)
    status, _, err = _run(["race", str(tmp_path / "a.npy"), str(tmp_path / "b.npy"), "--delta", "0"], capsys)
    assert status == 2 and "--delta" in err, err


def test_scheduler_races_as_the_library_does(data, capsys):
    pytest.importorskip("distributed")
    t, _, y = data
    # one round (first rows = N): one temporary local cluster; bank and .npy paths travel, the workers map them
    status, out, err = _run(["race", str(t / "banks" / "toy" / "blurred"), str(t / "sharp.npy"), "--labels",
                             str(t / "labels.npy"), "--dataset", "toy", "--first-rows", str(N), "--scheduler", "local",
                             "--quiet"], capsys)
    assert status == 0 and out == "sharp\n", err


def _mapped(a) -> bool:
    """Whether an array's memory is a file mapping (a np.memmap or a view of one), not a copy in memory."""
    import mmap

    while a is not None:
        if isinstance(a, (np.memmap, mmap.mmap)):
            return True
        a = getattr(a, "base", None)
    return False


def test_npy_files_and_banks_reach_the_race_memory_mapped(data, capsys, monkeypatch):
    import transferlab.race as race_mod

    t, _, _ = data
    seen = {}
    real = race_mod.race

    def spy(banks, labels, **kw):
        seen.update(banks)
        return real(banks, labels, **kw)

    monkeypatch.setattr(race_mod, "race", spy)
    status, _, err = _run(["race", str(t / "banks" / "toy" / "blurred"), str(t / "sharp.npy"), "--labels",
                           str(t / "labels.npy"), "--dataset", "toy", "--first-rows", "64"], capsys)
    assert status == 0, err
    assert set(seen) == {"blurred", "sharp"} and all(_mapped(x) for x in seen.values()), seen
    assert _mapped(np.load(t / "sharp.npy", mmap_mode="r")) and not _mapped(np.load(t / "sharp.npy"))  # the check works


def test_npz_and_csv_inputs_race_as_the_library_does(capsys, tmp_path):
    # .npz with its own labels and a CSV with a label column, read as 'transferlab score' reads them
    feats, y = _pool(np.random.default_rng(2), 300, {"packed": 0.5, "table": 2.0})
    np.savez(tmp_path / "packed.npz", features=feats["packed"], labels=y)
    rows = ["f0,f1,f2,f3,f4,f5,f6,f7,label"] + [",".join([*map(repr, r.tolist()), f"c{v}"])
                                               for r, v in zip(feats["table"].astype(np.float64), y)]
    (tmp_path / "table.csv").write_text("\n".join(rows) + "\n")
    status, out, err = _run(["race", str(tmp_path / "packed.npz"), str(tmp_path / "table.csv"), "--first-rows", "32",
                             "--json", str(tmp_path / "r.json")], capsys)
    assert status == 0, err
    lib = tl.select.race({"packed": feats["packed"], "table": feats["table"].astype(np.float64)}, y, first_rows=32)
    _same(_from_json(tmp_path / "r.json"), lib)
