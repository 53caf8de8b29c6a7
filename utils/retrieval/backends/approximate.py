"""Approximate backends: faiss IndexBinaryHNSW (a proximity graph) and IndexBinaryIVF (inverted
lists over binary k-means centroids, trained on a sample of the database).

Both may miss neighbours: `exact = False`, and plan() starts with "approximate". What they return
is ranked like every backend, by (distance, position), with the distances exact; a top-k place
they found nothing for holds distance -1 and position -1, at the end of its row. PP-ShiTu's
`index_method: HNSW32` and `IVF<n>,Flat` (dist_type hamming) map here (index_config.py).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from utils.errors import RetrievalError
from utils.retrieval.backends.buckets import key_rows, out_arrays, rank_pairs
from utils.retrieval.backends.faiss import FaissThreads, import_faiss
from utils.retrieval.codes import code_bytes


def ranked_rows(dist: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows sorted by (distance, position), faiss' -1 places last, as int32 / int64."""
    dist, idx = np.asarray(dist, np.int64), np.asarray(idx, np.int64)
    missing = idx < 0
    big = int(max(dist.max(initial=0), 0)) + 1
    n = int(idx.max(initial=0)) + 1
    key = np.where(missing, big * n + n, dist * n + idx)  # missing places sort last
    key.sort(axis=1)
    gone = key >= big * n
    d, i = np.divmod(key, n)
    return out_arrays(np.where(gone, -1, d), np.where(gone, -1, i))


def range_by_growing_k(search, qpacked: np.ndarray, radius: int, n: int, first_k: int = 64):
    """Radius search from a top-k search that has none: k doubles while a row's k-th item is still
    within the radius (what PP-ShiTu does with return_k, without the cap)."""
    out = [None] * len(qpacked)
    todo, k = np.arange(len(qpacked)), min(first_k, n)
    while todo.size:
        dist, idx = search(qpacked[todo], k)
        full = (dist[:, -1] >= 0) & (dist[:, -1] <= radius) & (k < n) if k else np.zeros(len(todo), bool)
        for row, j in enumerate(todo):
            if not full[row]:
                near = (dist[row] >= 0) & (dist[row] <= radius)
                out[j] = out_arrays(dist[row][near], idx[row][near])
        todo, k = todo[full], min(2 * k, n)
    return out


def check_positive(name: str, value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise RetrievalError(f"{what}: {name} must be a positive integer, got {value!r}")
    return int(value)


def check_optional(name: str, value, what: str) -> int | None:
    return None if value is None else check_positive(name, value, what)


class HnswBackend:
    """faiss IndexBinaryHNSW: M links per node (PP-ShiTu's HNSW32: M = 32), efSearch = max(ef_search, k).
    efConstruction 128, not faiss' 40: codes of a class tie in large groups, and with 40 the graph links
    them so poorly that a larger efSearch stops helping. efSearch 256: on 10M clustered 64-bit codes
    128 found 0.86 of the true top-10 and 256 found 0.98, still 23x faster than the flat scan
    (docs/retrieval.md, "HNSW")."""

    name = "hnsw"
    exact = False

    def __init__(self, bit: int, threads: int | None = None, m: int = 32, ef_search: int = 256,
                 ef_construction: int = 128):
        self.faiss = import_faiss()
        what = "index backend 'hnsw'"
        self.bit, self.threads = bit, threads
        self.m = check_positive("m", m, what)
        self.ef_search = check_positive("ef_search", ef_search, what)
        self.ef_construction = check_positive("ef_construction", ef_construction, what)
        self.nbytes = code_bytes(bit)
        self.index = self.faiss.IndexBinaryHNSW(self.nbytes * 8, self.m)
        self.index.hnsw.efConstruction = self.ef_construction

    def __len__(self) -> int:
        return int(self.index.ntotal)

    def options(self) -> dict:
        return {"m": self.m, "ef_search": self.ef_search, "ef_construction": self.ef_construction}

    def add(self, packed: np.ndarray) -> None:
        with FaissThreads(self.faiss, self.threads):
            self.index.add(packed)

    def remove(self, positions: np.ndarray) -> None:
        raise RetrievalError("index backend 'hnsw' cannot remove codes (faiss IndexBinaryHNSW has no removal; "
                             "PP-ShiTu's HNSW32 neither): rebuild the index without them, or use ivf, mih or auto")

    def packed(self) -> np.ndarray:
        storage = self.faiss.downcast_IndexBinary(self.index.storage)
        return self.faiss.vector_to_array(storage.xb).reshape(-1, self.nbytes)

    def state(self) -> bytes:
        return self.faiss.serialize_index_binary(self.index).tobytes()

    def memory_bytes(self) -> int:
        """The codes and the graph's links (int32), levels and offsets."""
        hnsw = self.index.hnsw
        return len(self) * self.nbytes + 4 * (hnsw.neighbors.size() + hnsw.levels.size()) + 8 * hnsw.offsets.size()

    def restore(self, state: bytes, packed: np.ndarray) -> None:
        index = self.faiss.deserialize_index_binary(np.frombuffer(state, np.uint8))
        if not isinstance(index, self.faiss.IndexBinaryHNSW) or index.ntotal != len(packed):
            raise RetrievalError("the saved HNSW graph does not match the codes of the index file")
        if index.hnsw.nb_neighbors(1) != self.m:
            raise RetrievalError(f"the saved HNSW graph has M={index.hnsw.nb_neighbors(1)}, m={self.m} was asked: "
                                 "a graph's M is fixed when it is built (rebuild the index to change it)")
        index.hnsw.efConstruction = self.ef_construction  # the saved option, or the one given at load: later adds
        self.index = index

    def search(self, qpacked: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        k = min(k, len(self))
        if k == 0 or len(qpacked) == 0:
            return out_arrays(np.zeros((len(qpacked), k)), np.zeros((len(qpacked), k)))
        self.index.hnsw.efSearch = max(self.ef_search, k)
        with FaissThreads(self.faiss, self.threads):
            dist, idx = self.index.search(qpacked, k)
        return ranked_rows(dist, idx)

    def range_search(self, qpacked: np.ndarray, radius: int):
        return range_by_growing_k(self.search, qpacked, radius, len(self))

    def plan_topk(self, k: int) -> str:
        return f"approximate: faiss IndexBinaryHNSW (M={self.m}, efSearch={max(self.ef_search, k)})"

    def plan_range(self, radius: int) -> str:
        return f"approximate: faiss IndexBinaryHNSW top-k, k doubled until past radius {radius}"


class IvfBackend:
    """faiss IndexBinaryIVF: nlist lists (default sqrt(n) at training), nprobe probed per query
    (default nlist / 16, at least 1), trained on the first search on train_size codes drawn from
    the database (default 100 per list; seeded, so the same database trains the same lists)."""

    name = "ivf"
    exact = False

    def __init__(self, bit: int, threads: int | None = None, nlist: int | None = None, nprobe: int | None = None,
                 train_size: int | None = None):
        self.faiss = import_faiss()
        what = "index backend 'ivf'"
        self.bit, self.threads = bit, threads
        self.nlist = check_optional("nlist", nlist, what)
        self.nprobe = check_optional("nprobe", nprobe, what)
        self.train_size = check_optional("train_size", train_size, what)
        self.nbytes = code_bytes(bit)
        self._packed = np.zeros((0, self.nbytes), np.uint8)
        self._parts: list[np.ndarray] = []
        self._keys: np.ndarray | None = None  # faiss ids of the positions, ascending; None: 0 .. n-1
        self._next_key = 0
        self.index: Any = None  # faiss IndexBinaryIVF once trained

    def __len__(self) -> int:
        return len(self._packed) + sum(len(p) for p in self._parts)

    def options(self) -> dict:
        return {k: v for k, v in (("nlist", self.nlist), ("nprobe", self.nprobe), ("train_size", self.train_size))
                if v is not None}

    def packed(self) -> np.ndarray:
        if self._parts:
            self._packed = np.concatenate([self._packed, *self._parts])
            self._parts = []
        return self._packed

    def lists(self) -> int:
        return self.index.nlist if self.index is not None else self.nlist or max(1, min(65536, round(len(self) ** 0.5)))

    def probes(self) -> int:
        return min(self.lists(), self.nprobe or max(1, self.lists() // 16))

    def add(self, packed: np.ndarray) -> None:
        self._parts.append(packed)
        keys = np.arange(self._next_key, self._next_key + len(packed), dtype=np.int64)
        if self._keys is not None:
            self._keys = np.concatenate([self._keys, keys])
        self._next_key += len(packed)
        if self.index is not None:
            with FaissThreads(self.faiss, self.threads):
                self.index.add_with_ids(packed, keys)

    def train(self) -> None:
        """Train the lists on a sample of the codes held, then file every code in them."""
        packed = self.packed()
        nlist = min(self.lists(), len(packed))  # k-means needs a code per list
        size = min(len(packed), self.train_size or 100 * nlist)
        sample = packed[np.sort(np.random.default_rng(0).choice(len(packed), size, replace=False))]
        index = self.faiss.index_binary_factory(self.nbytes * 8, f"BIVF{nlist}")
        with FaissThreads(self.faiss, self.threads):
            index.train(sample)
            index.add_with_ids(packed, self.keys())
        self.index = index

    def keys(self) -> np.ndarray:
        return np.arange(len(self), dtype=np.int64) if self._keys is None else self._keys

    def remove(self, positions: np.ndarray) -> None:
        keys = self.keys()
        if self.index is not None:
            self.index.remove_ids(np.ascontiguousarray(keys[positions]))
        self._keys = np.delete(keys, positions)
        self._packed = np.delete(self.packed(), positions, axis=0)

    def state(self) -> bytes | None:
        return None if self.index is None else self.faiss.serialize_index_binary(self.index).tobytes()

    def memory_bytes(self) -> int:
        """The packed codes kept here, and once trained the lists' codes and ids and the centroids."""
        total = self.packed().nbytes + (self._keys.nbytes if self._keys is not None else 0)
        if self.index is not None:
            total += self.index.ntotal * (self.nbytes + 8) + self.index.nlist * self.nbytes
        return total

    def restore(self, state: bytes, packed: np.ndarray) -> None:
        index = self.faiss.deserialize_index_binary(np.frombuffer(state, np.uint8))
        if not isinstance(index, self.faiss.IndexBinaryIVF) or index.ntotal != len(packed):
            raise RetrievalError("the saved IVF lists do not match the codes of the index file")
        lists = index.invlists
        keys = np.sort(np.concatenate([np.zeros(0, np.int64)] + [
            self.faiss.rev_swig_ptr(lists.get_ids(j), lists.list_size(j)).copy()
            for j in range(index.nlist) if lists.list_size(j)]))
        self._packed, self._parts, self.index = np.array(packed), [], index
        self._keys = None if np.array_equal(keys, np.arange(len(keys))) else keys
        self._next_key = int(keys[-1]) + 1 if len(keys) else 0

    def _ready(self) -> None:
        if self.index is None:
            self.train()
        self.index.nprobe = self.probes()

    def _positions(self, ids: np.ndarray) -> np.ndarray:
        if self._keys is None:
            return ids
        return np.where(ids >= 0, np.searchsorted(self._keys, ids), -1)

    def search(self, qpacked: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        k = min(k, len(self))
        if k == 0 or len(qpacked) == 0:
            return out_arrays(np.zeros((len(qpacked), k)), np.zeros((len(qpacked), k)))
        self._ready()
        with FaissThreads(self.faiss, self.threads):
            dist, ids = self.index.search(qpacked, k)
        return ranked_rows(dist, self._positions(ids))

    def range_search(self, qpacked: np.ndarray, radius: int):
        nq, n = len(qpacked), len(self)
        if n == 0 or nq == 0:
            return [out_arrays([], []) for _ in range(nq)]
        self._ready()
        with FaissThreads(self.faiss, self.threads):
            lims, dist, ids = self.index.range_search(qpacked, int(radius) + 1)  # faiss: d < radius
        lims = lims.astype(np.int64)
        q = np.repeat(np.arange(nq), np.diff(lims))
        pos = self._positions(ids.astype(np.int64))
        out, rows = [], key_rows(self.bit, n)
        for s in range(0, nq, rows):
            e = min(nq, s + rows)
            a, z = lims[s], lims[e]
            out += rank_pairs(q[a:z] - s, dist[a:z].astype(np.int64), pos[a:z], e - s, self.bit, n)
        return out

    def plan_topk(self, k: int) -> str:
        trained = "" if self.index is not None else ", trained at the first search"
        return f"approximate: faiss IndexBinaryIVF (nlist={self.lists()}, nprobe={self.probes()}{trained})"

    def plan_range(self, radius: int) -> str:
        return self.plan_topk(0)
