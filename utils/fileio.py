"""Atomic file writes: a temp file in the same folder, fsync, then rename over the target.

A crash at any point leaves either the old file or the new one, never a torn one.
"""
import contextlib
import os
import tempfile


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_open(path, mode="wb", encoding=None):
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file ordinary permissions
        with os.fdopen(fd, mode, encoding=encoding) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_paddle_save(obj, path):
    import io

    import paddle

    buffer = io.BytesIO()  # paddle.save takes a path or a BytesIO, not an open file
    paddle.save(obj, buffer)
    with atomic_open(path, "wb") as f:
        f.write(buffer.getvalue())


def atomic_numpy_save(array, path):
    import numpy as np

    with atomic_open(path, "wb") as f:
        np.save(f, array, allow_pickle=False)
