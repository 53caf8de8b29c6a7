"""The auto backend: the fastest exact path per operation, timed on the machine it runs on, for the
database it holds (its size, its bits, how its codes cluster), per k and per radius. It never takes
an approximate path."""
from __future__ import annotations

import time
from typing import Callable

from utils.retrieval import tuning
from utils.retrieval.backends.faiss import FaissBackend, faiss_available
from utils.retrieval.backends.mih import MihBackend
from utils.retrieval.backends.numpy import NumpyBackend
from utils.runtime.cpuinfo import machine_key

UNTIMED_TOPK = "faiss heap"  # faiss' own default, used until the candidates are timed
WORDS = {"faiss heap": "faiss IndexBinaryFlat (heap search)", "faiss counting": "faiss IndexBinaryFlat (counting "
         "search)", "numpy flat scan": "numpy flat scan", "numpy bucket table": "numpy bucket table",
         "mih": "multi-index hashing", "numpy hashing": "numpy multi-index hashing",
         "faiss range scan": "faiss IndexBinaryFlat range scan"}
SCANS = ("faiss heap", "faiss counting", "numpy flat scan", "faiss range scan")  # cost grows with the database
TOPK_PATHS = ("faiss heap", "faiss counting", "numpy flat scan", "numpy bucket table", "mih")
RANGE_PATHS = ("numpy hashing", "faiss range scan", "numpy flat scan", "mih")


class AutoBackend:
    """The fastest exact path per operation:

    top-k   candidates: faiss IndexBinaryFlat's heap search and its counting search, numpy's flat
            scan, numpy's bucket table (<= 16 bits) and multi-index hashing (mih.py). Which wins
            depends on the CPU (heap or counting), the bits and the database: mih is 10-100x faster
            than a flat scan on codes that cluster and slower on uniform random ones. So the first
            search of >= timing_sample() queries (tuning.TIMING_QUERIES, fewer past 1M codes) over
            >= tuning.TIMING_MIN_ITEMS codes times each candidate on those queries (_time) and keeps
            the fastest per k (a power-of-two bucket); save() records the choice with the machine it was timed on and
            load() reuses it on the same machine. Until then: numpy's bucket table where its
            expected probes are few, else faiss' default, the heap;
    radius  the same, per radius, among numpy's chunk hashing, mih, and faiss' (else numpy's) flat
            range scan; untimed: numpy's hashing where its cost model says so, else the flat scan.
    Without faiss: the numpy and mih candidates only.

    Holds the codes twice when faiss is present (numpy's copy and faiss'): 16 MB per 1M 64-bit
    codes, plus numpy's uint64 words and hash tables (~44 MB per 1M 64-bit codes) once a radius
    search or the timing has needed them, plus mih's words and tables (~27 B a code at 10M
    64-bit codes) while mih is a chosen path.
    """

    name = "auto"
    exact = True

    def __init__(self, bit: int, threads: int | None = None):
        self.bit = bit
        self.threads = threads
        self.numpy = NumpyBackend(bit, threads)
        self.faiss = FaissBackend(bit, threads) if faiss_available() else None
        self._mih: MihBackend | None = None
        self.timed: dict[int, tuple[str, dict]] = {}  # k bucket -> (chosen, {candidate: ms per query})
        self.timed_range: dict[int, tuple[str, dict]] = {}  # radius -> (chosen, {candidate: ms per query})

    def __len__(self) -> int:
        return len(self.numpy)

    def add(self, packed):
        self.numpy.add(packed)
        if self.faiss is not None:
            self.faiss.add(packed)
        if self._mih is not None:
            self._mih.add(packed)
        self.forget()  # a bigger database can change the winner

    def remove(self, positions):
        self.numpy.remove(positions)
        if self.faiss is not None:
            self.faiss.remove(positions)
        if self._mih is not None:
            self._mih.remove(positions)
        self.forget()

    def forget(self):
        self.timed, self.timed_range = {}, {}

    def packed(self):
        return self.numpy.packed()

    def memory_bytes(self):
        return self.numpy.memory_bytes() + (self.faiss.memory_bytes() if self.faiss is not None else 0) + \
            (self._mih.memory_bytes() if self._mih is not None else 0)

    def mih(self) -> MihBackend:
        if self._mih is None:
            self._mih = MihBackend(self.bit, self.threads)
            if len(self):
                self._mih.add(self.numpy.packed())
        return self._mih

    def _drop_unused_mih(self):
        chosen = [c for c, _ in self.timed.values()] + [c for c, _ in self.timed_range.values()]
        if "mih" not in chosen:
            self._mih = None  # its tables are ~3x the codes: keep them only while a path uses them

    # candidates -------------------------------------------------------------

    def candidates(self, k: int) -> dict[str, Callable]:
        """The exact top-k paths: name -> search(qpacked, k)."""
        out = {}
        faiss = self.faiss
        if faiss is not None:
            out["faiss heap"] = lambda q, kk: faiss.search(q, kk, use_heap=True)
            if faiss.counting_fits(k):
                out["faiss counting"] = lambda q, kk: faiss.search(q, kk, use_heap=False)
        out["numpy flat scan"] = self.numpy.scan_search
        if self.bit <= tuning.CHUNK_BITS:
            out["numpy bucket table"] = self.numpy.table_search
        out["mih"] = lambda q, kk: self.mih().search(q, kk, scan=self._topk_scan())
        return out

    def range_candidates(self) -> dict[str, Callable]:
        """The exact radius paths: name -> range_search(qpacked, radius)."""
        out = {"numpy hashing": lambda q, r: self.numpy.range_search(q, r, scan=self._range_scan())}
        if self.faiss is not None:
            out["faiss range scan"] = self.faiss.scan_range_search
        else:
            out["numpy flat scan"] = self.numpy.scan_range_search
        out["mih"] = lambda q, r: self.mih().range_search(q, r, scan=self._range_scan())
        return out

    def _topk_scan(self):
        return self.faiss.search if self.faiss is not None else None

    def _range_scan(self):
        return self.faiss.scan_range_search if self.faiss is not None else None

    # timing -------------------------------------------------------------------

    @staticmethod
    def k_bucket(k: int) -> int:
        return 1 << max(0, int(k) - 1).bit_length()

    def timing_sample(self) -> int:
        return max(4, min(tuning.TIMING_QUERIES, tuning.TIMING_ITEMS // max(1, len(self))))

    def _qualifies(self, qpacked) -> bool:
        return qpacked is not None and len(self) >= tuning.TIMING_MIN_ITEMS and len(qpacked) >= self.timing_sample()

    def _time(self, paths: dict[str, Callable], qpacked, arg) -> tuple[str, dict]:
        """ms per query of each path, the fastest call of two interleaved rounds. A scan runs on
        timing_sample() queries (its cost grows with the database); a hashing path on up to
        tuning.TIMING_HASH_QUERIES of them (its fixed cost per call would swamp a few queries), again
        and again for at least tuning.TIMING_MIN_SECONDS a round (one preempted call on a busy
        machine would swamp a fast path's time)."""
        if "mih" in paths:
            self.mih().tables()  # built once, outside the timing (a one-off cost like faiss' add)
        samples = {name: qpacked[:self.timing_sample() if name in SCANS else tuning.TIMING_HASH_QUERIES] for name in paths}
        best: dict[str, float] = {}
        for _ in range(2):
            for name, search in paths.items():
                spent = 0.0
                while spent < tuning.TIMING_MIN_SECONDS:
                    start = time.perf_counter()
                    search(samples[name], arg)
                    took = time.perf_counter() - start
                    spent += took
                    best[name] = min(best.get(name, float("inf")), took / len(samples[name]))
        ms = {name: seconds * 1000 for name, seconds in best.items()}
        return min(ms, key=lambda name: ms[name]), ms

    def topk_path(self, k: int, qpacked=None) -> str:
        """The candidate a search(k) uses now (timing them first when this call qualifies)."""
        k = min(k, len(self))
        entry = self.timed.get(self.k_bucket(k))
        if entry is not None:
            return entry[0]
        if self._qualifies(qpacked):
            self.timed[self.k_bucket(k)] = self._time(self.candidates(k), qpacked, k)
            self._drop_unused_mih()
            return self.timed[self.k_bucket(k)][0]
        if self.bit <= tuning.CHUNK_BITS and self.numpy.use_table(k):
            return "numpy bucket table"
        return UNTIMED_TOPK if self.faiss is not None else "numpy flat scan"

    def range_path(self, radius: int, qpacked=None) -> str:
        entry = self.timed_range.get(radius)
        if entry is not None:
            return entry[0]
        if self._qualifies(qpacked):
            self.timed_range[radius] = self._time(self.range_candidates(), qpacked, radius)
            self._drop_unused_mih()
            return self.timed_range[radius][0]
        if self.numpy.use_hash(radius) or self.faiss is None:
            return "numpy hashing"
        return "faiss range scan"

    # searches -----------------------------------------------------------------

    def search(self, qpacked, k):
        if min(k, len(self)) == 0 or len(qpacked) == 0:
            return self.numpy.search(qpacked, k)
        return self.candidates(k)[self.topk_path(k, qpacked)](qpacked, k)

    def range_search(self, qpacked, radius):
        if len(self) == 0 or len(qpacked) == 0:
            return self.numpy.range_search(qpacked, radius)
        return self.range_candidates()[self.range_path(radius, qpacked)](qpacked, radius)

    def _said(self, choice: str, entry, untimed_note: str) -> str:
        name = f"mih {self.mih().describe()}" if choice == "mih" else WORDS[choice]
        if entry is None:
            return name + untimed_note
        timings = ", ".join(f"{n} {v:.4f}" for n, v in entry[1].items())
        return f"{name}; timed fastest here ({timings} ms/query)"

    def plan_topk(self, k):
        k = min(k, len(self))
        entry = self.timed.get(self.k_bucket(k))
        note = ""
        if entry is None and len(self) >= tuning.TIMING_MIN_ITEMS:
            note = f"; not timed yet (the first search of >= {self.timing_sample()} queries times the candidates)"
        return self._said(self.topk_path(k), entry, note)

    def plan_range(self, radius):
        entry = self.timed_range.get(radius)
        note = ""
        if entry is None and len(self) >= tuning.TIMING_MIN_ITEMS:
            note = f"; not timed yet (the first range search of >= {self.timing_sample()} queries times the paths)"
        path = self.range_path(radius)
        if entry is None and path == "numpy hashing":
            return self.numpy.plan_range(radius) + note  # hashing, or numpy's flat scan without faiss
        return self._said(path, entry, note)

    # saved timings --------------------------------------------------------------

    def timing_record(self):
        """What save() writes: the choices and the machine and threads they were timed with."""
        if not self.timed and not self.timed_range:
            return None
        return {"machine": machine_key(), "threads": self.threads,
                "choices": {str(k): {"path": c, "ms_per_query": ms} for k, (c, ms) in self.timed.items()},
                "range_choices": {str(r): {"path": c, "ms_per_query": ms} for r, (c, ms) in self.timed_range.items()}}

    def restore_timing(self, record):
        """Reuse timings saved on this machine with these threads; ignore them elsewhere."""
        if not isinstance(record, dict) or record.get("machine") != machine_key() \
                or record.get("threads") != self.threads:
            return False
        try:
            timed = {int(k): (v["path"], dict(v["ms_per_query"])) for k, v in record["choices"].items()}
            ranged = {int(r): (v["path"], dict(v["ms_per_query"]))
                      for r, v in record.get("range_choices", {}).items()}
        except (KeyError, TypeError, ValueError, AttributeError):
            return False
        available = set(self.candidates(1)) | {"faiss counting"} if self.faiss is not None else set(self.candidates(1))
        if not all(p in available and p in TOPK_PATHS for p, _ in timed.values()) \
                or not all(p in self.range_candidates() and p in RANGE_PATHS for p, _ in ranged.values()):
            return False
        self.timed, self.timed_range = timed, ranged
        return True
