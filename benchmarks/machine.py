"""What machine a benchmark ran on: every benchmark prints this line first.

Figures differ between CPUs (AMD vs Intel, AVX2 vs AVX-512, with or without VPOPCNTDQ, bf16,
AMX), so a number without its CPU means little. Read from /proc/cpuinfo (what lscpu's
"Model name" shows), with the CPU family/model numbers, since virtual machines often report
only "AMD EPYC" or "Intel Xeon Processor". No imports beyond the standard library (and
utils/runtime/cpuinfo.py, loaded by path): the torch worker of train_speed.py uses it too.
"""
import importlib.util
import os
import platform

# CPU flags that change which kernels run (popcount, GEMM/conv, bf16, int8)
FLAGS_THAT_MATTER = ("avx2", "avx512f", "avx512_vpopcntdq", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8")


def _load_cpuinfo():
    """utils/runtime/cpuinfo.py, the project's one /proc/cpuinfo reader (standard library only), loaded
    by its path rather than through the utils package, so the torch worker imports nothing of the project."""
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "utils", "runtime", "cpuinfo.py")
    spec = importlib.util.spec_from_file_location("_hashnet_cpuinfo", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.cpuinfo


_cpuinfo = _load_cpuinfo()


def cpu_model():
    """'AMD EPYC (family 26, model 2)' from /proc/cpuinfo; platform.processor() elsewhere."""
    info = _cpuinfo()
    name = info.get("model name") or platform.processor() or platform.machine() or "unknown CPU"
    if "cpu family" in info and "model" in info:
        name += f" (family {info['cpu family']}, model {info['model']})"
    return name


def cpu_flags():
    """The FLAGS_THAT_MATTER this CPU has, in that order."""
    flags = set(_cpuinfo().get("flags", "").split())
    return [f for f in FLAGS_THAT_MATTER if f in flags]


def load_average():
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")


def machine_line():
    """One line: CPU model, core count, the flags that matter, the 1-minute load average."""
    flags = " ".join(cpu_flags()) or "none of " + " ".join(FLAGS_THAT_MATTER)
    return (f"CPU: {cpu_model()}, {os.cpu_count()} cores; flags: {flags}; "
            f"load average {load_average():.2f}")
