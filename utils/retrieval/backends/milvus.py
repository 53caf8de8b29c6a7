"""The milvus backend: a Milvus collection (BINARY_VECTOR field, HAMMING metric; BIN_FLAT: exact,
BIN_IVF_FLAT with nlist/nprobe: approximate, the many-machines path) through pymilvus; by default
an embedded milvus-lite file (which has BIN_FLAT only)."""
from __future__ import annotations

import numpy as np

from utils.errors import DependencyError, RetrievalError
from utils.retrieval.backends.buckets import out_arrays
from utils.retrieval.codes import code_bytes


MILVUS_REQUIREMENT = "pymilvus and milvus-lite 2.5.x: pip install -r requirements-milvus.txt"
MILVUS_MAX_LIMIT = 16384  # Milvus caps topk/limit at 16,384
INDEX_TYPES = ("BIN_FLAT", "BIN_IVF_FLAT")  # Milvus' indexes for binary vectors with HAMMING
IVF_DEFAULTS = {"nlist": 1024, "nprobe": 16}


def import_pymilvus():
    try:
        import pymilvus
    except ImportError as exc:
        raise DependencyError(f"index backend 'milvus' needs {MILVUS_REQUIREMENT} ({exc})") from None
    return pymilvus


class MilvusBackend:
    """A Milvus collection: BINARY_VECTOR field, HAMMING metric, BIN_FLAT (exact) or BIN_IVF_FLAT
    (approximate: nlist lists, nprobe probed per query) index.

    `uri` is a Milvus server (http://host:19530) or a local file path, which starts an
    embedded milvus-lite server (Linux/macOS; 2.5.x: 3.x has no binary vectors; BIN_FLAT only).
    A row's primary key is a key given at insertion and never reused; positions map to keys here,
    so a removal (Milvus delete) renumbers nothing in the server. An existing collection of the
    same bit count and index type is reused (that is how a saved index reconnects); drop=True
    empties it first. Codes live in the server, not in this process.
    """

    name = "milvus"

    def __init__(self, bit, threads=None, uri="./milvus_hashnet.db", collection=None, token=None,
                 drop=False, insert_batch=20000, index_type="BIN_FLAT", nlist=None, nprobe=None):
        pymilvus = import_pymilvus()
        if index_type not in INDEX_TYPES:
            raise RetrievalError(f"milvus: index_type must be one of {', '.join(INDEX_TYPES)}, got {index_type!r}")
        if index_type == "BIN_FLAT" and (nlist is not None or nprobe is not None):
            raise RetrievalError("milvus: nlist and nprobe apply to index_type BIN_IVF_FLAT only")
        for name, value in (("nlist", nlist), ("nprobe", nprobe)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65536):
                raise RetrievalError(f"milvus: {name} must be an integer in [1, 65536], got {value!r}")
        self.bit = bit
        self.nbytes = code_bytes(bit)
        self.uri = uri
        self.collection = collection or f"hashnet_{bit}"
        self.insert_batch = insert_batch
        self.index_type = index_type
        self.exact = index_type == "BIN_FLAT"
        self.ivf = {} if self.exact else {"nlist": nlist or IVF_DEFAULTS["nlist"],
                                          "nprobe": nprobe or IVF_DEFAULTS["nprobe"]}
        try:
            kwargs = {"token": token} if token else {}
            self.client = pymilvus.MilvusClient(uri, **kwargs)
        except Exception as exc:  # noqa: BLE001  (pymilvus raises many types; say which server failed)
            raise RetrievalError(f"cannot open Milvus at {uri}: {type(exc).__name__}: {exc}") from None
        if drop and self.client.has_collection(self.collection):
            self.client.drop_collection(self.collection)
        if self.client.has_collection(self.collection):
            self._check_existing(pymilvus)
        else:
            self._create(pymilvus)
        self.client.load_collection(self.collection)
        self._count = self._server_count()
        self._keys = self._server_keys()  # None: the keys are 0 .. count-1
        self._next_key = self._count if self._keys is None else int(self._keys[-1]) + 1 if len(self._keys) else 0

    def _create(self, pymilvus):
        dt = pymilvus.DataType
        schema = pymilvus.MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", dt.INT64, is_primary=True)
        schema.add_field("code", dt.BINARY_VECTOR, dim=self.nbytes * 8)
        params = self.client.prepare_index_params()
        extra = {"params": {"nlist": self.ivf["nlist"]}} if not self.exact else {}
        params.add_index(field_name="code", index_type=self.index_type, metric_type="HAMMING", **extra)
        try:
            self.client.create_collection(self.collection, schema=schema, index_params=params,
                                          consistency_level="Strong")
        except Exception as exc:  # noqa: BLE001  (pymilvus raises many types; say what the server refused)
            lite = "" if "://" in str(self.uri) else " (milvus-lite, a local file, has BIN_FLAT only: use a Milvus server)"
            if self.client.has_collection(self.collection):
                self.client.drop_collection(self.collection)
            raise RetrievalError(f"Milvus at {self.uri} cannot create a {self.index_type} collection{lite}: "
                                 f"{getattr(exc, 'message', None) or exc}") from None

    def _check_existing(self, pymilvus):
        info = self.client.describe_collection(self.collection)
        dims = [f.get("params", {}).get("dim") for f in info.get("fields", []) if f.get("name") == "code"]
        if not dims or int(dims[0]) != self.nbytes * 8:
            raise RetrievalError(f"Milvus collection {self.collection!r} at {self.uri} does not hold "
                            f"{self.bit}-bit codes (code dim {dims}); pick another collection or drop it")
        kind = (self.client.describe_index(self.collection, "code") or {}).get("index_type")
        if kind is not None and kind != self.index_type:
            raise RetrievalError(f"Milvus collection {self.collection!r} at {self.uri} is indexed {kind}, not "
                                 f"{self.index_type}; pick another collection or drop it")

    def _server_count(self, where=""):
        res = self.client.query(self.collection, filter=where, output_fields=["count(*)"])
        return int(res[0]["count(*)"])

    def _server_keys(self):
        """The primary keys held, ascending; None when they are 0 .. count-1 (nothing removed):
        count unique non-negative keys of which none is >= count."""
        if self._count == 0 or self._server_count(f"id >= {self._count} or id < 0") == 0:
            return None
        keys = []
        it = self.client.query_iterator(self.collection, batch_size=10000, filter="id >= 0", output_fields=["id"])
        while True:
            batch = it.next()
            if not batch:
                break
            keys += [row["id"] for row in batch]
        it.close()
        return np.sort(np.array(keys, np.int64))

    def keys(self):
        return np.arange(self._count, dtype=np.int64) if self._keys is None else self._keys

    def options(self):
        return {"index_type": self.index_type, **self.ivf} if not self.exact else {}

    def __len__(self):
        return self._count

    def add(self, packed):
        base = self._next_key
        for s in range(0, len(packed), self.insert_batch):
            rows = packed[s:s + self.insert_batch]
            self.client.insert(self.collection, [{"id": base + s + i, "code": r.tobytes()}
                                                 for i, r in enumerate(rows)])
        if self._keys is not None:
            self._keys = np.concatenate([self._keys, np.arange(base, base + len(packed))])
        self._next_key += len(packed)
        self._count += len(packed)

    def remove(self, positions):
        keys = self.keys()
        gone = keys[positions]
        for s in range(0, len(gone), self.insert_batch):
            self.client.delete(self.collection, ids=gone[s:s + self.insert_batch].tolist())
        self._keys = np.delete(keys, positions)
        self._count = len(self._keys)

    def packed(self):
        return None

    def _hits(self, qpacked, limit, params):
        out = []
        for s in range(0, len(qpacked), 1024):
            res = self.client.search(self.collection, data=[r.tobytes() for r in qpacked[s:s + 1024]],
                                     anns_field="code", limit=limit, output_fields=[],
                                     search_params={"metric_type": "HAMMING", "params": params})
            for hits in res:
                d = np.array([h["distance"] for h in hits], np.float64)
                i = np.array([h["id"] for h in hits], np.int64)
                if self._keys is not None:
                    i = np.searchsorted(self._keys, i)
                order = np.lexsort((i, d))
                out.append((np.rint(d[order]).astype(np.int64), i[order]))
        return out

    def search(self, qpacked, k):
        k = min(k, len(self))
        if k > MILVUS_MAX_LIMIT:
            raise RetrievalError(f"Milvus returns at most {MILVUS_MAX_LIMIT} results per query, asked for {k}")
        if k == 0 or len(qpacked) == 0:
            return out_arrays(np.zeros((len(qpacked), k)), np.zeros((len(qpacked), k)))
        hits = self._hits(qpacked, k, self._probe())
        pad = [np.full(k - len(i), -1, np.int64) for _, i in hits]  # an approximate search may find fewer
        return out_arrays(np.stack([np.concatenate([d, p]) for (d, _), p in zip(hits, pad)]),
                          np.stack([np.concatenate([i, p]) for (_, i), p in zip(hits, pad)]))

    def _probe(self):
        return {} if self.exact else {"nprobe": self.ivf["nprobe"]}

    def range_search(self, qpacked, radius):
        if len(self) == 0:
            return [out_arrays([], []) for _ in range(len(qpacked))]
        # Milvus range search returns range_filter <= distance < radius
        hits = self._hits(qpacked, MILVUS_MAX_LIMIT, {"radius": int(radius) + 1, "range_filter": 0, **self._probe()})
        if any(len(i) >= MILVUS_MAX_LIMIT for _, i in hits):
            raise RetrievalError(f"more than {MILVUS_MAX_LIMIT} items within radius {radius} (Milvus' cap): "
                            f"use a smaller radius or another backend")
        return [out_arrays(d, i) for d, i in hits]

    def plan_topk(self, k):
        if self.exact:
            return "milvus BIN_FLAT"
        return f"approximate: milvus BIN_IVF_FLAT (nlist={self.ivf['nlist']}, nprobe={self.ivf['nprobe']})"

    def plan_range(self, radius):
        return f"{self.plan_topk(0)} range search"

    def reference(self):
        return {"uri": self.uri, "collection": self.collection}
