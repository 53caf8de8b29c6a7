"""The tables of multi-index hashing (Norouzi, Punjani and Fleet, "Fast Exact Search in Hamming Space
with Multi-Index Hashing", TPAMI 2014): the code cut into m disjoint substrings, one hash table per
substring, each table filing every database item under the value of its substring.

Codes are held as big-endian uint64 words (the first code bit is the most significant bit of the
first word), so a substring is a shift and a mask. A table is dense: offsets [2**width + 1] into
the items sorted by (substring value, database position), so a bucket is a slice and positions
ascend inside it. Tables take new items by an O(n) merge and lose removed ones by an O(n) remap;
neither sorts the database again.
"""
from __future__ import annotations

import math

import numpy as np

from utils.retrieval import tuning


def be_words(packed: np.ndarray) -> np.ndarray:
    """Packed uint8 rows [n, nbytes] -> big-endian uint64 words [n, ceil(nbytes / 8)], zero padded."""
    n, nbytes = packed.shape
    nwords = (nbytes + 7) // 8
    buf = np.zeros((n, nwords * 8), np.uint8)
    buf[:, :nbytes] = packed
    return buf.view(">u8").astype(np.uint64)


def packed_from_words(words: np.ndarray, nbytes: int) -> np.ndarray:
    """Inverse of be_words: uint8 rows [n, nbytes]."""
    rows = np.ascontiguousarray(words.astype(">u8")).view(np.uint8).reshape(len(words), 8 * words.shape[1])
    return np.ascontiguousarray(rows[:, :nbytes])


def substring_layout(bit: int, n: int, substrings: int | None = None) -> list[tuple[int, int, int]]:
    """(word, shift, width) of each substring, none crossing a 64-bit word.

    m = substrings, or Norouzi et al.'s choice m = bit / log2(n) (section 4.3: buckets then hold
    about one item each), with every substring at most tuning.MIH_MAX_WIDTH bits (dense tables).
    """
    if substrings is None:
        substrings = max(1, round(bit / max(1.0, math.log2(max(n, 2)))))
    substrings = max(substrings, -(-bit // tuning.MIH_MAX_WIDTH))
    substrings = min(substrings, bit)
    layout = []
    word_bits = [min(64, bit - lo) for lo in range(0, bit, 64)]
    for word, bits in enumerate(word_bits):
        share = max(1, round(substrings * bits / bit), -(-bits // tuning.MIH_MAX_WIDTH))
        share = min(share, bits)
        lo = 0
        for s in range(share):
            width = bits // share + (1 if s < bits % share else 0)
            layout.append((word, 64 - lo - width, width))
            lo += width
    return layout


def substring_keys(words: np.ndarray, part: tuple[int, int, int]) -> np.ndarray:
    word, shift, width = part
    return ((words[:, word] >> np.uint64(shift)) & np.uint64((1 << width) - 1)).astype(np.int64)


def sorted_positions(keys: np.ndarray, first: int = 0) -> np.ndarray:
    """Positions first, first + 1, ... sorted by (key, position): one sort of (key << 32 | i) words,
    3x faster than numpy's stable argsort (measured on 10M keys)."""
    n = len(keys)
    if n >= 1 << 32:  # positions no longer fit beside the key
        return first + np.argsort(keys, kind="stable")
    packed = (keys.astype(np.uint64) << np.uint64(32)) | np.arange(n, dtype=np.uint64)
    packed.sort()
    return first + (packed & np.uint64(0xFFFFFFFF)).astype(np.int64)


def position_dtype(n: int):
    """int32 positions and offsets while they fit: half the memory of int64."""
    return np.int32 if n < (1 << 31) - 1 else np.int64


class SubstringTables:
    """One dense bucket table per substring over database positions [0, n)."""

    def __init__(self, words: np.ndarray, layout: list[tuple[int, int, int]]):
        self.layout = layout
        self.n = len(words)
        self.offsets: list[np.ndarray] = []
        self.items: list[np.ndarray] = []
        dtype = position_dtype(self.n)
        for part in layout:
            keys = substring_keys(words, part)
            offsets = np.zeros((1 << part[2]) + 1, dtype)
            np.cumsum(np.bincount(keys, minlength=1 << part[2]), out=offsets[1:])
            self.offsets.append(offsets)
            self.items.append(sorted_positions(keys).astype(dtype))

    def memory_bytes(self) -> int:
        return sum(o.nbytes + i.nbytes for o, i in zip(self.offsets, self.items))

    def bucket_of_entries(self, t: int) -> np.ndarray:
        sizes = np.diff(self.offsets[t])
        return np.repeat(np.arange(len(sizes)), sizes)

    def merge(self, words: np.ndarray) -> None:
        """File `words` as positions n, n + 1, ...: after every older item of the same bucket."""
        added = len(words)
        if added == 0:
            return
        dtype = position_dtype(self.n + added)
        for t, part in enumerate(self.layout):
            keys = substring_keys(words, part)
            new_offsets = np.zeros(len(self.offsets[t]), dtype)
            np.cumsum(np.bincount(keys, minlength=len(new_offsets) - 1), out=new_offsets[1:])
            old, old_offsets = self.items[t], self.offsets[t].astype(dtype)
            items = np.empty(len(old) + added, dtype)
            # an old entry moves up by the new items of the buckets before its own
            items[np.arange(len(old)) + new_offsets[self.bucket_of_entries(t)]] = old
            order = sorted_positions(keys, self.n)
            new_keys = keys[order - self.n]
            items[np.arange(added) + old_offsets[new_keys + 1]] = order  # behind the old items of its bucket
            self.items[t] = items
            self.offsets[t] = old_offsets + new_offsets
        self.n += added

    def remove(self, keep: np.ndarray) -> None:
        """Drop positions where keep is False and renumber the rest 0, 1, ... in their order."""
        shift = np.cumsum(~keep)  # removed positions at or before each position
        for t in range(len(self.layout)):
            items = self.items[t]
            alive = keep[items]
            buckets = self.bucket_of_entries(t)[alive]
            offsets = np.zeros_like(self.offsets[t])
            np.cumsum(np.bincount(buckets, minlength=len(offsets) - 1), out=offsets[1:])
            kept = items[alive]
            self.items[t] = (kept - shift[kept]).astype(position_dtype(int(keep.sum())))
            self.offsets[t] = offsets
        self.n = int(keep.sum())
