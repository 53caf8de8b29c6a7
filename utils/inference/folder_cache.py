"""The code cache of an image folder searched without lists (--database-dir): the codes, and the state
of the file each row was encoded from, so that a later run encodes only what is new or changed.

Its files (names from utils.storage.run_folder.RunFolder.folder_cache) are in the output folder,
never in the image folder (a user's photo folder gets no files written into it, and may be read-only):

    <prefix>.npy                int8 +-1 codes [n, K], row i encoded from files[i]
    <prefix>_features.npy       their pre-sign features as int8 [n, K], and
    <prefix>_feature_scale.npy  the features' float32 scale per dimension [K] (rescore.Int8Features)
    <prefix>.json               the fingerprint (model weights digest, preprocessing, bits, the folder's
                                real path, FORMAT), `files`: [path, size, mtime_ns, ctime_ns] row for
                                row, `bad`: [path, size, mtime_ns, ctime_ns, reason] of the files that
                                could not be read, and the sha256 of the arrays
    <prefix>.lock               held while the cache is checked and brought up to date (filelock)
    <prefix>_skipped.txt        the files left out of the search and why, for people to read

A file is the same as when it was encoded when its size, mtime_ns and ctime_ns all equal those
recorded (git's rule for its index, without the inode: a copy of the folder to a new place has a new
real path, hence a new cache, anyway). ctime changes whenever the file's bytes or metadata are changed
by any program, even one that puts the old mtime back (`cp -p`, `rsync -t`), and cannot be set by a
user, so it catches what size and mtime miss; reading every file's bytes for a hash on every run
would cost what the cache is there to save. Only a rewrite to the same size within the file
system's timestamp granularity (a few ms on Linux, 2 s on FAT), after this cache read the file, goes
unseen. A chmod or a restore from a backup changes ctime too: the file is encoded again (a cost, never
a wrong answer).

Written as one staged generation (utils.storage.fileio: arrays first, the .json last, every file complete
before any is renamed), and the .json records the sha256 of each array, so a cache torn between two
renames, truncated, unreadable, or made for another model, preprocessing, bit count or folder, is rebuilt
from the images, never trusted. No pickle is involved (np.load(allow_pickle=False), bounded JSON).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from typing import Any

import numpy as np

from utils.inference.code_cache import model_fingerprint
from utils.retrieval.rescore import Int8Features
from utils.storage.fileio import staged_open
from utils.storage.parsing import load_json
from utils.storage.run_folder import RunFolder

FORMAT = "hashnet-folder-codes-1"

FileState = tuple[int, int, int]  # (size, mtime_ns, ctime_ns)


def file_state(path: str) -> FileState:
    """The (size, mtime_ns, ctime_ns) of a file (of its target, for a link); OSError when it is gone."""
    st = os.stat(path)
    return int(st.st_size), int(st.st_mtime_ns), int(st.st_ctime_ns)


@dataclasses.dataclass(frozen=True)
class CacheFiles:
    """The cache's file names for one folder, model bit count and output folder."""

    codes: str
    features: str
    scale: str
    meta: str
    lock: str
    skipped: str

    @classmethod
    def of(cls, cache_dir: str, bit: int, root: str) -> CacheFiles:
        prefix = RunFolder(cache_dir).folder_cache(bit, root)
        return cls(prefix + ".npy", prefix + "_features.npy", prefix + "_feature_scale.npy", prefix + ".json",
                   prefix + ".lock", prefix + "_skipped.txt")


@dataclasses.dataclass(frozen=True)
class FolderCodes:
    """What the cache holds: row i of codes and features is the image paths[i] (relative to the folder,
    "/"-separated) as it was in states[i]; bad: path -> (state, reason) of files that could not be read."""

    paths: list[str]
    states: list[FileState]
    codes: np.ndarray            # int8 +-1 [n, K]
    features: Int8Features
    bad: dict[str, tuple[FileState, str]]


def folder_fingerprint(encoder: Any, root: str) -> dict[str, Any]:
    """What a folder's cache must match: the model's (code_cache.model_fingerprint), the folder's real
    path and the cache format."""
    return {**model_fingerprint(encoder), "format": FORMAT, "root": os.path.realpath(root)}


def _sha256(*arrays: np.ndarray) -> str:
    digest = hashlib.sha256()
    for array in arrays:
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _rows(meta: dict[str, Any]) -> tuple[list[str], list[FileState], dict[str, tuple[FileState, str]]] | None:
    """The `files` and `bad` lists of a fingerprint, checked field by field (None when malformed)."""
    files, bad = meta.get("files"), meta.get("bad")
    if not isinstance(files, list) or not isinstance(bad, list):
        return None
    paths, states = [], []
    for row in files:
        if not (isinstance(row, list) and len(row) == 4 and isinstance(row[0], str) and all(map(_is_int, row[1:]))):
            return None
        paths.append(row[0])
        states.append((row[1], row[2], row[3]))
    broken = {}
    for row in bad:
        if not (isinstance(row, list) and len(row) == 5 and isinstance(row[0], str) and all(map(_is_int, row[1:4]))
                and isinstance(row[4], str)):
            return None
        broken[row[0]] = ((row[1], row[2], row[3]), row[4])
    if len(set(paths)) != len(paths) or set(paths) & set(broken):
        return None
    return paths, states, broken


def load_folder_codes(files: CacheFiles, expected: dict[str, Any]) -> tuple[FolderCodes | None, str]:
    """The cache when every file of it can be read, fits its .json and the .json fits `expected`;
    else (None, why it is not used)."""
    if not os.path.isfile(files.meta):
        return None, "no cache yet"
    try:
        with open(files.meta, "rb") as f:
            meta = load_json(f.read())
        codes = np.load(files.codes, allow_pickle=False)
        values = np.load(files.features, allow_pickle=False)
        scale = np.load(files.scale, allow_pickle=False)
    except Exception as exc:  # missing, empty, truncated, not an array, not JSON, ...: rebuilt
        return None, f"cache unreadable ({type(exc).__name__})"
    if not isinstance(meta, dict):
        return None, "cache fingerprint is not a JSON object"
    changed = [key for key in expected if meta.get(key) != expected[key]]
    if changed:
        return None, "fingerprint differs: " + ", ".join(changed)
    rows = _rows(meta)
    if rows is None:
        return None, "cache file list malformed"
    paths, states, bad = rows
    bit = expected["bit"]
    arrays = (codes, values, scale)
    if not all(isinstance(a, np.ndarray) for a in arrays) or codes.dtype != np.int8 or values.dtype != np.int8 \
            or scale.dtype != np.float32 or codes.shape != (len(paths), bit) or values.shape != codes.shape \
            or scale.shape != (bit,):
        return None, "cache arrays do not match its file list"
    if meta.get("codes_sha256") != _sha256(codes) or meta.get("features_sha256") != _sha256(values, scale):
        return None, "cached arrays do not match their fingerprint (sha256)"
    if codes.size and not np.isin(codes, (-1, 1)).all():
        return None, "cached codes are not +-1"
    return FolderCodes(paths, states, codes, Int8Features(values, scale), bad), "up to date"


def stage_folder_codes(files: CacheFiles, expected: dict[str, Any], cache: FolderCodes, skipped_text: str,
                       staged: list[Any]) -> None:
    """Write the cache as complete temp files appended to `staged` (a staged_generation list): the
    arrays and the list of skipped files first, the .json that vouches for them last."""
    for path, array in ((files.codes, cache.codes), (files.features, cache.features.values),
                        (files.scale, cache.features.scale)):
        with staged_open(path, "wb") as (f, item):
            np.save(f, array, allow_pickle=False)
        staged.append(item)
    with staged_open(files.skipped, "wb") as (f, item):
        f.write(skipped_text.encode("utf-8", "backslashreplace"))  # a file name need not be UTF-8
    staged.append(item)
    meta = {**expected, "count": len(cache.paths),
            "codes_sha256": _sha256(cache.codes), "features_sha256": _sha256(cache.features.values,
                                                                             cache.features.scale),
            "files": [[p, *s] for p, s in zip(cache.paths, cache.states)],
            "bad": [[p, *s, reason] for p, (s, reason) in sorted(cache.bad.items())]}
    with staged_open(files.meta, "w", encoding="utf-8") as (f, item):
        json.dump(meta, f, separators=(",", ":"))
    staged.append(item)
