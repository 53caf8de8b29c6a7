"""Exact top-k and radius search by multi-index hashing, vectorised over a block of queries.

Norouzi, Punjani and Fleet (TPAMI 2014), section 4: with the code cut into m substrings, an item
at Hamming distance d from the query has some substring within floor(d / m) bits of the query's
(pigeonhole). The search runs in stages (r, i) for r = 0, 1, ... and i = 0 .. m-1: stage (r, i)
probes the buckets of substring i whose value differs from the query's in exactly r bits. After
it, every item with d <= m*r + i has been seen (an unseen item has substring distances > r for
j <= i and >= r for j > i, so d >= m*r + i + 1), so a query's top-k is final once its k-th
smallest distance seen is <= m*r + i, and a radius-R search once m*r + i >= R.

Each item is counted once without a set of seen items: stage (r, i) keeps a candidate only if
this is the first stage that reaches it, i.e. its substring distances are > r before i and >= r
after i (computed from the XOR with the query, which the full distance needs anyway). A query
whose next stage would cost more than a flat scan (tuning.MIH_CANDIDATE_COST) leaves the stages
and is answered by the scan instead, so the answer is always exact and never much slower than a
scan. Items added since the tables were built (positions >= tables.n) are scanned for every
query and enter as if found before the first stage.
"""
from __future__ import annotations

import functools

import numpy as np

from utils.retrieval import tuning
from utils.retrieval.backends.buckets import ragged_arange
from utils.retrieval.backends.mih_tables import SubstringTables, substring_keys
from utils.retrieval.scan import distance_block

EMPTY = np.zeros(0, np.int64)


@functools.lru_cache(maxsize=None)
def masks_of_weight(width: int, weight: int) -> np.ndarray:
    """Every width-bit value with `weight` bits set, ascending (built by combinations: width <= 32)."""
    from itertools import combinations

    if weight > width:
        return EMPTY
    values = [sum(1 << b for b in bits) for bits in combinations(range(width), weight)]
    return np.sort(np.array(values, np.int64))


class Stages:
    """The staged probing of one block of queries against the tables (and the pending items)."""

    def __init__(self, tables: SubstringTables, words: np.ndarray, qwords: np.ndarray, bit: int):
        self.tables, self.words, self.qwords, self.bit = tables, words, qwords, bit
        self.nq = len(qwords)
        self.m = len(tables.layout)
        self.qkeys = [substring_keys(qwords, part) for part in tables.layout]

    def bound(self, r: int, i: int) -> int:
        """Every item with distance <= this has been seen after stage (r, i)."""
        return self.m * r + i

    def pending(self, k: int | None = None, radius: int | None = None):
        """(query, position, distance) of the items not in the tables (added since they were built),
        scanned: each query's k nearest of them (the only ones that can enter its top-k), or those
        within radius."""
        start, stop = self.tables.n, len(self.words)
        if stop == start:
            return EMPTY, EMPTY, EMPTY
        out = []
        rows = max(1, tuning.GATHER_ITEMS // (stop - start))
        for s in range(0, self.nq, rows):
            dist = distance_block(self.qwords[s:s + rows], self.words[start:], self.bit)
            if k is not None:
                pos = np.argsort(dist, axis=1, kind="stable")[:, :k]
                q = np.repeat(np.arange(s, s + len(dist)), pos.shape[1])
                out.append((q, start + pos.ravel(), np.take_along_axis(dist, pos, axis=1).ravel().astype(np.int64)))
            else:
                q, pos = np.nonzero(dist <= radius)
                out.append((s + q, start + pos, dist[q, pos].astype(np.int64)))
        return tuple(np.concatenate(a) for a in zip(*out))

    def stage_sizes(self, active: np.ndarray, masks: np.ndarray, i: int):
        """The first entry and the size of every bucket each active query probes at substring i."""
        probes = self.qkeys[i][active, None] ^ masks[None, :]
        offsets = self.tables.offsets[i]
        starts = offsets[probes]
        lens = offsets[probes + 1] - starts
        return starts, lens

    def gather(self, active: np.ndarray, starts: np.ndarray, lens: np.ndarray, r: int, i: int):
        """(query, position, distance) of the items first reached at stage (r, i)."""
        if active.size == 0 or starts.shape[1] == 0:
            return EMPTY, EMPTY, EMPTY
        entry, _ = ragged_arange(starts.ravel(), lens.ravel())
        q = np.repeat(active, lens.sum(axis=1))  # the entries come query by query
        items = self.tables.items[i][entry]
        x = self.words[items] ^ self.qwords[q]
        keep = np.ones(len(q), bool)
        for j, (word, shift, width) in enumerate(self.tables.layout):
            if j != i:
                part = np.bitwise_count((x[:, word] >> np.uint64(shift)) & np.uint64((1 << width) - 1))
                keep &= part > r if j < i else part >= r
        keep = np.flatnonzero(keep)
        x = x[keep]
        d = np.bitwise_count(x[:, 0]).astype(np.int64)
        for w in range(1, x.shape[1]):
            d += np.bitwise_count(x[:, w])
        return q[keep], items[keep].astype(np.int64), d

    def stages(self):
        for r in range(max(width for _, _, width in self.tables.layout) + 1):
            for i in range(self.m):
                yield r, i

    def run(self, active: np.ndarray, done, found):
        """Probe stage after stage for the active queries until done(r, i, active) -> still active.

        found(q, pos, d) takes each stage's candidates. Returns the queries sent to the flat scan
        (their next stage would cost more than scanning the database).
        """
        to_scan = [EMPTY]
        n = len(self.words)
        spent = np.zeros(self.nq, np.float64)  # per query, in items of a flat scan
        for r, i in self.stages():
            if active.size == 0:
                break
            masks = masks_of_weight(self.tables.layout[i][2], r)
            step = max(1, tuning.GATHER_ITEMS // max(1, len(masks)))  # bounds the probe arrays
            going = [EMPTY]
            for s in range(0, active.size, step):
                part = active[s:s + step]
                starts, lens = self.stage_sizes(part, masks, i)
                spent[part] += lens.sum(axis=1) * tuning.MIH_CANDIDATE_COST + len(masks) * tuning.MIH_PROBE_COST
                costly = spent[part] > n
                if costly.any():
                    to_scan.append(part[costly])
                    part, starts, lens = part[~costly], starts[~costly], lens[~costly]
                for a, st, ln in self.chunks(part, starts, lens):
                    found(*self.gather(a, st, ln, r, i))
                going.append(part)
            active = done(r, i, np.concatenate(going))
        return np.concatenate(to_scan)

    @staticmethod
    def chunks(active, starts, lens):
        """Split the active queries so one gather holds at most tuning.GATHER_ITEMS candidates."""
        if active.size == 0:
            return
        per_query = lens.sum(axis=1) + 1
        cum = np.cumsum(per_query)
        bounds = np.searchsorted(cum, np.arange(1, int(cum[-1] // tuning.GATHER_ITEMS) + 1) * tuning.GATHER_ITEMS)
        edges = np.unique(np.concatenate([[0], bounds, [len(active)]]))
        for a, b in zip(edges[:-1], edges[1:]):
            if b > a:
                yield active[a:b], starts[a:b], lens[a:b]


def topk_block(tables: SubstringTables, words: np.ndarray, qwords: np.ndarray, bit: int, k: int):
    """Top-k of a block of queries: (distances [nq, k], positions [nq, k], queries to scan)."""
    st = Stages(tables, words, qwords, bit)
    nq, n, nbins = st.nq, len(words), bit + 2  # bin bit + 1: "no k-th distance yet"
    hist = np.zeros(nq * nbins, np.int64)
    kth = np.full(nq, bit + 1, np.int64)
    kept = [(EMPTY, EMPTY, EMPTY)]

    def found(q, pos, d):
        if q.size == 0:
            return
        hist[:] += np.bincount(q * nbins + d, minlength=nq * nbins)
        cum = np.cumsum(hist.reshape(nq, nbins), axis=1)
        reached = cum[:, -1] >= k
        kth[reached] = np.argmax(cum[reached] >= k, axis=1)
        near = d <= kth[q]
        kept.append((q[near], pos[near], d[near]))

    found(*st.pending(k=k))
    first = np.arange(nq)

    def done(r, i, active):
        return active[kth[active] > st.bound(r, i)]

    scan = st.run(first, done, found)
    q, pos, d = (np.concatenate(a) for a in zip(*kept))
    near = d <= kth[q]
    if scan.size:
        near &= ~np.isin(q, scan)
    key = (q[near] * nbins + d[near]) * n + pos[near]
    key.sort()
    starts = np.searchsorted(key // (nbins * n), np.arange(nq))
    dist = np.zeros((nq, k), np.int64)
    idx = np.zeros((nq, k), np.int64)
    ok = np.setdiff1d(first, scan, assume_unique=True)
    if ok.size:
        chosen = key[starts[ok, None] + np.arange(k)[None, :]]
        dist[ok], idx[ok] = np.divmod(chosen % (nbins * n), n)
    return dist, idx, scan


def radius_block(tables: SubstringTables, words: np.ndarray, qwords: np.ndarray, bit: int, radius: int):
    """Items within radius of a block of queries: (query, distance, position), unsorted, and the queries to scan."""
    st = Stages(tables, words, qwords, bit)
    kept = []

    def found(q, pos, d):
        near = d <= radius
        kept.append((q[near], pos[near], d[near]))

    found(*st.pending(radius=radius))

    def done(r, i, active):
        return active if st.bound(r, i) < radius else active[:0]

    scan = st.run(np.arange(st.nq), done, found)
    q, pos, d = (np.concatenate(a) for a in zip(*kept))
    if scan.size:
        mask = ~np.isin(q, scan)
        q, pos, d = q[mask], pos[mask], d[mask]
    return q, d, pos, scan
