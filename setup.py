"""Build transferlab's native extensions with CMake (pybind11's cmake_example pattern).

One CMake run builds every module into the package: ``_C`` (CPU kernels), ``_cuda`` (CUDA kernels,
see TRANSFERLAB_CUDA) and ``_cuda_logic_testing`` (test-only: the CUDA logic run serially on the CPU,
for tests/cuda; the library never imports it).

Environment:
  TRANSFERLAB_CUDA       AUTO (default): build ``_cuda`` when a CUDA compiler is found;
                         ON: require it (the build fails without nvcc); OFF: never build it.
  TRANSFERLAB_CUDA_ARCH  CUDA architectures for ``_cuda`` (default "90", the H100). Never "native":
                         that fails on machines without a GPU, such as CI.
  TRANSFERLAB_BUILD_TYPE CMake build type (default Release).
  CMAKE_BUILD_PARALLEL_LEVEL  parallel compile jobs.
"""
import os
import subprocess
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

# Modules the CMake run builds beside _C, by name (_cuda only where CUDA is built).
CMAKE_SIDE_MODULES = ("_cuda", "_cuda_logic_testing")


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
        cuda_arch = os.environ.get("TRANSFERLAB_CUDA_ARCH", "90")
        if cuda_arch.lower() == "native":
            raise SystemExit("TRANSFERLAB_CUDA_ARCH=native is refused: it fails on machines without a GPU")
        build_type = os.environ.get("TRANSFERLAB_BUILD_TYPE", "Release")

        import pybind11

        cmake_args = [
            f"-DCMAKE_LIBRARY_OUTPUT_DIRECTORY={extdir}{os.sep}",
            f"-DPython_EXECUTABLE={sys.executable}",
            f"-Dpybind11_DIR={pybind11.get_cmake_dir()}",
            f"-DCMAKE_BUILD_TYPE={build_type}",
            f"-DTRANSFERLAB_CUDA={cuda_mode}",
            f"-DTRANSFERLAB_CUDA_ARCH={cuda_arch}",
        ]
        if os.environ.get("CMAKE_GENERATOR") is None:
            try:
                import ninja  # noqa: F401

                cmake_args += ["-GNinja"]
            except ImportError:
                pass
        build_args = []
        if "CMAKE_BUILD_PARALLEL_LEVEL" not in os.environ:
            build_args += [f"-j{os.cpu_count() or 2}"]

        build_temp = Path(self.build_temp) / ext.name
        build_temp.mkdir(parents=True, exist_ok=True)
        subprocess.run(["cmake", ext.sourcedir, *cmake_args], cwd=build_temp, check=True)
        subprocess.run(["cmake", "--build", ".", *build_args], cwd=build_temp, check=True)

    def copy_extensions_to_source(self) -> None:
        # setuptools copies only the extension it knows (_C); the others are built beside it by the
        # same CMake run, so in-place and editable builds copy them too. (Wheels need nothing: they
        # take everything under build_lib.)
        super().copy_extensions_to_source()
        build_py = self.get_finalized_command("build_py")
        package_dir = Path(build_py.get_package_dir("transferlab"))
        for name in CMAKE_SIDE_MODULES:
            for module in (Path(self.build_lib) / "transferlab").glob(f"{name}.*.so"):
                self.copy_file(str(module), str(package_dir / module.name), level=self.verbose)


setup(
    ext_modules=[CMakeExtension("transferlab._C")],
    cmdclass={"build_ext": CMakeBuild},
    zip_safe=False,
)
