"""The mih backend (multi-index hashing, Norouzi et al. 2014) against flat references written here:
the same distances and the same tie order (ids ascending) on random and clustered codes, after
adds in chunks, removals, save and load; its tables' merge and remap against a fresh build."""
import math

import numpy as np
import pytest

from tests.utils.retrieval.test_index import assert_same, assert_same_range, near, random_pm1, ref_range, vec_dist
from utils.errors import UserError
from utils.retrieval import HammingIndex, tuning
from utils.retrieval.backends import mih_search
from utils.retrieval.backends.mih_search import masks_of_weight
from utils.retrieval.backends.mih_tables import SubstringTables, be_words, substring_layout


def ref_topk_ids(dist, ids, k):
    """Top-k by (distance, id) with a Python sort per query: (distances, ids) [nq, k]."""
    rows = [sorted(zip(row.tolist(), ids.tolist()))[:k] for row in dist]
    return np.array([[d for d, _ in r] for r in rows]), np.array([[i for _, i in r] for r in rows])


def ref_range_ids(dist, ids, radius):
    return [([d for d, _ in r], [i for _, i in r])
            for r in (sorted((d, i) for d, i in zip(row.tolist(), ids.tolist()) if d <= radius) for row in dist)]


def clustered(rng, n, bits, centres, max_flips):
    """Codes crowding around a few centres (each with 0..max_flips bits flipped): a trained model's
    codes cluster by class like this; duplicates (ties) are common."""
    return near(rng, random_pm1(rng, centres, bits), n, max_flips)


CASES = [(16, "uniform"), (32, "clustered"), (64, "uniform"), (64, "clustered"), (100, "clustered"),
         (128, "uniform")]


@pytest.mark.parametrize("bits,kind", CASES)
def test_mih_equals_the_flat_reference_ties_included(bits, kind):
    rng = np.random.default_rng(bits + len(kind))
    if kind == "uniform":
        db = random_pm1(rng, 3000, bits)
        queries = np.concatenate([random_pm1(rng, 6, bits), near(rng, db, 6, 3)])
    else:
        db = clustered(rng, 3000, bits, 12, 3)
        queries = np.concatenate([near(rng, db, 10, 2), random_pm1(rng, 2, bits)])
    dist = vec_dist(queries, db)
    ids = np.arange(len(db))
    index = HammingIndex(bits, "mih")
    index.add(db)
    for k in (1, 10, 100, 3000):
        assert_same(index.search(queries, k), *ref_topk_ids(dist, ids, k))
    for radius in (0, 1, 2, 3, 6):
        assert_same_range(index.range_search(queries, radius), ref_range(dist, radius))


def test_mih_after_adds_removes_save_and_load(monkeypatch, tmp_path):
    """Codes added after the tables were built wait outside them (scanned) until they are merged in;
    removed ids never come back; ids survive save/load; the answers stay the reference's."""
    monkeypatch.setattr(tuning, "MIH_PENDING_MIN", 300)  # merge after 300 waiting codes
    monkeypatch.setattr(tuning, "MIH_PENDING_FRACTION", 0)
    rng = np.random.default_rng(5)
    db = clustered(rng, 2400, 64, 8, 4)
    queries = np.concatenate([near(rng, db, 12, 2), random_pm1(rng, 3, 64)])
    index = HammingIndex(64, "mih")
    held = []

    def check():
        ids = np.array(sorted(held))
        dist = vec_dist(queries, db[ids])
        assert index.ids().tolist() == ids.tolist() and len(index) == len(ids)
        for k in (1, 7, 60):
            assert_same(index.search(queries, k), *ref_topk_ids(dist, ids, k))
        for radius in (0, 3, 9):
            assert_same_range(index.range_search(queries, radius), ref_range_ids(dist, ids, radius))

    for start, stop in ((0, 1000), (1000, 1200), (1200, 1600), (1600, 2400)):
        index.add(db[start:stop])
        held += range(start, stop)
        check()  # first: tables built; then waiting codes, then a merge (> 300 waiting), then a merge
    gone = rng.choice(2400, 500, replace=False)
    index.remove(gone)
    held = sorted(set(held) - set(gone.tolist()))
    check()
    index.save(tmp_path / "mih.hidx")
    index = HammingIndex.load(tmp_path / "mih.hidx")
    assert index.backend == "mih"
    check()
    extra = clustered(rng, 50, 64, 8, 4)
    db = np.concatenate([db, extra])
    index.add(extra)  # ids continue after the highest ever given: 2400 ..
    held += range(2400, 2450)
    check()


def test_tables_merged_and_remapped_equal_a_fresh_build():
    rng = np.random.default_rng(6)
    packed = np.packbits(clustered(rng, 3000, 64, 30, 6) > 0, axis=1)
    words = be_words(packed)
    layout = substring_layout(64, 3000)
    grown = SubstringTables(words[:1000], layout)
    grown.merge(words[1000:1700])
    grown.merge(words[1700:])
    keep = rng.random(3000) > 0.3
    fresh = SubstringTables(words, layout)
    for a, b in ((grown, fresh), (None, None)):
        if a is None:
            grown.remove(keep)
            a, b = grown, SubstringTables(words[keep], layout)
        assert a.n == b.n
        for t in range(len(layout)):
            np.testing.assert_array_equal(a.offsets[t], b.offsets[t])
            np.testing.assert_array_equal(a.items[t], b.items[t])


@pytest.mark.parametrize("bit,n", [(64, 10_000_000), (64, 1_000_000), (64, 1000), (32, 100_000), (128, 1_000_000),
                                   (20, 50), (100, 10), (8, 1)])
def test_substring_layout_is_a_partition_by_norouzis_rule(bit, n):
    layout = substring_layout(bit, n)
    covered = np.zeros(bit, int)
    for word, shift, width in layout:
        assert 1 <= width <= tuning.MIH_MAX_WIDTH and 0 <= shift and shift + width <= 64
        lo = 64 - shift - width  # first code bit of the substring inside its big-endian word
        covered[word * 64 + lo: word * 64 + lo + width] += 1
    assert covered.tolist() == [1] * bit  # every code bit in exactly one substring, none crossing a word
    want = max(round(bit / max(1.0, math.log2(max(n, 2)))), -(-bit // tuning.MIH_MAX_WIDTH))
    assert abs(len(layout) - min(want, bit)) <= 1  # m = b / log2(n), rounded per 64-bit word
    assert substring_layout(64, n, substrings=5) == substring_layout(64, 1, substrings=5)  # fixed m ignores n
    assert len(substring_layout(64, n, substrings=5)) == 5


def test_masks_of_weight_are_every_value_with_that_popcount():
    for width in (1, 5, 12):
        for weight in range(width + 2):
            want = [v for v in range(1 << width) if bin(v).count("1") == weight]
            assert masks_of_weight(width, weight).tolist() == want


def test_clustered_queries_stay_in_the_tables_and_far_ones_go_to_the_scan(monkeypatch):
    """The cost switch: a query whose next stage costs more than a scan is scanned (still exact)."""
    scanned = []
    real = mih_search.Stages.run

    def run(self, *args):
        out = real(self, *args)
        scanned.append(len(out))
        return out

    monkeypatch.setattr(mih_search.Stages, "run", run)
    rng = np.random.default_rng(7)
    centres = random_pm1(rng, 500, 64)  # clusters of ~40 codes: a query's top-10 shares whole substrings with it
    db = near(rng, centres, 20000, 3)
    index = HammingIndex(64, "mih")
    index.add(db)
    queries = near(rng, centres, 20, 2)
    assert_same(index.search(queries, 10), *ref_topk_ids(vec_dist(queries, db), np.arange(len(db)), 10))
    assert sum(scanned) == 0
    scanned.clear()
    far = random_pm1(rng, 20, 64)  # ~20 bits from everything: the top-10 needs most buckets
    assert_same(index.search(far, 10), *ref_topk_ids(vec_dist(far, db), np.arange(len(db)), 10))
    assert sum(scanned) == 20


def test_mih_options_are_checked_and_saved(tmp_path):
    index = HammingIndex(64, "mih", substrings=3)
    index.add(np.random.default_rng(8).choice([-1, 1], (100, 64)))
    assert index.plan(k=10).startswith("mih multi-index hashing, 3 substrings of 22/21/21 bits")
    assert HammingIndex.load(index.save(tmp_path / "m.hidx"))._impl.substrings == 3
    for bad in (0, 65, "3", True):
        with pytest.raises(UserError, match=r"^mih: substrings must be an integer in \[1, 64\]"):
            HammingIndex(64, "mih", substrings=bad)
