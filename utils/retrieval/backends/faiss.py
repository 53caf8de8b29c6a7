"""The faiss backend: faiss-cpu binary indexes, IndexBinaryFlat (top-k) and IndexBinaryMultiHash
(radius, with nflip = r // nhash: exact by the pigeonhole argument of buckets.py)."""
import numpy as np

from utils.errors import DependencyError
from utils.retrieval import tuning
from utils.retrieval.backends.buckets import flips_cost, key_rows, out_arrays, rank_pairs
from utils.retrieval.codes import code_bytes


def import_faiss():
    try:
        import faiss
    except ImportError as exc:
        raise DependencyError(f"index backend 'faiss' needs faiss-cpu ({exc}): pip install faiss-cpu, "
                        f"or use --index-backend numpy") from None
    return faiss


def faiss_available():
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


class FaissThreads:
    """Run faiss with `threads` OpenMP threads (faiss has one global setting), then restore it."""

    def __init__(self, faiss, threads):
        self.faiss, self.threads, self.old = faiss, threads, None

    def __enter__(self):
        if self.threads:
            self.old = self.faiss.omp_get_max_threads()
            self.faiss.omp_set_num_threads(int(self.threads))

    def __exit__(self, *exc):
        if self.old is not None:
            self.faiss.omp_set_num_threads(self.old)


class FaissBackend:
    """faiss-cpu binary indexes: IndexBinaryFlat (top-k), IndexBinaryMultiHash (radius)."""

    name = "faiss"
    exact = True

    def __init__(self, bit, threads=None):
        self.faiss = import_faiss()
        self.bit = bit
        self.threads = threads
        self.nbytes = code_bytes(bit)
        self.flat = self.faiss.IndexBinaryFlat(self.nbytes * 8)  # padding bits are zero on both sides
        self._hash = None

    def __len__(self):
        return int(self.flat.ntotal)

    def add(self, packed):
        self.flat.add(packed)
        if self._hash is not None:
            self._hash.add(packed)

    def remove(self, positions):
        self.flat.remove_ids(np.ascontiguousarray(positions, np.int64))  # keeps the others' order
        self._hash = None

    def memory_bytes(self):
        """The flat index's codes, plus, once built, IndexBinaryMultiHash's ids (8 bytes an item a
        table; its hash maps' own overhead is not counted)."""
        n = len(self)
        return n * self.nbytes + (self._hash.nhash * n * 8 if self._hash is not None else 0)

    def packed(self):
        return self.faiss.vector_to_array(self.flat.xb).reshape(-1, self.nbytes)

    def search(self, qpacked, k, use_heap=None):
        """Top-k by IndexBinaryFlat; use_heap None: faiss' counting search while it is small."""
        n = len(self)
        k = min(k, n)
        if k == 0 or len(qpacked) == 0:
            return out_arrays(np.zeros((len(qpacked), k)), np.zeros((len(qpacked), k)))
        # faiss' counting search (use_heap=False) holds (bits + 1) * k int64 per query; on some
        # CPUs it beats the heap (up to 1.6x at k>=10 on an older AMD EPYC), on others the heap
        # wins (AutoBackend times both on the machine it runs on).
        per_query = (self.nbytes * 8 + 1) * k * 8
        if use_heap is None or not self.counting_fits(k):
            use_heap = per_query > tuning.FAISS_COUNTING_BYTES
        self.flat.use_heap = use_heap
        rows = max(1, tuning.FAISS_BATCH_BYTES // (per_query if not self.flat.use_heap else k * 12))
        dist = np.empty((len(qpacked), k), np.int32)
        idx = np.empty((len(qpacked), k), np.int64)
        with FaissThreads(self.faiss, self.threads):
            for s in range(0, len(qpacked), rows):
                dist[s:s + rows], idx[s:s + rows] = self.flat.search(qpacked[s:s + rows], k)
        # Equal distances in index order. faiss 1.15's scans already keep the lowest indices at
        # the k-th distance (tests/utils/retrieval/test_index.py pins that against a pair-by-pair
        # reference); this sort puts each row in (distance, index) order whatever faiss did.
        key = dist.astype(np.int64) * n + idx
        key.sort(axis=1)
        return out_arrays(*np.divmod(key, n))

    def counting_fits(self, k):
        """Whether faiss' counting search stays within tuning.FAISS_COUNTING_BYTES per query."""
        return (self.nbytes * 8 + 1) * min(k, len(self)) * 8 <= tuning.FAISS_COUNTING_BYTES

    def hash_plan(self, radius):
        nhash = max(1, -(-self.bit // tuning.CHUNK_BITS))
        b = self.bit // nhash
        flips = int(radius) // nhash
        work = nhash * flips_cost(b, flips) * (1 + len(self) / (1 << b))
        return nhash, b, flips, work

    def use_hash(self, radius):
        return len(self) > 0 and self.hash_plan(radius)[3] * tuning.FAISS_HASH_COST < len(self)

    def scan_range_search(self, qpacked, radius):
        with FaissThreads(self.faiss, self.threads):
            lims, dist, idx = self.flat.range_search(qpacked, int(radius) + 1)  # faiss: d < radius
        return self._ranked(qpacked, lims, dist, idx)

    def range_search(self, qpacked, radius):
        nq, n = len(qpacked), len(self)
        if n == 0:
            return [out_arrays([], []) for _ in range(nq)]
        if not self.use_hash(radius):
            return self.scan_range_search(qpacked, radius)
        nhash, b, flips, _ = self.hash_plan(radius)
        if self._hash is None or self._hash.nhash != nhash or self._hash.b != b:
            self._hash = self.faiss.IndexBinaryMultiHash(self.nbytes * 8, nhash, b)
            self._hash.add(self.packed())
        self._hash.nflip = flips  # nhash * (flips + 1) > radius: no item within radius is missed
        # One thread: a lookup takes microseconds, less than waking OpenMP threads costs
        # (2 threads measured 4x slower than 1 on 2 busy cores).
        with FaissThreads(self.faiss, 1):
            lims, dist, idx = self._hash.range_search(qpacked, int(radius) + 1)  # faiss: d < radius
        return self._ranked(qpacked, lims, dist, idx)

    def _ranked(self, qpacked, lims, dist, idx):
        nq, n = len(qpacked), len(self)
        lims = lims.astype(np.int64)
        q = np.repeat(np.arange(nq), np.diff(lims))
        out = []
        for s in range(0, nq, key_rows(self.bit, n)):
            e = min(nq, s + key_rows(self.bit, n))
            a, z = lims[s], lims[e]
            out += rank_pairs(q[a:z] - s, dist[a:z].astype(np.int64), idx[a:z], e - s, self.bit, n)
        return out

    def plan_topk(self, k):
        return "faiss IndexBinaryFlat"

    def plan_range(self, radius):
        return "faiss IndexBinaryMultiHash" if self.use_hash(radius) else "faiss IndexBinaryFlat range scan"
