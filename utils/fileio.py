"""Atomic file writes: a temp file in the same folder, fsync, rename over the target, fsync the folder.

A crash (even SIGKILL or a power cut) at any point leaves either the old file or the new one,
never a torn one: the data reaches the disk before the rename, and the rename itself is made
durable by syncing the folder. A failed write (disk full, `ulimit -f`, quota, read-only folder)
removes its temp file and raises utils.errors.WriteError naming the file and the cause; the old
file is untouched. Several files that belong together (a checkpoint generation) are staged first
(`staged_open`: complete temp files) and renamed only once all of them are written (`commit_staged`).

Test-only fault injection: the environment variable HASHNET_FAULT makes this process kill
itself with SIGKILL at a chosen point, so tests can crash a run at an exact place (see
`fault_point`). It is read here and nowhere else; never set it outside tests.
"""
import contextlib
import os
import signal
import tempfile
import threading


def display_path(path):
    """A path as a user can type it from here: relative when it lies under the current folder,
    else absolute (never a chain of ../)."""
    rel = os.path.relpath(path)
    return rel if rel != ".." and not rel.startswith(".." + os.sep) else os.path.abspath(path)


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


def _write_error(path, exc):
    from utils.errors import WriteError

    return WriteError(path, exc)


class Staged:
    """A complete, fsynced temp file waiting to be renamed over `path` (see commit_staged)."""

    def __init__(self, tmp, path):
        self.tmp, self.path = tmp, path

    def discard(self):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.tmp)


@contextlib.contextmanager
def staged_open(path, mode="wb", encoding=None):
    """Write a temp file beside path; yields (file, Staged). When the block ends the temp file is
    complete and on disk, and path is still untouched. On any failure the temp file is removed;
    an OSError becomes a WriteError naming path."""
    folder = os.path.dirname(os.path.abspath(path))
    name = os.path.basename(path)
    tmp = None
    try:
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + name + ".", suffix=".tmp")
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file ordinary permissions
        staged = Staged(tmp, path)
        with os.fdopen(fd, mode, encoding=encoding) as f:
            yield f, staged
            f.flush()
            if _fault_due("write_partial", name):  # test-only: a crash with half the temp file written
                f.truncate(f.tell() // 2)
                os.kill(os.getpid(), signal.SIGKILL)
            os.fsync(f.fileno())
    except BaseException as exc:
        if tmp is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        if isinstance(exc, OSError):
            raise _write_error(path, exc) from None
        raise


def stage_bytes(path, data):
    """A Staged temp file holding data (nothing replaced yet)."""
    with staged_open(path, "wb") as (f, staged):
        f.write(data)
    return staged


def commit_staged(staged):
    """Rename a staged temp file over its target (one atomic step); the folder is synced by the caller."""
    fault_point("before_rename", os.path.basename(staged.path))
    try:
        os.replace(staged.tmp, staged.path)
    except OSError as exc:
        staged.discard()
        raise _write_error(staged.path, exc) from None


@contextlib.contextmanager
def atomic_open(path, mode="wb", encoding=None):
    with staged_open(path, mode, encoding) as (f, staged):
        yield f
    commit_staged(staged)
    fsync_folder(os.path.dirname(os.path.abspath(path)))


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
    try:
        os.replace(tmp, target)
    except OSError as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise _write_error(target, exc) from None
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
