"""``transferlab.show_config()``: what was built and what this machine offers."""
from __future__ import annotations

import os
import sys
from typing import Dict, List


def config() -> Dict[str, object]:
    from transferlab._version import __version__
    from transferlab.core import cpu_threads
    from transferlab import kernels

    info: Dict[str, object] = {"version": __version__, "python": sys.version.split()[0]}
    cpu = kernels.cpu_module()
    info["cpu_module"] = f"built ({cpu.compiler}, {cpu.build_type})"
    info["simd_level"] = cpu.simd_level()
    info["num_threads"] = cpu_threads.effective_threads()
    info["omp_num_threads_env"] = os.environ.get("OMP_NUM_THREADS")
    cuda = kernels.cuda_module()
    devices: List[str] = []
    if cuda is None:
        info["cuda_module"] = "not built (rebuild with TRANSFERLAB_CUDA=ON to build it)"
    else:
        info["cuda_module"] = f"built (archs {cuda.architectures}, {cuda.compiler})"
        devices = [cuda.device_name(i) for i in range(cuda.device_count())]
    info["cuda_devices"] = devices
    return info


def show_config() -> None:
    """Print the build (CPU/CUDA modules), the SIMD level chosen at run time, the thread count and
    the CUDA devices seen."""
    info = config()
    width = max(len(k) for k in info)
    for key, value in info.items():
        if key == "cuda_devices":
            value = ", ".join(value) if value else "none seen"
        print(f"{key:<{width}} : {value}")
