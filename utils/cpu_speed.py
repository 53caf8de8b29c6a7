"""Options that make CPU training faster without changing its results (issue 10).

Each is a config key with the default that measured best (train.cpu_malloc_reuse,
train.onednn_conv); `python benchmarks/train_speed.py --ablation` times them switched off one by
one, side by side. The MKL switch lives in utils/__init__.py because it must act before Paddle's
first matrix product.
"""
import ctypes
import ctypes.util

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_KEEP_BYTES = 1 << 30
_state = {"malloc": False}


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
        from utils.onednn_conv import apply_setting

        layers = apply_setting(model, cfg["train"]["onednn_conv"])
        if layers:
            applied.append(f"oneDNN convolution ({layers} layers)")
    return applied
