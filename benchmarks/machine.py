"""What machine a benchmark ran on: every benchmark prints this line first.

Figures differ between CPUs (AMD vs Intel, AVX2 vs AVX-512, with or without VPOPCNTDQ, bf16,
AMX), so a number without its CPU means little. Read from /proc/cpuinfo (what lscpu's
"Model name" shows), with the CPU family/model numbers, since virtual machines often report
only "AMD EPYC" or "Intel Xeon Processor". No imports beyond the standard library and
utils.runtime.cpuinfo (standard library only; importing utils.runtime loads nothing else): the torch
worker of train_speed.py uses it too.
"""
import os
import platform

from utils.runtime.cpuinfo import cpuinfo as _cpuinfo

# CPU flags that change which kernels run (popcount, GEMM/conv, bf16, int8)
FLAGS_THAT_MATTER = ("avx2", "avx512f", "avx512_vpopcntdq", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8")




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
