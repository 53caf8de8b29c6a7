"""What the HTTP routes do, without HTTP: encode, search, add items, stats.

Built once per process (the model is loaded once); the routes in app.py only translate
requests and responses, so this is also what the API tests exercise through the app.
"""
import os
import time
import urllib.parse

import numpy as np

from deploy.serving.database import ImageDatabase
from deploy.serving.encoders import EncoderPool
from deploy.serving.uploads import Limits, UploadError, decode_upload
from utils.data.lists import class_names
from utils.errors import ConfigError, quote
from utils.retrieval import format_code

DEFAULT_K = 10


class SearchService:
    def __init__(self, model_dir, db_list, data_root, cache_dir, store_dir, *, bit=None, predictors=1,
                 threads=1, use_mkldnn=True, backend="auto", limits=Limits(), read_only=False,
                 batch_size=32, num_workers=2, index_settings=None, log=print):
        """index_settings: utils.retrieval.index_config.IndexSettings (PP-ShiTu's IndexProcess): the
        radius and k of a search that does not give its own."""
        self.model_dir = os.path.abspath(model_dir)
        self.limits = limits
        self.read_only = read_only
        self.pool = EncoderPool(model_dir, bit, size=predictors, threads=threads, use_mkldnn=use_mkldnn)
        self.bit = self.pool.bit
        self.default_k, self.default_radius = min(DEFAULT_K, limits.max_k), None
        if index_settings is not None:  # checked before the database is encoded
            index_settings.check_bit(self.bit)
            if index_settings.topk is not None and index_settings.topk > limits.max_k:
                raise ConfigError(f"{index_settings.source}: IndexProcess.return_k: {index_settings.topk} is above "
                                  f"--max-k {limits.max_k}")
            self.default_k = index_settings.topk or self.default_k
            self.default_radius = index_settings.radius
        self.db = ImageDatabase(self.pool, db_list, data_root, cache_dir, store_dir, backend,
                                threads=threads, batch_size=batch_size, num_workers=num_workers, log=log)
        self.class_names = class_names(data_root, self.db.num_classes)
        self.backend = backend

    # ---------------------------------------------------------------- requests

    def encode(self, data, name=""):
        image = decode_upload(data, name, self.limits)
        code = self.pool.encode([image.pixels])[0]
        bits, hexcode = format_code(code)
        return {"bit": self.bit, "bits": bits, "hex": hexcode}

    def search(self, data, name="", k=None, radius=None):
        k = self.default_k if k is None else k
        radius = self.default_radius if radius is None else radius
        self._check_k(k)
        if radius is not None and not 0 <= radius <= self.bit:
            raise UploadError(400, f"radius must be between 0 and {self.bit} (the code length), got {radius}")
        t0 = time.perf_counter()
        image = decode_upload(data, name, self.limits)
        t1 = time.perf_counter()
        code = self.pool.encode([image.pixels])
        t2 = time.perf_counter()
        distances, indices, within = self.db.search(code, k, radius)
        t3 = time.perf_counter()
        bits, hexcode = format_code(code[0])
        return {"query": {"bit": self.bit, "bits": bits, "hex": hexcode}, "k": k, "radius": radius,
                "database_size": len(self.db), "within_radius": within,
                "matches": [self._match(rank, int(i), int(d)) for rank, (d, i) in enumerate(zip(distances, indices), 1)],
                "timing_ms": {"decode": _ms(t0, t1), "encode": _ms(t1, t2), "search": _ms(t2, t3)}}

    def add_items(self, uploads, labels=""):
        """uploads: [(filename, bytes)]; labels: class names or indices, comma separated, for all of them."""
        if self.read_only:
            raise UploadError(403, "adding images is switched off (the service runs with --read-only)")
        if not uploads:
            raise UploadError(400, "no image: send one or more files as multipart form field 'files'")
        label_row = self._label_row(labels)
        images = [decode_upload(data, name, self.limits) for name, data in uploads]
        codes = self.pool.encode([image.pixels for image in images])
        indices = self.db.add(images, label_row, codes)
        added = []
        for i, code in zip(indices, codes):
            source, path, _ = self.db.entry(i)
            added.append({"index": i, "path": path, "url": self._url(source, path), "hex": format_code(code)[1]})
        return {"added": added, "database_size": len(self.db)}

    def stats(self):
        return {"database_size": len(self.db), "data_set_images": self.db.base_size,
                "added_images": len(self.db) - self.db.base_size, "bit": self.bit,
                "model_fingerprint": self.pool.fingerprint, "model_dir": self.model_dir,
                "index_backend": self.backend, "index_plan": self.db.index.plan(k=10),
                "default_k": self.default_k, "default_radius": self.default_radius,
                "predictors": self.pool.size, "threads_per_predictor": self.pool.threads,
                "classes": self.class_names, "limits": self.limits.as_dict(), "read_only": self.read_only,
                "data_root": self.db.data_root, "store_dir": self.db.store_dir}

    def image_root(self, source):
        return self.db.data_root if source == "data" else self.db.images_dir

    # ---------------------------------------------------------------- helpers

    def _check_k(self, k):
        if not 1 <= k <= self.limits.max_k:
            raise UploadError(400, f"k must be between 1 and {self.limits.max_k} (--max-k), got {k}")

    def _match(self, rank, i, distance):
        source, path, labels = self.db.entry(i)
        return {"rank": rank, "index": i, "distance": distance, "path": path, "source": source,
                "labels": [self.class_names[c] for c in np.flatnonzero(labels)], "url": self._url(source, path)}

    def _url(self, source, path):
        if source == "data":
            return "/images/" + urllib.parse.quote(path)
        return "/added/" + urllib.parse.quote(os.path.basename(path))

    def _label_row(self, text):
        row = np.zeros(self.db.num_classes, np.int8)
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
