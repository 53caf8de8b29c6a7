"""Binary codes and exact Hamming search (numpy only).

Codes travel in three forms: +-1 (what the network's sign() gives), 0/1, and
bit-packed uint8 rows (np.packbits, big-endian bit order: the first code bit is
the most significant bit of the first byte), which is what the database cache
stores. Everything here first reduces a code array to booleans, then to uint64
words, so distances are an XOR and a popcount whatever form came in.

Ordering contract (shared with utils.metrics, DESIGN.md section 5): results are
ranked by Hamming distance and ties go to the lower database index, so the
answer never depends on the sort algorithm, the block size or the thread count.
"""
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


def hamming_topk(query_codes, db_codes, k, bit=None, *, block_size=None, workers=None):
    """Exact k nearest database items per query: (distances [nq, k], indices [nq, k]).

    Ties go to the lower database index; k past the database size is clipped.
    Distances are uint16, indices int64.
    """
    k = _check_k(k)
    qwords, dbwords, nbits = prepare_pair(query_codes, db_codes, bit)
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


def hamming_radius(query_codes, db_codes, radius, bit=None, *, block_size=None):
    """Every database item within `radius` (inclusive) of each query.

    Returns one (distances, indices) pair per query, sorted by (distance, index).
    """
    if isinstance(radius, bool) or not isinstance(radius, numbers.Real) \
            or not np.isfinite(radius) or radius < 0:
        raise UserError(f"radius must be a non-negative number, got {radius!r}")
    qwords, dbwords, nbits = prepare_pair(query_codes, db_codes, bit)
    nq, ndb = qwords.shape[0], dbwords.shape[0]
    results = []
    rows = block_rows(ndb, block_size)
    for s in range(0, nq, rows):
        dist = distance_block(qwords[s:s + rows], dbwords, nbits)
        for row in dist:
            idx = np.flatnonzero(row <= radius)
            d = row[idx]
            order = np.argsort(d, kind="stable")
            results.append((d[order].astype(np.uint16), idx[order]))
    return results
