"""Console + file logging, and VisualDL scalars (a no-op writer where VisualDL is absent).

A run's log file and curves can be deferred: held in memory until the run has produced
something (its first checkpoint, or the evaluation's result), so a run that fails before that
leaves its output folder exactly as it was. The console shows everything at once either way.
"""
import contextlib
import logging
import os
import re
import sys
import tempfile
import threading


# third-party loggers held at WARNING by quiet_library_logging()
LIBRARY_LOGGERS = ("faiss", "visualdl", "baidubce", "PIL", "matplotlib")


def quiet_loggers(names=LIBRARY_LOGGERS, drop=()):
    """Hold the named loggers at WARNING (a library that set its own level at import is reset), and
    drop their records whose message starts with one of `drop` (a library warning about its own
    internals that a user can do nothing about). Needs no import of the libraries."""
    for name in names:
        logger = logging.getLogger(name)
        logger.setLevel(logging.WARNING)
        if drop and not any(isinstance(f, _DropMessages) for f in logger.filters):
            logger.addFilter(_DropMessages(drop))


class _DropMessages(logging.Filter):
    def __init__(self, prefixes):
        super().__init__()
        self.prefixes = tuple(prefixes)

    def filter(self, record):
        return not str(record.msg).startswith(self.prefixes)


_NATIVE_STDERR = threading.RLock()  # one redirection of fd 2 at a time (nested: the same thread)


@contextlib.contextmanager
def native_stderr_without(pattern):
    """Run the block with file descriptor 2 (where C++ libraries write) going to a temporary file,
    then write its lines back to stderr except those matching `pattern` (a regex): Paddle's analysis
    passes print their reports (`---    quantized 5 fused_conv2d ops`) whatever the log settings.
    Nothing else is lost: the other lines come back in order once the block ends, even on an error."""
    drop = re.compile(pattern)
    with _NATIVE_STDERR:
        _flush_stderr()
        try:
            capture = tempfile.TemporaryFile()
        except OSError:  # nowhere to hold the lines: let them through
            yield
            return
        with capture:
            try:
                saved = os.dup(2)
            except OSError:  # no stderr at all (a daemon): nothing to filter
                yield
                return
            os.dup2(capture.fileno(), 2)
            try:
                yield
            finally:
                _flush_stderr()
                os.dup2(saved, 2)
                os.close(saved)
                capture.seek(0)
                kept = [line for line in capture.read().decode("utf-8", "replace").splitlines(keepends=True)
                        if not drop.search(line)]
                if kept and sys.stderr is not None:
                    sys.stderr.write("".join(kept))
                    sys.stderr.flush()


def _flush_stderr():
    if sys.stderr is not None:  # Python's own writes reach fd 2 in order with the C++ ones
        sys.stderr.flush()


def quiet_library_logging():
    """Let only warnings and errors of third-party libraries reach the console.

    Importing paddle gives the root logger a console handler at level INFO, so every library's
    INFO lines print into our commands' output (faiss's loader alone writes five on each start,
    saying which CPU build it tried). This puts the root logger and the known libraries back at
    WARNING, which keeps real warnings visible. Our own logger ("hashnet") does not propagate to
    the root and is unaffected; paddle's C++ log is quieted by GLOG_minloglevel (utils.runtime.configure).
    The other thing paddle's import does that users see, its C++ report on SIGTERM, is undone here too
    (utils.runtime.signals): every command calls this right after paddle is in."""
    import paddle  # noqa: F401  (its import sets the root logger's level; lower it afterwards)

    from utils.runtime.signals import terminate_with_one_line

    root = logging.getLogger()
    if root.level < logging.WARNING:
        root.setLevel(logging.WARNING)
    quiet_loggers()
    terminate_with_one_line()


class RunLogFile(logging.FileHandler):
    """The run's log file. With deferred=True records wait in memory until open_log_files();
    a write failure (disk full) is said once on stderr and the file is given up, never a traceback."""

    def __init__(self, path, deferred=False):
        super().__init__(path, encoding="utf-8", delay=True)
        self.pending = [] if deferred else None
        self.failed = False

    def emit(self, record):
        if self.failed:
            return
        if self.pending is not None:
            self.pending.append(record)
            return
        super().emit(record)

    def open_file(self):
        if self.pending is not None:
            pending, self.pending = self.pending, None
            for record in pending:
                self.emit(record)

    def handleError(self, record):
        import sys

        exc = sys.exc_info()[1]
        self.failed = True
        if self.stream is not None:
            try:
                self.stream.close()
            except OSError:
                pass
            self.stream = None
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        print(f"warning: cannot write the log file {self.baseFilename}: {reason}; logging to the console only",
              file=sys.stderr, flush=True)


def open_log_files(logger):
    """Write a deferred log file now: what was held back, then every record as it comes."""
    for handler in logger.handlers:
        if isinstance(handler, RunLogFile):
            handler.open_file()


def setup_logger(output_dir=None, name="hashnet", filename=None, rank=0, deferred=False):
    logger = logging.getLogger(name)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    if rank != 0:
        logger.addHandler(logging.NullHandler())
        return logger
    fmt = logging.Formatter("[%(asctime)s] %(message)s", datefmt="%H:%M:%S")
    console = logging.StreamHandler(sys.stdout)
    console.setFormatter(fmt)
    logger.addHandler(console)
    if output_dir and filename:
        os.makedirs(output_dir, exist_ok=True)
        file_handler = RunLogFile(os.path.join(output_dir, filename), deferred=deferred)
        file_handler.setFormatter(fmt)
        logger.addHandler(file_handler)
    return logger


class ScalarWriter:
    """Training curves for VisualDL (`visualdl --logdir <output-dir>/vdl`). With deferred=True the
    values wait in memory, and the folder is not created, until open()."""

    def __init__(self, logdir=None, deferred=False):
        self._writer, self._logdir = None, None
        self._pending = [] if deferred else None
        if logdir:
            try:
                import visualdl  # noqa: F401
            except ImportError:
                return
            self._logdir = logdir
            if not deferred:
                self.open()

    def open(self):
        if self._logdir is None or self._writer is not None:
            return
        from visualdl import LogWriter

        self._writer = LogWriter(logdir=self._logdir)
        pending, self._pending = self._pending or [], None
        for args in pending:
            self.add(*args)

    def add(self, tag, value, step):
        if self._pending is not None and self._logdir is not None:
            self._pending.append((tag, value, step))
        elif self._writer is not None:
            self._writer.add_scalar(tag=tag, value=float(value), step=int(step))

    def close(self):
        if self._writer is not None:
            self._writer.close()
            self._writer = None
