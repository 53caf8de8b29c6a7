"""The milvus backend: a Milvus collection (BINARY_VECTOR field, HAMMING metric, BIN_FLAT: exact)
through pymilvus; by default an embedded milvus-lite file."""
import numpy as np

from utils.errors import DependencyError, RetrievalError
from utils.retrieval.backends.buckets import out_arrays
from utils.retrieval.codes import code_bytes


MILVUS_REQUIREMENT = "pymilvus and milvus-lite 2.5.x: pip install -r requirements-milvus.txt"
MILVUS_MAX_LIMIT = 16384  # Milvus caps topk/limit at 16,384


def import_pymilvus():
    try:
        import pymilvus
    except ImportError as exc:
        raise DependencyError(f"index backend 'milvus' needs {MILVUS_REQUIREMENT} ({exc})") from None
    return pymilvus


class MilvusBackend:
    """A Milvus collection: BINARY_VECTOR field, HAMMING metric, BIN_FLAT (exact) index.

    `uri` is a Milvus server (http://host:19530) or a local file path, which starts an
    embedded milvus-lite server (Linux/macOS; 2.5.x: 3.x has no binary vectors). The
    primary key of a row is its database index. An existing collection of the same bit
    count is reused (that is how a saved index reconnects); drop=True empties it first.
    Codes live in the server, not in this process.
    """

    name = "milvus"

    def __init__(self, bit, threads=None, uri="./milvus_hashnet.db", collection=None, token=None,
                 drop=False, insert_batch=20000):
        pymilvus = import_pymilvus()
        self.bit = bit
        self.nbytes = code_bytes(bit)
        self.uri = uri
        self.collection = collection or f"hashnet_{bit}"
        self.insert_batch = insert_batch
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

    def _create(self, pymilvus):
        dt = pymilvus.DataType
        schema = pymilvus.MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", dt.INT64, is_primary=True)
        schema.add_field("code", dt.BINARY_VECTOR, dim=self.nbytes * 8)
        params = self.client.prepare_index_params()
        params.add_index(field_name="code", index_type="BIN_FLAT", metric_type="HAMMING")
        self.client.create_collection(self.collection, schema=schema, index_params=params,
                                      consistency_level="Strong")

    def _check_existing(self, pymilvus):
        info = self.client.describe_collection(self.collection)
        dims = [f.get("params", {}).get("dim") for f in info.get("fields", []) if f.get("name") == "code"]
        if not dims or int(dims[0]) != self.nbytes * 8:
            raise RetrievalError(f"Milvus collection {self.collection!r} at {self.uri} does not hold "
                            f"{self.bit}-bit codes (code dim {dims}); pick another collection or drop it")

    def _server_count(self):
        res = self.client.query(self.collection, filter="", output_fields=["count(*)"])
        return int(res[0]["count(*)"])

    def __len__(self):
        return self._count

    def add(self, packed):
        base = self._count
        for s in range(0, len(packed), self.insert_batch):
            rows = packed[s:s + self.insert_batch]
            self.client.insert(self.collection, [{"id": base + s + i, "code": r.tobytes()}
                                                 for i, r in enumerate(rows)])
        self._count += len(packed)

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
                order = np.lexsort((i, d))
                out.append((np.rint(d[order]).astype(np.int64), i[order]))
        return out

    def search(self, qpacked, k):
        k = min(k, len(self))
        if k > MILVUS_MAX_LIMIT:
            raise RetrievalError(f"Milvus returns at most {MILVUS_MAX_LIMIT} results per query, asked for {k}")
        if k == 0 or len(qpacked) == 0:
            return out_arrays(np.zeros((len(qpacked), k)), np.zeros((len(qpacked), k)))
        hits = self._hits(qpacked, k, {})
        return out_arrays(np.stack([h[0] for h in hits]), np.stack([h[1] for h in hits]))

    def range_search(self, qpacked, radius):
        if len(self) == 0:
            return [out_arrays([], []) for _ in range(len(qpacked))]
        # Milvus range search returns range_filter <= distance < radius
        hits = self._hits(qpacked, MILVUS_MAX_LIMIT, {"radius": int(radius) + 1, "range_filter": 0})
        if any(len(i) >= MILVUS_MAX_LIMIT for _, i in hits):
            raise RetrievalError(f"more than {MILVUS_MAX_LIMIT} items within radius {radius} (Milvus' cap): "
                            f"use a smaller radius or another backend")
        return [out_arrays(d, i) for d, i in hits]

    def plan_topk(self, k):
        return "milvus BIN_FLAT"

    def plan_range(self, radius):
        return "milvus BIN_FLAT range search"

    def reference(self):
        return {"uri": self.uri, "collection": self.collection}
