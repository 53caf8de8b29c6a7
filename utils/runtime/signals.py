"""SIGTERM ends a command the way Ctrl-C does: one line, not a C++ crash report.

Importing paddle installs a C++ handler that answers SIGTERM with a `FatalError: Termination signal
is detected by the operating system` block and an empty C++ traceback (issue 27). Once paddle is
imported, terminate_with_one_line() puts a Python handler in its place that raises Terminated: a
KeyboardInterrupt, so `except Exception` blocks pass it on while `finally` blocks and the atomic
writes' clean-ups run (a file is the old one or the new one, never torn, and no temp file is left);
utils.cli.exit_on_user_error prints `error: terminated (SIGTERM)` and exits 143. While a run trains,
utils.training.interrupt's handlers take over both signals and stop it after its step.
"""
import signal
import threading


class Terminated(KeyboardInterrupt):
    """The process was asked to stop by SIGTERM."""

    signum = signal.SIGTERM


def _raise_terminated(signum, frame):
    raise Terminated()


def terminate_with_one_line():
    """Replace paddle's C++ SIGTERM handler by one that raises Terminated (main thread only: Python
    sets signal handlers there). Imports paddle first, whose import would install its handler again."""
    import paddle  # noqa: F401

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _raise_terminated)
