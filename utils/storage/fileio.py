"""Atomic file writes: a temp file in the same folder, fsync, rename over the target, fsync the folder.

A crash (even SIGKILL or a power cut) at any point leaves either the old file or the new one,
never a torn one: the data reaches the disk before the rename, and the rename itself is made
durable by syncing the folder. The whole write is checked before the rename: flush, fsync and
close errors, and the size on disk read back against the bytes written (numpy's `tofile`, behind
`np.save`, writes its last buffered block at a close whose error nobody checks, so a full disk
would otherwise leave a short file and no error). Files a library writes itself (Paddle's C++
save) are checked by utils.storage.library_writes. A failed write (disk full, `ulimit -f`, quota,
read-only folder) removes its temp file and raises utils.errors.WriteError naming the file and the
cause; the old file is untouched. Several files that belong together (a checkpoint generation, an
export, the code cache) are staged first (`staged_open`: complete temp files) and renamed only
once all of them are written (`staged_generation`). Temp files are named `.<name>.<pid>-<random>.tmp`;
those of a process that no longer runs (killed during a write) are removed by the next successful
write of the same file. Reading: `read_bytes` turns an unreadable file into one error line naming
it. Standard library only (retrieval and evaluation import this module).
"""
import contextlib
import glob
import hashlib
import os
import re
import tempfile
import time

from utils.errors import DataError, WriteError


def display_path(path):
    """A path as a user can type it from here: relative when it lies under the current folder,
    else absolute (never a chain of ../)."""
    rel = os.path.relpath(path)
    return rel if rel != ".." and not rel.startswith(".." + os.sep) else os.path.abspath(path)


def read_bytes(path, noun="file", *, hint="", folder_hint=None, error=DataError):
    """The bytes of path, or `error` (a UserError class) naming the file and why it cannot be read:
    "<path>: <noun> not found<hint>", "<path>: is a folder<folder_hint>", "<path>: cannot read <noun>: why"."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise error(f"{path}: {noun} not found{hint}") from None
    except IsADirectoryError:
        raise error(f"{path}: is a folder{hint if folder_hint is None else folder_hint}") from None
    except OSError as exc:
        raise error(f"{path}: cannot read {noun}: {exc.strerror or exc}") from None


def file_sha256(*paths):
    """sha256 of the files' bytes, read in order (in 1 MiB blocks)."""
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


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


_TEMP_NAME = re.compile(r"\.(?P<name>.+)\.(?:(?P<pid>\d+)-)?[^.]*\.(?:tmp|link)$")
LEGACY_TEMP_AGE = 600  # seconds: temp files without a pid (older versions) count as stale after this


def _running(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process, or no permission to ask: alive
        return True
    return True


def remove_stale_temps(path):
    """Remove temp files of earlier writes of `path` whose process is gone (killed mid-write);
    another running process's temp files, and this process's, are left alone."""
    folder, name = os.path.split(os.path.abspath(path))
    now = time.time()
    for leftover in glob.glob(os.path.join(glob.escape(folder), "." + glob.escape(name) + ".*")):
        match = _TEMP_NAME.fullmatch(os.path.basename(leftover))
        if match is None or match["name"] != name:
            continue
        pid = match["pid"]
        try:
            if pid is not None:
                stale = int(pid) != os.getpid() and not _running(int(pid))
            else:
                stale = now - os.path.getmtime(leftover) > LEGACY_TEMP_AGE
            if stale:
                os.unlink(leftover)
        except OSError:  # gone already, or not ours to remove: nothing to clean
            continue


def remove_stale_temp_dirs(folder, prefix):
    """Remove the work folders `<folder>/<prefix><pid>-<random>` (an export's, a quantisation's)
    whose process is gone; legacy ones without a pid once they are LEGACY_TEMP_AGE old."""
    import shutil

    pattern = re.compile(re.escape(prefix) + r"(?:(?P<pid>\d+)-)?[A-Za-z0-9_]*")
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in names:
        match = pattern.fullmatch(name)
        path = os.path.join(folder, name)
        if match is None or not os.path.isdir(path) or os.path.islink(path):
            continue
        pid = match["pid"]
        try:
            if pid is not None:
                stale = int(pid) != os.getpid() and not _running(int(pid))
            else:
                stale = time.time() - os.path.getmtime(path) > LEGACY_TEMP_AGE
        except OSError:
            continue
        if stale:
            shutil.rmtree(path, ignore_errors=True)


def _growth_error(path):
    """The OSError of appending one byte to path (a full disk, a size limit), or None."""
    try:
        with open(path, "ab") as f:
            f.write(b"\0")
            f.flush()
    except OSError as exc:
        return exc
    return None


def _check_on_disk(f, path):
    """WriteError unless every byte written through f is in the file: the size read back must reach
    the position written to (a short file means a write failed where no error was reported)."""
    raw = getattr(f, "buffer", f)
    written, size = raw.tell(), os.fstat(f.fileno()).st_size
    if size >= written:
        return
    try:  # the reason: try to write where the data stopped (the temp file is discarded anyway)
        os.pwrite(f.fileno(), b"\0", size)
    except OSError as exc:
        raise WriteError(path, exc) from None
    raise WriteError(path, f"only {size} of {written} bytes reached the file (disk full or a file size limit?)")


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
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.{os.getpid()}-", suffix=".tmp")
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file ordinary permissions
        staged = Staged(tmp, path)
        with os.fdopen(fd, mode, encoding=encoding) as f:
            yield f, staged
            f.flush()
            _check_on_disk(f, path)
            os.fsync(f.fileno())
    except BaseException as exc:
        if isinstance(exc, OSError) and exc.errno is None and tmp is not None:
            exc = _growth_error(tmp) or exc  # numpy's "N requested and M written": find the system's reason
        if tmp is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        if isinstance(exc, OSError):
            raise WriteError(path, exc) from None
        raise


def stage_bytes(path, data):
    """A Staged temp file holding data (nothing replaced yet)."""
    with staged_open(path, "wb") as (f, staged):
        f.write(data)
    return staged


def commit_staged(staged):
    """Rename a staged temp file over its target (one atomic step); the folder is synced by the caller."""
    try:
        os.replace(staged.tmp, staged.path)
    except OSError as exc:
        staged.discard()
        raise WriteError(staged.path, exc) from None
    remove_stale_temps(staged.path)


@contextlib.contextmanager
def staged_generation(folder):
    """Files that belong together: yields a list to append Staged files to. When the block ends
    normally they are renamed into place in list order and their folders (and `folder`) are synced;
    whatever the block or a rename raised, the temp files not renamed are removed, so a failure
    replaces nothing after it."""
    staged = []
    try:
        yield staged
        for item in staged:
            commit_staged(item)
        for each in sorted({os.path.abspath(folder), *(os.path.dirname(os.path.abspath(i.path)) for i in staged)}):
            fsync_folder(each)
    finally:
        for item in staged:
            item.discard()  # what was not committed (after a failure)


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
    tmp = os.path.join(folder, "." + os.path.basename(target) + f".{os.getpid()}-.link")
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
        raise WriteError(target, exc) from None
    # rename() between two links of one file does nothing and leaves tmp (target was already a link of source)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)
    remove_stale_temps(target)
    fsync_folder(folder)
