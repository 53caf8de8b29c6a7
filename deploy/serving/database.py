"""The searchable database: the data set's database list plus the images added at run time.

Data-set images: codes come from the predict.py cache (utils.inference.code_cache, in --cache-dir), so a
restart with the same model and list does not re-encode; images are served from the data root.

Added images (POST /items) live in a store folder that survives restarts:
    <store>/images/<nnnnnn>_<sha256 prefix><suffix>   the uploaded bytes, unchanged
    <store>/items.txt                                 list format, paths relative to <store>
    <store>/codes/database_code_<K>.npy + .json       their codes, through utils.inference.code_cache
Each write is atomic (utils.storage.fileio) and in that order: image files, then the list and the
codes as one staged generation (both complete before either is renamed). The codes' fingerprint
holds the list's sha256, so a crash between the two renames leaves codes that no longer match
the list; they are then re-encoded from the stored images at the next start. A write that fails
(a full disk) removes the new image files and changes neither the list, the codes nor memory.

One service per store folder: adds are serialized within a process, not across processes.
Thread safety: `_lock` guards the index and the entry lists together (searches hold it for
the search only); `_write_lock` serializes adds, which do their disk writes before taking `_lock`.
"""
import contextlib
import hashlib
import os
import threading

import numpy as np

from utils.data.lists import parse_list
from utils.inference.code_cache import fingerprint, list_codes, stage_codes
from utils.retrieval import HammingIndex
from utils.storage.fileio import atomic_open, stage_bytes, staged_generation


class ImageDatabase:
    def __init__(self, pool, db_list, data_root, cache_dir, store_dir, backend="auto", threads=None,
                 batch_size=32, num_workers=2, log=print):
        self.pool = pool
        self.bit = pool.bit
        self.data_root = os.path.abspath(data_root)
        self.store_dir = os.path.abspath(store_dir)
        self.images_dir = os.path.join(self.store_dir, "images")
        self.items_list = os.path.join(self.store_dir, "items.txt")
        self.codes_dir = os.path.join(self.store_dir, "codes")
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()

        base_codes = list_codes(pool, db_list, data_root, cache_dir, batch_size, num_workers, "database", log)
        self.paths, labels = parse_list(db_list)
        self.sources = ["data"] * len(self.paths)
        self.base_size = len(self.paths)
        self.num_classes = labels.shape[1]
        self.labels = [row for row in labels.astype(np.int8)]
        self._item_lines = []
        self._item_codes = np.zeros((0, self.bit), np.int8)
        self.index = HammingIndex(self.bit, backend, threads=threads)
        self.index.add(base_codes)

        if os.path.isfile(self.items_list):
            item_paths, item_labels = parse_list(self.items_list, self.num_classes)
            item_codes = list_codes(pool, self.items_list, self.store_dir, self.codes_dir, batch_size, 0,
                                    "added items", log)
            with open(self.items_list, encoding="utf-8") as f:
                self._item_lines = [line.rstrip("\n") for line in f if line.strip()]
            self._item_codes = np.asarray(item_codes, np.int8)
            self._append(item_paths, item_labels.astype(np.int8), item_codes)

    def __len__(self):
        return len(self.paths)

    def _append(self, paths, labels, codes):
        with self._lock:
            self.index.add(codes)
            self.paths.extend(paths)
            self.sources.extend(["added"] * len(paths))
            self.labels.extend(labels)

    def search(self, code, k, radius=None):
        """(distances, indices, count within radius or None) under the lock, so the entries match."""
        with self._lock:
            if radius is None:
                distances, indices = (a[0] for a in self.index.search(code, k))
                return distances, indices, None
            distances, indices = self.index.range_search(code, radius)[0]
            return distances[:k], indices[:k], len(indices)

    def entry(self, i):
        return self.sources[i], self.paths[i], self.labels[i]

    def add(self, images, label_row, codes):
        """Store the uploaded files, then the list and the codes (one staged generation: both are
        complete on disk before either replaces the old); returns their database indices. A failed
        write (WriteError) removes the new image files and leaves the list, the codes and memory as
        they were."""
        with self._write_lock:
            start = len(self._item_lines)
            names, lines, created, text = [], [], [], None
            try:
                for n, image in enumerate(images):
                    digest = hashlib.sha256(image.data).hexdigest()[:16]
                    name = f"images/{start + n:06d}_{digest}{image.suffix}"
                    path = os.path.join(self.store_dir, name)
                    if not os.path.exists(path):
                        created.append(path)
                    with atomic_open(path, "wb") as f:
                        f.write(image.data)
                    names.append(name)
                    lines.append(name + " " + " ".join(str(int(v)) for v in label_row))
                all_lines = self._item_lines + lines
                text = ("\n".join(all_lines) + "\n").encode("utf-8")
                all_codes = np.concatenate([self._item_codes, np.asarray(codes, np.int8)])
                expected = fingerprint(self.pool, self.items_list, self.store_dir, list_bytes=text)
                with staged_generation(self.store_dir) as staged:  # the list first, its codes after it
                    staged.append(stage_bytes(self.items_list, text))
                    stage_codes(self.codes_dir, expected, all_codes, staged)
            except BaseException:
                if not _holds(self.items_list, text):
                    for path in created:  # no list names them: leave no orphans
                        with contextlib.suppress(OSError):
                            os.unlink(path)
                raise
            self._item_lines = all_lines
            self._item_codes = all_codes
            first = len(self)
            self._append(names, [np.asarray(label_row, np.int8)] * len(names), codes)
            return list(range(first, first + len(names)))


def _holds(path, data):
    """True when the file at path holds exactly data (a list a failed generation still committed)."""
    if data is None:
        return False
    try:
        with open(path, "rb") as f:
            return f.read() == data
    except OSError:
        return False
