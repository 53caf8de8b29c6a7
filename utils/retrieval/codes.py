"""Binary codes in their three forms, and the uint64 words every distance is computed on.

+-1 (what the network's sign() gives), 0/1, and bit-packed uint8 rows (np.packbits, big-endian
bit order: the first code bit is the most significant bit of the first byte), which is what the
code cache and the index store. A code array is reduced to booleans or packed rows, then to
uint64 words, so a distance is an XOR and a popcount whatever form came in.
"""
import numbers

import numpy as np

from utils.errors import CodeFormatError


def check_bit_count(bit):
    if isinstance(bit, bool) or not isinstance(bit, numbers.Integral) or int(bit) < 1:
        raise CodeFormatError(f"bit must be a positive integer, got {bit!r}")
    return int(bit)


def code_bytes(bit):
    return (bit + 7) // 8


def _packed_bytes(arr):
    """Integer packed rows as uint8, refusing values outside 0..255 (the one check of packed input)."""
    if arr.dtype != np.uint8 and arr.size and (arr.min() < 0 or arr.max() > 255):
        raise CodeFormatError(f"packed codes must hold bytes 0..255, got values in [{arr.min()}, {arr.max()}]")
    return arr.astype(np.uint8, copy=False)


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
        raise CodeFormatError(f"codes must be a [n, K] array or a single [K] code, got shape {arr.shape}")
    if arr.dtype.kind not in "biuf":
        raise CodeFormatError(f"codes must be numeric (+-1, 0/1 or packed uint8), got dtype {arr.dtype}")

    if bit is not None:
        bit = check_bit_count(bit)
        nbytes = code_bytes(bit)
        if arr.shape[1] == nbytes and arr.dtype.kind in "iu":
            return np.unpackbits(_packed_bytes(arr), axis=1, count=bit).astype(bool)
        if arr.shape[1] != bit:
            raise CodeFormatError(f"codes have {arr.shape[1]} columns, but bit={bit} needs {nbytes} "
                                  f"packed uint8 columns or {bit} unpacked ones")

    if arr.shape[1] == 0:
        raise CodeFormatError("codes have 0 bits")
    if arr.dtype.kind == "b":
        return arr.copy()
    if arr.dtype.kind == "f" and np.isnan(arr).any():
        raise CodeFormatError("codes contain NaN")
    return arr > 0


def as_bits(codes, bit, what):
    """to_bits, with `what` ("query codes", ...) in front of the error."""
    try:
        return to_bits(codes, bit)
    except CodeFormatError as exc:
        raise CodeFormatError(f"{what}: {exc}") from None


def pack_codes(codes, bit=None):
    """Pack codes into uint8 rows [n, ceil(K/8)]: 1/8 of the bool size on disk."""
    return np.packbits(to_bits(codes, bit), axis=1)


def unpack_codes(packed, bit):
    """Inverse of pack_codes: int8 +-1 codes [n, bit]."""
    bits = to_bits(packed, check_bit_count(bit))
    return np.where(bits, np.int8(1), np.int8(-1))


def packed_rows(codes, bit, what="codes"):
    """Codes in any accepted form -> C-contiguous uint8 [n, ceil(bit/8)], padding bits zero.

    Packed input (integer [n, ceil(bit/8)]) is taken as is, apart from its padding bits;
    anything else goes through to_bits (+-1, 0/1, bool, real-valued by sign).
    """
    bit = check_bit_count(bit)
    nbytes = code_bytes(bit)
    arr = np.asarray(codes)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim == 2 and arr.shape[1] == nbytes and arr.dtype.kind in "iu":
        try:
            out = np.array(_packed_bytes(arr), dtype=np.uint8, order="C", copy=True)
        except CodeFormatError as exc:
            raise CodeFormatError(f"{what}: {exc}") from None
        if bit % 8 and len(out):
            out[:, -1] &= np.uint8((0xFF << (8 - bit % 8)) & 0xFF)
        return out
    return np.ascontiguousarray(np.packbits(as_bits(arr, bit, what), axis=1))


def packed_to_words(packed):
    """uint8 rows [n, nbytes] -> uint64 words [n, ceil(nbytes/8)] (same bytes, zero padded).

    Zero padding keeps XOR/popcount exact; the word byte order does not matter because a
    popcount does not care where the bits are.
    """
    n, nbytes = packed.shape
    nwords = (nbytes + 7) // 8
    if nbytes == nwords * 8:
        return np.ascontiguousarray(packed).view(np.uint64)
    buf = np.zeros((n, nwords * 8), np.uint8)
    buf[:, :nbytes] = packed
    return buf.view(np.uint64)


def bits_to_words(bits):
    """Bool rows [n, K] -> uint64 words [n, ceil(K/64)] (zero padded): packed_to_words of their packbits."""
    return packed_to_words(np.packbits(bits, axis=1))


def format_code(code):
    """One code (+-1, 0/1 or real-valued by sign) as (bit string, hex string), the forms predict.py,
    infer.py and the search service print: '1011...', 'b...' (the bits read as one big-endian number)."""
    bits = "".join("1" if b > 0 else "0" for b in np.asarray(code).reshape(-1))
    return bits, f"{int(bits, 2):0{(len(bits) + 3) // 4}x}"
