"""CPU speed options that change speed, never results.

- MKL's AVX2 kernels on AMD (use_mkl_avx2_on_amd, called by utils.runtime.configure());
- reuse of freed large buffers (train.cpu_malloc_reuse) and oneDNN convolutions
  (train.onednn_conv), applied to the built model by apply_training_options.
`python -m benchmarks.train_speed --ablation` times each switched off, side by side.
"""
import ctypes
import ctypes.util
import os

from utils.runtime import cpuinfo

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_KEEP_BYTES = 1 << 30
_state = {"malloc": False}


def use_mkl_avx2_on_amd():
    """PaddlePaddle's CPU wheel calls an older MKL (libmklml_intel) for GEMM and its CPU convolution;
    on AMD CPUs that MKL ignores AVX2/AVX-512 and runs a generic path: 2.4x the CPU time of
    PyTorch's GEMM, 3.6x for AlexNet's conv forward+backward here (benchmarks/train_speed.py).
    MKL_DEBUG_CPU_TYPE=5 makes it use its AVX2 kernels. MKL reads it at its first call, so entry
    points set it (utils.runtime.configure) before paddle runs anything; child processes inherit
    it. Opt out: HASHNET_MKL_AVX2=0, or set MKL_DEBUG_CPU_TYPE. Returns whether it set it."""
    if os.environ.get("HASHNET_MKL_AVX2", "1") == "0" or "MKL_DEBUG_CPU_TYPE" in os.environ:
        return False
    if cpuinfo.cpu_vendor() == "AuthenticAMD":
        os.environ["MKL_DEBUG_CPU_TYPE"] = "5"
        return True
    return False


def keep_freed_memory():
    """glibc returns every block over 32 MiB to the OS on free and page-faults a fresh one on
    the next malloc; a training step frees and re-allocates the same large im2col/gradient
    buffers every time (~0.12 s of system time per AlexNet step at 224x224, batch 32). Raising
    the mmap and trim thresholds to 1 GiB lets the process reuse them; the cost is that memory
    freed during training stays with the process. Returns whether it took effect."""
    if _state["malloc"]:
        return True
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to tune
        return False
    ok = mallopt(_M_MMAP_THRESHOLD, _KEEP_BYTES) == 1 and mallopt(_M_TRIM_THRESHOLD, 2 * _KEEP_BYTES) == 1
    _state["malloc"] = ok
    return ok


def apply_training_options(cfg, device, model=None):
    """Called once by the training engine (and benchmarks/train_speed.py) on the built model,
    before the first step; returns what was switched on, for the log."""
    if device != "cpu":
        return []
    applied = []
    if cfg["train"]["cpu_malloc_reuse"] and keep_freed_memory():
        applied.append("malloc_reuse")
    if model is not None:
        from utils.runtime.onednn_conv import apply_setting

        bf16 = cfg["train"].get("amp") == "bf16"  # train.amp bf16 on CPU: the convolutions in bf16
        layers = apply_setting(model, cfg["train"]["onednn_conv"], bf16)
        if layers:
            applied.append(f"oneDNN convolution{' in bf16' if bf16 else ''} ({layers} layers)")
    return applied
