"""The images added at run time (POST /items): a store folder that survives restarts, and the
second source of the service's Searcher (utils.inference.searcher; the first is the data set's
database list, whose codes come from the predict.py cache in --cache-dir).

    <store>/images/<nnnnnn>_<sha256 prefix><suffix>   the uploaded bytes, unchanged
    <store>/items.txt                                 list format, paths relative to <store>
    <store>/codes/                                    their codes, through utils.inference.code_cache
                                                      (and, when the service rescores, their features)
Each write is atomic (utils.storage.fileio) and in that order: image files, then the list and the
codes as one staged generation (both complete before either is renamed). The codes' fingerprint
holds the list's sha256, so a crash between the two renames leaves codes that no longer match
the list; they are then re-encoded from the stored images at the next start. A write that fails
(a full disk) removes the new image files and changes neither the list, the codes nor memory.

One service per store folder: adds are serialized within a process (`_write_lock`, which does its
disk writes before the Searcher's lock is taken), not across processes.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import threading
from typing import Any, Sequence

import numpy as np

from utils.data.lists import parse_list
from utils.inference.code_cache import fingerprint, list_codes, stage_codes
from utils.retrieval.rescore import Int8Features
from utils.storage.fileio import atomic_open, stage_bytes, staged_generation


class ItemStore:
    """The added images as a database source named "added" (DatabaseSource of utils.inference.searcher)."""

    name = "added"

    def __init__(self, store_dir: str) -> None:
        self.root = os.path.abspath(store_dir)
        self.images_dir = os.path.join(self.root, "images")
        self.items_list = os.path.join(self.root, "items.txt")
        self.codes_dir = os.path.join(self.root, "codes")
        self._item_lines: list[str] = []
        self._item_codes = np.zeros((0, 0), np.int8)
        self._item_features: Int8Features | None = None  # kept only when loaded by codes_and_features (rescoring)
        self._write_lock = threading.Lock()

    # ------------------------------------------------------------------ as a database source

    def entries(self, num_classes: int | None) -> tuple[list[str], np.ndarray]:
        if not os.path.isfile(self.items_list):
            return [], np.zeros((0, num_classes or 0), np.float32)
        with open(self.items_list, encoding="utf-8") as f:
            self._item_lines = [line.rstrip("\n") for line in f if line.strip()]
        return parse_list(self.items_list, num_classes)

    def codes(self, encoder: Any, batch_size: int, num_workers: int, log: Any) -> np.ndarray:
        self._encoder = encoder
        if not os.path.isfile(self.items_list):
            self._item_codes = np.zeros((0, encoder.bit), np.int8)
        else:
            self._item_codes = np.asarray(list_codes(encoder, self.items_list, self.root, self.codes_dir, batch_size,
                                                     0, "added items", log), np.int8)
        return self._item_codes

    def codes_and_features(self, encoder: Any, batch_size: int, num_workers: int,
                           log: Any) -> tuple[np.ndarray, Int8Features]:
        """The codes and int8 features of the added images, for a rescoring service (a store written
        without features is encoded again once from its stored images); later adds keep both."""
        self._encoder = encoder
        if not os.path.isfile(self.items_list):
            self._item_codes = np.zeros((0, encoder.bit), np.int8)
            self._item_features = Int8Features(np.zeros((0, encoder.bit), np.int8), np.ones(encoder.bit, np.float32))
        else:
            codes, self._item_features = list_codes(encoder, self.items_list, self.root, self.codes_dir, batch_size,
                                                    0, "added items", log, features=True)
            self._item_codes = np.asarray(codes, np.int8)
        return self._item_codes, self._item_features

    # ------------------------------------------------------------------ adding

    def add(self, searcher: Any, images: Sequence[Any], label_row: np.ndarray, codes: np.ndarray,
            features: np.ndarray | None = None) -> range:
        """Store the uploaded files, then the list and the codes (one staged generation: both are
        complete on disk before either replaces the old), then give them to the searcher; returns their
        database indices. `features` (float [n, K]): the images' pre-sign features, kept beside the
        codes when the store was loaded for rescoring (codes_and_features). A failed write (WriteError)
        removes the new image files and leaves the list, the codes and memory as they were."""
        keep = self._item_features is not None
        if keep and features is None:
            raise ValueError("ItemStore.add: a rescoring store needs the features of the added images")
        with self._write_lock:
            start = len(self._item_lines)
            names, lines, created, text = [], [], [], None
            try:
                for n, image in enumerate(images):
                    digest = hashlib.sha256(image.data).hexdigest()[:16]
                    name = f"images/{start + n:06d}_{digest}{image.suffix}"
                    path = os.path.join(self.root, name)
                    if not os.path.exists(path):
                        created.append(path)
                    with atomic_open(path, "wb") as f:
                        f.write(image.data)
                    names.append(name)
                    lines.append(name + " " + " ".join(str(int(v)) for v in label_row))
                all_lines = self._item_lines + lines
                text = ("\n".join(all_lines) + "\n").encode("utf-8")
                all_codes = np.concatenate([self._item_codes, np.asarray(codes, np.int8)])
                all_features = self._item_features.extended(features) if keep else None
                expected = fingerprint(self._encoder, self.items_list, self.root, list_bytes=text)
                with staged_generation(self.root) as staged:  # the list first, its codes after it
                    staged.append(stage_bytes(self.items_list, text))
                    stage_codes(self.codes_dir, expected, all_codes, staged, all_features)
            except BaseException:
                if not _holds(self.items_list, text):
                    for path in created:  # no list names them: leave no orphans
                        with contextlib.suppress(OSError):
                            os.unlink(path)
                raise
            self._item_lines = all_lines
            self._item_codes, self._item_features = all_codes, all_features
            return searcher.append(self.name, names, [np.asarray(label_row, np.int8)] * len(names), codes,
                                   features if keep else None)


def _holds(path: str, data: bytes | None) -> bool:
    """True when the file at path holds exactly data (a list a failed generation still committed)."""
    if data is None:
        return False
    try:
        with open(path, "rb") as f:
            return f.read() == data
    except OSError:
        return False
