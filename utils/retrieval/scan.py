"""Exact Hamming search by flat scan: all distances, top-k and radius, on numpy alone.

Ordering contract (shared with utils.evaluation.metrics; docs/architecture.md): results are
ranked by Hamming distance and ties go to the lower database index, so the answer never depends
on the sort algorithm, the block size or the thread count. Work runs in blocks of queries
against the whole database (tuning.BLOCK_BYTES per worker thread), so memory stays bounded.
"""
import numbers
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from utils.errors import CodeFormatError
from utils.retrieval import tuning
from utils.retrieval.codes import as_bits, bits_to_words


def dist_dtype(nbits):
    return np.uint8 if nbits <= 255 else np.uint16 if nbits <= 65535 else np.uint32


def distance_block(qwords, dbwords, nbits, xor_buf=None, out=None):
    """Hamming distances [nq, ndb] of query words against database words.

    Returns the smallest unsigned dtype that holds `nbits` (uint8 up to 255
    bits): numpy's stable argsort is a radix sort on 8/16-bit integers, which
    is what makes ranking a whole database cheap.
    """
    nq, ndb = qwords.shape[0], dbwords.shape[0]
    dtype = dist_dtype(nbits)
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
    qbits = as_bits(query_codes, bit, "query codes")
    dbbits = as_bits(db_codes, bit, "database codes")
    if qbits.shape[1] != dbbits.shape[1]:
        raise CodeFormatError(f"query codes have {qbits.shape[1]} bits but database codes have "
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
            raise CodeFormatError(f"block_size must be a positive integer, got {block_size!r}")
        return int(block_size)
    return max(1, tuning.BLOCK_BYTES // max(1, n_db * bytes_per_pair))


def run_blocks(fn, n_queries, rows, workers=None):
    """Call fn(start, stop) over query blocks; results come back in block order."""
    starts = list(range(0, n_queries, rows))
    spans = [(s, min(s + rows, n_queries)) for s in starts]
    workers = default_workers() if workers is None else max(1, int(workers))
    if workers == 1 or len(spans) == 1:
        return [fn(s, e) for s, e in spans]
    with ThreadPoolExecutor(max_workers=min(workers, len(spans))) as pool:
        return list(pool.map(lambda span: fn(*span), spans))


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


def check_k(k):
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
        raise CodeFormatError(f"k must be a positive integer, got {k!r}")
    return int(k)


def topk_words(qwords, dbwords, nbits, k, block_size=None, workers=None):
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
    k = check_k(k)
    qwords, dbwords, nbits = prepare_pair(query_codes, db_codes, bit)
    return topk_words(qwords, dbwords, nbits, k, block_size, workers)


def check_radius(radius):
    if isinstance(radius, bool) or not isinstance(radius, numbers.Real) \
            or not np.isfinite(radius) or radius < 0:
        raise CodeFormatError(f"radius must be a non-negative number, got {radius!r}")
    return radius


def radius_words(qwords, dbwords, nbits, radius, block_size=None):
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
    check_radius(radius)
    qwords, dbwords, nbits = prepare_pair(query_codes, db_codes, bit)
    return radius_words(qwords, dbwords, nbits, radius, block_size)
