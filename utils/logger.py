"""Console + file logging, and VisualDL scalars (a no-op writer where VisualDL is absent)."""
import logging
import os
import sys


# third-party loggers held at WARNING by quiet_library_logging()
LIBRARY_LOGGERS = ("faiss", "visualdl", "baidubce", "PIL", "matplotlib")


def quiet_library_logging():
    """Let only warnings and errors of third-party libraries reach the console.

    Importing paddle gives the root logger a console handler at level INFO, so every library's
    INFO lines print into our commands' output (faiss's loader alone writes five on each start,
    saying which CPU build it tried). This puts the root logger and the known libraries back at
    WARNING, which keeps real warnings visible. Our own logger ("hashnet") does not propagate to
    the root and is unaffected; paddle's C++ log is quieted by GLOG_minloglevel (utils/__init__.py)."""
    import paddle  # noqa: F401  (its import sets the root logger's level; lower it afterwards)

    root = logging.getLogger()
    if root.level < logging.WARNING:
        root.setLevel(logging.WARNING)
    for name in LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def setup_logger(output_dir=None, name="hashnet", filename=None, rank=0):
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
        file_handler = logging.FileHandler(os.path.join(output_dir, filename), encoding="utf-8")
        file_handler.setFormatter(fmt)
        logger.addHandler(file_handler)
    return logger


class ScalarWriter:
    """Training curves for VisualDL (`visualdl --logdir <output-dir>/vdl`)."""

    def __init__(self, logdir=None):
        self._writer = None
        if logdir:
            try:
                from visualdl import LogWriter
            except ImportError:
                return
            self._writer = LogWriter(logdir=logdir)

    def add(self, tag, value, step):
        if self._writer is not None:
            self._writer.add_scalar(tag=tag, value=float(value), step=int(step))

    def close(self):
        if self._writer is not None:
            self._writer.close()
            self._writer = None
