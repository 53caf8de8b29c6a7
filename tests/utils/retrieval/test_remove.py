"""Remove by id: every backend that can remove gives the answers of a fresh index of the codes left,
under the ids they were added with (never reused), through save and load; the others refuse in one
line and change nothing."""
import numpy as np
import pytest

from tests.utils.retrieval.test_index import assert_same, assert_same_range, near, random_pm1, vec_dist
from tests.utils.retrieval.test_mih import ref_range_ids, ref_topk_ids
from utils.errors import UserError
from utils.retrieval import HammingIndex

EXACT = ["numpy", "faiss", "auto", "mih"]


def codes(seed, n=900, bits=40):
    rng = np.random.default_rng(seed)
    db = near(rng, random_pm1(rng, 30, bits), n, 5)  # clustered: many ties
    return rng, db, np.concatenate([near(rng, db, 8, 2), random_pm1(rng, 2, bits)])


def check(index, db, queries, held):
    ids = np.array(sorted(held), np.int64)
    dist = vec_dist(queries, db[ids])
    assert index.ids().tolist() == ids.tolist() and len(index) == len(ids)
    for k in (1, 9, 200):
        assert_same(index.search(queries, k), *ref_topk_ids(dist, ids, k))
    for radius in (0, 4, 11):
        assert_same_range(index.range_search(queries, radius), ref_range_ids(dist, ids, radius))


@pytest.mark.parametrize("backend", EXACT)
def test_removed_ids_are_gone_and_the_others_keep_theirs(backend, tmp_path):
    rng, db, queries = codes(31)
    index = HammingIndex(40, backend)
    index.add(db[:600])
    held = set(range(600))
    index.search(queries, 3)  # built lazy tables first: the removal must update them
    index.range_search(queries, 2)
    first = rng.choice(600, 150, replace=False)
    assert index.remove(first) == 450
    held -= set(first.tolist())
    check(index, db, queries, held)
    index.add(db[600:])  # ids continue at 600: removed ids are never given again
    held |= set(range(600, 900))
    check(index, db, queries, held)
    index.remove([0, 899, 650] if 0 in held else [899, 650])
    held -= {0, 899, 650}
    check(index, db, queries, held)
    back = HammingIndex.load(index.save(tmp_path / "r.hidx"))
    check(back, db, queries, held)
    np.testing.assert_array_equal(back.packed_codes(), np.packbits(db[sorted(held)] > 0, axis=1))
    back.remove(back.ids())  # everything
    assert len(back) == 0 and back.search(queries, 5)[1].shape == (len(queries), 0)
    back.add(db[:3])
    assert back.ids().tolist() == [900, 901, 902]


@pytest.mark.parametrize("backend", EXACT)
def test_bad_removals_are_one_line_errors_that_change_nothing(backend):
    _, db, _ = codes(32, 50)
    index = HammingIndex(40, backend)
    index.add(db)
    index.remove([7])
    for bad, fragment in (([7], "cannot remove id 7: not in the index (1 of the 1 ids are not)"),
                          ([1, 50, 60], "cannot remove id 50: not in the index (2 of the 3 ids are not)"),
                          ([-1], "cannot remove id -1"), ([[1, 2]], "ids to remove must be a list of integers"),
                          ([1.5], "ids to remove must be a list of integers")):
        with pytest.raises(UserError, match="^" + fragment.replace("(", r"\(").replace(")", r"\)")):
            index.remove(bad)
        assert len(index) == 49 and 7 not in index.ids()
    assert index.remove([]) == 49


def test_milvus_removes_by_key_and_reconnects_with_the_ids(tmp_path):
    import pymilvus  # noqa: F401  (requirements-dev.txt installs it: a missing install fails, it does not skip)
    rng, db, queries = codes(33, 400, 64)
    index = HammingIndex(64, "milvus", uri=str(tmp_path / "m.db"), collection="removal")
    index.add(db[:300])
    gone = rng.choice(300, 60, replace=False)
    index.remove(gone)
    index.add(db[300:])
    held = set(range(400)) - set(gone.tolist())
    check(index, db, queries, held)
    path = index.save(tmp_path / "m.hidx")
    index._impl.client.close()
    back = HammingIndex.load(path)  # the keys are read back from the server (some are missing now)
    assert back._impl._keys is not None
    check(back, db, queries, held)
