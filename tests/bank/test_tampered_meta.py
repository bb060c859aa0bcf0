"""FeatureBank.open on tampered metadata (hostile-input issue, defect 10): ``files: {"features.npy": "x"}``
was an AttributeError, ``has_logits`` without ``z`` a KeyError, ``n: "abc"`` / ``dtype: "foo"`` bare errors
without the file name, deeply nested JSON a RecursionError (and one such bank aborted ``score_pool(root)``),
``"complete": "false"`` (a string) was taken as complete, and with ``verify=False`` a header flipped to
``fortran_order: True`` opened silently transposed. Now meta.json is validated field by field (ValueError
naming the file), .npy headers must be C order, and score_pool can skip a broken bank with a note."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

import transferlab as tl
from transferlab.bank import BankWriter, FeatureBank


def _bank(path, n=6, d=3, z=None, model="m"):
    w = BankWriter.create_or_resume(path, n=n, d=d, z=z, identity={"model_id": model, "dataset_id": "d"})
    rng = np.random.default_rng(0)
    w.write(0, rng.normal(size=(n, d)).astype(np.float32), np.arange(n) % 2,
            logits=None if z is None else rng.normal(size=(n, z)).astype(np.float32))
    return w.finalize()


def _edit(path, **changes):
    mp = os.path.join(path, "meta.json")
    with open(mp) as f:
        meta = json.load(f)
    meta.update(changes)
    with open(mp, "w") as f:
        json.dump(meta, f)


TAMPERING = [
    ({"files": {"features.npy": "x"}}, r"files\['features.npy'\] must hold"),
    ({"files": "x"}, "files must be a mapping"),
    ({"n": "abc"}, "n must be an integer >= 1, got 'abc'"),
    ({"n": True}, "n must be an integer >= 1"),
    ({"d": 0}, "d must be an integer >= 1"),
    ({"dtype": "foo"}, "dtype must be one of"),
    ({"complete": "false"}, "complete must be true or false, got 'false'"),
    ({"has_logits": True}, "has_logits is true but z"),
    ({"rows_written": 99}, r"rows_written must be an integer in \[0, n=6\]"),
]


@pytest.mark.parametrize("changes,match", TAMPERING)
def test_tampered_fields_raise_naming_the_file(tmp_path, changes, match):
    _bank(tmp_path / "b")
    _edit(tmp_path / "b", **changes)
    for verify in (True, False):
        with pytest.raises(ValueError, match=match) as info:
            FeatureBank.open(tmp_path / "b", verify=verify)
        assert "meta.json" in str(info.value)


def test_deeply_nested_json_is_a_corrupted_bank(tmp_path):
    _bank(tmp_path / "b")
    with open(tmp_path / "b" / "meta.json", "w") as f:
        f.write("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ValueError, match="not valid JSON"):
        FeatureBank.open(tmp_path / "b")


def test_a_fortran_order_header_is_refused_even_without_hashing(tmp_path):
    _bank(tmp_path / "b", n=6, d=6)
    fp = tmp_path / "b" / "features.npy"
    raw = fp.read_bytes()
    flipped = raw.replace(b"'fortran_order': False", b"'fortran_order': True ")
    assert len(flipped) == len(raw) and flipped != raw
    fp.write_bytes(flipped)
    with pytest.raises(ValueError, match="Fortran-order header"):
        FeatureBank.open(tmp_path / "b", verify=False)


def test_score_pool_skips_a_broken_bank_with_a_note_or_raises(tmp_path):
    root = tmp_path / "banks"
    _bank(root / "good", n=40, d=4, model="good")
    _bank(root / "bad", n=40, d=4, model="bad")
    _edit(root / "bad", complete="false")
    with pytest.raises(ValueError, match="complete must be true or false"):
        tl.score_pool(root, ["knn_loo"])
    res = tl.score_pool(root, ["knn_loo"], errors="note")
    assert [r["model"] for r in res.rows] == ["good"]
    assert any("skipped the unreadable bank" in n and "bad" in n for n in res.notes)


def test_score_pool_notes_a_bank_whose_meta_json_is_unreadable(tmp_path):
    root = tmp_path / "banks"
    _bank(root / "good", n=40, d=4, model="good")
    _bank(root / "nested", n=40, d=4, model="nested")
    (root / "nested" / "meta.json").write_text("[" * 100_000 + "]" * 100_000)
    res = tl.score_pool(root, ["knn_loo"], errors="note")
    assert [r["model"] for r in res.rows] == ["good"]
    assert any("nested" in n and "not valid JSON" in n for n in res.notes)
