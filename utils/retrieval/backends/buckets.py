"""Pieces the hashing paths of the backends share: bucket tables over code chunks, flip masks,
and ranking (query, distance, index) triples into per-query answers.

Multi-index hashing: the code is cut into chunks of <= tuning.CHUNK_BITS bits, one bucket table
per chunk; by the pigeonhole principle an item within radius r of a query matches it in some
chunk within r // chunks bits, so probing those buckets and verifying the candidates on the full
code is exact.
"""
import functools
import math

import numpy as np

from utils.retrieval import tuning


def pair_distances(qwords, q, dbwords, idx):
    """Hamming distance of each (query q[i], database item idx[i]) pair, int64."""
    d = np.zeros(len(q), np.int64)
    for w in range(qwords.shape[1]):
        d += np.bitwise_count(qwords[q, w] ^ dbwords[idx, w])
    return d


def ragged_arange(starts, lengths):
    """Concatenated arange(s, s + l) over the pairs, and the pair number of each element."""
    keep = np.flatnonzero(lengths > 0)
    starts, lengths = starts[keep].astype(np.int64), lengths[keep].astype(np.int64)
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    ends = np.cumsum(lengths)
    step = np.ones(total, np.int64)
    step[0] = starts[0]
    step[ends[:-1]] = starts[1:] - (starts[:-1] + lengths[:-1] - 1)
    return np.cumsum(step), np.repeat(keep, lengths)


@functools.lru_cache(maxsize=None)
def masks_by_weight(width):
    """All width-bit masks sorted by (popcount, value), their popcounts, level starts."""
    values = np.arange(1 << width, dtype=np.int64)
    weights = np.bitwise_count(values).astype(np.int64)
    order = np.argsort(weights, kind="stable")
    starts = np.searchsorted(weights[order], np.arange(width + 2))
    return values[order], weights[order], starts


def flips_cost(width, flips):
    """Masks of width bits with at most `flips` bits set."""
    return sum(math.comb(width, i) for i in range(min(flips, width) + 1))


def chunk_layout(bit, chunk_bits=None):
    """(first bit, width) of the chunks, byte aligned, each <= chunk_bits (tuning.CHUNK_BITS) bits."""
    chunk_bits = tuning.CHUNK_BITS if chunk_bits is None else chunk_bits
    return [(lo, min(chunk_bits, bit - lo)) for lo in range(0, bit, chunk_bits)]


def chunk_keys(packed, lo, width):
    """Integer value of code bits [lo, lo + width) (lo a multiple of 8, width <= 16)."""
    first = lo // 8
    value = packed[:, first].astype(np.int64) << 8
    if first + 1 < packed.shape[1]:
        value |= packed[:, first + 1]
    return value >> (16 - width)


def out_arrays(dist, idx):
    return np.asarray(dist, np.int32), np.asarray(idx, np.int64)


def split_sorted(q_sorted, dist, idx, nq):
    """Per-query (distances, indices) lists from rows already sorted by (query, distance, index)."""
    bounds = np.searchsorted(q_sorted, np.arange(nq + 1))
    return [out_arrays(dist[a:b], idx[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]


def rank_pairs(q, d, idx, nq, nbits, n):
    """Sort (query, distance, index) triples, dropping duplicates, and split per query."""
    key = (q * (nbits + 1) + d) * n + idx
    key = np.unique(key)
    q_sorted, rest = np.divmod(key, (nbits + 1) * n)
    d_sorted, i_sorted = np.divmod(rest, n)
    return split_sorted(q_sorted, d_sorted, i_sorted, nq)


def key_rows(nbits, n):
    """Most queries per block so (query, distance, index) keys fit in int64."""
    return max(1, min(1 << 16, (1 << 62) // ((nbits + 1) * max(n, 1))))


class ChunkTables:
    """One bucket table per chunk: database indices sorted by chunk value, and offsets."""

    def __init__(self, packed, bit):
        self.n = len(packed)
        self.chunks = []
        for lo, width in chunk_layout(bit):
            keys = chunk_keys(packed, lo, width)
            sizes = np.bincount(keys, minlength=1 << width)
            offsets = np.zeros(len(sizes) + 1, np.int64)
            np.cumsum(sizes, out=offsets[1:])
            order = np.argsort(keys, kind="stable").astype(np.int64)  # index ascending in a bucket
            self.chunks.append((lo, width, order, offsets, sizes))
