"""The database code cache: `<dir>/database_code_<K>.npy` + `database_code_<K>.json` (fingerprint).

The fingerprint names the model (utils.storage.weights.weights_digest of its tensors: the same for
trained weights and their export, so both share one cache), the preprocessing, the list file
(sha256 of its bytes), the data root and the bit count; any difference means the codes are stale
and are rebuilt.
The .json also records the sha256 of the codes, so an .npy that does not belong to its .json
is never trusted. Both files are written completely to temp files before either is renamed
(.npy first, .json last), so a failed write (disk full) leaves the cache as it was. Processes that
share a cache take a file lock (`database_code_<K>.lock`, the filelock package) around
check-and-build, so two predict.py started together encode the database once and the second
reads what the first wrote. No pickle is involved (np.load(allow_pickle=False), JSON with its
nesting bounded). A cache that cannot be read for any reason (empty, truncated, foreign) is
rebuilt; a folder where the lock or the cache cannot be written is one WriteError line (an
up-to-date cache in a read-only folder is still read).

Beside the codes, a cache built from the images keeps their pre-sign features for rescoring
(utils.retrieval.rescore.Int8Features: `database_code_<K>_features.npy`, int8 [n, K], and
`database_code_<K>_feature_scale.npy`, float32 [K]), staged in the same generation before the .json,
which records their sha256; a cache without them (older, or the service's added images) still
serves codes, and is rebuilt only when features are asked for.
"""
import contextlib
import hashlib
import json
import os

import numpy as np

from utils.encoding import Encoded
from utils.errors import WriteError
from utils.retrieval.rescore import Int8Features
from utils.storage.fileio import file_sha256, staged_generation, staged_open
from utils.storage.parsing import load_json
from utils.storage.run_folder import RunFolder


def cache_paths(save_dir, bit):
    base = RunFolder(save_dir).code_cache(bit)
    return base + ".npy", base + ".json"


def feature_paths(save_dir, bit):
    """The feature store's files: (int8 values .npy, float32 per-dimension scale .npy)."""
    base = RunFolder(save_dir).code_cache(bit)
    return base + "_features.npy", base + "_feature_scale.npy"


def lock_path(save_dir, bit):
    return RunFolder(save_dir).code_cache(bit) + ".lock"


def fingerprint(encoder, list_path, data_root, list_bytes=None):
    """What the cache of list_path's codes must match; list_bytes: the list's bytes when they are
    about to be written there (not read from the file)."""
    list_sha = file_sha256(list_path) if list_bytes is None else hashlib.sha256(list_bytes).hexdigest()
    return {**model_fingerprint(encoder), "list_sha256": list_sha, "list": os.path.abspath(list_path),
            "data_root": os.path.abspath(data_root)}


def model_fingerprint(encoder):
    """What every cache of codes must match, whatever its images: the bit count, the weights digest and
    the preprocessing (as read back from JSON: lists, not tuples)."""
    preprocess = json.loads(json.dumps(encoder.preprocess))
    return {"bit": int(encoder.bit), "model_sha256": encoder.fingerprint, "preprocess": preprocess}


def _codes_sha256(codes):
    return hashlib.sha256(np.ascontiguousarray(codes, dtype=np.int8).tobytes()).hexdigest()


def load_cached_codes(save_dir, expected):
    """Codes when the cache exists and its fingerprint matches, else (None, reason)."""
    codes_path, meta_path = cache_paths(save_dir, expected["bit"])
    if not os.path.isfile(codes_path) or not os.path.isfile(meta_path):
        return None, "no cache yet"
    try:
        with open(meta_path, "rb") as f:
            meta = load_json(f.read())
        codes = np.load(codes_path, allow_pickle=False)
    except Exception as exc:  # empty (EOFError), truncated, not an array, not JSON, ...: rebuilt
        return None, f"cache unreadable ({type(exc).__name__})"
    if not isinstance(codes, np.ndarray):
        return None, "cache unreadable (not one array)"
    if not isinstance(meta, dict):
        return None, "cache fingerprint is not a JSON object"
    changed = [k for k in expected if meta.get(k) != expected[k]]
    if changed:
        return None, "fingerprint differs: " + ", ".join(changed)
    if codes.ndim != 2 or codes.shape[1] != expected["bit"] or meta.get("count") != codes.shape[0]:
        return None, "cache shape does not match its fingerprint"
    if meta.get("codes_sha256") != _codes_sha256(codes):
        return None, "cached codes do not match their fingerprint (codes_sha256)"
    return codes, "up to date"


def _features_sha256(store):
    digest = hashlib.sha256(np.ascontiguousarray(store.values, dtype=np.int8).tobytes())
    digest.update(np.ascontiguousarray(store.scale, dtype=np.float32).tobytes())
    return digest.hexdigest()


def load_cached_features(save_dir, expected, count):
    """The feature store of an up-to-date cache of `count` codes, else (None, reason)."""
    with open(cache_paths(save_dir, expected["bit"])[1], "rb") as f:
        meta = load_json(f.read())
    if not isinstance(meta, dict) or "features_sha256" not in meta:
        return None, "no features cached"
    values_path, scale_path = feature_paths(save_dir, expected["bit"])
    try:
        store = Int8Features(np.load(values_path, allow_pickle=False), np.load(scale_path, allow_pickle=False))
    except Exception as exc:
        return None, f"features unreadable ({type(exc).__name__})"
    if store.values.dtype != np.int8 or store.values.shape != (count, expected["bit"]) or \
            store.scale.dtype != np.float32 or store.scale.shape != (expected["bit"],):
        return None, "features do not match the codes"
    if meta["features_sha256"] != _features_sha256(store):
        return None, "cached features do not match their fingerprint (features_sha256)"
    return store, "up to date"


def stage_codes(save_dir, expected, codes, staged, features=None):
    """Write the cache's files as complete temp files, appended to `staged` (a
    utils.storage.fileio.staged_generation list): the .npy (and the feature store, an Int8Features,
    when given) first, their fingerprint last."""
    codes = np.asarray(codes, dtype=np.int8)
    codes_path, meta_path = cache_paths(save_dir, expected["bit"])
    with staged_open(codes_path, "wb") as (f, item):
        np.save(f, codes, allow_pickle=False)  # the size is read back: numpy's last block is unchecked
    staged.append(item)
    meta = {**expected, "count": int(codes.shape[0]), "codes_sha256": _codes_sha256(codes)}
    if features is not None:
        for path, array in zip(feature_paths(save_dir, expected["bit"]), (features.values, features.scale)):
            with staged_open(path, "wb") as (f, item):
                np.save(f, array, allow_pickle=False)
            staged.append(item)
        meta["features_sha256"] = _features_sha256(features)
    with staged_open(meta_path, "w", encoding="utf-8") as (f, item):
        json.dump(meta, f, indent=1)
    staged.append(item)


def save_codes(save_dir, expected, codes, features=None):
    with staged_generation(save_dir) as staged:
        stage_codes(save_dir, expected, codes, staged, features)


def open_lock(path):
    """(a FileLock on `path`, None), or (None, the OSError) where its folder cannot hold it (read-only):
    then an up-to-date cache is read unlocked, and a rebuild fails as one WriteError line before
    any encoding. A folder that cannot be made is a WriteError at once."""
    from filelock import FileLock

    try:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    except OSError as exc:
        raise WriteError(os.path.dirname(path), exc) from None
    try:
        with open(path, "a"):
            pass
    except OSError as exc:
        return None, exc
    return FileLock(path), None


@contextlib.contextmanager
def held_lock(path, log=print):
    """Hold the cache lock at `path` (saying so when another process holds it first); yields None, or
    the OSError that kept the lock from being made (an unwritable folder: nothing may be written)."""
    from filelock import Timeout

    lock, unwritable = open_lock(path)
    if lock is not None:
        try:
            lock.acquire(timeout=0)
        except Timeout:
            log(f"waiting for another process that holds {lock.lock_file}")
            lock.acquire()
    try:
        yield unwritable
    finally:
        if lock is not None:
            lock.release()


def cached_or_built(save_dir, expected, build, log=print, features=False):
    """The database codes from the cache, or from build() (then cached), under a file lock.
    build() returns the codes, or an Encoded (its features are then cached too). features=True:
    returns (codes, Int8Features), rebuilding a cache that holds no features."""
    with held_lock(lock_path(save_dir, expected["bit"]), log) as unwritable:
        codes, reason = load_cached_codes(save_dir, expected)
        store = None
        if codes is not None and features:
            store, reason = load_cached_features(save_dir, expected, len(codes))
            codes = None if store is None else codes
        if codes is None and unwritable is not None:
            raise WriteError(lock_path(save_dir, expected["bit"]), unwritable)
        if codes is None:
            log(f"encoding the database ({reason}) -> {cache_paths(save_dir, expected['bit'])[0]}")
            built = build()
            if isinstance(built, Encoded):
                codes, store = built.codes, Int8Features.quantize(built.features)
            else:
                codes = np.asarray(built, dtype=np.int8)
            if features and store is None:
                raise ValueError("cached_or_built(features=True) needs a build() that returns an Encoded")
            save_codes(save_dir, expected, codes, store)
        else:
            log(f"database codes: {cache_paths(save_dir, expected['bit'])[0]} (cache up to date)")
        return (codes, store) if features else codes


def list_codes(encoder, list_path, data_root, cache_dir, batch_size=32, num_workers=0, desc="encode database",
               log=print, features=False):
    """The codes of every image of a list file (any Encoder): from the cache in cache_dir when its
    fingerprint matches, else encoded and cached (with their features), under the cache's file lock
    (concurrent predict.py runs and the service build it once). What predict.py and the search
    service both call. features=True: (codes, Int8Features)."""
    from utils.inference.encoders import encode_dataset, list_dataset

    def build():
        return encode_dataset(encoder, list_dataset(encoder, list_path, data_root), batch_size, num_workers, desc)

    return cached_or_built(cache_dir, fingerprint(encoder, list_path, data_root), build, log, features)
