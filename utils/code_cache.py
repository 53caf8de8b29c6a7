"""The database code cache: `<dir>/database_code_<K>.npy` + `database_code_<K>.json` (fingerprint).

The fingerprint names the model (sha256 of its weights), the list file (sha256 of its bytes),
the data root and the bit count; any difference means the codes are stale and are rebuilt.
The .npy is written first and the .json last, both atomically, so a crash in between leaves a
cache without a valid fingerprint, which is rebuilt rather than trusted. No pickle is involved.
"""
import json
import os

import numpy as np

from utils.fileio import atomic_numpy_save, atomic_open
from utils.inference import file_sha256


def cache_paths(save_dir, bit):
    base = os.path.join(save_dir, f"database_code_{bit}")
    return base + ".npy", base + ".json"


def fingerprint(encoder, list_path, data_root):
    return {"bit": int(encoder.bit), "model_sha256": encoder.fingerprint, "list_sha256": file_sha256(list_path),
            "list": os.path.abspath(list_path), "data_root": os.path.abspath(data_root)}


def load_cached_codes(save_dir, expected):
    """Codes when the cache exists and its fingerprint matches, else (None, reason)."""
    codes_path, meta_path = cache_paths(save_dir, expected["bit"])
    if not os.path.isfile(codes_path) or not os.path.isfile(meta_path):
        return None, "no cache yet"
    try:
        with open(meta_path, encoding="utf-8") as f:
            meta = json.load(f)
        codes = np.load(codes_path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        return None, f"cache unreadable ({type(exc).__name__})"
    changed = [k for k in expected if meta.get(k) != expected[k]]
    if changed:
        return None, "fingerprint differs: " + ", ".join(changed)
    if codes.ndim != 2 or codes.shape[1] != expected["bit"] or meta.get("count") != codes.shape[0]:
        return None, "cache shape does not match its fingerprint"
    return codes, "up to date"


def save_codes(save_dir, expected, codes):
    codes_path, meta_path = cache_paths(save_dir, expected["bit"])
    atomic_numpy_save(np.asarray(codes, dtype=np.int8), codes_path)
    with atomic_open(meta_path, "w", encoding="utf-8") as f:
        json.dump({**expected, "count": int(codes.shape[0])}, f, indent=1)
