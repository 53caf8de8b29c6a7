"""Atomic file writes: a temp file in the same folder, fsync, rename over the target, fsync the folder.

A crash (even SIGKILL or a power cut) at any point leaves either the old file or the new one,
never a torn one: the data reaches the disk before the rename, and the rename itself is made
durable by syncing the folder.

Test-only fault injection: the environment variable HASHNET_FAULT makes this process kill
itself with SIGKILL at a chosen point, so tests can crash a run at an exact place (see
`fault_point`). It is read here and nowhere else; never set it outside tests.
"""
import contextlib
import os
import signal
import tempfile
import threading


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def fsync_folder(folder):
    """Make a rename/creation inside folder durable (a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# --------------------------------------------------------------------------- fault injection (tests)

_fault_lock = threading.Lock()
_fault_counts = {}


def _fault_spec():
    """HASHNET_FAULT="<point>:<name>:<n>": the n-th time (1-based) `point` is reached for `name`."""
    spec = os.environ.get("HASHNET_FAULT")
    if not spec:
        return None
    point, name, count = spec.rsplit(":", 2)
    return point, name, int(count)


def fault_point(point, name=""):
    """SIGKILL this process when HASHNET_FAULT names this point (test-only; see module docstring).

    Points: "write_partial" (half of an atomic write's temp file written), "before_rename" (temp
    file complete, target not yet replaced) for the file basename `name`, and "read_image" (name "")
    counting every image decoded by utils.data.read_image, so a count lands in a chosen epoch or
    evaluation.
    """
    if _fault_due(point, name):
        os.kill(os.getpid(), signal.SIGKILL)


def _fault_due(point, name):
    spec = _fault_spec()
    if spec is None or spec[0] != point or spec[1] != name:
        return False
    with _fault_lock:
        _fault_counts[(point, name)] = _fault_counts.get((point, name), 0) + 1
        return _fault_counts[(point, name)] == spec[2]


# --------------------------------------------------------------------------- atomic writes


@contextlib.contextmanager
def atomic_open(path, mode="wb", encoding=None):
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    name = os.path.basename(path)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + name + ".", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file ordinary permissions
        with os.fdopen(fd, mode, encoding=encoding) as f:
            yield f
            f.flush()
            if _fault_due("write_partial", name):  # test-only: a crash with half the temp file written
                f.truncate(f.tell() // 2)
                os.kill(os.getpid(), signal.SIGKILL)
            os.fsync(f.fileno())
        fault_point("before_rename", name)
        os.replace(tmp, path)
        fsync_folder(folder)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path, data):
    with atomic_open(path, "wb") as f:
        f.write(data)


def atomic_link_or_copy(source, target):
    """Make target an exact copy of source, atomically (a hard link when the file system allows)."""
    folder = os.path.dirname(os.path.abspath(target))
    tmp = os.path.join(folder, "." + os.path.basename(target) + f".{os.getpid()}.link")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)
    try:
        os.link(source, tmp)
    except OSError:
        import shutil

        with atomic_open(target, "wb") as f, open(source, "rb") as src:
            shutil.copyfileobj(src, f, 1 << 20)
        return
    os.replace(tmp, target)
    # rename() between two links of one file does nothing and leaves tmp (target was already a link of source)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)
    fsync_folder(folder)


def paddle_bytes(obj):
    """What paddle.save writes for obj (paddle.save takes a path or a BytesIO, not an open file)."""
    import io

    import paddle

    buffer = io.BytesIO()
    paddle.save(obj, buffer)
    return buffer.getvalue()


def atomic_paddle_save(obj, path):
    atomic_write_bytes(path, paddle_bytes(obj))


def atomic_numpy_save(array, path):
    import numpy as np

    with atomic_open(path, "wb") as f:
        np.save(f, array, allow_pickle=False)
