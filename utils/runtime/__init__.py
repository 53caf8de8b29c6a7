"""The process: devices and CPU threads, CPU speed options, data-parallel collectives, logging.

Importing this package (or any part of utils) changes nothing; configure() is the one call that
changes the process, and every entry point, benchmark and the tests' conftest make it first.
"""
import os
import warnings


def configure():
    """Set up this process before paddle runs anything: quiet paddle's import-time warnings, its
    C++ INFO/WARNING log and the INFO logging of faiss and the other known libraries, and switch
    MKL to its AVX2 kernels on AMD CPUs (utils.runtime.cpu). Idempotent; values the user set in the environment are kept. Returns what it set."""
    from utils.runtime.cpu import use_mkl_avx2_on_amd
    from utils.runtime.log import quiet_loggers

    # paddle warns on every import when ccache is absent (it only matters for C++ extensions).
    warnings.filterwarnings("ignore", message="No ccache found")
    # BatchNorm always tracks running statistics in training; paddle says so on every step.
    warnings.filterwarnings("ignore", message="When training, we now always track global mean and variance")
    os.environ.setdefault("GLOG_minloglevel", "2")  # paddle's C++ INFO/WARNING lines are noise for users
    # faiss's loader logs five INFO lines (which CPU build it tried) once paddle has given the root
    # logger a console handler: its logger and the other known libraries' are held at WARNING
    quiet_loggers()
    return {"mkl_avx2": use_mkl_avx2_on_amd()}
