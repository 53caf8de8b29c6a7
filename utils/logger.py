"""Console + file logging, and VisualDL scalars (a no-op writer where VisualDL is absent)."""
import logging
import os
import sys


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
