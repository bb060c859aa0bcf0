"""The build: _C always, _cuda where CI asks for it (for Ampere onward, with PTX for newer GPUs), show_config
reports both; the test-only module _cuda_logic_testing only with TRANSFERLAB_BUILD_TESTING=ON (CI), apart from
_C, and never imported by the library."""
import os
import pathlib
import subprocess
import sys

import pytest

import transferlab
from transferlab.core import cpu_threads
from transferlab import kernels


def test_cpu_module_built():
    mod = kernels.cpu_module()
    assert mod.simd_level() in {"generic", "avx2", "avx512"}
    assert mod.max_threads() >= 1


# What the test-only module binds (the CUDA logic, run serially on the CPU: tests/cuda/test_cuda_logic.py).
CUDA_LOGIC = ("knn_schedule", "knn_loo", "class_rows", "leep_row_stats", "leep_joint", "leep_eep",
              "lda_class_sums", "lda_gram", "knn_tc_bound", "knn_tc_intervals", "knn_loo_tc")


def _functions(mod):
    return {n: getattr(mod, n) for n in dir(mod) if not n.startswith("__") and callable(getattr(mod, n))}


def _logic_module():
    """The test-only module; CI (TRANSFERLAB_BUILD_TESTING=ON) must have it, elsewhere it may be absent."""
    try:
        from transferlab import _cuda_logic_testing
    except ImportError:
        if os.environ.get("TRANSFERLAB_BUILD_TESTING", "").upper() in ("ON", "1"):
            pytest.fail("TRANSFERLAB_BUILD_TESTING=ON but transferlab._cuda_logic_testing was not built: "
                        "tests/cuda would be skipped")
        pytest.skip("test-only module not built (TRANSFERLAB_BUILD_TESTING is not ON)")
    return _cuda_logic_testing


def test_cuda_logic_testing_module_built_beside_C():
    cuda_logic = _logic_module()

    assert pathlib.Path(cuda_logic.__file__).parent == pathlib.Path(kernels.cpu_module().__file__).parent
    assert sorted(_functions(cuda_logic)) == sorted(CUDA_LOGIC)
    assert "TEST-ONLY" in cuda_logic.__doc__


def test_C_does_not_export_the_test_only_bindings():
    cuda_logic = _logic_module()

    shipped = _functions(kernels.cpu_module())
    # The names they had in _C before they moved, and the names only the test module has.
    leaked = [n for n in shipped if "cuda_logic" in n or n in {"knn_schedule", "class_rows"}]
    assert not leaked, f"_C exports test-only bindings: {leaked}"
    # _C's own knn_loo, lda_gram, ... are the CPU kernels, not the serial CUDA twins of the same name.
    twins = {f.__doc__ for f in _functions(cuda_logic).values()}
    assert not [n for n, f in shipped.items() if f.__doc__ in twins]


def test_library_never_imports_the_test_only_module():
    root = pathlib.Path(transferlab.__file__).parent
    assert not [p for p in root.rglob("*.py") if "_cuda_logic_testing" in p.read_text()]
    # A fresh interpreter (this one has imported it for the tests): the package and its build report.
    code = ("import sys, transferlab; transferlab.config(); print(transferlab.__file__); "
            "assert 'transferlab._cuda_logic_testing' not in sys.modules, 'imported by the library'")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert pathlib.Path(out.strip()).parent == root  # the same checkout or install as this test run


@pytest.mark.skipif(os.environ.get("TRANSFERLAB_EXPECT_CUDA") != "1", reason="TRANSFERLAB_EXPECT_CUDA!=1")
def test_cuda_module_built_when_expected():
    mod = kernels.cuda_module()
    assert mod is not None, "TRANSFERLAB_EXPECT_CUDA=1 but transferlab._cuda was not built"
    archs = str(mod.architectures).split(",")
    if "TRANSFERLAB_CUDA_ARCH" not in os.environ:  # the default: Ampere onward, and PTX for newer GPUs
        assert archs == ["80-real", "86-real", "89-real", "90"], archs
    assert mod.device_count() >= 0


def _fatbin_entries(path) -> set:
    """{("elf" | "ptx", sm)} of the CUDA fat binaries embedded in a module (no cuobjdump needed): each fatbin
    starts with magic 0xBA55ED50, u16 version, u16 header size, u64 size; each entry with u16 kind (1 PTX,
    2 ELF), u16, u32 header size, u64 payload size, ..., u32 arch at offset 28."""
    import struct

    data = pathlib.Path(path).read_bytes()
    found, pos, magic = set(), 0, struct.pack("<I", 0xBA55ED50)
    while (i := data.find(magic, pos)) >= 0:
        _, _, header, size = struct.unpack_from("<IHHQ", data, i)
        p, end = i + header, i + header + size
        while p + 32 <= end:
            kind, _, entry_header, payload = struct.unpack_from("<HHIQ", data, p)
            if entry_header < 32:
                break
            if kind in (1, 2):
                found.add(("ptx" if kind == 1 else "elf", struct.unpack_from("<I", data, p + 28)[0]))
            p += entry_header + payload
        pos = i + 4
    return found


@pytest.mark.skipif(os.environ.get("TRANSFERLAB_EXPECT_CUDA") != "1", reason="TRANSFERLAB_EXPECT_CUDA!=1")
@pytest.mark.skipif("TRANSFERLAB_CUDA_ARCH" in os.environ, reason="architectures overridden")
def test_cuda_module_runs_on_ampere_onward_and_carries_ptx_for_newer_gpus():
    """Machine code for sm_80/86/89/90 (A100, RTX 30xx, RTX 40xx/L4, H100/H200) and compute_90 PTX only (a
    GPU newer than sm_90 JIT-compiles it); before, sm_90 alone: an A100 or RTX 4090 could not run it."""
    found = _fatbin_entries(kernels.cuda_module().__file__)
    assert {("elf", 80), ("elf", 86), ("elf", 89), ("elf", 90), ("ptx", 90)} <= found, sorted(found)
    assert {a for k, a in found if k == "ptx"} == {90}, sorted(found)


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


def test_build_defaults_in_setup_and_cmake_agree():
    """setup.py and CMakeLists.txt default to the same architectures, and the test-only module is opt-in."""
    root = pathlib.Path(__file__).resolve().parents[2]
    setup, cmake = (root / "setup.py").read_text(), (root / "CMakeLists.txt").read_text()
    assert 'DEFAULT_CUDA_ARCH = "80-real;86-real;89-real;90"' in setup
    assert 'set(TRANSFERLAB_CUDA_ARCH "80-real;86-real;89-real;90" CACHE STRING' in cmake
    assert 'option(TRANSFERLAB_BUILD_TESTING "Build the test-only _cuda_logic_testing module" OFF)' in cmake
    assert "if(TRANSFERLAB_BUILD_TESTING)\n  pybind11_add_module(_cuda_logic_testing" in cmake
    ci = (root / ".ci" / "run").read_text()
    assert "TRANSFERLAB_BUILD_TESTING=ON" in ci
