"""extract(): adapters, data forms, in-memory vs on-disk, model state restored, resume after a real SIGKILL."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from _tiny import Prep, tiny_data, tiny_model  # noqa: E402
from conftest import digest  # noqa: E402

from transferlab import extract  # noqa: E402
from transferlab.bank import BankWriter, FeatureBank  # noqa: E402
from transferlab.extract import weights_hash  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
FILES = ("features.npy", "logits.npy", "labels.npy", "sample_ids.npy", "meta.json")


def _expected(model, x):
    """Features (classifier input) and logits computed by hand."""
    with torch.no_grad():
        xf = x.float() / 255.0
        f = model.features(xf)
        return f.numpy(), model.fc(f).numpy()


def test_hook_adapter_auto_and_named():
    model, (x, y) = tiny_model(), tiny_data()
    f, z = _expected(model, x)
    for adapter in ("auto", "hook", "hook:fc"):
        b = extract(model, (x, y), adapter=adapter, preprocessing=Prep(), batch_size=32, progress=False)
        assert b.meta["adapter"] == "hook:fc"
        np.testing.assert_allclose(b.features, f, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(b.logits, z, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(b.labels, y.numpy())
        np.testing.assert_array_equal(b.sample_ids, np.arange(len(y)))
        assert b.path is None and b.meta["preprocessing"] == "uint8/255"
    # no hook is left behind on the model
    assert not model.fc._forward_hooks


def test_hook_on_named_inner_module():
    model, (x, y) = tiny_model(), tiny_data()
    b = extract(model, (x, y), adapter="hook:features.3", preprocessing=Prep(), progress=False)
    assert b.features.shape == (len(y), 6 * 2 * 2)  # input of Flatten: (N, 6, 2, 2) flattened
    with pytest.raises(ValueError, match="no module named 'nope'"):
        extract(model, (x, y), adapter="hook:nope", progress=False)


def test_timm_adapter_uses_forward_head_pre_logits():
    class TimmLike(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.body = torch.nn.Conv2d(1, 3, 3)
            self.head = torch.nn.Linear(3, 7)

        def forward_features(self, x):
            return self.body(x)

        def forward_head(self, x, pre_logits=False):
            x = x.mean(dim=(2, 3))
            return x if pre_logits else self.head(x)

        def forward(self, x):
            return self.forward_head(self.forward_features(x))

    torch.manual_seed(1)
    model = TimmLike()
    x = torch.rand(20, 1, 8, 8)
    y = torch.arange(20) % 3
    b = extract(model, (x, y), progress=False)  # auto -> timm
    assert b.meta["adapter"] == "timm"
    with torch.no_grad():
        pooled = model.body(x).mean(dim=(2, 3))
    np.testing.assert_allclose(b.features, pooled.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(b.logits, model.head(pooled).detach().numpy(), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="adapter='timm' needs"):
        extract(tiny_model(), tiny_data(), adapter="timm", progress=False)


def test_callable_adapter_and_no_logits(tmp_path):
    model, (x, y) = tiny_model(), tiny_data()
    f, _ = _expected(model, x)

    def feats_only(m, batch):
        return m.features(batch), None

    b = extract(model, (x, y), tmp_path / "b", adapter=feats_only, preprocessing=Prep(), progress=False)
    assert b.logits is None and b.meta["adapter"].startswith("callable:")
    assert not os.path.exists(tmp_path / "b" / "logits.npy")
    np.testing.assert_allclose(b.features, f, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match=r"expected \(batch, dim\)"):
        extract(model, (x, y), adapter=lambda m, b: (b.float().sum(dim=(1, 2, 3)), None), progress=False)
    with pytest.raises(TypeError, match="adapter must be"):
        extract(model, (x, y), adapter=3, progress=False)


def test_data_forms_agree_and_inputs_are_not_mutated(tmp_path):
    model, (x, y) = tiny_model(), tiny_data()
    before = digest(x, y, *[p.detach() for p in model.parameters()])
    ref = extract(model, (x, y), preprocessing=Prep(), batch_size=16, progress=False)
    ds = torch.utils.data.TensorDataset(x, y)
    from_ds = extract(model, ds, preprocessing=Prep(), batch_size=16, progress=False)
    from_loader = extract(model, torch.utils.data.DataLoader(ds, batch_size=16), preprocessing=Prep(),
                          progress=False)
    from_numpy = extract(model, (x.numpy(), y.numpy()), preprocessing=Prep(), batch_size=16, progress=False)
    ids = torch.arange(len(y)) * 7
    with_ids = extract(model, (x, y, ids), tmp_path / "ids", preprocessing=Prep(), batch_size=16, progress=False)
    for b in (from_ds, from_loader, from_numpy, with_ids):
        np.testing.assert_array_equal(b.features, ref.features)
        np.testing.assert_array_equal(b.labels, ref.labels)
    np.testing.assert_array_equal(with_ids.sample_ids, ids.numpy())
    assert digest(x, y, *[p.detach() for p in model.parameters()]) == before


def test_shuffling_loader_and_bad_data_are_refused():
    model, (x, y) = tiny_model(), tiny_data()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=8, shuffle=True)
    with pytest.raises(ValueError, match="shuffle=False"):
        extract(model, loader, progress=False)
    with pytest.raises(ValueError, match="images have 90 rows but labels have 89"):
        extract(model, (x, y[:-1]), progress=False)
    with pytest.raises(TypeError, match="must be a torch.nn.Module"):
        extract(lambda t: t, (x, y), progress=False)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        extract(model, (x, y), batch_size=0, progress=False)
    with pytest.raises(TypeError, match="data must be"):
        extract(model, 42, progress=False)


def test_model_mode_is_restored_and_eval_is_used():
    model, (x, y) = tiny_model(), tiny_data()
    model.train()
    seen = []
    model.fc.register_forward_pre_hook(lambda m, inp: seen.append((m.training, torch.is_inference_mode_enabled())))
    extract(model, (x, y), preprocessing=Prep(), progress=False)
    assert seen and all(s == (False, True) for s in seen)
    assert model.training


def test_autocast_runs_and_stores_float32():
    model, (x, y) = tiny_model(), tiny_data()
    b = extract(model, (x, y), autocast=True, preprocessing=Prep(), progress=False)
    ref = extract(model, (x, y), preprocessing=Prep(), progress=False)
    assert b.features.dtype == np.float32 and b.meta["autocast"] == "True"
    np.testing.assert_allclose(b.features, ref.features, rtol=0.05, atol=0.05)


def test_complete_bank_is_reused_and_other_model_refused(tmp_path):
    model, (x, y) = tiny_model(), tiny_data()
    b = extract(model, (x, y), tmp_path / "b", preprocessing=Prep(), progress=False, model_id="tiny")
    stamp = os.stat(tmp_path / "b" / "features.npy").st_mtime_ns
    again = extract(model, (x, y), tmp_path / "b", preprocessing=Prep(), progress=False, model_id="tiny")
    assert os.stat(tmp_path / "b" / "features.npy").st_mtime_ns == stamp
    np.testing.assert_array_equal(again.features, b.features)
    other = tiny_model()
    with torch.no_grad():
        other.fc.weight.add_(1.0)
    with pytest.raises(ValueError, match="complete feature bank|another feature bank"):
        extract(other, (x, y), tmp_path / "b", preprocessing=Prep(), progress=False, model_id="tiny")


def test_resume_with_other_autocast_is_refused(tmp_path):
    model, (x, y) = tiny_model(), tiny_data()
    BankWriter.create_or_resume(tmp_path / "b", n=90, d=24, z=5, identity={
        "model_id": "tiny", "dataset_id": "dataset", "adapter": "hook:fc", "weights_hash": weights_hash(model),
        "preprocessing": "uint8/255", "autocast": "False"}).close()
    with pytest.raises(ValueError, match="another feature bank.*autocast"):
        extract(model, (x, y), tmp_path / "b", preprocessing=Prep(), autocast=True, progress=False, model_id="tiny")
    b = extract(model, (x, y), tmp_path / "b", preprocessing=Prep(), progress=False, model_id="tiny")
    assert b.meta["complete"]


def _run(out, mode):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT, HERE, os.environ.get("PYTHONPATH", "")]))
    return subprocess.run([sys.executable, os.path.join(HERE, "_tiny.py"), str(out), mode], env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def reference_bank(tmp_path_factory):
    """The bank of an uninterrupted run of the same script."""
    out = tmp_path_factory.mktemp("ref") / "bank"
    ref = _run(out, "none")
    assert ref.returncode == 0, ref.stderr
    return out


@pytest.mark.parametrize("mode", ["between", "midwrite"])
def test_resume_after_sigkill_is_byte_identical(tmp_path, mode, reference_bank):
    killed = _run(tmp_path / "bank", mode)
    assert killed.returncode == -signal.SIGKILL, (killed.returncode, killed.stderr)
    meta = json.loads((tmp_path / "bank" / "meta.json").read_text())
    assert meta["complete"] is False and 0 < meta["rows_written"] < meta["n"]
    assert meta["rows_written"] == (48 if mode == "between" else 32)
    with pytest.raises(ValueError, match="incomplete"):
        FeatureBank.open(tmp_path / "bank")
    resumed = _run(tmp_path / "bank", "none")
    assert resumed.returncode == 0, resumed.stderr
    for name in FILES[:-1]:
        assert (tmp_path / "bank" / name).read_bytes() == (reference_bank / name).read_bytes(), name
    # meta.json is identical but for the measured forward-pass seconds (summed over both runs)
    got, ref = (json.loads((p / "meta.json").read_text()) for p in (tmp_path / "bank", reference_bank))
    assert got.pop("extract_seconds") > 0 and ref.pop("extract_seconds") > 0
    assert got == ref
    FeatureBank.open(tmp_path / "bank")


def test_out_must_be_empty_or_a_bank_of_the_same_data(tmp_path):
    model, (x, y) = tiny_model(), tiny_data()
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("keep me")
    with pytest.raises(ValueError, match="not empty and holds no feature bank"):
        extract(model, (x, y), tmp_path / "mine", preprocessing=Prep(), progress=False)
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "keep me"
    assert not model.fc._forward_hooks  # the hook is removed on the error path too
    BankWriter.create_or_resume(tmp_path / "b", n=50, d=24, z=5, identity={
        "model_id": "tiny", "dataset_id": "dataset", "adapter": "hook:fc", "weights_hash": weights_hash(model),
        "preprocessing": "uint8/255", "autocast": "False"}).close()
    with pytest.raises(ValueError, match="incomplete bank of 50 rows but data has 90"):
        extract(model, (x, y), tmp_path / "b", preprocessing=Prep(), progress=False, model_id="tiny")


def test_a_complete_bank_of_other_data_is_refused_not_returned(tmp_path):
    """extract() used to return a stale complete bank when the data, n or dtype changed (hostile-input
    issue, defect 3): its early return compared only model, dataset id, weights and adapter."""
    model, (x, y) = tiny_model(), tiny_data()
    out = tmp_path / "bank"
    first = extract(model, (x, y), out, preprocessing=Prep(), progress=False)
    assert first.meta["data_fingerprint"]["n"] == len(y)
    again = extract(model, (x, y), out, preprocessing=Prep(), progress=False)  # same data: returned as is
    np.testing.assert_array_equal(np.asarray(again.features), np.asarray(first.features))
    # The fingerprint reads 8 seeded rows (cheap at any N): an edit among them is seen.
    sampled = np.sort(np.random.default_rng(0).choice(len(y), size=8, replace=False))
    x2 = x.clone()
    x2[sampled[0]] = 1 - x2[sampled[0]]  # one edited image
    y2 = y.clone()
    y2[sampled[1]] = (y2[sampled[1]] + 1) % 5  # one changed label
    for data, why in [((x[:60], y[:60]), "it has n=90 rows, the data has 60"),
                      ((x2, y), "the sampled rows or labels differ"), ((x, y2), "the sampled rows or labels differ")]:
        with pytest.raises(ValueError, match=f"other data \\({why}"):
            extract(model, data, out, preprocessing=Prep(), progress=False)
    with pytest.raises(ValueError, match="stored as float32, dtype='float16'"):
        extract(model, (x, y), out, preprocessing=Prep(), progress=False, dtype="float16")
    fresh = extract(model, (x[:60], y[:60]), out, preprocessing=Prep(), progress=False, overwrite=True)
    assert fresh.n == 60 and FeatureBank.open(out).n == 60
    assert not model.fc._forward_hooks  # the adapter's hook is removed on every path
