"""The images added at run time (POST /items): a store folder that survives restarts, and the
second source of the service's Searcher (utils.inference.searcher; the first is the data set's
database list, whose codes come from the predict.py cache in --cache-dir).

    <store>/images/<nnnnnn>_<sha256 prefix><suffix>   the uploaded bytes, unchanged
    <store>/items.txt                                 list format, paths relative to <store>
    <store>/codes/                                    their codes, through utils.inference.code_cache
Each write is atomic (utils.storage.fileio) and in that order: image files, list, codes. The codes'
fingerprint holds the list's sha256, so a crash between steps leaves codes that no longer match
the list; they are then re-encoded from the stored images at the next start.

One service per store folder: adds are serialized within a process (`_write_lock`, which does its
disk writes before the Searcher's lock is taken), not across processes.
"""
from __future__ import annotations

import hashlib
import os
import threading
from typing import Any, Sequence

import numpy as np

from utils.data.lists import parse_list
from utils.inference.code_cache import fingerprint, list_codes, save_codes
from utils.storage.fileio import atomic_open


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

    # ------------------------------------------------------------------ adding

    def add(self, searcher: Any, images: Sequence[Any], label_row: np.ndarray, codes: np.ndarray) -> range:
        """Store the uploaded files, then their codes, then give them to the searcher; returns their
        database indices."""
        with self._write_lock:
            start = len(self._item_lines)
            names, lines = [], []
            for n, image in enumerate(images):
                digest = hashlib.sha256(image.data).hexdigest()[:16]
                name = f"images/{start + n:06d}_{digest}{image.suffix}"
                with atomic_open(os.path.join(self.root, name), "wb") as f:
                    f.write(image.data)
                names.append(name)
                lines.append(name + " " + " ".join(str(int(v)) for v in label_row))
            previous = self._list_text()
            all_lines = self._item_lines + lines
            self._write_list("\n".join(all_lines) + "\n")
            try:
                all_codes = np.concatenate([self._item_codes, np.asarray(codes, np.int8)])
                save_codes(self.codes_dir, fingerprint(self._encoder, self.items_list, self.root), all_codes)
            except BaseException:
                self._write_list(previous)  # best effort: keep list and codes in step
                raise
            self._item_lines = all_lines
            self._item_codes = all_codes
            return searcher.append(self.name, names, [np.asarray(label_row, np.int8)] * len(names), codes)

    def _list_text(self) -> str | None:
        return "\n".join(self._item_lines) + "\n" if self._item_lines else None

    def _write_list(self, text: str | None) -> None:
        if text is None:
            os.unlink(self.items_list)
            return
        with atomic_open(self.items_list, "w", encoding="utf-8") as f:
            f.write(text)
