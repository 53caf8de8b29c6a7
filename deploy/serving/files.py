"""Serving files from one folder only: the matched images, never anything outside their root.

A requested path is refused when it is absolute, has a `..` part, a NUL or a backslash; then it
is resolved with realpath (so a symlink pointing out of the root is caught) and must lie inside
the root's own realpath, be a regular file and have an image suffix (so the list files and
anything else kept beside the images are not served either).
"""
import os

from deploy.serving.uploads import UploadError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif"}


def safe_image_path(root, relative):
    """The file `relative` inside `root`, or UploadError 400 (bad path) / 404 (not an image there)."""
    parts = relative.replace("\\", "/").split("/")
    if (not relative or "\x00" in relative or "\\" in relative or relative.startswith("/")
            or os.path.isabs(relative) or any(part in ("..", ".") for part in parts)):
        raise UploadError(400, f"bad image path {relative!r}: give a path relative to the image root, without '..'")
    real_root = os.path.realpath(root)
    path = os.path.realpath(os.path.join(real_root, relative))
    if os.path.commonpath([real_root, path]) != real_root or path == real_root:
        raise UploadError(404, f"no image {relative!r} in the image root")
    if os.path.splitext(path)[1].lower() not in IMAGE_SUFFIXES or not os.path.isfile(path):
        raise UploadError(404, f"no image {relative!r} in the image root")
    return path
