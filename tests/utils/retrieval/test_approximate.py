"""Approximate backends: faiss IndexBinaryHNSW and IndexBinaryIVF (and Milvus BIN_IVF_FLAT). They may miss
items, so they are checked for what they do promise: recall on small clustered data, exact distances of
what they return, rows ranked by (distance, id) with missing places last, the label "approximate", and
their state (graph, trained lists) coming back from an index file."""
from collections import Counter

import numpy as np
import pytest

from tests.utils.retrieval.test_index import near, random_pm1, vec_dist
from utils.errors import UserError
from utils.retrieval import HammingIndex


def recall(dist, exact_dist):
    """recall@k with ties: the share of the exact top-k distances (as a multiset) that the answer
    holds; any item at the k-th distance is as good as another."""
    return np.mean([sum((Counter(a.tolist()) & Counter(b.tolist())).values()) / len(b)
                    for a, b in zip(dist, exact_dist)])


@pytest.fixture(scope="module")
def clustered():
    rng = np.random.default_rng(21)
    db = near(rng, random_pm1(rng, 100, 64), 4000, 6)
    queries = near(rng, db, 60, 3)
    exact = np.sort(vec_dist(queries, db), axis=1)[:, :10]
    return db, queries, exact


def check_rows(index, queries, db, k):
    """Distances exact for what was found, rows ranked by (distance, id), -1 places last."""
    dist, idx = index.search(queries, k)
    assert dist.dtype == np.int32 and idx.dtype == np.int64 and dist.shape == (len(queries), k)
    full = vec_dist(queries, db)
    for row, (d, i) in enumerate(zip(dist, idx)):
        found = i >= 0
        assert (d[~found] == -1).all() and found.tolist() == sorted(found.tolist(), reverse=True)
        assert d[found].tolist() == full[row, i[found]].tolist()
        assert list(zip(d[found], i[found])) == sorted(zip(d[found], i[found]))
    return dist, idx


@pytest.mark.parametrize("backend, options, floor", [("hnsw", {}, 0.95), ("ivf", {}, 0.9),
                                                     ("ivf", {"nlist": 16, "nprobe": 16}, 1.0)])
def test_recall_on_small_clustered_data(clustered, backend, options, floor):
    db, queries, exact = clustered
    index = HammingIndex(64, backend, threads=1, **options)
    index.add(db[:2500])
    index.add(db[2500:])
    assert not index.exact and index.plan(k=10).startswith("approximate: faiss IndexBinary")
    dist, _ = check_rows(index, queries, db, 10)
    assert recall(dist, exact) >= floor  # nprobe = nlist probes every list: the distances are the exact ones


def test_ivf_trains_on_a_sample_at_the_first_search_and_adds_later_codes_to_its_lists(clustered):
    db, queries, exact = clustered
    index = HammingIndex(64, "ivf", threads=1, nlist=32, train_size=500)
    index.add(db[:3000])
    assert "trained at the first search" in index.plan(k=10) and index._impl.index is None
    index.search(queries[:1], 1)
    assert index._impl.index.is_trained and index._impl.index.ntotal == 3000
    index.add(db[3000:])
    assert index._impl.index.ntotal == 4000 and "trained" not in index.plan(k=10)
    assert index.plan(k=10) == "approximate: faiss IndexBinaryIVF (nlist=32, nprobe=2)"  # nprobe: nlist / 16


def test_ivf_holes_are_minus_one_at_the_end_of_the_row():
    rng = np.random.default_rng(22)
    db = random_pm1(rng, 300, 64)
    index = HammingIndex(64, "ivf", threads=1, nlist=64, nprobe=1)  # ~5 codes a list: a top-50 finds a few
    index.add(db)
    dist, idx = check_rows(index, db[:5], db, 50)
    assert (idx == -1).any() and (idx[:, 0] == np.arange(5)).all()


@pytest.mark.parametrize("backend", ["hnsw", "ivf"])
def test_state_and_ids_come_back_from_the_index_file(clustered, backend, tmp_path):
    db, queries, _ = clustered
    index = HammingIndex(64, backend, threads=1, **({"nlist": 20} if backend == "ivf" else {"m": 16}))
    index.add(db)
    before = index.search(queries, 10)
    if backend == "ivf":
        index.remove(np.arange(0, 4000, 7))
        before = index.search(queries, 10)
    back = HammingIndex.load(index.save(tmp_path / "a.hidx"), threads=1)
    assert (back.backend, back.exact, len(back)) == (backend, False, len(index))
    assert back.plan(k=10) == index.plan(k=10)  # same M / nlist and nprobe, no training again
    np.testing.assert_array_equal(back.ids(), index.ids())
    for got, want in zip(back.search(queries, 10), before):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(back.packed_codes(), index.packed_codes())


@pytest.mark.parametrize("backend", ["hnsw", "ivf"])
def test_range_search_is_a_subset_of_the_exact_one(clustered, backend):
    db, queries, _ = clustered
    index = HammingIndex(64, backend, threads=1)
    index.add(db)
    full = vec_dist(queries, db)
    for radius in (0, 4, 9):
        for row, (d, i) in enumerate(index.range_search(queries, radius)):
            assert d.dtype == np.int32 and i.dtype == np.int64 and (d <= radius).all()
            assert d.tolist() == full[row, i].tolist() and list(zip(d, i)) == sorted(zip(d, i))
            assert len(i) <= (full[row] <= radius).sum()


def test_hnsw_cannot_remove_in_one_line_and_keeps_its_codes():
    index = HammingIndex(64, "hnsw")
    index.add(random_pm1(np.random.default_rng(23), 50, 64))
    with pytest.raises(UserError, match=r"^index backend 'hnsw' cannot remove codes \(faiss IndexBinaryHNSW has no "
                                        r"removal; PP-ShiTu's HNSW32 neither\)") as info:
        index.remove([3])
    assert "\n" not in str(info.value) and len(index) == 50 and index.ids().tolist() == list(range(50))


def test_hnsw_graph_settings_come_back_from_the_index_file(tmp_path):
    """M and efConstruction are saved (header and graph); efConstruction given at load applies to later
    adds; another M than the graph's is refused in one line."""
    rng = np.random.default_rng(24)
    index = HammingIndex(64, "hnsw", threads=1, m=8, ef_construction=90)
    index.add(random_pm1(rng, 200, 64))
    path = index.save(tmp_path / "g.hidx")
    back = HammingIndex.load(path, threads=1)
    assert back._impl.options() == {"m": 8, "ef_search": 256, "ef_construction": 90}
    assert (back._impl.index.hnsw.efConstruction, back._impl.index.hnsw.nb_neighbors(1)) == (90, 8)
    wider = HammingIndex.load(path, threads=1, ef_construction=150)
    assert wider._impl.index.hnsw.efConstruction == 150 and wider._impl.options()["ef_construction"] == 150
    with pytest.raises(UserError, match=r"^the saved HNSW graph has M=8, m=32 was asked: a graph's M is fixed") as info:
        HammingIndex.load(path, threads=1, m=32)
    assert "\n" not in str(info.value)


def test_bad_approximate_options_are_one_line_errors():
    with pytest.raises(UserError, match=r"^index backend 'hnsw': m must be a positive integer, got 0"):
        HammingIndex(64, "hnsw", m=0)
    with pytest.raises(UserError, match=r"^index backend 'hnsw': ef_construction must be a positive integer, got -1"):
        HammingIndex(64, "hnsw", ef_construction=-1)
    with pytest.raises(UserError, match=r"^index backend 'ivf': nprobe must be a positive integer, got 'x'"):
        HammingIndex(64, "ivf", nprobe="x")


# --------------------------------------------------------------------------
# Milvus BIN_IVF_FLAT: milvus-lite 2.5 (what runs here) has BIN_FLAT only


def test_milvus_lite_refuses_bin_ivf_flat_in_one_line(tmp_path):
    import pymilvus  # noqa: F401  (requirements-dev.txt installs it: a missing install fails, it does not skip)
    with pytest.raises(UserError, match=r"cannot create a BIN_IVF_FLAT collection \(milvus-lite, a local file, has "
                                        r"BIN_FLAT only: use a Milvus server\)") as info:
        HammingIndex(64, "milvus", uri=str(tmp_path / "m.db"), collection="ivf", index_type="BIN_IVF_FLAT")
    assert "\n" not in str(info.value)
    with pytest.raises(UserError, match=r"^milvus: nlist and nprobe apply to index_type BIN_IVF_FLAT only"):
        HammingIndex(64, "milvus", uri=str(tmp_path / "m.db"), nlist=8)
    with pytest.raises(UserError, match=r"^milvus: index_type must be one of BIN_FLAT, BIN_IVF_FLAT"):
        HammingIndex(64, "milvus", uri=str(tmp_path / "m.db"), index_type="HNSW")


def test_milvus_bin_ivf_flat_sends_nlist_and_nprobe(tmp_path, monkeypatch):
    """What a Milvus server receives for BIN_IVF_FLAT, recorded on the way to milvus-lite (which then
    builds BIN_FLAT, so the answers are checked against the exact index; the server-side IVF is not)."""
    import pymilvus

    sent = {}
    real_create, real_search = pymilvus.MilvusClient.create_collection, pymilvus.MilvusClient.search

    def create_collection(self, name, schema=None, index_params=None, **kw):
        sent["index"] = [(p.index_type, dict(vars(p)["_configs"])) for p in index_params]
        flat = self.prepare_index_params()
        flat.add_index(field_name="code", index_type="BIN_FLAT", metric_type="HAMMING")
        return real_create(self, name, schema=schema, index_params=flat, **kw)

    def search(self, *args, search_params=None, **kw):
        sent.setdefault("search", []).append(search_params)
        return real_search(self, *args, search_params=search_params, **kw)

    monkeypatch.setattr(pymilvus.MilvusClient, "create_collection", create_collection)
    monkeypatch.setattr(pymilvus.MilvusClient, "search", search)
    monkeypatch.setattr(pymilvus.MilvusClient, "describe_index", lambda self, *a, **k: {"index_type": "BIN_IVF_FLAT"})
    rng = np.random.default_rng(24)
    db, queries = random_pm1(rng, 500, 64), random_pm1(rng, 4, 64)
    index = HammingIndex(64, "milvus", uri=str(tmp_path / "m.db"), collection="ivf", index_type="BIN_IVF_FLAT",
                         nlist=64, nprobe=8)
    index.add(db)
    assert sent["index"] == [("BIN_IVF_FLAT", {"nlist": 64, "metric_type": "HAMMING"})]
    assert not index.exact and index.plan(k=5) == "approximate: milvus BIN_IVF_FLAT (nlist=64, nprobe=8)"
    exact = HammingIndex(64, "numpy")
    exact.add(db)
    for got, want in zip(index.search(queries, 5), exact.search(queries, 5)):
        np.testing.assert_array_equal(got, want)
    index.range_search(queries, 20)
    assert sent["search"] == [{"metric_type": "HAMMING", "params": {"nprobe": 8}},
                              {"metric_type": "HAMMING", "params": {"radius": 21, "range_filter": 0, "nprobe": 8}}]
    path = index.save(tmp_path / "m.hidx")
    index._impl.client.close()
    back = HammingIndex.load(path)  # reconnects with the same index type, nlist and nprobe
    assert back.plan(k=5) == index.plan(k=5) and len(back) == 500
