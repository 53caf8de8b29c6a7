"""The auto backend: the fastest exact path per operation, numpy's or faiss', timed on the machine
it runs on where the best choice depends on the CPU."""
from utils.retrieval import tuning
from utils.retrieval.backends.faiss import FaissBackend, faiss_available
from utils.retrieval.backends.numpy import NumpyBackend
from utils.runtime.cpuinfo import machine_key

UNTIMED_TOPK = "faiss heap"  # faiss' own default, used until the candidates are timed


class AutoBackend:
    """The fastest exact path per operation:

    top-k   numpy's bucket table where it applies (<= 16 bits, enough items per code value:
            ~0.01 ms/query at 16 bits against faiss' 1-4 over 1M codes), else the fastest of
            faiss IndexBinaryFlat's heap search, its counting search and numpy's flat scan,
            timed on this machine: which of faiss' two searches wins depends on the CPU (heap
            on an Intel Sapphire Rapids and a recent AMD EPYC, counting on an older EPYC), so
            the first search of >= tuning.TIMING_QUERIES queries over >= tuning.TIMING_MIN_ITEMS codes times
            each candidate twice on a sample of those queries and keeps the fastest per k (a
            power-of-two bucket); save() records the choice with the machine it was timed on
            and load() reuses it on the same machine. Until then: faiss' default, the heap;
    radius  numpy's multi-index hashing where it is cheap (2-13x faster than faiss'
            IndexBinaryMultiHash at radius 0-10 over 64 bits), else faiss' flat range scan
            (3-4x faster than numpy's), else numpy's.
    Without faiss: numpy throughout.

    Holds the codes twice when faiss is present (numpy's copy and faiss'): 16 MB per 1M
    64-bit codes, plus numpy's uint64 words and hash tables (~44 MB per 1M 64-bit codes)
    once a radius search or the timing has needed them.
    """

    name = "auto"

    def __init__(self, bit, threads=None):
        self.bit = bit
        self.threads = threads
        self.numpy = NumpyBackend(bit, threads)
        self.faiss = FaissBackend(bit, threads) if faiss_available() else None
        self.timed = {}  # k bucket -> (chosen candidate, {candidate: ms per query})

    def __len__(self):
        return len(self.numpy)

    def add(self, packed):
        self.numpy.add(packed)
        if self.faiss is not None:
            self.faiss.add(packed)
        self.timed = {}  # a bigger database can change the winner

    def packed(self):
        return self.numpy.packed()

    def _uses_table(self, k):
        return self.faiss is None or self.numpy.use_table(min(k, len(self)))

    def candidates(self, k):
        """The flat-scan top-k paths: name -> search(qpacked, k)."""
        out = {"faiss heap": lambda q, kk: self.faiss.search(q, kk, use_heap=True)}
        if self.faiss.counting_fits(k):
            out["faiss counting"] = lambda q, kk: self.faiss.search(q, kk, use_heap=False)
        out["numpy flat scan"] = self.numpy.search
        return out

    @staticmethod
    def k_bucket(k):
        return 1 << max(0, int(k) - 1).bit_length()

    def timing_sample(self):
        return max(4, min(tuning.TIMING_QUERIES, tuning.TIMING_ITEMS // max(1, len(self))))

    def _time_candidates(self, qpacked, k):
        import time

        sample = qpacked[:self.timing_sample()]
        best = {}
        for _ in range(2):  # interleaved, the faster of two runs each
            for name, search in self.candidates(k).items():
                start = time.perf_counter()
                search(sample, k)
                best[name] = min(best.get(name, float("inf")), time.perf_counter() - start)
        ms = {name: seconds * 1000 / len(sample) for name, seconds in best.items()}
        choice = min(ms, key=ms.get)
        self.timed[self.k_bucket(k)] = (choice, ms)
        return choice

    def topk_path(self, k, qpacked=None):
        """The candidate a search(k) uses now (timing them first when this call qualifies)."""
        entry = self.timed.get(self.k_bucket(min(k, len(self))))
        if entry is not None:
            return entry[0]
        if qpacked is not None and len(self) >= tuning.TIMING_MIN_ITEMS and len(qpacked) >= self.timing_sample():
            return self._time_candidates(qpacked, min(k, len(self)))
        return UNTIMED_TOPK

    def search(self, qpacked, k):
        if self._uses_table(k):
            return self.numpy.search(qpacked, k)
        if min(k, len(self)) == 0 or len(qpacked) == 0:
            return self.faiss.search(qpacked, k)
        return self.candidates(k)[self.topk_path(k, qpacked)](qpacked, k)

    def range_search(self, qpacked, radius):
        scan = self.faiss.scan_range_search if self.faiss is not None else None
        return self.numpy.range_search(qpacked, radius, scan=scan)

    def plan_topk(self, k):
        if self._uses_table(k):
            return self.numpy.plan_topk(k)
        words = {"faiss heap": "faiss IndexBinaryFlat (heap search)",
                 "faiss counting": "faiss IndexBinaryFlat (counting search)", "numpy flat scan": "numpy flat scan"}
        entry = self.timed.get(self.k_bucket(min(k, len(self))))
        if entry is None:
            return (f"{words[UNTIMED_TOPK]}; not timed yet (the first search of >= {self.timing_sample()} queries "
                    f"times the candidates)" if len(self) >= tuning.TIMING_MIN_ITEMS else f"{words[UNTIMED_TOPK]}")
        choice, ms = entry
        timings = ", ".join(f"{name} {value:.4f}" for name, value in ms.items())
        return f"{words[choice]}; timed fastest here ({timings} ms/query)"

    def plan_range(self, radius):
        if self.numpy.use_hash(radius) or self.faiss is None:
            return self.numpy.plan_range(radius)
        return "faiss IndexBinaryFlat range scan"

    def timing_record(self):
        """What save() writes: the choices and the machine and threads they were timed with."""
        if not self.timed:
            return None
        return {"machine": machine_key(), "threads": self.threads,
                "choices": {str(k): {"path": c, "ms_per_query": ms} for k, (c, ms) in self.timed.items()}}

    def restore_timing(self, record):
        """Reuse timings saved on this machine with these threads; ignore them elsewhere."""
        if not isinstance(record, dict) or record.get("machine") != machine_key() \
                or record.get("threads") != self.threads or self.faiss is None:
            return False
        known = {"faiss heap", "faiss counting", "numpy flat scan"}
        try:
            timed = {int(k): (v["path"], dict(v["ms_per_query"])) for k, v in record["choices"].items()}
        except (KeyError, TypeError, ValueError, AttributeError):
            return False
        if not all(path in known for path, _ in timed.values()):
            return False
        self.timed = timed
        return True
