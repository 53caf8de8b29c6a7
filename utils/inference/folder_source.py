"""A folder of images as a Searcher's database, without lists or labels (predict.py and the search
service's --database-dir).

Every image under the folder (utils.data.folders.scan_images, the one walker: extensions in any
case, hidden entries and link loops left out) is a database entry, its path relative to the folder,
its labels none. The codes are cached in the output folder (utils.inference.folder_cache, under the
cache's file lock), and each run encodes only the files that are new or changed since (size, mtime_ns
or ctime_ns differ); files gone from the folder leave the index. Files that cannot be read as images
(empty, truncated, not an image, unreadable) are left out with one warning line, listed in the
cache's _skipped.txt, and remembered with their state: not tried again until they change.

    source = FolderSource("photos", cache_dir="output")
    searcher = Searcher(encoder, [source])       # logs "database: 10,010 images under photos, 10 encoded, ..."
"""
from __future__ import annotations

import dataclasses
import os
from typing import Any, Callable

import numpy as np

from utils.data.folders import scan_images
from utils.data.images import DEFAULT_MAX_PIXELS, read_image
from utils.errors import DataError, WriteError
from utils.inference.code_cache import held_lock
from utils.inference.folder_cache import (CacheFiles, file_state, FileState, folder_fingerprint, FolderCodes,
                                          load_folder_codes, stage_folder_codes)
from utils.retrieval.rescore import Int8Features
from utils.storage.fileio import atomic_write_bytes, staged_generation

Log = Callable[[str], Any]


@dataclasses.dataclass(frozen=True)
class FolderSync:
    """A folder brought up to date: its entries (codes row for row) and what it took."""

    root: str
    codes: FolderCodes
    encoded: int                 # images decoded and encoded this time (new or changed)
    reused: int                  # rows taken from the cache
    changed: int                 # of the encoded, files the cache knew in another state
    removed: int                 # rows of the cache whose files are gone
    skipped: list[tuple[str, str]]   # (path, reason) of what was left out: bad images, unreadable folders, loops
    retried: int                 # of the bad images (codes.bad), those tried this time (the rest remembered)
    skipped_file: str | None     # the cache's list of skipped files, when there is one

    def summary(self) -> str:
        gone = f", {self.removed:,} removed since the last run" if self.removed else ""
        changed = f" ({self.changed:,} changed)" if self.changed else ""
        return (f"database: {len(self.codes.paths):,} images under {self.root}, {self.encoded:,} encoded{changed}, "
                f"{self.reused:,} from the cache{gone}")

    def warning(self) -> str | None:
        """One line counting what was left out (None when nothing was)."""
        if not self.skipped:
            return None
        bad, parts = len(self.codes.bad), []
        if bad:
            known = bad - self.retried
            parts.append(f"{bad:,} not readable as images" + (f" ({known:,} known from earlier runs: not tried "
                                                              f"again until they change)" if known else ""))
        if len(self.skipped) > bad:
            parts.append(f"{len(self.skipped) - bad:,} that could not be listed (unreadable folders, link loops, "
                         f"file names that are not UTF-8, files gone)")
        where = f"; listed in {self.skipped_file}" if self.skipped_file else ""
        files = f"{len(self.skipped):,} file{'s' if len(self.skipped) > 1 else ''}"
        return f"warning: {files} under {self.root} left out: {', '.join(parts)}{where}"


class _FolderImages:
    """Images to encode (paths relative to root) for utils.data.loader: item i -> (image, no labels, i), or
    None for a file that is not a readable image (its reason recorded in `bad`)."""

    def __init__(self, root: str, paths: list[str], transform: Any, max_pixels: int) -> None:
        self.root, self.paths, self.transform, self.max_pixels = root, paths, transform, max_pixels
        self.bad: dict[int, str] = {}

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> Any:
        path = os.path.join(self.root, self.paths[i])
        try:
            image = self.transform(read_image(path, self.max_pixels))
        except (DataError, OSError) as exc:
            reason = str(exc)
            self.bad[int(i)] = reason[len(path) + 2:] if reason.startswith(path + ": ") else reason
            return None
        return image, np.zeros(0, np.float32), np.int64(i)


def _requantized(kept: Int8Features, features: np.ndarray) -> tuple[Int8Features, Int8Features]:
    """(kept, new) int8 features on one scale: the kept rows' scale, widened (and the kept rows
    requantised) where a new feature would be clipped by it (Int8Features.extended)."""
    both = kept.extended(features)
    n = len(kept.values)
    return Int8Features(both.values[:n], both.scale), Int8Features(both.values[n:], both.scale)


def _skipped_text(root: str, skipped: list[tuple[str, str]]) -> str:
    lines = [f"# files under {root} left out of the search ({len(skipped)}): path<TAB>why"]
    return "\n".join(lines + [f"{path}\t{reason}" for path, reason in skipped]) + "\n"


@dataclasses.dataclass
class _Plan:
    """What one run does with each image found: reuse a cached row, encode it, or leave it out."""

    order: list[tuple[str, int]]                        # ("cache", row) / ("new", position in todo), scan order
    todo: list[str]                                     # the images to encode
    known: set[int]                                     # positions in todo of files the cache had in another state
    states: dict[str, FileState]
    bad: dict[str, tuple[FileState, str]]               # known bad and unchanged: not tried again
    skipped: list[tuple[str, str]]


def _plan(scan: Any, old: FolderCodes) -> _Plan:
    plan = _Plan([], [], set(), {}, {}, list(scan.skipped))
    rows = {path: row for row, path in enumerate(old.paths)}
    for path in scan.paths:
        if not _utf8(path):  # cannot be printed, sent as JSON or put in a URL
            plan.skipped.append((path, "the file name is not valid UTF-8: rename the file to search it"))
            continue
        try:
            state = plan.states[path] = file_state(os.path.join(scan.root, path))
        except OSError as exc:                 # gone or unreadable since the scan
            plan.skipped.append((path, f"cannot read the file: {exc.strerror or exc}"))
            continue
        row = rows.get(path)
        if row is not None and old.states[row] == state:
            plan.order.append(("cache", row))
        elif path in old.bad and old.bad[path][0] == state:
            plan.bad[path] = old.bad[path]
        else:
            if row is not None or path in old.bad:
                plan.known.add(len(plan.todo))
            plan.order.append(("new", len(plan.todo)))
            plan.todo.append(path)
    return plan


def _assembled(plan: _Plan, old: FolderCodes, encoded: _Encoded, rows: np.ndarray, bit: int) -> FolderCodes:
    """The cache's rows for this run, in scan order: the kept rows and the new ones (features on one scale)."""
    new_row = {int(i): j for j, i in enumerate(rows)}   # position in todo -> row of `encoded`
    order = [(kind, n) for kind, n in plan.order if kind == "cache" or n in new_row]
    is_kept = np.asarray([kind == "cache" for kind, _ in order], bool)
    kept_rows = np.asarray([n for kind, n in order if kind == "cache"], np.int64)
    new_order = np.asarray([new_row[n] for kind, n in order if kind == "new"], np.int64)
    kept, new = _requantized(Int8Features(old.features.values[kept_rows], old.features.scale), encoded.features)
    codes, values = np.empty((len(order), bit), np.int8), np.empty((len(order), bit), np.int8)
    codes[is_kept], values[is_kept] = old.codes[kept_rows], kept.values
    codes[~is_kept], values[~is_kept] = encoded.codes[new_order], new.values[new_order]
    paths = [old.paths[n] if kind == "cache" else plan.todo[n] for kind, n in order]
    return FolderCodes(paths, [plan.states[p] for p in paths], codes, Int8Features(values, kept.scale), plan.bad)


def sync_folder(encoder: Any, folder: str, cache_dir: str, batch_size: int = 32, num_workers: int = 0,
                log: Log = print, desc: str = "encode folder", max_pixels: int = DEFAULT_MAX_PIXELS) -> FolderSync:
    """The codes of every image under `folder`, from its cache where the files are unchanged and encoded
    otherwise, the cache brought up to date (under its lock; a cache that needs writing in a folder that
    cannot be written is one WriteError line, before any encoding). A folder with no readable image
    is a DataError."""
    scan = scan_images(folder)
    root, bit = scan.root, int(encoder.bit)
    files, expected = CacheFiles.of(cache_dir, bit, root), folder_fingerprint(encoder, root)
    with held_lock(files.lock, log) as unwritable:
        cache, reason = load_folder_codes(files, expected)
        old = cache or FolderCodes([], [], np.zeros((0, bit), np.int8),
                                   Int8Features(np.zeros((0, bit), np.int8), np.ones(bit, np.float32)), {})
        plan = _plan(scan, old)
        removed = sum(path not in plan.states for path in old.paths)
        dirty = cache is None or bool(plan.todo) or removed > 0 or set(plan.bad) != set(old.bad)
        if dirty and unwritable is not None:
            raise WriteError(files.lock, unwritable)
        encoded, rows = _encode(encoder, root, plan.todo, batch_size, num_workers, desc, max_pixels, log,
                                reason if cache is None else "new or changed files", files.codes)
        for i, why in encoded.bad.items():
            plan.bad[plan.todo[i]] = (plan.states[plan.todo[i]], why)
        result = _assembled(plan, old, encoded, rows, bit)
        skipped = plan.skipped + [(path, why) for path, (_, why) in sorted(plan.bad.items())]
        text = _skipped_text(root, skipped)
        if dirty:
            with staged_generation(os.path.dirname(os.path.abspath(files.meta))) as staged:
                stage_folder_codes(files, expected, result, text, staged)
        elif unwritable is None and _read_text(files.skipped) != text:  # a folder became unreadable, ...
            atomic_write_bytes(files.skipped, text.encode("utf-8", "backslashreplace"))
    changed = len(plan.known & {int(i) for i in rows})
    sync = FolderSync(root, result, len(rows), len(result.paths) - len(rows), changed, removed, skipped,
                      len(encoded.bad), files.skipped if os.path.isfile(files.skipped) else None)
    if not result.paths:
        raise DataError(f"{root}: no readable image under it ({len(scan.paths):,} image files found; "
                        f"{len(skipped):,} skipped: {sync.skipped_file or 'see above'})" if scan.paths else
                        f"{root}: no image files under it (extensions: .jpg .jpeg .png .webp .bmp .tif .tiff, any case)")
    return sync


class _Encoded:
    def __init__(self, features: np.ndarray, codes: np.ndarray, bad: dict[int, str]) -> None:
        self.features, self.codes, self.bad = features, codes, bad


def _encode(encoder: Any, root: str, todo: list[str], batch_size: int, num_workers: int, desc: str,
            max_pixels: int, log: Log, reason: str, target: str) -> tuple[_Encoded, np.ndarray]:
    """Features, codes and bad files of the images `todo`, and the positions in `todo` of the rows."""
    from utils.data.transforms import build_transform
    from utils.inference.encoders import encode_items

    bit = int(encoder.bit)
    if not todo:
        return _Encoded(np.zeros((0, bit), np.float32), np.zeros((0, bit), np.int8), {}), np.zeros(0, np.int64)
    log(f"encoding {len(todo):,} image{'s' if len(todo) > 1 else ''} ({reason}) -> {target}")
    images = _FolderImages(root, todo, build_transform(False, **encoder.preprocess), max_pixels)
    done, rows = encode_items(encoder, images, batch_size, num_workers, desc)
    return _Encoded(done.features, done.codes, images.bad), rows


def _utf8(path: str) -> bool:
    """False for a name os.walk decoded with surrogate escapes (bytes that are not UTF-8)."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _read_text(path: str) -> str | None:
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "backslashreplace")
    except OSError:
        return None


class FolderSource:
    """Every image under `folder` as a DatabaseSource (utils.inference.searcher): paths relative to the
    folder, no labels, codes (and int8 features, for rescoring) cached in cache_dir and brought up to
    date by each codes() call (see the module docstring). entries() gives the entries of the last
    codes() call, which the Searcher makes first. verbose: log every skipped file too."""

    def __init__(self, folder: str, cache_dir: str, name: str = "data", desc: str = "encode folder",
                 num_workers: int | None = None, verbose: bool = False,
                 max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
        self.folder, self.cache_dir, self.name, self.desc = folder, cache_dir, name, desc
        self.num_workers, self.verbose, self.max_pixels = num_workers, verbose, max_pixels
        self.last: FolderSync | None = None

    @property
    def root(self) -> str:
        return os.path.abspath(self.folder)

    def sync(self, encoder: Any, batch_size: int = 32, num_workers: int = 0, log: Log = print) -> FolderSync:
        """Bring the folder's cache up to date (sync_folder) and say what it took."""
        workers = num_workers if self.num_workers is None else self.num_workers
        sync = sync_folder(encoder, self.folder, self.cache_dir, batch_size, workers, log, self.desc, self.max_pixels)
        log(sync.summary())
        warning = sync.warning()
        if warning:
            log(warning)
            for path, reason in sync.skipped if self.verbose else ():
                log(f"  skipped {path}: {reason}")
        self.last = sync
        return sync

    def entries(self, num_classes: int | None) -> tuple[list[str], np.ndarray]:
        if self.last is None:
            raise RuntimeError("FolderSource.entries() before codes(): the folder has not been read yet")
        paths = list(self.last.codes.paths)
        return paths, np.zeros((len(paths), num_classes or 0), np.float32)

    def codes(self, encoder: Any, batch_size: int, num_workers: int, log: Log) -> np.ndarray:
        return self.sync(encoder, batch_size, num_workers, log).codes.codes

    def codes_and_features(self, encoder: Any, batch_size: int, num_workers: int,
                           log: Log) -> tuple[np.ndarray, Int8Features]:
        """The codes and their int8 features (both always cached for a folder)."""
        codes = self.sync(encoder, batch_size, num_workers, log).codes
        return codes.codes, codes.features
