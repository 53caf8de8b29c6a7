"""The mih backend: exact top-k and radius search by multi-index hashing (Norouzi, Punjani and
Fleet, TPAMI 2014), in numpy.

Sub-linear where codes are not uniform: on codes that cluster, as a trained model's do, a query's
nearest items share whole substrings with it and are found after probing a few buckets; on uniform
random codes the k-th neighbour lies far and the probes multiply, so per query the search hands
over to a flat scan once its stages would cost more (mih_search.py). Same answers as a flat scan,
ties included (positions ascend inside each bucket and the final ranking sorts (distance, index)).
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from utils.retrieval import tuning
from utils.retrieval.backends.buckets import key_rows, out_arrays, split_sorted
from utils.retrieval.backends.mih_search import radius_block, topk_block
from utils.retrieval.backends.mih_tables import SubstringTables, be_words, packed_from_words, substring_layout
from utils.retrieval.codes import code_bytes
from utils.retrieval.scan import radius_words, run_blocks, topk_words

TopkScan = Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]]
RangeScan = Callable[[np.ndarray, int], list[tuple[np.ndarray, np.ndarray]]]


class Rows:
    """uint64 rows appended in amortised O(1) (the buffer doubles) and compacted on removal."""

    def __init__(self, width: int):
        self._buf = np.zeros((0, width), np.uint64)
        self.n = 0

    def append(self, rows: np.ndarray) -> None:
        need = self.n + len(rows)
        if need > len(self._buf):
            grown = np.zeros((max(need, 2 * len(self._buf)), self._buf.shape[1]), np.uint64)
            grown[:self.n] = self._buf[:self.n]
            self._buf = grown
        self._buf[self.n:need] = rows
        self.n = need

    def keep(self, mask: np.ndarray) -> None:
        self._buf = np.ascontiguousarray(self._buf[:self.n][mask])
        self.n = len(self._buf)

    def view(self) -> np.ndarray:
        return self._buf[:self.n]

    def nbytes(self) -> int:
        return self._buf.nbytes


class MihBackend:
    """Multi-index hashing: m substring tables (m = bit / log2 n unless `substrings` is given),
    built on the first search, merged with added codes, remapped on removal."""

    name = "mih"
    exact = True

    def __init__(self, bit: int, threads: int | None = None, substrings: int | None = None):
        if substrings is not None and (isinstance(substrings, bool) or not isinstance(substrings, int)
                                       or not 1 <= substrings <= bit):
            from utils.errors import RetrievalError

            raise RetrievalError(f"mih: substrings must be an integer in [1, {bit}], got {substrings!r}")
        self.bit = bit
        self.threads = threads
        self.substrings = substrings
        self.nbytes = code_bytes(bit)
        self._words = Rows((self.nbytes + 7) // 8)
        self._tables: SubstringTables | None = None

    def __len__(self) -> int:
        return self._words.n

    def options(self) -> dict:
        """What save() records to rebuild the same index."""
        return {} if self.substrings is None else {"substrings": self.substrings}

    def add(self, packed: np.ndarray) -> None:
        self._words.append(be_words(packed))
        tables = self._tables
        if tables is not None and len(self) - tables.n > max(tuning.MIH_PENDING_MIN,
                                                             tables.n * tuning.MIH_PENDING_FRACTION):
            tables.merge(self._words.view()[tables.n:])

    def remove(self, positions: np.ndarray) -> None:
        keep = np.ones(len(self), bool)
        keep[positions] = False
        if self._tables is not None:
            self._tables.remove(keep[:self._tables.n])
        self._words.keep(keep)

    def packed(self) -> np.ndarray:
        return packed_from_words(self._words.view(), self.nbytes)

    def layout(self) -> list[tuple[int, int, int]]:
        return substring_layout(self.bit, len(self), self.substrings)

    def tables(self) -> SubstringTables:
        """The tables, built now if absent, or rebuilt when the database outgrew their layout."""
        t = self._tables
        if t is None or (self.substrings is None and len(self) >= 2 * max(t.n, 1) and self.layout() != t.layout):
            self._tables = t = SubstringTables(self._words.view(), self.layout())
        return t

    def memory_bytes(self) -> int:
        return self._words.nbytes() + (self._tables.memory_bytes() if self._tables is not None else 0)

    def _blocks(self, nq: int) -> tuple[int, int]:
        workers = self.threads or 1
        rows = max(1, min(tuning.MIH_BLOCK_QUERIES, key_rows(self.bit + 1, len(self)), -(-nq // workers)))
        return rows, workers

    def search(self, qpacked: np.ndarray, k: int, scan: TopkScan | None = None) -> tuple[np.ndarray, np.ndarray]:
        n = len(self)
        k = min(k, n)
        nq = len(qpacked)
        if k == 0 or nq == 0:
            return out_arrays(np.zeros((nq, k)), np.zeros((nq, k)))
        words, qwords = self._words.view(), be_words(qpacked)
        scan = scan or (lambda q, kk: topk_words(be_words(q), words, self.bit, kk, workers=1))
        tables = self.tables()
        rows, workers = self._blocks(nq)

        def block(s, e):
            dist, idx, to_scan = topk_block(tables, words, qwords[s:e], self.bit, k)
            if to_scan.size:
                dist[to_scan], idx[to_scan] = scan(qpacked[s:e][to_scan], k)
            return dist, idx

        parts = run_blocks(block, nq, rows, workers)
        return out_arrays(np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))

    def range_search(self, qpacked: np.ndarray, radius: int,
                     scan: RangeScan | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
        nq, n = len(qpacked), len(self)
        if n == 0 or nq == 0:
            return [out_arrays([], []) for _ in range(nq)]
        words, qwords = self._words.view(), be_words(qpacked)
        scan = scan or (lambda q, r: [out_arrays(d, i) for d, i in radius_words(be_words(q), words, self.bit, r)])
        tables = self.tables()
        rows, workers = self._blocks(nq)

        def block(s, e):
            q, d, pos, to_scan = radius_block(tables, words, qwords[s:e], self.bit, radius)
            key = (q * (self.bit + 1) + d) * n + pos
            key.sort()
            qs, rest = np.divmod(key, (self.bit + 1) * n)
            out = split_sorted(qs, *np.divmod(rest, n), e - s)
            for j, hits in zip(to_scan, scan(qpacked[s:e][to_scan], radius) if to_scan.size else []):
                out[j] = hits
            return out

        return [hits for part in run_blocks(block, nq, rows, workers) for hits in part]

    def describe(self) -> str:
        layout = self._tables.layout if self._tables is not None else self.layout()
        widths = "/".join(str(w) for _, _, w in layout)
        return f"multi-index hashing, {len(layout)} substrings of {widths} bits"

    def plan_topk(self, k: int) -> str:
        return f"mih {self.describe()} (a query costlier than a scan is scanned)"

    def plan_range(self, radius: int) -> str:
        return self.plan_topk(0)
