"""Which image files of a folder can be listed for training: zero-byte files never, and with decoding
asked for, only the ones utils.data.images.read_image decodes (as training will: EXIF orientation
applied). Decoding runs on a few threads (OpenCV decodes without holding the GIL) with a progress bar
on stderr when it is a terminal."""
from __future__ import annotations

import concurrent.futures
import contextlib
import os
import sys

import cv2
from tqdm import tqdm

from utils.data.images import read_image
from utils.errors import DataError

ZERO_BYTES = "zero-byte file"
UNDECODABLE = "cannot be decoded (truncated, corrupt or not an image)"
CHUNK = 256  # images handed to the threads at a time


def _problem(path: str, decode: bool) -> str | None:
    """Why the image at path cannot be listed, or None."""
    try:
        if os.path.getsize(path) == 0:
            return ZERO_BYTES
        if decode:
            read_image(path)
    except OSError as exc:
        return f"cannot be read: {exc.strerror or exc}"
    except DataError as exc:
        text = str(exc)
        if "cannot decode" in text:
            return UNDECODABLE
        return text[len(path) + 2:] if text.startswith(f"{path}: ") else text
    return None


@contextlib.contextmanager
def _quiet_opencv():
    """OpenCV's own warnings (\"PNG input buffer is incomplete\") off while files are probed: each
    failure is reported once, in the summary."""
    logging = cv2.utils.logging
    level = logging.getLogLevel()
    logging.setLogLevel(logging.LOG_LEVEL_ERROR)
    try:
        yield
    finally:
        logging.setLogLevel(level)


def check_files(root: str, paths, decode: bool = False, workers: int = 4, progress: bool = True):
    """(the paths that can be listed, [(path, reason)] of the others); paths relative to root."""
    full = [os.path.join(root, p) for p in paths]
    if not decode:
        problems = [_problem(f, False) for f in full]
    else:
        bar = tqdm(total=len(full), desc="decoding images", unit="img", file=sys.stderr,
                   disable=None if progress else True)  # None: only on a terminal
        problems = []
        with _quiet_opencv(), bar, concurrent.futures.ThreadPoolExecutor(max(1, workers)) as pool:
            for start in range(0, len(full), CHUNK):  # a bounded number of pending futures, whatever the size
                chunk = full[start:start + CHUNK]
                problems += pool.map(_problem, chunk, [True] * len(chunk))
                bar.update(len(chunk))
    kept = [p for p, why in zip(paths, problems) if why is None]
    return kept, [(p, why) for p, why in zip(paths, problems) if why is not None]
