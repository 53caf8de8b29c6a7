"""What the HTTP routes do, without HTTP: encode, search, add items, stats.

Built once per process (the model is loaded once) over one Searcher (utils.inference.searcher): the
data set's database plus the images added at run time (database.ItemStore). The routes in app.py
only translate requests and responses, so this is also what the API tests exercise through the app.
"""
from __future__ import annotations

import dataclasses
import os
import time
import urllib.parse
from typing import Any

import numpy as np

from deploy.serving.database import ItemStore
from deploy.serving.uploads import Limits, UploadError, decode_upload
from utils.errors import ConfigError, quote
from utils.inference.searcher import Searcher, SearchSettings, build_encoder
from utils.retrieval import format_code

DEFAULT_K = 10


@dataclasses.dataclass(frozen=True)
class ServiceSettings:
    """What the service is built from: the search (an export, predictors, the database list and its
    code cache) and what the HTTP side adds (the store of added images, limits, PP-ShiTu defaults)."""

    search: SearchSettings
    store_dir: str
    limits: Limits = Limits()
    read_only: bool = False
    index_settings: Any = None  # utils.retrieval.index_config.IndexSettings: radius and k of a search giving none


class SearchService:
    def __init__(self, settings: ServiceSettings, log: Any = print) -> None:
        self.settings = settings
        self.model_dir = os.path.abspath(settings.search.model_dir)
        self.limits, self.read_only = settings.limits, settings.read_only
        self.store = ItemStore(settings.store_dir)
        self.pool = build_encoder(settings.search)
        self._check_index_settings(self.pool)  # before the database is encoded
        self.searcher = Searcher.from_settings(settings.search, [self.store], log, encoder=self.pool)
        self.bit = self.searcher.bit
        self.class_names = self.searcher.class_names
        self.backend = settings.search.backend
        self.rescore = settings.search.rescore  # > 0: top-k searches re-ranked by features among this many
        self.base_size = self.searcher.sources.count("data")

    def __len__(self) -> int:
        return len(self.searcher)

    def _check_index_settings(self, encoder: Any) -> None:
        """The PP-ShiTu settings against the model, before the database is encoded."""
        limits, index_settings = self.settings.limits, self.settings.index_settings
        self.default_k, self.default_radius = min(DEFAULT_K, limits.max_k), None
        if index_settings is None:
            return
        index_settings.check_bit(encoder.bit)
        if index_settings.topk is not None and index_settings.topk > limits.max_k:
            raise ConfigError(f"{index_settings.source}: IndexProcess.return_k: {index_settings.topk} is above "
                              f"--max-k {limits.max_k}")
        self.default_k = index_settings.topk or self.default_k
        self.default_radius = index_settings.radius
        if self.settings.search.rescore and self.default_radius is not None:
            raise ConfigError(f"{index_settings.source}: IndexProcess.hamming_radius makes every search a radius "
                              f"search, which --rescore does not apply to (it re-ranks a top-k search)")

    # ---------------------------------------------------------------- requests

    def encode(self, data, name=""):
        image = decode_upload(data, name, self.limits)
        code = self.searcher.encode_images([image.pixels]).codes[0]
        bits, hexcode = format_code(code)
        return {"bit": self.bit, "bits": bits, "hex": hexcode}

    def search(self, data, name="", k=None, radius=None):
        k = self.default_k if k is None else k
        radius = self.default_radius if radius is None else radius
        self._check_k(k)
        if radius is not None and not 0 <= radius <= self.bit:
            raise UploadError(400, f"radius must be between 0 and {self.bit} (the code length), got {radius}")
        if radius is not None and self.rescore:
            raise UploadError(400, f"radius: this service rescores a top-k search (--rescore {self.rescore}); "
                                   f"a radius search is not rescored: send k without a radius")
        t0 = time.perf_counter()
        image = decode_upload(data, name, self.limits)
        t1 = time.perf_counter()
        query = self.searcher.encode_images([image.pixels])
        code = query.codes
        t2 = time.perf_counter()
        result = self.searcher.search(code, k, radius, features=query.features[0] if self.rescore else None)
        t3 = time.perf_counter()
        bits, hexcode = format_code(code[0])
        return {"query": {"bit": self.bit, "bits": bits, "hex": hexcode}, "k": k, "radius": radius,
                "rescore": self.rescore,
                "database_size": result.database_size, "within_radius": result.within_radius,
                "nearest_distance": result.nearest_distance, "matches": [self._match(m) for m in result.matches],
                "timing_ms": {"decode": _ms(t0, t1), "encode": _ms(t1, t2), "search": _ms(t2, t3)}}

    def add_items(self, uploads, labels=""):
        """uploads: [(filename, bytes)]; labels: class names or indices, comma separated, for all of them."""
        if self.read_only:
            raise UploadError(403, "adding images is switched off (the service runs with --read-only)")
        if not uploads:
            raise UploadError(400, "no image: send one or more files as multipart form field 'files'")
        label_row = self._label_row(labels)
        images = [decode_upload(data, name, self.limits) for name, data in uploads]
        encoded = self.searcher.encode_images([image.pixels for image in images])
        codes = encoded.codes
        indices = self.store.add(self.searcher, images, label_row, codes, encoded.features if self.rescore else None)
        added = []
        for i, code in zip(indices, codes):
            source, path, _ = self.searcher.entry(i)
            added.append({"index": i, "path": path, "url": self._url(source, path), "hex": format_code(code)[1]})
        return {"added": added, "database_size": len(self.searcher)}

    def stats(self):
        size = len(self.searcher)
        return {"database_size": size, "data_set_images": self.base_size, "added_images": size - self.base_size,
                "bit": self.bit, "model_fingerprint": self.pool.fingerprint, "model_dir": self.model_dir,
                "index_backend": self.backend, "index_plan": self.searcher.index.plan(k=10),
                "default_k": self.default_k, "default_radius": self.default_radius, "rescore": self.rescore,
                "predictors": self.pool.size, "threads_per_predictor": self.pool.threads,
                "classes": self.class_names, "limits": self.limits.as_dict(), "read_only": self.read_only,
                "data_root": self.searcher.roots["data"], "store_dir": self.store.root}

    def image_root(self, source):
        return self.searcher.roots["data"] if source == "data" else self.store.images_dir

    # ---------------------------------------------------------------- helpers

    def _check_k(self, k):
        if not 1 <= k <= self.limits.max_k:
            raise UploadError(400, f"k must be between 1 and {self.limits.max_k} (--max-k), got {k}")

    def _match(self, m):
        row = {"rank": m.rank, "index": m.index, "distance": m.distance, "path": m.path, "source": m.source,
               "labels": [self.class_names[c] for c in np.flatnonzero(m.labels)], "url": self._url(m.source, m.path)}
        if m.score is not None:  # rescored: the feature cosine the match was ranked by
            row["score"] = round(m.score, 6)
        return row

    def _url(self, source, path):
        if source == "data":
            return "/images/" + urllib.parse.quote(path)
        return "/added/" + urllib.parse.quote(os.path.basename(path))

    def _label_row(self, text):
        row = np.zeros(self.searcher.num_classes, np.int8)
        for token in (t.strip() for t in (text or "").split(",")):
            if not token:
                continue
            if token in self.class_names:
                row[self.class_names.index(token)] = 1
            elif token.isascii() and token.isdigit() and len(token.lstrip("0")) < 10 and int(token) < len(row):
                row[int(token)] = 1  # ASCII digits only: '²' and '①' pass isdigit() and fail int()
            else:
                raise UploadError(400, f"labels: unknown class {quote(token)}; use names from /stats 'classes' "
                                       f"or indices 0..{len(row) - 1}")
        return row


def _ms(start, end):
    return round((end - start) * 1000, 3)
