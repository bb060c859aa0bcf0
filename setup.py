"""Build transferlab's native extensions with CMake (pybind11's cmake_example pattern).

One CMake run builds every module into the package: ``_C`` (CPU kernels), ``_cuda`` (CUDA kernels,
see TRANSFERLAB_CUDA) and, only with TRANSFERLAB_BUILD_TESTING=ON, ``_cuda_logic_testing`` (test-only: the
CUDA logic run serially on the CPU, for tests/cuda; the library never imports it).

Object reuse: the CMake build tree is persistent, ``build/cmake-<python>-<generator>/`` in the source tree
(or TRANSFERLAB_BUILD_DIR), not pip's throw-away temporary folder, and it is configured against a copy of
pybind11 kept in that tree, so every path and flag a compile command holds stays the same from one
``pip install -e .`` to the next (pip's isolated build environment lives in a new temporary folder each
time). Ninja then recompiles only the sources that changed; a second install with no change compiles nothing.
Delete ``build/`` for a clean build.

Environment:
  TRANSFERLAB_CUDA       AUTO (default): build ``_cuda`` when a CUDA compiler is found;
                         ON: require it (the build fails without nvcc); OFF: never build it.
  TRANSFERLAB_CUDA_ARCH  CUDA architectures for ``_cuda``, CMake syntax (default "80-real;86-real;89-real;90":
                         machine code for A100/A30 (sm_80), RTX 30xx/A10/A40 (sm_86), RTX 40xx/L4/L40 (sm_89)
                         and H100/H200 (sm_90), plus compute_90 PTX that the driver compiles for newer GPUs).
                         Never "native": that fails on machines without a GPU, such as CI.
  TRANSFERLAB_BUILD_TESTING  ON: also build the test-only ``_cuda_logic_testing`` (CI and the README's test
                         command set it); OFF (default): the shipped build has no test code.
  TRANSFERLAB_BUILD_TYPE CMake build type (default Release).
  TRANSFERLAB_BUILD_DIR  the persistent CMake build tree (default: build/cmake-<python>-<generator>).
  CMAKE_BUILD_PARALLEL_LEVEL  parallel compile jobs.
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

# Modules the CMake run builds beside _C, by name (_cuda only where CUDA is built, _cuda_logic_testing only with
# TRANSFERLAB_BUILD_TESTING=ON).
CMAKE_SIDE_MODULES = ("_cuda", "_cuda_logic_testing")
DEFAULT_CUDA_ARCH = "80-real;86-real;89-real;90"


def _on_off(name: str, default: str) -> str:
    value = os.environ.get(name, default).upper()
    if value in ("1", "TRUE", "YES"):
        value = "ON"
    if value in ("0", "FALSE", "NO", ""):
        value = "OFF"
    if value not in ("ON", "OFF"):
        raise SystemExit(f"{name} must be ON or OFF, got {value!r}")
    return value


def _stable_pybind11(build_dir: Path) -> str:
    """pybind11's CMake dir, from a copy inside the persistent build tree (one per pybind11 version), so the
    include paths in the compile commands do not change with pip's temporary build environment."""
    import pybind11

    src = Path(pybind11.__file__).resolve().parent
    dst = build_dir / f"pybind11-{pybind11.__version__}"
    if not (dst / "share" / "cmake" / "pybind11").is_dir():
        tmp = build_dir / f".pybind11-{pybind11.__version__}.{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(src, tmp, ignore=shutil.ignore_patterns("__pycache__"))
        shutil.rmtree(dst, ignore_errors=True)
        os.replace(tmp, dst)
    return os.fspath(dst / "share" / "cmake" / "pybind11")


class CMakeExtension(Extension):
    def __init__(self, name: str, sourcedir: str = "") -> None:
        super().__init__(name, sources=[])
        self.sourcedir = os.fspath(Path(sourcedir).resolve())


class CMakeBuild(build_ext):
    def build_extension(self, ext: CMakeExtension) -> None:
        # Every module (_C, _cuda_logic_testing and, where built, _cuda) lands beside this path.
        ext_fullpath = Path.cwd() / self.get_ext_fullpath(ext.name)
        extdir = ext_fullpath.parent.resolve()

        cuda_mode = os.environ.get("TRANSFERLAB_CUDA", "AUTO").upper()
        if cuda_mode not in {"AUTO", "ON", "OFF"}:
            raise SystemExit(f"TRANSFERLAB_CUDA must be AUTO, ON or OFF, got {cuda_mode!r}")
        cuda_arch = os.environ.get("TRANSFERLAB_CUDA_ARCH", DEFAULT_CUDA_ARCH)
        if "native" in cuda_arch.lower():
            raise SystemExit("TRANSFERLAB_CUDA_ARCH=native is refused: it fails on machines without a GPU")
        testing = _on_off("TRANSFERLAB_BUILD_TESTING", "OFF")
        build_type = os.environ.get("TRANSFERLAB_BUILD_TYPE", "Release")

        generator = os.environ.get("CMAKE_GENERATOR")
        make_program = None
        if generator is None:
            make_program = _ninja()
            generator = "Ninja" if make_program else "Unix Makefiles"
        cmake_args = [
            f"-G{generator}",
            f"-DCMAKE_LIBRARY_OUTPUT_DIRECTORY={extdir}{os.sep}",
            f"-DPython_EXECUTABLE={sys.executable}",
            f"-DCMAKE_BUILD_TYPE={build_type}",
            f"-DTRANSFERLAB_CUDA={cuda_mode}",
            f"-DTRANSFERLAB_CUDA_ARCH={cuda_arch}",
            f"-DTRANSFERLAB_BUILD_TESTING={testing}",
        ]
        if make_program:  # this build's ninja (pip's isolated environment moves it every time)
            cmake_args.append(f"-DCMAKE_MAKE_PROGRAM={make_program}")
        build_args = []
        if "CMAKE_BUILD_PARALLEL_LEVEL" not in os.environ:
            build_args += [f"-j{os.cpu_count() or 2}"]

        tag = f"{sys.implementation.cache_tag}-{generator.replace(' ', '_').lower()}"
        build_temp = Path(os.environ.get("TRANSFERLAB_BUILD_DIR") or Path(ext.sourcedir) / "build" / f"cmake-{tag}")
        build_temp.mkdir(parents=True, exist_ok=True)
        cmake_args.append(f"-Dpybind11_DIR={_stable_pybind11(build_temp)}")
        if testing == "OFF":  # a module left by an earlier testing build must not be shipped
            for old in extdir.glob("_cuda_logic_testing.*"):
                old.unlink()
        subprocess.run(["cmake", ext.sourcedir, *cmake_args], cwd=build_temp, check=True)
        subprocess.run(["cmake", "--build", ".", *build_args], cwd=build_temp, check=True)

    def copy_extensions_to_source(self) -> None:
        # setuptools copies only the extension it knows (_C); the others are built beside it by the
        # same CMake run, so in-place and editable builds copy them too. (Wheels need nothing: they
        # take everything under build_lib.)
        super().copy_extensions_to_source()
        build_py = self.get_finalized_command("build_py")
        package_dir = Path(build_py.get_package_dir("transferlab"))
        if _on_off("TRANSFERLAB_BUILD_TESTING", "OFF") == "OFF":  # no test module left from an earlier build
            for old in package_dir.glob("_cuda_logic_testing.*.so"):
                old.unlink()
        for name in CMAKE_SIDE_MODULES:
            for module in (Path(self.build_lib) / "transferlab").glob(f"{name}.*.so"):
                self.copy_file(str(module), str(package_dir / module.name), level=self.verbose)


def _ninja():
    """The ninja executable (the ``ninja`` build requirement's, else one on PATH), or None."""
    try:
        import ninja

        exe = Path(ninja.BIN_DIR) / "ninja"
        if exe.exists():
            return os.fspath(exe)
    except (ImportError, AttributeError):
        pass
    return shutil.which("ninja")


setup(
    ext_modules=[CMakeExtension("transferlab._C")],
    cmdclass={"build_ext": CMakeBuild},
    zip_safe=False,
)
