"""Near-duplicates from codes: the pairs of images within a Hamming radius (the index's radius
search, so the work grows with the matches, not with all pairs), and the groups they join.

A group is a connected component of the pair graph (single linkage): A ~ B and B ~ C put A, B and C
in one group even when A and C are further apart than the radius; each member records its
distance to the group's first member, so such chains show.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

import numpy as np

from utils.retrieval.index import HammingIndex


@dataclasses.dataclass(frozen=True)
class DuplicateGroup:
    members: tuple[int, ...]          # indices into the codes, ascending
    distances: tuple[int, ...]        # each member's Hamming distance to members[0]


def duplicate_pairs(codes: Any, radius: int, index: HammingIndex | None = None, batch: int = 4096,
                    progress: Callable[[int], Any] | None = None) -> np.ndarray:
    """Every pair (i, j, distance), i < j, whose codes are within `radius` (inclusive): int64 [m, 3],
    sorted by (i, j). `index`: a HammingIndex holding exactly `codes` in order (built when None);
    progress(n) is called after every batch of n queries."""
    codes = np.asarray(codes)
    if index is None:
        index = HammingIndex(codes.shape[1])
        index.add(codes)
    if len(index) != len(codes):
        raise ValueError(f"the index holds {len(index)} codes, not the {len(codes)} given")
    found = []
    for start in range(0, len(codes), batch):
        hits = index.range_search(codes[start:start + batch], radius)
        for offset, (distances, ids) in enumerate(hits):
            i = start + offset
            later = ids > i
            if later.any():
                j = ids[later]
                found.append(np.stack([np.full(len(j), i), j, distances[later]], axis=1).astype(np.int64))
        if progress is not None:
            progress(min(batch, len(codes) - start))
    if not found:
        return np.zeros((0, 3), np.int64)
    pairs = np.concatenate(found)
    return pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))]


def duplicate_groups(codes: Any, pairs: np.ndarray) -> list[DuplicateGroup]:
    """The groups (two members or more) that `pairs` join, largest first, then by first member."""
    codes = np.asarray(codes)
    parent = np.arange(len(codes))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return int(i)

    for i, j, _ in pairs:
        a, b = root(int(i)), root(int(j))
        if a != b:
            parent[max(a, b)] = min(a, b)
    roots = np.array([root(i) for i in range(len(codes))], dtype=np.int64)
    groups = []
    for r in np.unique(roots):
        members = np.flatnonzero(roots == r)
        if len(members) < 2:
            continue
        first = codes[members[0]]
        distances = (codes[members] != first).sum(axis=1)
        groups.append(DuplicateGroup(tuple(int(m) for m in members), tuple(int(d) for d in distances)))
    groups.sort(key=lambda g: (-len(g.members), g.members[0]))
    return groups


def pair_scores(pairs: np.ndarray, same: Callable[[np.ndarray, np.ndarray], np.ndarray],
                true_pairs: int) -> dict[str, float]:
    """Precision, recall and F1 of found `pairs` against the truth: same(i, j) -> bool array says which
    found pairs are true duplicates; true_pairs: how many true pairs there are."""
    hits = int(same(pairs[:, 0], pairs[:, 1]).sum()) if len(pairs) else 0
    precision = hits / len(pairs) if len(pairs) else 1.0
    recall = hits / true_pairs if true_pairs else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"pairs": len(pairs), "precision": precision, "recall": recall, "f1": f1}
