"""The numpy backend: pure numpy (np.bitwise_count on uint64 words); always available.

Top-k: a flat XOR/popcount scan, or, for codes of at most 16 bits, a bucket table (every database
item filed under its code value; a query visits the values at distance 0, 1, 2, ... until it has
k items). Radius: multi-index hashing (buckets.py) where it is cheaper than a scan, candidates
verified on the full code.
"""
import numpy as np

from utils.retrieval import tuning
from utils.retrieval.backends.buckets import (ChunkTables, chunk_keys, chunk_layout, flips_cost, key_rows,
                                              masks_by_weight, out_arrays, pair_distances, ragged_arange, rank_pairs)
from utils.retrieval.codes import code_bytes, packed_to_words
from utils.retrieval.scan import radius_words, topk_words


def gather_blocks(pairs, max_rows, budget):
    """(start, end) blocks of consecutive queries, each holding at most `budget` of the per-query
    candidate counts `pairs` (one query alone may exceed it) and at most max_rows queries."""
    cum = np.concatenate([[0], np.cumsum(pairs)])
    s, nq = 0, len(pairs)
    while s < nq:
        e = int(np.searchsorted(cum, cum[s] + budget, side="right")) - 1
        e = min(max(e, s + 1), s + max_rows, nq)
        yield s, e
        s = e


class NumpyBackend:
    """Pure numpy (np.bitwise_count on uint64 words); always available."""

    name = "numpy"
    exact = True

    def __init__(self, bit, threads=None):
        self.bit = bit
        self.threads = threads
        self._parts = []
        self._packed = np.zeros((0, code_bytes(bit)), np.uint8)
        self._words = None
        self._tables = None

    def __len__(self):
        return len(self._packed) + sum(len(p) for p in self._parts)

    def add(self, packed):
        self._parts.append(packed)
        self._words = self._tables = None

    def remove(self, positions):
        self._packed = np.delete(self.packed(), positions, axis=0)
        self._words = self._tables = None

    def packed(self):
        if self._parts:
            self._packed = np.concatenate([self._packed, *self._parts])
            self._parts = []
        return self._packed

    def memory_bytes(self):
        """The arrays held: the packed codes, and the uint64 words and chunk tables once built."""
        total = self.packed().nbytes + (self._words.nbytes if self._words is not None else 0)
        if self._tables is not None:
            total += sum(order.nbytes + offsets.nbytes + sizes.nbytes for _, _, order, offsets, sizes in
                         self._tables.chunks)
        return total

    def words(self):
        if self._words is None:
            self._words = packed_to_words(self.packed())
        return self._words

    def tables(self):
        if self._tables is None:
            self._tables = ChunkTables(self.packed(), self.bit)
        return self._tables

    # top-k ---------------------------------------------------------------

    def use_table(self, k):
        n = len(self)
        return self.bit <= tuning.CHUNK_BITS and n > 0 and \
            k * (1 << self.bit) * tuning.TABLE_PROBE_FACTOR <= n * n

    def search(self, qpacked, k):
        return self.table_search(qpacked, k) if self.use_table(min(k, len(self))) else self.scan_search(qpacked, k)

    def scan_search(self, qpacked, k):
        """Top-k by a flat scan."""
        k = min(k, len(self))
        if k == 0 or len(qpacked) == 0:
            return out_arrays(np.zeros((len(qpacked), k)), np.zeros((len(qpacked), k)))
        dist, idx = topk_words(packed_to_words(qpacked), self.words(), self.bit, k,
                                workers=self.threads)
        return out_arrays(dist, idx)

    def table_search(self, qpacked, k):
        """Top-k by the bucket table (codes of at most tuning.CHUNK_BITS bits)."""
        k = min(k, len(self))
        if k == 0 or len(qpacked) == 0:
            return out_arrays(np.zeros((len(qpacked), k)), np.zeros((len(qpacked), k)))
        tables = self.tables()
        _, width, order, offsets, sizes = tables.chunks[0]
        masks, weights, starts = masks_by_weight(width)
        n = tables.n
        qkeys = chunk_keys(qpacked, 0, width)
        nq = len(qkeys)
        # 1. per query, the first level (distance) by which k items are reached
        final = np.full(nq, -1, np.int64)
        count = np.zeros(nq, np.int64)
        for level in range(width + 1):
            active = np.flatnonzero(final < 0)
            if active.size == 0:
                break
            level_masks = masks[starts[level]:starts[level + 1]]
            step = max(1, tuning.GATHER_ITEMS // len(level_masks))
            for s in range(0, active.size, step):
                a = active[s:s + step]
                count[a] += sizes[qkeys[a, None] ^ level_masks[None, :]].sum(axis=1)
            final[active[count[active] >= k]] = level
        # 2. gather every item of those levels, rank by (query, level, index), keep k per query
        dist = np.empty((nq, k), np.int64)
        idx = np.empty((nq, k), np.int64)
        rows = key_rows(width, n)
        s = 0
        while s < nq:
            e = s + 1  # at least one query; more while the gathered items stay within budget
            budget = count[s]
            while e < nq and e - s < rows and budget + count[e] <= tuning.GATHER_ITEMS:
                budget += count[e]
                e += 1
            nprobe = starts[final[s:e] + 1]
            pos, probe_q = ragged_arange(np.zeros(e - s, np.int64), nprobe)
            probe_keys = qkeys[s:e][probe_q] ^ masks[pos]
            item_pos, item_probe = ragged_arange(offsets[probe_keys], sizes[probe_keys])
            key = (probe_q[item_probe] * (width + 1) + weights[pos][item_probe]) * n + order[item_pos]
            key.sort()
            first = np.concatenate([[0], np.cumsum(count[s:e])[:-1]])
            chosen = key[first[:, None] + np.arange(k)[None, :]]
            rest = chosen % ((width + 1) * n)
            dist[s:e], idx[s:e] = np.divmod(rest, n)
            s = e
        return out_arrays(dist, idx)

    # radius --------------------------------------------------------------

    def hash_plan(self, radius):
        """(flips per chunk, expected work) of multi-index hashing at this radius."""
        layout = chunk_layout(self.bit)
        flips = int(radius) // len(layout)
        n = len(self)
        work = sum(flips_cost(w, flips) * (1 + n / (1 << w)) for _, w in layout)
        return flips, work

    def use_hash(self, radius):
        n = len(self)
        return n > 0 and self.hash_plan(radius)[1] * tuning.NUMPY_HASH_COST < n

    def scan_range_search(self, qpacked, radius):
        out = radius_words(packed_to_words(qpacked), self.words(), self.bit, radius)
        return [out_arrays(d, i) for d, i in out]

    def range_search(self, qpacked, radius, scan=None):
        """Multi-index hashing when cheap, else `scan` (default: numpy's flat scan).

        The decision is made again per block of queries on the real candidate count, so
        codes that crowd into a few buckets (unlike the uniform estimate) go to the scan.
        A block holds at most tuning.HASH_GATHER_ITEMS candidates (at least one query): with a
        fixed 1,024 queries a block, codes that cluster made arrays of tens of millions of
        pairs, and the cost per query grew with the batch (10M clustered 64-bit codes,
        radius 3: 0.48 ms a query at 32 queries, 2.35 at 1,000), so auto's timing on the
        batch's first queries did not tell the batch's cost.
        """
        scan = scan or self.scan_range_search
        if len(self) == 0 or not self.use_hash(radius):
            return scan(qpacked, radius)
        flips, _ = self.hash_plan(radius)
        tables, n = self.tables(), len(self)
        probes = []
        for lo, width, order, offsets, sizes in tables.chunks:
            masks, _, starts = masks_by_weight(width)
            probes.append(chunk_keys(qpacked, lo, width)[:, None] ^ masks[None, :starts[min(flips, width) + 1]])
        pairs = sum(c[4][p].sum(axis=1) for p, c in zip(probes, tables.chunks))  # candidates per query
        work = pairs + sum(p.shape[1] for p in probes)
        results = []
        rows = max(1, min(key_rows(self.bit, n), 1024))
        for s, e in gather_blocks(pairs, rows, tuning.HASH_GATHER_ITEMS):
            if int(work[s:e].sum()) * tuning.NUMPY_HASH_COST >= n * (e - s):
                results += scan(qpacked[s:e], radius)
                continue
            qs, cands = [], []
            for probe, (lo, width, order, offsets, sizes) in zip(probes, tables.chunks):
                probe = probe[s:e]
                probe_q = np.repeat(np.arange(e - s), probe.shape[1])
                probe = probe.ravel()
                pos, which = ragged_arange(offsets[probe], sizes[probe])
                qs.append(probe_q[which])
                cands.append(order[pos])
            q, idx = np.concatenate(qs), np.concatenate(cands)
            words, qwords = self.words(), packed_to_words(qpacked[s:e])
            d = pair_distances(qwords, q, words, idx)
            keep = d <= radius
            results += rank_pairs(q[keep], d[keep], idx[keep], e - s, self.bit, n)
        return results

    def plan_topk(self, k):
        return "numpy bucket table" if self.use_table(min(k, len(self))) else "numpy flat scan"

    def plan_range(self, radius):
        return "numpy multi-index hashing" if self.use_hash(radius) else "numpy flat scan"
