import os
import warnings

# paddle warns on every import when ccache is absent (it only matters for C++ extensions).
warnings.filterwarnings("ignore", message="No ccache found")
# BatchNorm always tracks running statistics in training; paddle says so on every step.
warnings.filterwarnings("ignore", message="When training, we now always track global mean and variance")
os.environ.setdefault("GLOG_minloglevel", "2")  # paddle's C++ INFO/WARNING lines are noise for users


def _cpu_vendor():
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("vendor_id"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def _fast_mkl_on_amd():
    """PaddlePaddle's CPU wheel calls an older MKL (libmklml_intel) for GEMM and its CPU convolution;
    on AMD CPUs that MKL ignores AVX2/AVX-512 and runs a generic path: 2.4x the CPU time of
    PyTorch's GEMM, 3.6x for AlexNet's conv forward+backward here (benchmarks/train_speed.py).
    MKL_DEBUG_CPU_TYPE=5 makes it use its AVX2 kernels. It is read at MKL's first call, so it is
    set here, before paddle runs anything. Opt out: HASHNET_MKL_AVX2=0, or set MKL_DEBUG_CPU_TYPE."""
    if os.environ.get("HASHNET_MKL_AVX2", "1") == "0" or "MKL_DEBUG_CPU_TYPE" in os.environ:
        return False
    if _cpu_vendor() == "AuthenticAMD":
        os.environ["MKL_DEBUG_CPU_TYPE"] = "5"
        return True
    return False


# True when this process set MKL_DEBUG_CPU_TYPE (child processes inherit it; benchmarks that time
# the untuned path remove it again)
MKL_AVX2_SET_HERE = _fast_mkl_on_amd()
