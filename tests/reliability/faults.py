"""Crash a child process at an exact point, from the test side: the product has no hooks.

`python -c WRAPPER SPEC SCRIPT ARGS...` (see `command`) wraps one function of the product in this
process, then runs SCRIPT as __main__. SPEC is "<point>:<name>:<n>": the process SIGKILLs itself
the n-th time (1-based) `point` is reached for the file basename `name`:

    write_partial   an atomic write's temp file for `name` holds half its bytes (utils.storage.fileio.staged_open)
    before_rename   the temp file of `name` is complete, the target not yet replaced (os.replace)
    read_image      (name "") an image of a data set is about to be decoded (utils.data.dataset.read_image),
                    counted over the run, so a count lands in a chosen epoch or evaluation

and two points that send the process a signal instead (name: SIGINT or SIGTERM), as Ctrl-C or a
job scheduler would:

    signal_image     at the n-th image decoded, as read_image counts them
    signal_backward  while the n-th backward pass runs (sent from another thread 5 ms after it
                     starts, so that it lands inside Paddle's C++ code)
"""
import contextlib
import os
import signal
import sys
import threading

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

WRAPPER = f"""
import runpy, sys
sys.path.insert(0, {ROOT!r})
from tests.reliability import faults
faults.install(sys.argv[1])
sys.argv = sys.argv[2:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def command(spec, script, *argv):
    """The argv of a `python` child that runs script with the fault `spec` installed."""
    return [sys.executable, "-c", WRAPPER, spec, script, *argv]


class _Countdown:
    def __init__(self, n):
        self.n, self.lock = n, threading.Lock()

    def due(self):
        with self.lock:
            self.n -= 1
            return self.n == 0


def _kill():
    os.kill(os.getpid(), signal.SIGKILL)


def install(spec):
    point, name, count = spec.rsplit(":", 2)
    countdown = _Countdown(int(count))
    if point == "write_partial":
        from utils.storage import fileio

        real = fileio.staged_open

        @contextlib.contextmanager
        def staged_open(path, mode="wb", encoding=None):
            with real(path, mode, encoding) as (f, staged):
                yield f, staged
                if os.path.basename(path) == name and countdown.due():
                    f.flush()
                    f.truncate(f.tell() // 2)
                    _kill()

        fileio.staged_open = staged_open
    elif point == "before_rename":
        real_replace = os.replace

        def replace(src, dst, **kwargs):
            if os.path.basename(os.fspath(dst)) == name and countdown.due():
                _kill()
            return real_replace(src, dst, **kwargs)

        os.replace = replace
    elif point == "read_image":
        from utils.data import dataset

        real_read = dataset.read_image

        def read_image(*args, **kwargs):
            if countdown.due():
                _kill()
            return real_read(*args, **kwargs)

        dataset.read_image = read_image
    elif point == "signal_image":
        from utils.data import dataset

        real_read = dataset.read_image

        def read_image(*args, **kwargs):
            if countdown.due():
                os.kill(os.getpid(), getattr(signal, name))
            return real_read(*args, **kwargs)

        dataset.read_image = read_image
    elif point == "signal_backward":
        import paddle

        real_backward = paddle.Tensor.backward

        def backward(self, *args, **kwargs):
            if countdown.due():
                threading.Timer(0.005, os.kill, (os.getpid(), getattr(signal, name))).start()
            return real_backward(self, *args, **kwargs)

        paddle.Tensor.backward = backward
    else:
        raise SystemExit(f"unknown fault point {point!r}")
