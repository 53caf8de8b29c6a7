"""Near-duplicate pairs and groups (utils.retrieval.duplicates) against all-pairs references."""
import itertools

import numpy as np
import pytest

from utils.retrieval import HammingIndex
from utils.retrieval.duplicates import duplicate_groups, duplicate_pairs, pair_scores


def all_pairs(codes, radius):
    """Every i < j by brute force: the slow, obvious reference."""
    found = []
    for i, j in itertools.combinations(range(len(codes)), 2):
        d = int((codes[i] != codes[j]).sum())
        if d <= radius:
            found.append((i, j, d))
    return found


def components(n, pairs):
    """Groups of two or more by repeated merging of sets (no union-find)."""
    sets = [{i} for i in range(n)]
    for i, j, _ in pairs:
        a = next(s for s in sets if i in s)
        b = next(s for s in sets if j in s)
        if a is not b:
            a |= b
            sets.remove(b)
    return sorted((sorted(s) for s in sets if len(s) > 1), key=lambda g: (-len(g), g[0]))


@pytest.mark.parametrize("radius", [0, 3, 9])
def test_pairs_and_groups_match_the_all_pairs_reference(radius):
    rng = np.random.default_rng(radius)
    base = np.where(rng.random((12, 32)) < 0.5, 1, -1).astype(np.int8)
    codes = np.repeat(base, 3, axis=0)
    flips = rng.random(codes.shape) < 0.06  # copies a few bits away from their original
    codes = np.where(flips, -codes, codes)[rng.permutation(len(codes))]
    pairs = duplicate_pairs(codes, radius, batch=5)  # batches that do not divide the count
    assert [tuple(p) for p in pairs.tolist()] == all_pairs(codes, radius)
    groups = duplicate_groups(codes, pairs)
    assert [list(g.members) for g in groups] == components(len(codes), all_pairs(codes, radius))
    for g in groups:
        assert g.distances == tuple(int((codes[m] != codes[g.members[0]]).sum()) for m in g.members)


def test_a_given_index_must_hold_the_codes():
    codes = np.ones((4, 16), np.int8)
    index = HammingIndex(16)
    index.add(codes[:3])
    with pytest.raises(ValueError, match="holds 3 codes"):
        duplicate_pairs(codes, 1, index=index)
    assert len(duplicate_pairs(codes, 0)) == 6  # four identical codes: every pair


def test_pair_scores_by_hand():
    sources = np.array([0, 0, 0, 1, 1, 2])  # true pairs: 3 + 1 = 4
    found = np.array([[0, 1, 2], [0, 3, 5], [3, 4, 1]])  # two right, one wrong

    def same(i, j):
        return sources[i] == sources[j]

    s = pair_scores(found, same, 4)
    assert s["pairs"] == 3 and s["precision"] == pytest.approx(2 / 3) and s["recall"] == pytest.approx(0.5)
    assert s["f1"] == pytest.approx(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))
    assert pair_scores(np.zeros((0, 3), np.int64), same, 4) == {"pairs": 0, "precision": 1.0, "recall": 0.0,
                                                                 "f1": 0.0}
