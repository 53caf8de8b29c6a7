"""HammingIndex: a database of codes with exact top-k and radius search, over a chosen backend.

The index checks and packs every argument (codes in any form, k, radius, threads) and hands packed
uint8 rows with zero padding bits to a backend from utils.retrieval.backends.BACKENDS:

    numpy   pure numpy: flat scan, bucket table (<= 16 bits) and multi-index hashing (radius)
    faiss   faiss-cpu IndexBinaryFlat (top-k) and IndexBinaryMultiHash (radius)
    milvus  a Milvus collection (BINARY_VECTOR, HAMMING, BIN_FLAT); by default a milvus-lite file
    auto    the fastest exact path per operation, timed on this machine (backends/auto.py);
            without faiss, numpy throughout

Every backend returns the same answer: distances int32, indices int64, ranked by (distance, index).
"""
import math
import numbers
import os

import numpy as np

from utils.errors import CodeFormatError, RetrievalError
from utils.retrieval.backends import BACKENDS, backend_names
from utils.retrieval.codes import check_bit_count, code_bytes, packed_rows
from utils.retrieval.index_file import codes_checksum, parse_index_file, write_index_file
from utils.retrieval.scan import check_k, check_radius


class HammingIndex:
    """Exact Hamming search over a growing database of `bit`-bit codes.

        index = HammingIndex(64)                 # backend "auto": see backends/auto.py
        index.add(db_codes)                      # +-1, 0/1, bool or packed uint8; in any chunks
        dist, idx = index.search(queries, k=100) # [nq, k] int32 / int64, by (distance, index)
        hits = index.range_search(queries, 2)    # per query (dist, idx), distance <= 2
        index.save("db.hidx"); HammingIndex.load("db.hidx")

    Database indices count from 0 in the order codes were added. Distances are exact for
    every backend, and ties go to the lower index (the same order as utils.evaluation.metrics).
    `threads` caps the threads a search uses (faiss OpenMP threads, numpy worker threads).
    Extra keyword options go to the backend (milvus: uri, collection, token, drop).
    """

    def __init__(self, bit, backend="auto", threads=None, **options):
        self.bit = check_bit_count(bit)
        if not isinstance(backend, str) or backend not in backend_names():
            raise RetrievalError(f"unknown index backend {backend!r}; choose one of {backend_names()}")
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, numbers.Integral)
                                    or threads < 1):
            raise CodeFormatError(f"threads must be a positive integer, got {threads!r}")
        self.backend = backend
        self._impl = BACKENDS[backend](self.bit, threads=threads, **options)

    def __len__(self):
        return len(self._impl)

    def __repr__(self):
        return f"HammingIndex(bit={self.bit}, backend={self.backend!r}, n={len(self)})"

    def add(self, codes):
        """Append codes (indices continue from len(self)); returns the new size."""
        packed = packed_rows(codes, self.bit, "database codes")
        if len(packed):
            self._impl.add(packed)
        return len(self)

    def search(self, queries, k):
        """Exact k nearest items per query: (distances int32 [nq, k'], indices int64 [nq, k']).

        k' = min(k, len(self)); rows are ranked by (distance, index).
        """
        k = check_k(k)
        return self._impl.search(packed_rows(queries, self.bit, "query codes"), k)

    def range_search(self, queries, radius):
        """Every item within `radius` (inclusive) of each query: a list, per query, of
        (distances int32, indices int64) ranked by (distance, index)."""
        check_radius(radius)
        return self._impl.range_search(packed_rows(queries, self.bit, "query codes"), int(math.floor(radius)))

    def plan(self, k=None, radius=None):
        """Which engine a search(k=...) or range_search(radius=...) would use, in words."""
        if (k is None) == (radius is None):
            raise CodeFormatError("plan() takes k or radius")
        return self._impl.plan_topk(check_k(k)) if k is not None else \
            self._impl.plan_range(int(math.floor(check_radius(radius))))

    def packed_codes(self):
        """The database as packed uint8 rows (None for a server-side backend such as milvus)."""
        packed = self._impl.packed()
        return None if packed is None else np.array(packed, copy=True)

    # persistence -----------------------------------------------------------

    def save(self, path):
        """Write the index atomically (utils.retrieval.index_file: magic, JSON header, packed codes).

        A milvus index writes only its reference (uri, collection, count): the codes stay
        in the server and load() reconnects to them.
        """
        packed = self._impl.packed()
        header = {"bit": self.bit, "count": len(self), "code_bytes": code_bytes(self.bit),
                  "bit_order": "numpy packbits, big-endian", "backend": self.backend}
        if packed is None:
            header["codes"] = "server"
            header["milvus"] = self._impl.reference()
            body = b""
        else:
            body = np.ascontiguousarray(packed, np.uint8).tobytes()
            header["codes"] = "inline"
            header["sha256"] = codes_checksum(body)
        timing = getattr(self._impl, "timing_record", lambda: None)()
        if timing is not None:
            header["auto_timing"] = timing
        return write_index_file(path, header, body)

    @classmethod
    def load(cls, path, backend=None, threads=None, **options):
        """Read an index written by save(); `backend` defaults to the one it was saved with."""
        path = os.fspath(path)
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as exc:
            raise RetrievalError(f"cannot read index file {path}: {exc.strerror or exc}") from None
        header, body = parse_index_file(path, data, backend_names())
        bit = header["bit"]
        chosen = backend or header["backend"]
        if header["codes"] == "server":
            if chosen not in ("milvus", "auto"):
                raise RetrievalError(f"{path}: the codes of this index live in Milvus; load it with "
                                     f"backend 'milvus'")
            opts = {**header.get("milvus", {}), **options}
            index = cls(bit, "milvus", threads=threads, **opts)
            if len(index) != header["count"]:
                raise RetrievalError(f"{path}: Milvus collection {opts.get('collection')!r} holds {len(index)} "
                                     f"codes, the index file says {header['count']}")
            return index
        index = cls(bit, chosen, threads=threads, **options)
        index.add(np.frombuffer(body, np.uint8).reshape(header["count"], header["code_bytes"]))
        if chosen == "auto" and "auto_timing" in header:
            index._impl.restore_timing(header["auto_timing"])  # same machine and threads only
        return index
