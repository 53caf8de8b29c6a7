"""HammingIndex: a database of codes with top-k and radius search, over a chosen backend.

The index checks and packs every argument (codes in any form, k, radius, threads, ids) and hands
packed uint8 rows with zero padding bits to a backend from utils.retrieval.backends.BACKENDS:

    numpy   pure numpy: flat scan, bucket table (<= 16 bits) and multi-index hashing (radius)
    faiss   faiss-cpu IndexBinaryFlat (top-k) and IndexBinaryMultiHash (radius)
    mih     multi-index hashing for top-k and radius (Norouzi et al. 2014), numpy: sub-linear on
            codes that cluster
    milvus  a Milvus collection (BINARY_VECTOR, HAMMING, BIN_FLAT; BIN_IVF_FLAT: approximate)
    auto    the fastest exact path per operation, timed on this machine (backends/auto.py)
    hnsw    approximate: faiss IndexBinaryHNSW
    ivf     approximate: faiss IndexBinaryIVF, trained on a sample of the database

An exact backend returns the flat scan's answer: distances int32, ids int64, ranked by (distance,
id). An approximate one (index.exact is False) ranks what it finds the same way, may miss items,
and says "approximate" in plan().
"""
from __future__ import annotations

import math
import numbers
import os
from typing import Any

import numpy as np

from utils.errors import CodeFormatError, RetrievalError
from utils.retrieval.backends import BACKENDS, backend_names
from utils.retrieval.codes import check_bit_count, code_bytes, packed_rows
from utils.retrieval.index_file import codes_checksum, parse_index_file, split_body, write_index_file
from utils.retrieval.scan import check_k, check_radius

PathLike = str | os.PathLike


class HammingIndex:
    """Hamming search over a growing database of `bit`-bit codes.

        index = HammingIndex(64)                 # backend "auto": see backends/auto.py
        index.add(db_codes)                      # +-1, 0/1, bool or packed uint8; in any chunks
        dist, idx = index.search(queries, k=100) # [nq, k] int32 / int64, by (distance, id)
        hits = index.range_search(queries, 2)    # per query (dist, idx), distance <= 2
        index.remove([3, 17])                    # by id; the others keep theirs
        index.save("db.hidx"); HammingIndex.load("db.hidx")

    Ids count from 0 in the order codes were added and are never reused: after remove() the other
    items keep their ids and new codes continue from the highest id ever given. Ties go to the
    lower id (the order of utils.evaluation.metrics). `threads` caps the threads a search uses
    (faiss OpenMP threads, numpy worker threads). Extra keyword options go to the backend (milvus:
    uri, collection, token, drop, index_type, nlist, nprobe; mih: substrings; hnsw: m, ef_search,
    ef_construction; ivf: nlist, nprobe, train_size).
    """

    def __init__(self, bit: int, backend: str = "auto", threads: int | None = None, **options: Any) -> None:
        self.bit = check_bit_count(bit)
        if not isinstance(backend, str) or backend not in BACKENDS:
            raise RetrievalError(f"unknown index backend {backend!r}; choose one of {backend_names(approximate=True)}")
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, numbers.Integral)
                                    or threads < 1):
            raise CodeFormatError(f"threads must be a positive integer, got {threads!r}")
        self.backend = backend
        self._impl = BACKENDS[backend](self.bit, threads=threads, **options)
        self._ids: np.ndarray | None = None  # None: every id is its position (nothing removed)
        self._next_id = len(self._impl)

    @classmethod
    def for_settings(cls, settings: Any, bit: int, backend: str = "auto", threads: int | None = None,
                     **options: Any) -> HammingIndex:
        """The index PP-ShiTu's IndexProcess settings ask for (utils.retrieval.index_config.IndexSettings,
        or None): index_method HNSW<M> / IVF<n> pick the approximate backend (IVF on milvus: its
        BIN_IVF_FLAT), FLAT keeps `backend`."""
        if settings is not None:
            backend, options = settings.index_choice(backend, options)
        return cls(bit, backend, threads=threads, **options)

    @property
    def exact(self) -> bool:
        """False for an approximate backend (hnsw, ivf, milvus BIN_IVF_FLAT): results may miss items."""
        return bool(self._impl.exact)

    def __len__(self) -> int:
        return len(self._impl)

    def __repr__(self) -> str:
        return f"HammingIndex(bit={self.bit}, backend={self.backend!r}, n={len(self)})"

    def ids(self) -> np.ndarray:
        """The ids held, ascending (0 .. len-1 until something was removed)."""
        return np.arange(len(self), dtype=np.int64) if self._ids is None else self._ids.copy()

    def add(self, codes: Any) -> int:
        """Append codes (ids continue from the highest id ever given); returns the new size."""
        packed = packed_rows(codes, self.bit, "database codes")
        if len(packed):
            self._impl.add(packed)
            if self._ids is not None:
                self._ids = np.concatenate([self._ids, np.arange(self._next_id, self._next_id + len(packed))])
            self._next_id += len(packed)
        return len(self)

    def remove(self, ids: Any) -> int:
        """Remove the items with these ids (each must be held); returns the new size."""
        arr = np.asarray(ids)
        if arr.ndim > 1 or (arr.size and arr.dtype.kind not in "iu"):
            raise CodeFormatError(f"ids to remove must be a list of integers, got {np.asarray(ids).dtype} "
                                  f"array of shape {arr.shape}")
        wanted = np.unique(arr.astype(np.int64).reshape(-1))
        if wanted.size == 0:
            return len(self)
        held = self.ids()
        positions = np.searchsorted(held, wanted)
        missing = (positions >= len(held)) | (held[np.minimum(positions, len(held) - 1)] != wanted) \
            if len(held) else np.ones(len(wanted), bool)
        if missing.any():
            raise RetrievalError(f"cannot remove id {int(wanted[missing][0])}: not in the index "
                                 f"({int(missing.sum())} of the {len(wanted)} ids are not)")
        remove = getattr(self._impl, "remove", None)
        if remove is None:
            raise RetrievalError(f"index backend {self.backend!r} cannot remove codes")
        remove(positions)
        self._ids = np.delete(held, positions)
        return len(self)

    def _to_ids(self, positions: np.ndarray) -> np.ndarray:
        if self._ids is None or positions.size == 0:
            return positions
        return np.where(positions >= 0, self._ids[np.maximum(positions, 0)], -1)

    def search(self, queries: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The k nearest items per query: (distances int32 [nq, k'], ids int64 [nq, k']).

        k' = min(k, len(self)); rows are ranked by (distance, id). Exact unless self.exact is False
        (then a place nothing was found for holds distance -1 and id -1, at the end of its row).
        """
        k = check_k(k)
        dist, pos = self._impl.search(packed_rows(queries, self.bit, "query codes"), k)
        return dist, self._to_ids(pos)

    def range_search(self, queries: Any, radius: float) -> list[tuple[np.ndarray, np.ndarray]]:
        """Every item within `radius` (inclusive) of each query: a list, per query, of
        (distances int32, ids int64) ranked by (distance, id)."""
        check_radius(radius)
        hits = self._impl.range_search(packed_rows(queries, self.bit, "query codes"), int(math.floor(radius)))
        return [(d, self._to_ids(i)) for d, i in hits]

    def plan(self, k: int | None = None, radius: float | None = None) -> str:
        """Which engine a search(k=...) or range_search(radius=...) would use, in words."""
        if (k is None) == (radius is None):
            raise CodeFormatError("plan() takes k or radius")
        return self._impl.plan_topk(check_k(k)) if k is not None else \
            self._impl.plan_range(int(math.floor(check_radius(radius))))

    def memory_bytes(self) -> int | None:
        """Bytes of the arrays the backend holds now (codes, words, tables, graph); None for milvus."""
        size = getattr(self._impl, "memory_bytes", None)
        return None if size is None else int(size()) + (self._ids.nbytes if self._ids is not None else 0)

    def packed_codes(self) -> np.ndarray | None:
        """The database as packed uint8 rows, in id order (None for a server-side backend such as milvus)."""
        packed = self._impl.packed()
        return None if packed is None else np.array(packed, copy=True)

    # persistence -----------------------------------------------------------

    def save(self, path: PathLike) -> PathLike:
        """Write the index atomically (utils.retrieval.index_file: magic, JSON header, then the packed
        codes, the ids when some were removed, and the backend's own state: faiss' HNSW graph or
        IVF lists). A milvus index writes its reference (uri, collection, count): the codes stay in
        the server and load() reconnects to them.
        """
        packed = self._impl.packed()
        header: dict[str, Any] = {"bit": self.bit, "count": len(self), "code_bytes": code_bytes(self.bit),
                                  "bit_order": "numpy packbits, big-endian", "backend": self.backend,
                                  "next_id": self._next_id}
        options: dict[str, Any] = getattr(self._impl, "options", dict)()
        if options:
            header["backend_options"] = options
        parts = []
        if packed is None:
            header["codes"] = "server"
            header["milvus"] = self._impl.reference()
        else:
            header["codes"] = "inline"
            parts.append(np.ascontiguousarray(packed, np.uint8).tobytes())
        if self._ids is not None:
            header["ids"] = "inline"
            parts.append(self._ids.astype("<i8").tobytes())
        state = getattr(self._impl, "state", lambda: None)()
        if state is not None:
            header["state_bytes"] = len(state)
            parts.append(state)
        body = b"".join(parts)
        header["sha256"] = codes_checksum(body)
        timing = getattr(self._impl, "timing_record", lambda: None)()
        if timing is not None:
            header["auto_timing"] = timing
        return write_index_file(path, header, body)

    @classmethod
    def load(cls, path: PathLike, backend: str | None = None, threads: int | None = None,
             **options: Any) -> HammingIndex:
        """Read an index written by save(); `backend` defaults to the one it was saved with."""
        path = os.fspath(path)
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as exc:
            raise RetrievalError(f"cannot read index file {path}: {exc.strerror or exc}") from None
        header, body = parse_index_file(path, data, list(BACKENDS))
        codes, ids, state = split_body(path, header, body)
        bit = header["bit"]
        chosen = backend or header["backend"]
        if chosen == header["backend"]:
            options = {**header.get("backend_options", {}), **options}
        if header["codes"] == "server":
            if chosen not in ("milvus", "auto"):
                raise RetrievalError(f"{path}: the codes of this index live in Milvus; load it with "
                                     f"backend 'milvus'")
            opts = {**header.get("milvus", {}), **options}
            index = cls(bit, "milvus", threads=threads, **opts)
            if len(index) != header["count"]:
                raise RetrievalError(f"{path}: Milvus collection {opts.get('collection')!r} holds {len(index)} "
                                     f"codes, the index file says {header['count']}")
        else:
            index = cls(bit, chosen, threads=threads, **options)
            packed = np.frombuffer(codes, np.uint8).reshape(header["count"], header["code_bytes"])
            if state is not None and chosen == header["backend"] and hasattr(index._impl, "restore"):
                index._impl.restore(state, packed)
            elif len(packed):
                index._impl.add(packed)
        if ids is not None:
            index._ids = np.frombuffer(ids, "<i8").astype(np.int64)
        index._next_id = int(header.get("next_id", header["count"]))
        if chosen == "auto" and "auto_timing" in header:
            index._impl.restore_timing(header["auto_timing"])  # same machine and threads only
        return index
