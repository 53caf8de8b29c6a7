"""The image files under a folder, found the same way by the folder list maker
(tools.make_folder_split), the search of a folder (--database-dir) and the duplicate finder.

An image is a file whose extension, in any case, is one of IMAGE_EXTENSIONS. Hidden files and
folders (a name starting with ".") are not entered: they hold thumbnails, trash and version control.
Links to folders are followed, but a folder already walked (a link loop, or two links to one place)
is walked once; what cannot be read is reported, never raised."""
from __future__ import annotations

import dataclasses
import os

from utils.errors import DataError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")


def is_image_name(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


@dataclasses.dataclass(frozen=True)
class FolderScan:
    """paths: the images' paths relative to the root, "/"-separated, sorted; skipped: (relative path,
    reason) of what was found but left out (a folder that cannot be read, a link loop)."""

    root: str
    paths: tuple[str, ...]
    skipped: tuple[tuple[str, str], ...]


def scan_images(root: str) -> FolderScan:
    """Every image file under root (see the module docstring). A root that is not a folder is a
    DataError naming it."""
    root = os.path.abspath(os.fspath(root))
    if not os.path.isdir(root):
        raise DataError(f"{root}: not a folder" if os.path.exists(root) else f"{root}: folder not found")
    paths: list[str] = []
    skipped: list[tuple[str, str]] = []
    walked = {os.path.realpath(root)}

    def rel(path: str) -> str:
        return os.path.relpath(path, root).replace(os.sep, "/")

    def unreadable(err: OSError) -> None:
        skipped.append((rel(err.filename) if err.filename else "?", f"cannot read the folder: {err.strerror or err}"))

    for folder, dirs, files in os.walk(root, onerror=unreadable, followlinks=True):
        keep = []
        for name in sorted(dirs):
            if name.startswith("."):
                continue
            real = os.path.realpath(os.path.join(folder, name))
            if real in walked:
                skipped.append((rel(os.path.join(folder, name)), "a link to a folder already walked (a loop?)"))
                continue
            walked.add(real)
            keep.append(name)
        dirs[:] = keep
        for name in sorted(files):
            if name.startswith(".") or not is_image_name(name):
                continue
            path = os.path.join(folder, name)
            if not os.path.isfile(path):  # a dangling link
                skipped.append((rel(path), "a link to nothing"))
                continue
            paths.append(rel(path))
    return FolderScan(root, tuple(sorted(paths)), tuple(skipped))
