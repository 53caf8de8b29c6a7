"""Binary codes and exact Hamming search: functions, and the HammingIndex with backends.

Codes travel in three forms: +-1 (what the network's sign() gives), 0/1, and
bit-packed uint8 rows (np.packbits, big-endian bit order: the first code bit is
the most significant bit of the first byte), which is what the database cache
stores. Everything here first reduces a code array to booleans, then to uint64
words, so distances are an XOR and a popcount whatever form came in.

Ordering contract (shared with utils.metrics, DESIGN.md section 5): results are
ranked by Hamming distance and ties go to the lower database index, so the
answer never depends on the sort algorithm, the block size or the thread count.

The functions (hamming_distances / hamming_topk / hamming_radius) are numpy only.
HammingIndex (further down) holds a database and picks a backend: numpy, faiss or milvus.
"""
import functools
import hashlib
import json
import math
import numbers
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from utils.errors import UserError

# Budget, per worker thread, for the largest [block, n_db] array a search keeps
# (an int64 ranking); the other per-block arrays add about 1.3x this. 32 MiB
# stays under glibc's largest mmap threshold, so blocks reuse freed memory
# instead of faulting fresh pages in every time.
BLOCK_BYTES = 32 << 20


# --------------------------------------------------------------------------
# code forms


def _check_bit(bit):
    if isinstance(bit, bool) or not isinstance(bit, numbers.Integral) or int(bit) < 1:
        raise UserError(f"bit must be a positive integer, got {bit!r}")
    return int(bit)


def to_bits(codes, bit=None):
    """Return codes as a bool array [n, K] (True = bit 1).

    Without `bit`, `codes` is an unpacked [n, K] (or single [K]) array; any
    value > 0 is bit 1 and anything else bit 0, so +-1, 0/1 and real-valued
    network outputs (binarised by sign) are all read correctly. NaN is
    rejected because it has no sign.

    With `bit`, `codes` is bit-packed: integer [n, ceil(bit/8)] with values
    0..255 (padding bits past `bit` are ignored). An unpacked [n, bit] array is
    also accepted then, so callers can pass `bit` whatever form they hold.
    """
    arr = np.asarray(codes)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise UserError(f"codes must be a [n, K] array or a single [K] code, got shape {arr.shape}")
    if arr.dtype.kind not in "biuf":
        raise UserError(f"codes must be numeric (+-1, 0/1 or packed uint8), got dtype {arr.dtype}")

    if bit is not None:
        bit = _check_bit(bit)
        nbytes = (bit + 7) // 8
        if arr.shape[1] == nbytes and arr.dtype.kind in "iu":
            if arr.size and (arr.min() < 0 or arr.max() > 255):
                raise UserError(f"packed codes must hold bytes 0..255, got values in "
                                f"[{arr.min()}, {arr.max()}]")
            return np.unpackbits(arr.astype(np.uint8, copy=False), axis=1, count=bit).astype(bool)
        if arr.shape[1] != bit:
            raise UserError(f"codes have {arr.shape[1]} columns, but bit={bit} needs {nbytes} "
                            f"packed uint8 columns or {bit} unpacked ones")

    if arr.shape[1] == 0:
        raise UserError("codes have 0 bits")
    if arr.dtype.kind == "b":
        return arr.copy()
    if arr.dtype.kind == "f" and np.isnan(arr).any():
        raise UserError("codes contain NaN")
    return arr > 0


def _as_bits(codes, bit, what):
    try:
        return to_bits(codes, bit)
    except UserError as exc:
        raise UserError(f"{what}: {exc}") from None


def pack_codes(codes, bit=None):
    """Pack codes into uint8 rows [n, ceil(K/8)]: 1/8 of the bool size on disk."""
    return np.packbits(to_bits(codes, bit), axis=1)


def unpack_codes(packed, bit):
    """Inverse of pack_codes: int8 +-1 codes [n, bit]."""
    bits = to_bits(packed, _check_bit(bit))
    return np.where(bits, np.int8(1), np.int8(-1))


def bits_to_words(bits):
    """Pack bool rows [n, K] into uint64 words [n, ceil(K/64)] (zero padded).

    Zero padding keeps XOR/popcount exact; the word byte order does not matter
    because a popcount does not care where the bits are.
    """
    n, k = bits.shape
    nwords = (k + 63) // 64
    padded = np.zeros((n, nwords * 64), dtype=bool)
    padded[:, :k] = bits
    return np.ascontiguousarray(np.packbits(padded, axis=1)).view(np.uint64)


def _dist_dtype(nbits):
    return np.uint8 if nbits <= 255 else np.uint16 if nbits <= 65535 else np.uint32


def distance_block(qwords, dbwords, nbits, xor_buf=None, out=None):
    """Hamming distances [nq, ndb] of query words against database words.

    Returns the smallest unsigned dtype that holds `nbits` (uint8 up to 255
    bits): numpy's stable argsort is a radix sort on 8/16-bit integers, which
    is what makes ranking a whole database cheap.
    """
    nq, ndb = qwords.shape[0], dbwords.shape[0]
    dtype = _dist_dtype(nbits)
    if xor_buf is None or xor_buf.shape != (nq, ndb):
        xor_buf = np.empty((nq, ndb), dtype=np.uint64)
    if out is None or out.shape != (nq, ndb):
        out = np.empty((nq, ndb), dtype=dtype)
    count = np.empty((nq, ndb), dtype=np.uint8) if qwords.shape[1] > 1 else None
    for w in range(qwords.shape[1]):
        np.bitwise_xor(qwords[:, w, None], dbwords[None, :, w], out=xor_buf)
        if w == 0:
            if dtype == np.uint8:
                np.bitwise_count(xor_buf, out=out)
            else:
                out[...] = np.bitwise_count(xor_buf)
        else:
            np.bitwise_count(xor_buf, out=count)
            np.add(out, count, out=out, casting="unsafe")
    return out


def prepare_pair(query_codes, db_codes, bit=None):
    """Validate a query/database code pair; return (qwords, dbwords, K)."""
    qbits = _as_bits(query_codes, bit, "query codes")
    dbbits = _as_bits(db_codes, bit, "database codes")
    if qbits.shape[1] != dbbits.shape[1]:
        raise UserError(f"query codes have {qbits.shape[1]} bits but database codes have "
                        f"{dbbits.shape[1]}")
    return bits_to_words(qbits), bits_to_words(dbbits), qbits.shape[1]


def default_workers():
    """Threads for block work: numpy releases the GIL in XOR, popcount and sort."""
    return max(1, min(4, os.cpu_count() or 1))


def block_rows(n_db, block_size=None, bytes_per_pair=8):
    """Queries per block so one block's [rows, n_db] arrays stay within budget."""
    if block_size is not None:
        if isinstance(block_size, bool) or not isinstance(block_size, numbers.Integral) \
                or block_size < 1:
            raise UserError(f"block_size must be a positive integer, got {block_size!r}")
        return int(block_size)
    return max(1, BLOCK_BYTES // max(1, n_db * bytes_per_pair))


def run_blocks(fn, n_queries, rows, workers=None):
    """Call fn(start, stop) over query blocks; results come back in block order."""
    starts = list(range(0, n_queries, rows))
    spans = [(s, min(s + rows, n_queries)) for s in starts]
    workers = default_workers() if workers is None else max(1, int(workers))
    if workers == 1 or len(spans) == 1:
        return [fn(s, e) for s, e in spans]
    with ThreadPoolExecutor(max_workers=min(workers, len(spans))) as pool:
        return list(pool.map(lambda span: fn(*span), spans))


# --------------------------------------------------------------------------
# search


def hamming_distances(query_codes, db_codes, bit=None):
    """All pairwise Hamming distances, uint16 [nq, ndb] (uint32 past 65,535 bits).

    Materialises nq x ndb; use hamming_topk / hamming_radius for big sets.
    """
    qwords, dbwords, nbits = prepare_pair(query_codes, db_codes, bit)
    out_dtype = np.uint16 if nbits <= 65535 else np.uint32
    result = np.empty((qwords.shape[0], dbwords.shape[0]), dtype=out_dtype)
    rows = block_rows(dbwords.shape[0])
    for s in range(0, qwords.shape[0], rows):
        e = min(s + rows, qwords.shape[0])
        result[s:e] = distance_block(qwords[s:e], dbwords, nbits)
    return result


def _check_k(k):
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
        raise UserError(f"k must be a positive integer, got {k!r}")
    return int(k)


def _topk_words(qwords, dbwords, nbits, k, block_size=None, workers=None):
    """Flat-scan top-k on uint64 words: (distances uint16 [nq, k'], indices int64 [nq, k'])."""
    nq, ndb = qwords.shape[0], dbwords.shape[0]
    k = min(k, ndb)

    def block(s, e):
        dist = distance_block(qwords[s:e], dbwords, nbits)
        order = np.argsort(dist, axis=1, kind="stable")[:, :k]
        return np.take_along_axis(dist, order, axis=1).astype(np.uint16), order

    if nq == 0 or k == 0:
        return np.zeros((nq, k), np.uint16), np.zeros((nq, k), np.int64)
    parts = run_blocks(block, nq, block_rows(ndb, block_size), workers)
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def hamming_topk(query_codes, db_codes, k, bit=None, *, block_size=None, workers=None):
    """Exact k nearest database items per query: (distances [nq, k], indices [nq, k]).

    Ties go to the lower database index; k past the database size is clipped.
    Distances are uint16, indices int64.
    """
    k = _check_k(k)
    qwords, dbwords, nbits = prepare_pair(query_codes, db_codes, bit)
    return _topk_words(qwords, dbwords, nbits, k, block_size, workers)


def _check_radius(radius):
    if isinstance(radius, bool) or not isinstance(radius, numbers.Real) \
            or not np.isfinite(radius) or radius < 0:
        raise UserError(f"radius must be a non-negative number, got {radius!r}")
    return radius


def _radius_words(qwords, dbwords, nbits, radius, block_size=None):
    """Flat-scan radius search on uint64 words: one (distances, indices) pair per query."""
    ndb = dbwords.shape[0]
    results = []
    rows = block_rows(ndb, block_size)
    for s in range(0, qwords.shape[0], rows):
        dist = distance_block(qwords[s:s + rows], dbwords, nbits)
        for row in dist:
            idx = np.flatnonzero(row <= radius)
            d = row[idx]
            order = np.argsort(d, kind="stable")
            results.append((d[order].astype(np.uint16), idx[order]))
    return results


def hamming_radius(query_codes, db_codes, radius, bit=None, *, block_size=None):
    """Every database item within `radius` (inclusive) of each query.

    Returns one (distances, indices) pair per query, sorted by (distance, index).
    """
    _check_radius(radius)
    qwords, dbwords, nbits = prepare_pair(query_codes, db_codes, bit)
    return _radius_words(qwords, dbwords, nbits, radius, block_size)


# --------------------------------------------------------------------------
# HammingIndex: a database of codes with exact top-k and radius search
#
# The index stores codes bit-packed (uint8 rows, zero padding bits) and hands
# them to a backend chosen by name from BACKENDS:
#
#   numpy   pure numpy. Top-k: a flat XOR/popcount scan, or, for codes of at
#           most 16 bits, a bucket table (every database item filed under its
#           code value; a query visits the values at distance 0, 1, 2, ...
#           until it has k items). Radius: multi-index hashing (the code is cut
#           into chunks of <= 16 bits, one bucket table per chunk; by the
#           pigeonhole principle an item within radius r matches some chunk
#           within r // chunks bits), candidates verified on the full code.
#   faiss   faiss-cpu. Top-k: IndexBinaryFlat. Radius: IndexBinaryMultiHash
#           with nflip = r // nhash (exact by the same pigeonhole argument).
#   milvus  a Milvus collection (BINARY_VECTOR, HAMMING, BIN_FLAT) through
#           pymilvus; by default an embedded milvus-lite file.
#   auto    the fastest exact path per operation: top-k by numpy's bucket table
#           where it applies (<= 16 bits, dense enough), else by whichever of
#           faiss IndexBinaryFlat's heap search, its counting search and numpy's
#           flat scan timed fastest on this machine (AutoBackend); radius by
#           numpy's multi-index hashing where it is cheap, else by faiss' flat
#           range scan. Without faiss, numpy throughout.
#
# Every backend returns the same answer: distances int32, indices int64,
# ranked by (distance, index). Radius search falls back to a flat scan where
# hashing would cost more than a scan (large radius, tiny data).

# the numpy top-k bucket table is used when its expected probes, k * 2**bit / n,
# stay under n / TABLE_PROBE_FACTOR (a flat scan costs n per query)
TABLE_PROBE_FACTOR = 4
# Hashing for radius search is used when (probes + candidates) * cost < n, the
# cost being that of one candidate relative to one item of a flat scan, measured
# at 1M 64-bit codes (bench_index.py): numpy ~25 (a candidate ~30 ns, a scanned
# item ~1.2 ns), faiss IndexBinaryMultiHash ~1000 (~400 ns a candidate against
# a 0.3-0.5 ns scan): worth it at flips = 0 (radius < 4 at 64 bits), not beyond.
NUMPY_HASH_COST = 25
FAISS_HASH_COST = 1000
# most (query, candidate) pairs the numpy hashing paths hold at once
GATHER_ITEMS = 1 << 22
CHUNK_BITS = 16


def code_bytes(bit):
    return (bit + 7) // 8


def packed_rows(codes, bit, what="codes"):
    """Codes in any accepted form -> C-contiguous uint8 [n, ceil(bit/8)], padding bits zero.

    Packed input (integer [n, ceil(bit/8)]) is taken as is, apart from its padding bits;
    anything else goes through to_bits (+-1, 0/1, bool, real-valued by sign).
    """
    bit = _check_bit(bit)
    nbytes = code_bytes(bit)
    arr = np.asarray(codes)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim == 2 and arr.shape[1] == nbytes and arr.dtype.kind in "iu":
        if arr.dtype != np.uint8 and arr.size and (arr.min() < 0 or arr.max() > 255):
            raise UserError(f"{what}: packed codes must hold bytes 0..255, got values in "
                            f"[{arr.min()}, {arr.max()}]")
        out = np.array(arr, dtype=np.uint8, order="C", copy=True)
        if bit % 8 and len(out):
            out[:, -1] &= np.uint8((0xFF << (8 - bit % 8)) & 0xFF)
        return out
    return np.ascontiguousarray(np.packbits(_as_bits(arr, bit, what), axis=1))


def packed_to_words(packed):
    """uint8 rows [n, nbytes] -> uint64 words [n, ceil(nbytes/8)] (same bytes, zero padded)."""
    n, nbytes = packed.shape
    nwords = (nbytes + 7) // 8
    if nbytes == nwords * 8:
        return np.ascontiguousarray(packed).view(np.uint64)
    buf = np.zeros((n, nwords * 8), np.uint8)
    buf[:, :nbytes] = packed
    return buf.view(np.uint64)


def _pair_distances(qwords, q, dbwords, idx):
    """Hamming distance of each (query q[i], database item idx[i]) pair, int64."""
    d = np.zeros(len(q), np.int64)
    for w in range(qwords.shape[1]):
        d += np.bitwise_count(qwords[q, w] ^ dbwords[idx, w])
    return d


def _ragged_arange(starts, lengths):
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
def _masks_by_weight(width):
    """All width-bit masks sorted by (popcount, value), their popcounts, level starts."""
    values = np.arange(1 << width, dtype=np.int64)
    weights = np.bitwise_count(values).astype(np.int64)
    order = np.argsort(weights, kind="stable")
    starts = np.searchsorted(weights[order], np.arange(width + 2))
    return values[order], weights[order], starts


def _flips_cost(width, flips):
    """Masks of width bits with at most `flips` bits set."""
    return sum(math.comb(width, i) for i in range(min(flips, width) + 1))


def _chunk_layout(bit, chunk_bits=CHUNK_BITS):
    """(first bit, width) of the chunks, byte aligned, each <= chunk_bits bits."""
    return [(lo, min(chunk_bits, bit - lo)) for lo in range(0, bit, chunk_bits)]


def _chunk_keys(packed, lo, width):
    """Integer value of code bits [lo, lo + width) (lo a multiple of 8, width <= 16)."""
    first = lo // 8
    value = packed[:, first].astype(np.int64) << 8
    if first + 1 < packed.shape[1]:
        value |= packed[:, first + 1]
    return value >> (16 - width)


def _out_arrays(dist, idx):
    return np.asarray(dist, np.int32), np.asarray(idx, np.int64)


def _split_sorted(q_sorted, dist, idx, nq):
    """Per-query (distances, indices) lists from rows already sorted by (query, distance, index)."""
    bounds = np.searchsorted(q_sorted, np.arange(nq + 1))
    return [_out_arrays(dist[a:b], idx[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]


def _rank_pairs(q, d, idx, nq, nbits, n):
    """Sort (query, distance, index) triples, dropping duplicates, and split per query."""
    key = (q * (nbits + 1) + d) * n + idx
    key = np.unique(key)
    q_sorted, rest = np.divmod(key, (nbits + 1) * n)
    d_sorted, i_sorted = np.divmod(rest, n)
    return _split_sorted(q_sorted, d_sorted, i_sorted, nq)


def _key_rows(nbits, n):
    """Most queries per block so (query, distance, index) keys fit in int64."""
    return max(1, min(1 << 16, (1 << 62) // ((nbits + 1) * max(n, 1))))


class _ChunkTables:
    """One bucket table per chunk: database indices sorted by chunk value, and offsets."""

    def __init__(self, packed, bit):
        self.n = len(packed)
        self.chunks = []
        for lo, width in _chunk_layout(bit):
            keys = _chunk_keys(packed, lo, width)
            sizes = np.bincount(keys, minlength=1 << width)
            offsets = np.zeros(len(sizes) + 1, np.int64)
            np.cumsum(sizes, out=offsets[1:])
            order = np.argsort(keys, kind="stable").astype(np.int64)  # index ascending in a bucket
            self.chunks.append((lo, width, order, offsets, sizes))


class NumpyBackend:
    """Pure numpy (np.bitwise_count on uint64 words); always available."""

    name = "numpy"

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

    def packed(self):
        if self._parts:
            self._packed = np.concatenate([self._packed, *self._parts])
            self._parts = []
        return self._packed

    def words(self):
        if self._words is None:
            self._words = packed_to_words(self.packed())
        return self._words

    def tables(self):
        if self._tables is None:
            self._tables = _ChunkTables(self.packed(), self.bit)
        return self._tables

    # top-k ---------------------------------------------------------------

    def use_table(self, k):
        n = len(self)
        return self.bit <= CHUNK_BITS and n > 0 and \
            k * (1 << self.bit) * TABLE_PROBE_FACTOR <= n * n

    def search(self, qpacked, k):
        k = min(k, len(self))
        if k == 0 or len(qpacked) == 0:
            return _out_arrays(np.zeros((len(qpacked), k)), np.zeros((len(qpacked), k)))
        if self.use_table(k):
            return self._table_search(qpacked, k)
        dist, idx = _topk_words(packed_to_words(qpacked), self.words(), self.bit, k,
                                workers=self.threads)
        return _out_arrays(dist, idx)

    def _table_search(self, qpacked, k):
        tables = self.tables()
        _, width, order, offsets, sizes = tables.chunks[0]
        masks, weights, starts = _masks_by_weight(width)
        n = tables.n
        qkeys = _chunk_keys(qpacked, 0, width)
        nq = len(qkeys)
        # 1. per query, the first level (distance) by which k items are reached
        final = np.full(nq, -1, np.int64)
        count = np.zeros(nq, np.int64)
        for level in range(width + 1):
            active = np.flatnonzero(final < 0)
            if active.size == 0:
                break
            level_masks = masks[starts[level]:starts[level + 1]]
            step = max(1, GATHER_ITEMS // len(level_masks))
            for s in range(0, active.size, step):
                a = active[s:s + step]
                count[a] += sizes[qkeys[a, None] ^ level_masks[None, :]].sum(axis=1)
            final[active[count[active] >= k]] = level
        # 2. gather every item of those levels, rank by (query, level, index), keep k per query
        dist = np.empty((nq, k), np.int64)
        idx = np.empty((nq, k), np.int64)
        rows = _key_rows(width, n)
        s = 0
        while s < nq:
            e = s + 1  # at least one query; more while the gathered items stay within budget
            budget = count[s]
            while e < nq and e - s < rows and budget + count[e] <= GATHER_ITEMS:
                budget += count[e]
                e += 1
            nprobe = starts[final[s:e] + 1]
            pos, probe_q = _ragged_arange(np.zeros(e - s, np.int64), nprobe)
            probe_keys = qkeys[s:e][probe_q] ^ masks[pos]
            item_pos, item_probe = _ragged_arange(offsets[probe_keys], sizes[probe_keys])
            key = (probe_q[item_probe] * (width + 1) + weights[pos][item_probe]) * n + order[item_pos]
            key.sort()
            first = np.concatenate([[0], np.cumsum(count[s:e])[:-1]])
            chosen = key[first[:, None] + np.arange(k)[None, :]]
            rest = chosen % ((width + 1) * n)
            dist[s:e], idx[s:e] = np.divmod(rest, n)
            s = e
        return _out_arrays(dist, idx)

    # radius --------------------------------------------------------------

    def hash_plan(self, radius):
        """(flips per chunk, expected work) of multi-index hashing at this radius."""
        layout = _chunk_layout(self.bit)
        flips = int(radius) // len(layout)
        n = len(self)
        work = sum(_flips_cost(w, flips) * (1 + n / (1 << w)) for _, w in layout)
        return flips, work

    def use_hash(self, radius):
        n = len(self)
        return n > 0 and self.hash_plan(radius)[1] * NUMPY_HASH_COST < n

    def scan_range_search(self, qpacked, radius):
        out = _radius_words(packed_to_words(qpacked), self.words(), self.bit, radius)
        return [_out_arrays(d, i) for d, i in out]

    def range_search(self, qpacked, radius, scan=None):
        """Multi-index hashing when cheap, else `scan` (default: numpy's flat scan).

        The decision is made again per block of queries on the real candidate count, so
        codes that crowd into a few buckets (unlike the uniform estimate) go to the scan.
        """
        scan = scan or self.scan_range_search
        nq = len(qpacked)
        if len(self) == 0 or not self.use_hash(radius):
            return scan(qpacked, radius)
        flips, _ = self.hash_plan(radius)
        tables, n = self.tables(), len(self)
        results = []
        rows = max(1, min(_key_rows(self.bit, n), 1024))
        for s in range(0, nq, rows):
            e = min(s + rows, nq)
            probes = []
            for lo, width, order, offsets, sizes in tables.chunks:
                masks, _, starts = _masks_by_weight(width)
                probe = _chunk_keys(qpacked[s:e], lo, width)[:, None] ^ masks[None, :starts[min(flips, width) + 1]]
                probes.append(probe)
            work = sum(p.size + int(c[4][p].sum()) for p, c in zip(probes, tables.chunks))
            if work * NUMPY_HASH_COST >= n * (e - s):
                results += scan(qpacked[s:e], radius)
                continue
            qs, cands = [], []
            for probe, (lo, width, order, offsets, sizes) in zip(probes, tables.chunks):
                probe_q = np.repeat(np.arange(e - s), probe.shape[1])
                probe = probe.ravel()
                pos, which = _ragged_arange(offsets[probe], sizes[probe])
                qs.append(probe_q[which])
                cands.append(order[pos])
            q, idx = np.concatenate(qs), np.concatenate(cands)
            words, qwords = self.words(), packed_to_words(qpacked[s:e])
            d = _pair_distances(qwords, q, words, idx)
            keep = d <= radius
            results += _rank_pairs(q[keep], d[keep], idx[keep], e - s, self.bit, n)
        return results

    def plan_topk(self, k):
        return "numpy bucket table" if self.use_table(min(k, len(self))) else "numpy flat scan"

    def plan_range(self, radius):
        return "numpy multi-index hashing" if self.use_hash(radius) else "numpy flat scan"


def _import_faiss():
    try:
        import faiss
    except ImportError as exc:
        raise UserError(f"index backend 'faiss' needs faiss-cpu ({exc}): pip install faiss-cpu, "
                        f"or use --index-backend numpy") from None
    return faiss


class _FaissThreads:
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


FAISS_COUNTING_BYTES = 8 << 20  # per query
FAISS_BATCH_BYTES = 64 << 20  # per search call into faiss


class FaissBackend:
    """faiss-cpu binary indexes: IndexBinaryFlat (top-k), IndexBinaryMultiHash (radius)."""

    name = "faiss"

    def __init__(self, bit, threads=None):
        self.faiss = _import_faiss()
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

    def packed(self):
        return self.faiss.vector_to_array(self.flat.xb).reshape(-1, self.nbytes)

    def search(self, qpacked, k, use_heap=None):
        """Top-k by IndexBinaryFlat; use_heap None: faiss' counting search while it is small."""
        n = len(self)
        k = min(k, n)
        if k == 0 or len(qpacked) == 0:
            return _out_arrays(np.zeros((len(qpacked), k)), np.zeros((len(qpacked), k)))
        # faiss' counting search (use_heap=False) holds (bits + 1) * k int64 per query; on some
        # CPUs it beats the heap (up to 1.6x at k>=10 on an older AMD EPYC), on others the heap
        # wins (AutoBackend times both on the machine it runs on).
        per_query = (self.nbytes * 8 + 1) * k * 8
        if use_heap is None or not self.counting_fits(k):
            use_heap = per_query > FAISS_COUNTING_BYTES
        self.flat.use_heap = use_heap
        rows = max(1, FAISS_BATCH_BYTES // (per_query if not self.flat.use_heap else k * 12))
        dist = np.empty((len(qpacked), k), np.int32)
        idx = np.empty((len(qpacked), k), np.int64)
        with _FaissThreads(self.faiss, self.threads):
            for s in range(0, len(qpacked), rows):
                dist[s:s + rows], idx[s:s + rows] = self.flat.search(qpacked[s:s + rows], k)
        # Equal distances in index order. faiss 1.15's scans already keep the lowest indices at
        # the k-th distance (tests/utils/test_index.py pins that against a pair-by-pair
        # reference); this sort puts each row in (distance, index) order whatever faiss did.
        key = dist.astype(np.int64) * n + idx
        key.sort(axis=1)
        return _out_arrays(*np.divmod(key, n))

    def counting_fits(self, k):
        """Whether faiss' counting search stays within FAISS_COUNTING_BYTES per query."""
        return (self.nbytes * 8 + 1) * min(k, len(self)) * 8 <= FAISS_COUNTING_BYTES

    def hash_plan(self, radius):
        nhash = max(1, -(-self.bit // CHUNK_BITS))
        b = self.bit // nhash
        flips = int(radius) // nhash
        work = nhash * _flips_cost(b, flips) * (1 + len(self) / (1 << b))
        return nhash, b, flips, work

    def use_hash(self, radius):
        return len(self) > 0 and self.hash_plan(radius)[3] * FAISS_HASH_COST < len(self)

    def scan_range_search(self, qpacked, radius):
        with _FaissThreads(self.faiss, self.threads):
            lims, dist, idx = self.flat.range_search(qpacked, int(radius) + 1)  # faiss: d < radius
        return self._ranked(qpacked, lims, dist, idx)

    def range_search(self, qpacked, radius):
        nq, n = len(qpacked), len(self)
        if n == 0:
            return [_out_arrays([], []) for _ in range(nq)]
        if not self.use_hash(radius):
            return self.scan_range_search(qpacked, radius)
        nhash, b, flips, _ = self.hash_plan(radius)
        if self._hash is None or self._hash.nhash != nhash or self._hash.b != b:
            self._hash = self.faiss.IndexBinaryMultiHash(self.nbytes * 8, nhash, b)
            self._hash.add(self.packed())
        self._hash.nflip = flips  # nhash * (flips + 1) > radius: no item within radius is missed
        # One thread: a lookup takes microseconds, less than waking OpenMP threads costs
        # (2 threads measured 4x slower than 1 on 2 busy cores).
        with _FaissThreads(self.faiss, 1):
            lims, dist, idx = self._hash.range_search(qpacked, int(radius) + 1)  # faiss: d < radius
        return self._ranked(qpacked, lims, dist, idx)

    def _ranked(self, qpacked, lims, dist, idx):
        nq, n = len(qpacked), len(self)
        lims = lims.astype(np.int64)
        q = np.repeat(np.arange(nq), np.diff(lims))
        out = []
        for s in range(0, nq, _key_rows(self.bit, n)):
            e = min(nq, s + _key_rows(self.bit, n))
            a, z = lims[s], lims[e]
            out += _rank_pairs(q[a:z] - s, dist[a:z].astype(np.int64), idx[a:z], e - s, self.bit, n)
        return out

    def plan_topk(self, k):
        return "faiss IndexBinaryFlat"

    def plan_range(self, radius):
        return "faiss IndexBinaryMultiHash" if self.use_hash(radius) else "faiss IndexBinaryFlat range scan"


MILVUS_REQUIREMENT = "pymilvus and milvus-lite 2.5.x: pip install -r requirements-milvus.txt"
MILVUS_MAX_LIMIT = 16384  # Milvus caps topk/limit at 16,384


def _import_pymilvus():
    try:
        import pymilvus
    except ImportError as exc:
        raise UserError(f"index backend 'milvus' needs {MILVUS_REQUIREMENT} ({exc})") from None
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
        pymilvus = _import_pymilvus()
        self.bit = bit
        self.nbytes = code_bytes(bit)
        self.uri = uri
        self.collection = collection or f"hashnet_{bit}"
        self.insert_batch = insert_batch
        try:
            kwargs = {"token": token} if token else {}
            self.client = pymilvus.MilvusClient(uri, **kwargs)
        except Exception as exc:  # noqa: BLE001  (pymilvus raises many types; say which server failed)
            raise UserError(f"cannot open Milvus at {uri}: {type(exc).__name__}: {exc}") from None
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
            raise UserError(f"Milvus collection {self.collection!r} at {self.uri} does not hold "
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
            raise UserError(f"Milvus returns at most {MILVUS_MAX_LIMIT} results per query, asked for {k}")
        if k == 0 or len(qpacked) == 0:
            return _out_arrays(np.zeros((len(qpacked), k)), np.zeros((len(qpacked), k)))
        hits = self._hits(qpacked, k, {})
        return _out_arrays(np.stack([h[0] for h in hits]), np.stack([h[1] for h in hits]))

    def range_search(self, qpacked, radius):
        if len(self) == 0:
            return [_out_arrays([], []) for _ in range(len(qpacked))]
        # Milvus range search returns range_filter <= distance < radius
        hits = self._hits(qpacked, MILVUS_MAX_LIMIT, {"radius": int(radius) + 1, "range_filter": 0})
        if any(len(i) >= MILVUS_MAX_LIMIT for _, i in hits):
            raise UserError(f"more than {MILVUS_MAX_LIMIT} items within radius {radius} (Milvus' cap): "
                            f"use a smaller radius or another backend")
        return [_out_arrays(d, i) for d, i in hits]

    def plan_topk(self, k):
        return "milvus BIN_FLAT"

    def plan_range(self, radius):
        return "milvus BIN_FLAT range search"

    def reference(self):
        return {"uri": self.uri, "collection": self.collection}


def faiss_available():
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


def machine_key():
    """CPU model, family/model numbers and core count: timings taken on one machine hold there."""
    fields = {}
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if not line.strip():
                    break
                key, _, value = line.partition(":")
                fields[key.strip()] = value.strip()
    except OSError:
        pass
    import platform

    name = fields.get("model name") or platform.processor() or platform.machine()
    return f"{name} / family {fields.get('cpu family', '?')} model {fields.get('model', '?')} / {os.cpu_count()} cpus"


# AutoBackend times its flat-scan top-k candidates on the first search of at least this many
# queries (fewer for big databases: about TIMING_ITEMS query x item pairs per candidate), on
# databases of at least TIMING_MIN_ITEMS codes (below that every path takes microseconds)
TIMING_QUERIES = 32
TIMING_ITEMS = 32 << 20
TIMING_MIN_ITEMS = 50_000
UNTIMED_TOPK = "faiss heap"  # faiss' own default, used until the candidates are timed


class AutoBackend:
    """The fastest exact path per operation:

    top-k   numpy's bucket table where it applies (<= 16 bits, enough items per code value:
            ~0.01 ms/query at 16 bits against faiss' 1-4 over 1M codes), else the fastest of
            faiss IndexBinaryFlat's heap search, its counting search and numpy's flat scan,
            timed on this machine: which of faiss' two searches wins depends on the CPU (heap
            on an Intel Sapphire Rapids and a recent AMD EPYC, counting on an older EPYC), so
            the first search of >= TIMING_QUERIES queries over >= TIMING_MIN_ITEMS codes times
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
        return max(4, min(TIMING_QUERIES, TIMING_ITEMS // max(1, len(self))))

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
        if qpacked is not None and len(self) >= TIMING_MIN_ITEMS and len(qpacked) >= self.timing_sample():
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
                    f"times the candidates)" if len(self) >= TIMING_MIN_ITEMS else f"{words[UNTIMED_TOPK]}")
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


BACKENDS = {"auto": AutoBackend, "numpy": NumpyBackend, "faiss": FaissBackend, "milvus": MilvusBackend}


def backend_names():
    """Names accepted by HammingIndex(backend=...) and predict.py --index-backend."""
    return list(BACKENDS)


FORMAT = "hashnet-hamming-index"
MAGIC = b"HNETIDX\x00"
VERSION = 1


class HammingIndex:
    """Exact Hamming search over a growing database of `bit`-bit codes.

        index = HammingIndex(64)                 # backend "auto": see AutoBackend
        index.add(db_codes)                      # +-1, 0/1, bool or packed uint8; in any chunks
        dist, idx = index.search(queries, k=100) # [nq, k] int32 / int64, by (distance, index)
        hits = index.range_search(queries, 2)    # per query (dist, idx), distance <= 2
        index.save("db.hidx"); HammingIndex.load("db.hidx")

    Database indices count from 0 in the order codes were added. Distances are exact for
    every backend, and ties go to the lower index (the same order as utils.metrics).
    `threads` caps the threads a search uses (faiss OpenMP threads, numpy worker threads).
    Extra keyword options go to the backend (milvus: uri, collection, token, drop).
    """

    def __init__(self, bit, backend="auto", threads=None, **options):
        self.bit = _check_bit(bit)
        if not isinstance(backend, str) or backend not in backend_names():
            raise UserError(f"unknown index backend {backend!r}; choose one of {backend_names()}")
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, numbers.Integral)
                                    or threads < 1):
            raise UserError(f"threads must be a positive integer, got {threads!r}")
        self.backend = backend
        self._impl = BACKENDS[backend](self.bit, threads=threads, **options)

    def __len__(self):
        return len(self._impl)

    def __repr__(self):
        return f"HammingIndex(bit={self.bit}, backend={self.backend!r}, n={len(self)})"

    def add(self, codes):
        """Append codes (indices continue from len(self)); returns the new size."""
        packed = packed_rows(codes, self.bit, "database codes")
        if len(packed):
            self._impl.add(packed)
        return len(self)

    def search(self, queries, k):
        """Exact k nearest items per query: (distances int32 [nq, k'], indices int64 [nq, k']).

        k' = min(k, len(self)); rows are ranked by (distance, index).
        """
        k = _check_k(k)
        return self._impl.search(packed_rows(queries, self.bit, "query codes"), k)

    def range_search(self, queries, radius):
        """Every item within `radius` (inclusive) of each query: a list, per query, of
        (distances int32, indices int64) ranked by (distance, index)."""
        _check_radius(radius)
        return self._impl.range_search(packed_rows(queries, self.bit, "query codes"), int(math.floor(radius)))

    def plan(self, k=None, radius=None):
        """Which engine a search(k=...) or range_search(radius=...) would use, in words."""
        if (k is None) == (radius is None):
            raise UserError("plan() takes k or radius")
        return self._impl.plan_topk(_check_k(k)) if k is not None else \
            self._impl.plan_range(int(math.floor(_check_radius(radius))))

    def packed_codes(self):
        """The database as packed uint8 rows (None for a server-side backend such as milvus)."""
        packed = self._impl.packed()
        return None if packed is None else np.array(packed, copy=True)

    # persistence -----------------------------------------------------------

    def save(self, path):
        """Write the index atomically: magic, a JSON header, then the packed codes (no pickle).

        A milvus index writes only its reference (uri, collection, count): the codes stay
        in the server and load() reconnects to them.
        """
        from utils.storage.fileio import atomic_open

        packed = self._impl.packed()
        header = {"format": FORMAT, "version": VERSION, "bit": self.bit, "count": len(self),
                  "code_bytes": code_bytes(self.bit), "bit_order": "numpy packbits, big-endian",
                  "backend": self.backend}
        if packed is None:
            header["codes"] = "server"
            header["milvus"] = self._impl.reference()
            body = b""
        else:
            packed = np.ascontiguousarray(packed, np.uint8)
            body = packed.tobytes()
            header["codes"] = "inline"
            header["sha256"] = hashlib.sha256(body).hexdigest()
        timing = getattr(self._impl, "timing_record", lambda: None)()
        if timing is not None:
            header["auto_timing"] = timing
        blob = json.dumps(header, sort_keys=True).encode("utf-8")
        with atomic_open(path, "wb") as f:
            f.write(MAGIC)
            f.write(len(blob).to_bytes(4, "little"))
            f.write(blob)
            f.write(body)
        return path

    @classmethod
    def load(cls, path, backend=None, threads=None, **options):
        """Read an index written by save(); `backend` defaults to the one it was saved with."""
        path = os.fspath(path)
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as exc:
            raise UserError(f"cannot read index file {path}: {exc.strerror or exc}") from None
        header, body = _parse_index_file(path, data)
        bit = header["bit"]
        chosen = backend or header["backend"]
        if header["codes"] == "server":
            if chosen not in ("milvus", "auto"):
                raise UserError(f"{path}: the codes of this index live in Milvus; load it with "
                                f"backend 'milvus'")
            opts = {**header.get("milvus", {}), **options}
            index = cls(bit, "milvus", threads=threads, **opts)
            if len(index) != header["count"]:
                raise UserError(f"{path}: Milvus collection {opts.get('collection')!r} holds {len(index)} "
                                f"codes, the index file says {header['count']}")
            return index
        index = cls(bit, chosen, threads=threads, **options)
        index.add(np.frombuffer(body, np.uint8).reshape(header["count"], header["code_bytes"]))
        if chosen == "auto" and "auto_timing" in header:
            index._impl.restore_timing(header["auto_timing"])  # same machine and threads only
        return index


def _parse_index_file(path, data):
    def bad(why):
        return UserError(f"{path}: not a valid HammingIndex file ({why})")

    if len(data) < len(MAGIC) + 4 or data[:len(MAGIC)] != MAGIC:
        raise bad("no HammingIndex header: wrong file type or truncated")
    size = int.from_bytes(data[len(MAGIC):len(MAGIC) + 4], "little")
    start = len(MAGIC) + 4
    if start + size > len(data):
        raise bad("truncated header")
    try:
        header = json.loads(data[start:start + size].decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise bad("corrupt header") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise bad("corrupt header")
    if header.get("version") != VERSION:
        raise bad(f"format version {header.get('version')}, this code reads version {VERSION}")
    try:
        bit, count, nbytes = (int(header[k]) for k in ("bit", "count", "code_bytes"))
        if bit < 1 or count < 0 or nbytes != code_bytes(bit) or header["codes"] not in ("inline", "server") \
                or header["backend"] not in backend_names():
            raise ValueError
    except (KeyError, TypeError, ValueError):
        raise bad("corrupt header") from None
    header.update(bit=bit, count=count, code_bytes=nbytes)
    body = data[start + size:]
    if header["codes"] == "server":
        if body:
            raise bad("unexpected bytes after the header")
        return header, body
    if len(body) != count * nbytes:
        raise bad(f"expected {count} codes of {nbytes} bytes = {count * nbytes} bytes after the header, "
                  f"found {len(body)}: truncated or corrupt")
    if hashlib.sha256(body).hexdigest() != header.get("sha256"):
        raise bad("checksum mismatch: the codes are corrupt")
    return header, body
