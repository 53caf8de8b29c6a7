"""Stopping a training run at a safe point on SIGINT (Ctrl-C) or SIGTERM.

Python's default SIGINT handler raises KeyboardInterrupt wherever the main thread is, also inside
Paddle's C++ backward pass, where it comes out as a 50-line `OSError: (External) KeyboardInterrupt`
traceback; Paddle's own SIGTERM handler prints a C++ `FatalError: Termination signal` block. While
a run trains, both signals only set a flag instead (StopOnSignal); the engine reads it after each
training step and each evaluation batch and stops there with one line (utils.errors.Interrupted:
the epoch, the step, how to resume; exit 130 / 143). The files on disk are complete checkpoints
then (every write is atomic), so what is lost is the steps since the last one. A second signal of
the same kind acts at once, as it would have without this (for a run stuck where no step ends).
"""
import signal
import threading

SIGNALS = (signal.SIGINT, signal.SIGTERM)
_active = []  # the StopOnSignal in force (signal handlers are per process)


class StopOnSignal:
    """Context manager: while active, SIGINT/SIGTERM set `signum` instead of stopping the process."""

    def __init__(self):
        self.signum = None
        self._previous = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():  # handlers can only be set there
            for signum in SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        _active.append(self)
        return self

    def __exit__(self, *exc):
        _active.remove(self)
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()
        return False

    def _handle(self, signum, frame):
        if self.signum == signum:  # asked twice: the usual behaviour, now
            previous = self._previous.get(signum)
            signal.signal(signum, signal.SIG_DFL if previous is None else previous)  # None: a handler set in C
            signal.raise_signal(signum)
            return
        self.signum = signum


def stop_requested():
    """The signal number a run was asked to stop with, or None (also when no run is training)."""
    return _active[-1].signum if _active else None


def signal_name(signum):
    return signal.Signals(signum).name
