"""The build: _C always, _cuda where CI asks for it, show_config reports both."""
import os

import pytest

import transferlab
from transferlab.core import cpu_threads
from transferlab import kernels


def test_cpu_module_built():
    mod = kernels.cpu_module()
    assert mod.simd_level() in {"generic", "avx2", "avx512"}
    assert mod.max_threads() >= 1


@pytest.mark.skipif(os.environ.get("TRANSFERLAB_EXPECT_CUDA") != "1", reason="TRANSFERLAB_EXPECT_CUDA!=1")
def test_cuda_module_built_when_expected():
    mod = kernels.cuda_module()
    assert mod is not None, "TRANSFERLAB_EXPECT_CUDA=1 but transferlab._cuda was not built"
    assert "90" in str(mod.architectures)
    assert mod.device_count() >= 0


def test_show_config_reports_build(capsys):
    transferlab.show_config()
    out = capsys.readouterr().out
    for key in ("cpu_module", "simd_level", "num_threads", "cuda_module", "cuda_devices"):
        assert key in out
    assert transferlab.config()["simd_level"] == kernels.cpu_module().simd_level()


def test_num_threads_env_and_override(monkeypatch):
    monkeypatch.setenv("TRANSFERLAB_NUM_THREADS", "1")
    assert cpu_threads.num_threads() == 1
    with transferlab.threads(2):
        assert cpu_threads.num_threads() == 2
    assert cpu_threads.num_threads() == 1
    monkeypatch.setenv("TRANSFERLAB_NUM_THREADS", "x")
    with pytest.raises(ValueError, match="TRANSFERLAB_NUM_THREADS"):
        cpu_threads.num_threads()
