"""FeatureBank directories: round trip, refusal of incomplete / corrupted / foreign directories, full disk."""
from __future__ import annotations

import errno
import json
import os

import numpy as np
import pytest

import transferlab as tl
from transferlab import bank as bank_mod
from transferlab.bank import BankWriter, FeatureBank

N, D, Z = 37, 6, 4


def _data(seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, N)
    x = (rng.normal(size=(N, D)) + y[:, None]).astype(np.float32)
    z = rng.normal(size=(N, Z)).astype(np.float32)
    return x, y, z


def _write(path, x, y, z, block=10, upto=None):
    w = BankWriter.create_or_resume(path, n=N, d=D, z=Z, identity={"model_id": "m", "dataset_id": "t"})
    stop = N if upto is None else upto
    for s in range(w.rows_written, stop, block):
        e = min(stop, s + block)
        w.write(s, x[s:e], y[s:e], logits=z[s:e], sample_ids=np.arange(s, e) + 100)
    return w


def test_round_trip_gives_read_only_memmaps_every_score_accepts(tmp_path):
    x, y, z = _data()
    w = _write(tmp_path / "b", x, y, z)
    b = w.finalize()
    np.testing.assert_array_equal(b.features, x)
    np.testing.assert_array_equal(b.logits, z)
    np.testing.assert_array_equal(b.labels, y)
    np.testing.assert_array_equal(b.sample_ids, np.arange(N) + 100)
    b2 = FeatureBank.open(tmp_path / "b")
    for a in (b2.features, b2.logits, b2.labels, b2.sample_ids):
        assert isinstance(a, np.memmap) and not a.flags.writeable
    assert (b2.model_id, b2.dataset_id, b2.n, b2.d) == ("m", "t", N, D)
    meta = b2.meta
    assert meta["complete"] and meta["rows_written"] == N and meta["schema"] == "transferlab.featurebank"
    assert set(meta["files"]) == {"features.npy", "logits.npy", "labels.npy", "sample_ids.npy"}
    assert "numpy" in meta["library_versions"]
    # the files are plain .npy: numpy reads them without transferlab
    np.testing.assert_array_equal(np.load(tmp_path / "b" / "features.npy"), x)
    assert tl.knn_loo(b2.features, b2.labels) == tl.knn_loo(x, y)


def test_incomplete_bank_is_refused_and_resumes_from_watermark(tmp_path):
    x, y, z = _data()
    w = _write(tmp_path / "b", x, y, z, upto=20)
    w.close()
    with pytest.raises(ValueError, match=r"incomplete feature bank: .* 20 of 37 rows"):
        FeatureBank.open(tmp_path / "b")
    w = BankWriter.create_or_resume(tmp_path / "b", n=N, d=D, z=Z, identity={"model_id": "m", "dataset_id": "t"})
    assert w.rows_written == 20
    with pytest.raises(ValueError, match="in order"):
        w.write(0, x[:5], y[:5], logits=z[:5])
    w = _write(tmp_path / "b", x, y, z)
    b = w.finalize()
    ref = _write(tmp_path / "ref", x, y, z).finalize()
    for name in ("features.npy", "logits.npy", "labels.npy", "sample_ids.npy", "meta.json"):
        assert (tmp_path / "b" / name).read_bytes() == (tmp_path / "ref" / name).read_bytes(), name
    np.testing.assert_array_equal(b.features, ref.features)


def test_writer_refuses_other_banks_and_non_empty_dirs(tmp_path):
    x, y, z = _data()
    _write(tmp_path / "b", x, y, z, upto=10).close()
    with pytest.raises(ValueError, match="another feature bank.*model_id"):
        BankWriter.create_or_resume(tmp_path / "b", n=N, d=D, z=Z, identity={"model_id": "other", "dataset_id": "t"})
    with pytest.raises(ValueError, match="another feature bank.*'n'|another feature bank.*n: 37"):
        BankWriter.create_or_resume(tmp_path / "b", n=N + 1, d=D, z=Z, identity={"model_id": "m", "dataset_id": "t"})
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not empty and holds no feature bank"):
        BankWriter.create_or_resume(tmp_path / "junk", n=N, d=D, z=Z)
    assert (tmp_path / "junk" / "notes.txt").read_text() == "mine"
    w = _write(tmp_path / "done", x, y, z)
    w.finalize()
    with pytest.raises(ValueError, match="complete feature bank"):
        BankWriter.create_or_resume(tmp_path / "done", n=N, d=D, z=Z, identity={"model_id": "m", "dataset_id": "t"})


@pytest.fixture
def complete_bank(tmp_path):
    x, y, z = _data()
    _write(tmp_path / "b", x, y, z).finalize()
    return tmp_path / "b"


def test_flipped_byte_is_a_hash_mismatch(complete_bank):
    p = complete_bank / "features.npy"
    raw = bytearray(p.read_bytes())
    raw[-3] ^= 0x40
    p.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=r"corrupted feature bank: .*features\.npy does not match its SHA-256"):
        FeatureBank.open(complete_bank)
    FeatureBank.open(complete_bank, verify=False)  # documented: verify=False skips only the hashing


def test_truncated_or_missing_file_is_refused(complete_bank):
    p = complete_bank / "labels.npy"
    p.write_bytes(p.read_bytes()[:-8])
    with pytest.raises(ValueError, match=r"labels\.npy has \d+ bytes, meta.json says"):
        FeatureBank.open(complete_bank, verify=False)
    os.remove(complete_bank / "logits.npy")
    with pytest.raises(ValueError, match=r"logits\.npy is missing|labels\.npy has"):
        FeatureBank.open(complete_bank)


def test_garbage_meta_foreign_schema_and_version(complete_bank, tmp_path):
    mp = complete_bank / "meta.json"
    meta = json.loads(mp.read_text())
    mp.write_text(json.dumps(dict(meta, version=99)))
    with pytest.raises(ValueError, match="schema version 99 is not supported"):
        FeatureBank.open(complete_bank)
    mp.write_text(json.dumps({"schema": "someone.else", "version": 1}))
    with pytest.raises(ValueError, match="foreign directory: .*not a transferlab feature bank"):
        FeatureBank.open(complete_bank)
    mp.write_text("{not json")
    with pytest.raises(ValueError, match=r"corrupted feature bank: .*meta\.json is not valid JSON"):
        FeatureBank.open(complete_bank)
    (tmp_path / "plain").mkdir()
    np.save(tmp_path / "plain" / "features.npy", np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"not a transferlab feature bank: .*meta\.json is missing"):
        FeatureBank.open(tmp_path / "plain")
    with pytest.raises(ValueError, match="not a directory"):
        FeatureBank.open(tmp_path / "nowhere")
    assert not FeatureBank.is_bank(tmp_path / "plain")


def test_header_disagreeing_with_meta_is_refused(complete_bank):
    # A consistent size and hash but another dtype in the header: meta.json must win, and say so.
    p = complete_bank / "features.npy"
    x = np.load(p)
    np.save(p, x.view(np.int32))
    meta = json.loads((complete_bank / "meta.json").read_text())
    meta["files"]["features.npy"] = {"sha256": bank_mod.file_sha256(p), "bytes": os.path.getsize(p)}
    (complete_bank / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=r"features\.npy holds int32.*meta.json says float32"):
        FeatureBank.open(complete_bank)


def test_disk_full_leaves_bank_incomplete_and_resumable(tmp_path, monkeypatch):
    x, y, z = _data()
    w = _write(tmp_path / "b", x, y, z, upto=20)
    real = bank_mod._pwrite
    calls = {"n": 0}

    def full_disk(fd, data, offset):
        calls["n"] += 1
        if calls["n"] > 1:  # the first array block of the batch goes through, then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd, data, offset)

    monkeypatch.setattr(bank_mod, "_pwrite", full_disk)
    with pytest.raises(OSError) as ei:
        w.write(20, x[20:30], y[20:30], logits=z[20:30])
    assert ei.value.errno == errno.ENOSPC
    assert w.rows_written == 20
    w.close()
    meta = json.loads((tmp_path / "b" / "meta.json").read_text())
    assert meta["rows_written"] == 20 and meta["complete"] is False
    with pytest.raises(ValueError, match="incomplete"):
        FeatureBank.open(tmp_path / "b")
    monkeypatch.setattr(bank_mod, "_pwrite", real)
    b = _write(tmp_path / "b", x, y, z).finalize()  # space freed: resume from the watermark
    np.testing.assert_array_equal(b.features, x)
    np.testing.assert_array_equal(b.labels, y)


def test_disk_full_at_creation_raises_oserror(tmp_path, monkeypatch):
    def no_space(fd, offset, length):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(bank_mod.os, "posix_fallocate", no_space)
    with pytest.raises(OSError):
        BankWriter.create_or_resume(tmp_path / "b", n=N, d=D, z=Z)
    assert not FeatureBank.is_bank(tmp_path / "b")  # no meta.json: nothing claims to be a bank


def test_writer_validates_blocks(tmp_path):
    x, y, z = _data()
    w = BankWriter.create_or_resume(tmp_path / "b", n=N, d=D, z=None)
    with pytest.raises(ValueError, match="without logits"):
        w.write(0, x[:5], y[:5], logits=z[:5])
    with pytest.raises(ValueError, match=r"features block has shape \(5, 5\), expected \(5, 6\)"):
        w.write(0, x[:5, :5], y[:5])
    with pytest.raises(ValueError, match="overflows"):
        w.write(0, np.zeros((N + 1, D)), np.zeros(N + 1))
    with pytest.raises(ValueError, match="cannot finalise"):
        w.finalize()
    with pytest.raises(ValueError, match="dtype must be one of"):
        BankWriter.create_or_resume(tmp_path / "c", n=N, d=D, z=None, dtype="int8")
    w.close()


@pytest.mark.parametrize("dtype", ["float16", "float64"])
def test_storage_dtypes(tmp_path, dtype):
    x, y, z = _data()
    w = BankWriter.create_or_resume(tmp_path / "b", n=N, d=D, z=Z, dtype=dtype)
    w.write(0, x, y, logits=z)
    b = FeatureBank.open(w.finalize().path)
    assert b.features.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(b.features, x.astype(dtype))
    assert tl.knn_loo(b.features, b.labels) == pytest.approx(tl.knn_loo(x.astype(dtype), y))


def test_in_memory_bank_checks_shapes():
    x, y, z = _data()
    with pytest.raises(ValueError, match="labels has 36 rows but features have 37"):
        FeatureBank(x, y[:-1])
    with pytest.raises(ValueError, match="logits has 3 rows"):
        FeatureBank(x, y, logits=z[:3])
    with pytest.raises(ValueError, match="features must be 2-D"):
        FeatureBank(x[:, 0], y)
    b = FeatureBank(x, y, meta={"model_id": "m", "dataset_id": "t"})
    np.testing.assert_array_equal(b.sample_ids, np.arange(N))
    assert "in memory" in repr(b) and len(b) == N
