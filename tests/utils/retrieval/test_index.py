"""utils.retrieval.HammingIndex: every backend and strategy against slow references written here.

The contract: exact distances, and ties broken by database index ascending (docs/architecture.md),
for top-k and for radius search, whatever the backend, the strategy inside it (flat scan, bucket
table, multi-index hashing), the thread count or the chunks the database was added in.
"""
import os
import sys

import numpy as np
import pytest

from tests.utils.retrieval.test_codes_and_scan import ref_topk  # the per-query sorted() reference
from utils.errors import UserError
from utils.retrieval import index_file, tuning
from utils.retrieval.backends import auto
from utils.retrieval import backend_names, BACKENDS, HammingIndex

faiss = pytest.importorskip("faiss")  # in requirements.txt; the numpy-only paths are tested below too


# --------------------------------------------------------------------------
# references


def ref_dist(q, d):
    """Pair-by-pair Hamming distance with Python loops (q, d: +-1 rows)."""
    q01, d01 = (q > 0).tolist(), (d > 0).tolist()
    return [[sum(a != b for a, b in zip(x, y)) for y in d01] for x in q01]


def ref_range(dist, radius):
    out = []
    for row in dist:
        order = sorted((j for j in range(len(row)) if row[j] <= radius), key=lambda j: (row[j], j))
        out.append(([row[j] for j in order], order))
    return out


def vec_dist(q, d):
    """Vectorised reference for the larger cases: count differing bits of unpacked codes."""
    return ((q[:, None, :] > 0) != (d[None, :, :] > 0)).sum(axis=2)


def vec_topk(dist, k):
    idx = np.arange(dist.shape[1])
    order = np.stack([np.lexsort((idx, row))[:k] for row in dist])
    return np.take_along_axis(dist, order, axis=1), order


def random_pm1(rng, n, k, distinct=None):
    """+-1 codes; with `distinct`, drawn from a small pool so distances tie a lot."""
    if distinct is None:
        return rng.choice(np.array([-1, 1], np.int8), (n, k))
    pool = rng.choice(np.array([-1, 1], np.int8), (distinct, k))
    return pool[rng.integers(0, distinct, n)]


def near(rng, codes, n, max_flips):
    """n copies of random rows of `codes` with up to max_flips bits flipped: queries with hits."""
    out = codes[rng.integers(0, len(codes), n)].copy()
    for row in out:
        flips = rng.choice(out.shape[1], rng.integers(0, max_flips + 1), replace=False)
        row[flips] *= -1
    return out


def assert_same(got, want_d, want_i):
    dist, idx = got
    assert dist.dtype == np.int32 and idx.dtype == np.int64
    np.testing.assert_array_equal(idx, want_i)
    np.testing.assert_array_equal(dist, want_d)


def assert_same_range(got, want):
    assert len(got) == len(want)
    for (gd, gi), (wd, wi) in zip(got, want):
        assert gd.dtype == np.int32 and gi.dtype == np.int64
        assert gi.tolist() == list(wi)
        assert gd.tolist() == list(wd)


# strategies inside a backend, forced through the cost-model knobs (utils/retrieval/tuning.py)
INF = float("inf")
STRATEGIES = {
    "numpy-scan": ("numpy", {"TABLE_PROBE_FACTOR": INF, "NUMPY_HASH_COST": INF}),
    "numpy-hash": ("numpy", {"TABLE_PROBE_FACTOR": 0, "NUMPY_HASH_COST": 0}),
    "numpy-default": ("numpy", {}),
    "faiss-scan": ("faiss", {"FAISS_HASH_COST": INF}),
    "faiss-hash": ("faiss", {"FAISS_HASH_COST": 0}),
    "faiss-heap": ("faiss", {"FAISS_COUNTING_BYTES": 0}),  # faiss' heap search instead of counting
    "auto-default": ("auto", {}),
    "auto-numpy": ("auto", {"TABLE_PROBE_FACTOR": 0, "NUMPY_HASH_COST": 0}),
    "auto-faiss": ("auto", {"TABLE_PROBE_FACTOR": INF, "NUMPY_HASH_COST": INF}),
    "mih-default": ("mih", {}),
    "mih-hashing-only": ("mih", {"MIH_CANDIDATE_COST": 0, "MIH_PROBE_COST": 0}),  # never hands over to the scan
    "mih-scan-only": ("mih", {"MIH_PROBE_COST": 1e15}),  # every query handed over to the scan
    "mih-wide": ("mih", {"MIH_MAX_WIDTH": 4}),  # many narrow substrings
}


@pytest.fixture(params=list(STRATEGIES))
def strategy(request, monkeypatch):
    backend, knobs = STRATEGIES[request.param]
    for name, value in knobs.items():
        monkeypatch.setattr(tuning, name, value)
    return backend


# --------------------------------------------------------------------------
# top-k and radius against the pair-by-pair reference


@pytest.mark.parametrize("bits,distinct", [(8, 3), (12, None), (16, 6), (16, None), (20, 9), (33, None),
                                           (64, 5), (64, None), (100, 7)])
def test_search_matches_pair_by_pair_reference(strategy, bits, distinct):
    rng = np.random.default_rng(bits * 31 + (distinct or 0))
    db = random_pm1(rng, 90, bits, distinct)
    queries = np.concatenate([random_pm1(rng, 5, bits, distinct), near(rng, db, 5, 2)])
    dist = ref_dist(queries, db)
    index = HammingIndex(bits, strategy)
    index.add(db)
    for k in (1, 7, 40, 90, 500):
        assert_same(index.search(queries, k), *ref_topk(dist, k))
    for radius in (0, 1, 2, 3, 5, bits):
        assert_same_range(index.range_search(queries, radius), ref_range(dist, radius))


@pytest.mark.parametrize("bits", [16, 24, 32, 48, 64])
def test_radius_hashing_is_exact_against_a_flat_scan(bits, monkeypatch):
    """faiss IndexBinaryMultiHash and numpy multi-index hashing vs faiss' own flat range scan,
    on a database big enough that buckets hold many items, radius up to past the pigeonhole
    step (nflip > 0)."""
    rng = np.random.default_rng(bits)
    db = random_pm1(rng, 20000, bits, 3000)
    queries = np.concatenate([near(rng, db, 30, 6), random_pm1(rng, 10, bits)])
    packed = np.packbits(db > 0, axis=1)
    flat = faiss.IndexBinaryFlat(packed.shape[1] * 8)
    flat.add(packed)
    monkeypatch.setattr(tuning, "NUMPY_HASH_COST", 0)
    monkeypatch.setattr(tuning, "FAISS_HASH_COST", 0)
    indexes = [HammingIndex(bits, name) for name in ("faiss", "numpy")]
    for index in indexes:
        index.add(db)
    for radius in (0, 1, 2, 3, 5, 7):
        lims, d, i = flat.range_search(np.packbits(queries > 0, axis=1), radius + 1)
        want = []
        for a, b in zip(lims[:-1], lims[1:]):
            order = np.lexsort((i[a:b], d[a:b]))
            want.append((d[a:b][order].tolist(), i[a:b][order].tolist()))
        assert sum(len(w[1]) for w in want) > 0
        for index in indexes:
            assert index._impl.use_hash(radius)
            assert_same_range(index.range_search(queries, radius), want)


def test_numpy_radius_hashing_in_blocks_of_bounded_candidates(monkeypatch):
    """Queries split into blocks of at most HASH_GATHER_ITEMS candidates (a query over it alone): the
    same answers as one block, against faiss' flat range scan, on clustered codes."""
    from utils.retrieval.backends.numpy import gather_blocks

    pairs = np.array([3, 0, 9, 2, 2, 11, 1, 4])
    blocks = list(gather_blocks(pairs, 3, 5))
    assert [b for _, b in blocks][-1] == len(pairs) and all(a == b for (_, a), (b, _) in zip(blocks, blocks[1:]))
    for s, e in blocks:  # the slow rule: a block is one query, or the most that fit the budget and the rows
        assert e - s == 1 or (pairs[s:e].sum() <= 5 and e - s <= 3)
        assert e == len(pairs) or e - s == 3 or pairs[s:e + 1].sum() > 5
    rng = np.random.default_rng(5)
    db = random_pm1(rng, 20000, 64, 300)
    queries = np.concatenate([near(rng, db, 40, 3), random_pm1(rng, 5, 64)])
    flat = faiss.IndexBinaryFlat(64)
    flat.add(np.packbits(db > 0, axis=1))
    monkeypatch.setattr(tuning, "NUMPY_HASH_COST", 0)
    monkeypatch.setattr(tuning, "HASH_GATHER_ITEMS", 500)  # ~70 candidates a query per chunk: many blocks
    index = HammingIndex(64, "numpy")
    index.add(db)
    for radius in (0, 2, 3):
        lims, d, i = flat.range_search(np.packbits(queries > 0, axis=1), radius + 1)
        want = [(d[a:b][np.lexsort((i[a:b], d[a:b]))].tolist(), i[a:b][np.lexsort((i[a:b], d[a:b]))].tolist())
                for a, b in zip(lims[:-1], lims[1:])]
        assert sum(len(w[1]) for w in want) > 0
        assert_same_range(index.range_search(queries, radius), want)


def test_faiss_ties_follow_index_order_on_a_large_database(monkeypatch):
    """The boundary of a top-k (which of the items at the k-th distance get in) is where tie
    rules differ. 70k codes (more than faiss' 65,536-code scan block), 16 bits from a pool of 40,
    so every distance is shared by thousands of items; heap and counting search; 1 and 2 threads;
    one query and a batch."""
    rng = np.random.default_rng(0)
    db = random_pm1(rng, 70000, 16, 40)
    queries = random_pm1(rng, 6, 16)
    want_d, want_i = vec_topk(vec_dist(queries, db), 300)
    for counting_bytes in (0, 1 << 40):
        monkeypatch.setattr(tuning, "FAISS_COUNTING_BYTES", counting_bytes)
        for threads in (1, 2):
            index = HammingIndex(16, "faiss", threads=threads)
            index.add(db)
            for k in (1, 10, 300):
                assert_same(index.search(queries, k), want_d[:, :k], want_i[:, :k])
                assert_same(index.search(queries[:1], k), want_d[:1, :k], want_i[:1, :k])


def test_faiss_rows_are_reordered_by_index_whatever_faiss_returns():
    """Within the k returned items, equal distances come out in index order even when faiss
    hands them back shuffled (as older faiss versions and other scan orders do)."""
    rng = np.random.default_rng(1)
    db = random_pm1(rng, 500, 32, 4)
    queries = random_pm1(rng, 5, 32)
    index = HammingIndex(32, "faiss")
    index.add(db)
    want = index.search(queries, 50)
    real_search = index._impl.flat.search

    class Shuffling:
        def __init__(self, flat):
            self.flat = flat

        def __getattr__(self, name):
            return getattr(self.flat, name)

        def __setattr__(self, name, value):
            if name == "flat":
                object.__setattr__(self, name, value)
            else:
                setattr(self.flat, name, value)

        def search(self, q, k):
            d, i = real_search(q, k)
            perm = rng.permutation(k)
            return d[:, perm], i[:, perm]

    index._impl.flat = Shuffling(index._impl.flat)
    got = index.search(queries, 50)
    assert_same(got, *want)


def test_numpy_bucket_table_on_a_database_with_huge_buckets(monkeypatch):
    """16-bit table search where a few code values hold thousands of items each."""
    monkeypatch.setattr(tuning, "GATHER_ITEMS", 5000)  # several gather rounds
    rng = np.random.default_rng(2)
    db = random_pm1(rng, 30000, 16, 12)
    queries = np.concatenate([random_pm1(rng, 8, 16), db[:4]])
    index = HammingIndex(16, "numpy")
    index.add(db)
    want_d, want_i = vec_topk(vec_dist(queries, db), 2500)
    for k in (1, 100, 2500):
        assert index._impl.use_table(k)
        assert_same(index.search(queries, k), want_d[:, :k], want_i[:, :k])


def test_auto_plans_the_measured_fastest_path():
    rng = np.random.default_rng(7)
    small, big = HammingIndex(16), HammingIndex(64)
    assert small.backend == big.backend == "auto"
    small.add(random_pm1(rng, 70000, 16))
    big.add(random_pm1(rng, 70000, 64))
    untimed = "; not timed yet (the first "  # 70,000 codes: the first search of >= 32 queries times the paths
    assert small.plan(k=100).startswith("numpy bucket table" + untimed)
    assert big.plan(k=100).startswith("faiss IndexBinaryFlat (heap search)" + untimed)
    assert big.plan(radius=2).startswith("numpy multi-index hashing" + untimed)
    assert big.plan(radius=30).startswith("faiss IndexBinaryFlat range scan" + untimed)
    tiny = HammingIndex(16)
    tiny.add(random_pm1(rng, 50, 16))
    assert tiny.plan(k=10) == "faiss IndexBinaryFlat (heap search)"  # too few items per code value for the table
    with pytest.raises(UserError, match="k or radius"):
        big.plan()


def slowed_candidates(monkeypatch, slow, method="candidates"):
    """Make the named top-k (or radius: method="range_candidates") paths of every AutoBackend 150 ms
    slower (from the test only; 30 ms was within what mih itself took for 32 queries at load 13)."""
    import time

    real = getattr(auto.AutoBackend, method)

    def candidates(self, *args):
        out = real(self, *args)
        for name in slow:
            fn = out[name]
            out[name] = lambda q, kk, fn=fn: (time.sleep(0.15), fn(q, kk))[1]
        return out

    monkeypatch.setattr(auto.AutoBackend, method, candidates)


TOPK_PATHS = ("faiss heap", "faiss counting", "numpy flat scan", "mih")


@pytest.mark.parametrize("expected", TOPK_PATHS)
def test_auto_times_the_flat_top_k_candidates_and_keeps_the_fastest(monkeypatch, expected):
    slowed_candidates(monkeypatch, [p for p in TOPK_PATHS if p != expected])
    monkeypatch.setattr(tuning, "TIMING_MIN_ITEMS", 1000)
    rng = np.random.default_rng(11)
    db = random_pm1(rng, 3000, 64, 400)
    queries = np.concatenate([random_pm1(rng, 30, 64), near(rng, db, 30, 3)])
    index = HammingIndex(64, threads=1)  # one faiss thread: OpenMP threads on busy cores can stall for 30 ms
    index.add(db)
    few = index.search(queries[:3], 5)  # too few queries to time the candidates: faiss' default
    assert index.plan(k=5).startswith("faiss IndexBinaryFlat (heap search); not timed yet")
    got = index.search(queries, 5)  # >= 32 queries: times each candidate, keeps the fastest
    assert index._impl.timed[8][0] == expected, index._impl.timed
    assert index.plan(k=5).split(";")[0].split(",")[0] == {
        "faiss heap": "faiss IndexBinaryFlat (heap search)", "faiss counting": "faiss IndexBinaryFlat (counting search)",
        "numpy flat scan": "numpy flat scan", "mih": "mih multi-index hashing"}[expected]
    assert (index._impl._mih is not None) == (expected == "mih")  # mih's tables are kept only while it is chosen
    assert "timed fastest here" in index.plan(k=5) and index.plan(k=100).split(";")[1].startswith(" not timed")
    want_d, want_i = vec_topk(vec_dist(queries, db), 5)
    assert_same(got, want_d, want_i)
    assert_same(few, want_d[:3], want_i[:3])
    index.add(db[:10])  # a bigger database can change the winner: timed again
    assert index._impl.timed == {}


@pytest.mark.parametrize("expected", ["numpy hashing", "faiss range scan", "mih"])
def test_auto_times_the_radius_paths_and_keeps_the_fastest(monkeypatch, expected):
    slowed_candidates(monkeypatch, [p for p in ("numpy hashing", "faiss range scan", "mih") if p != expected],
                      "range_candidates")
    monkeypatch.setattr(tuning, "TIMING_MIN_ITEMS", 1000)
    rng = np.random.default_rng(13)
    db = random_pm1(rng, 3000, 64, 400)
    queries = np.concatenate([random_pm1(rng, 30, 64), near(rng, db, 30, 3)])
    index = HammingIndex(64, threads=1)
    index.add(db)
    got = index.range_search(queries, 3)
    assert index._impl.timed_range[3][0] == expected and "timed fastest here" in index.plan(radius=3)
    assert "not timed yet" in index.plan(radius=4)
    assert_same_range(got, ref_range(vec_dist(queries, db), 3))
    index.remove([0, 5])  # a removal can change the winner too
    assert index._impl.timed_range == {}


# --------------------------------------------------------------------------
# adding, forms, edge cases


@pytest.mark.parametrize("backend", ["numpy", "faiss", "auto", "mih"])
def test_add_in_chunks_and_forms_equals_one_add(backend):
    rng = np.random.default_rng(3)
    bits = 20
    db = random_pm1(rng, 300, bits, 30)
    queries = random_pm1(rng, 9, bits)
    whole = HammingIndex(bits, backend)
    assert whole.add(db) == 300
    parts = HammingIndex(bits, backend)
    packed = np.packbits(db > 0, axis=1)
    packed[:, -1] |= 0x0F  # garbage in the padding bits is ignored
    parts.add(db[:50])                                  # +-1
    parts.add((db[50:120] > 0).astype(np.uint8))        # 0/1
    parts.add(db[120:121] > 0)                          # bool
    parts.add(packed[121:250])                          # packed uint8
    parts.add(db[250:251].astype(np.float32) * 0.3)     # real-valued, by sign
    parts.add(np.zeros((0, bits)))                      # nothing
    parts.search(queries, 3)                            # a search between adds
    parts.add(packed[251:].astype(np.int64))            # packed, wider int type
    assert len(parts) == len(whole) == 300
    for k in (5, 300):
        a, b = whole.search(queries, k), parts.search(queries, k)
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])
    np.testing.assert_array_equal(parts.packed_codes(), np.packbits(db > 0, axis=1))
    # queries in every form too
    np.testing.assert_array_equal(parts.search(np.packbits(queries > 0, axis=1), 4)[1], parts.search(queries, 4)[1])
    np.testing.assert_array_equal(parts.search(queries[0], 4)[1], parts.search(queries[:1], 4)[1])


@pytest.mark.parametrize("backend", ["numpy", "faiss", "auto", "mih"])
def test_empty_index_and_k_past_the_size(backend):
    index = HammingIndex(64, backend)
    q = np.ones((3, 64))
    d, i = index.search(q, 5)
    assert d.shape == i.shape == (3, 0)
    assert [len(x[1]) for x in index.range_search(q, 3)] == [0, 0, 0]
    index.add(-np.ones((2, 64)))
    d, i = index.search(q, 5)
    assert d.tolist() == [[64, 64]] * 3 and i.tolist() == [[0, 1]] * 3
    assert index.search(np.zeros((0, 64)), 5)[0].shape == (0, 2)


def test_bad_arguments_are_user_errors():
    index = HammingIndex(16, "numpy")
    index.add(np.ones((4, 16)))
    with pytest.raises(UserError, match="k must be"):
        index.search(np.ones((1, 16)), 0)
    with pytest.raises(UserError, match="radius"):
        index.range_search(np.ones((1, 16)), -1)
    with pytest.raises(UserError, match="^query codes: codes have 32 columns"):
        index.search(np.ones((1, 32)), 1)
    with pytest.raises(UserError, match="^database codes: "):
        index.add(np.ones((1, 8)))
    with pytest.raises(UserError, match="bit must be"):
        HammingIndex(0)
    with pytest.raises(UserError, match="threads"):
        HammingIndex(16, "numpy", threads=0)


# --------------------------------------------------------------------------
# backend registry


def test_registry_names_and_unknown_backend():
    assert list(BACKENDS) == backend_names(approximate=True) == ["auto", "numpy", "faiss", "milvus", "mih", "hnsw",
                                                                 "ivf"]
    assert backend_names() == ["auto", "numpy", "faiss", "milvus", "mih"]  # what the front ends offer: exact ones
    assert all(HammingIndex(8, name).exact for name in backend_names() if name != "milvus")
    assert not any(HammingIndex(8, name).exact for name in ("hnsw", "ivf"))
    with pytest.raises(UserError, match=r"unknown index backend 'annoy'; choose one of \['auto', "):
        HammingIndex(64, "annoy")
    with pytest.raises(UserError, match="unknown index backend"):
        HammingIndex(64, None)


def test_missing_faiss_is_a_clear_error_and_auto_falls_back(monkeypatch):
    monkeypatch.setitem(sys.modules, "faiss", None)  # import faiss -> ImportError
    with pytest.raises(UserError, match="index backend 'faiss' needs faiss-cpu"):
        HammingIndex(64, "faiss")
    index = HammingIndex(64)
    assert index.backend == "auto" and index._impl.faiss is None
    index.add(np.ones((3, 64)))
    assert index.plan(k=2) == "numpy flat scan" and index.plan(radius=64) == "numpy flat scan"
    assert index.search(np.ones((1, 64)), 2)[1].tolist() == [[0, 1]]
    assert index.range_search(-np.ones((1, 64)), 64)[0][1].tolist() == [0, 1, 2]


def test_missing_pymilvus_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "pymilvus", None)
    with pytest.raises(UserError, match="index backend 'milvus' needs pymilvus .*requirements-milvus.txt"):
        HammingIndex(64, "milvus")


def test_predict_offers_the_registry_as_index_backend_choices(capsys):
    import predict

    args = predict.parse_args(["--bit", "16", "--img", "x.jpg", "--pretrained", "w"])
    assert args.index_backend == "auto"
    assert predict.parse_args(["--bit", "16", "--img", "x", "--pretrained", "w",
                               "--index-backend", "numpy"]).index_backend == "numpy"
    with pytest.raises(SystemExit):
        predict.parse_args(["--bit", "16", "--img", "x", "--pretrained", "w", "--index-backend", "annoy"])
    assert "choose from 'auto', 'numpy', 'faiss', 'milvus', 'mih')" in capsys.readouterr().err


# --------------------------------------------------------------------------
# save / load


@pytest.mark.parametrize("backend", ["numpy", "faiss", "auto", "mih"])
def test_save_load_round_trip(backend, tmp_path):
    rng = np.random.default_rng(4)
    db = random_pm1(rng, 200, 36, 20)
    queries = random_pm1(rng, 5, 36)
    index = HammingIndex(36, backend)
    index.add(db[:100])
    index.add(db[100:])
    path = tmp_path / "sub" / "db.hidx"
    assert index.save(path) == path
    assert os.listdir(tmp_path / "sub") == ["db.hidx"]  # written atomically: no temp file left
    assert open(path, "rb").read(8) == index_file.MAGIC
    for other in (None, "numpy", "faiss", "auto", "mih"):
        back = HammingIndex.load(path, backend=other)
        assert back.backend == (other or backend) and back.bit == 36 and len(back) == 200
        np.testing.assert_array_equal(back.packed_codes(), index.packed_codes())
        for got, want in zip(back.search(queries, 30), index.search(queries, 30)):
            np.testing.assert_array_equal(got, want)
    empty = HammingIndex(8, backend)
    empty.save(tmp_path / "empty.hidx")
    assert len(HammingIndex.load(tmp_path / "empty.hidx")) == 0


def test_index_files_of_the_old_format_name_still_load(tmp_path):
    """Files saved before the format was renamed (HNETIDX, "hashnet-hamming-index") load unchanged."""
    import json

    index = HammingIndex(20, "numpy")
    index.add(np.random.default_rng(6).choice([-1, 1], (30, 20)))
    data = index.save(tmp_path / "new.hidx").read_bytes()
    size = int.from_bytes(data[8:12], "little")
    header = json.loads(data[12:12 + size])
    assert data[:8] == b"HAMMIDX\x00" and header["format"] == "hamming-index"
    blob = json.dumps({**header, "format": "hashnet-hamming-index"}, sort_keys=True).encode()
    old = tmp_path / "old.hidx"
    old.write_bytes(b"HNETIDX\x00" + len(blob).to_bytes(4, "little") + blob + data[12 + size:])
    np.testing.assert_array_equal(HammingIndex.load(old).packed_codes(), index.packed_codes())
    mixed = tmp_path / "mixed.hidx"  # the new magic with the old name is no file this code wrote
    mixed.write_bytes(b"HAMMIDX\x00" + len(blob).to_bytes(4, "little") + blob + data[12 + size:])
    with pytest.raises(UserError, match="corrupt header"):
        HammingIndex.load(mixed)


def test_library_errors_are_value_errors():
    """Callers outside the CLI catch them as ValueError (the CLI prints them as one line)."""
    with pytest.raises(ValueError, match="k must be"):
        HammingIndex(8, "numpy").search(np.ones((1, 8)), 0)
    with pytest.raises(ValueError, match="unknown index backend"):
        HammingIndex(8, "annoy")


def test_corrupt_or_truncated_index_files_are_user_errors_naming_the_file(tmp_path):
    index = HammingIndex(64, "numpy")
    index.add(np.random.default_rng(5).choice([-1, 1], (50, 64)))
    good = tmp_path / "db.hidx"
    index.save(good)
    data = good.read_bytes()
    header_end = data.index(b"}") + 1
    cases = {
        "truncated.hidx": (data[:-3], "truncated or corrupt"),
        "header-cut.hidx": (data[:header_end - 5], "truncated header"),
        "tiny.hidx": (data[:5], "wrong file type or truncated"),
        "flipped.hidx": (data[:-1] + bytes([data[-1] ^ 1]), "checksum mismatch"),
        "other.hidx": (b"\x93NUMPY" + data[6:], "wrong file type"),
        "header.hidx": (data[:20] + b"#" + data[21:], "corrupt header"),
        "longer.hidx": (data + b"\x00", "truncated or corrupt"),
    }
    for name, (blob, why) in cases.items():
        path = tmp_path / name
        path.write_bytes(blob)
        with pytest.raises(UserError, match=f"^{path}: not a valid HammingIndex file .*{why}"):
            HammingIndex.load(path)
    with pytest.raises(UserError, match=f"cannot read index file {tmp_path / 'missing.hidx'}"):
        HammingIndex.load(tmp_path / "missing.hidx")


# --------------------------------------------------------------------------
# Milvus (embedded milvus-lite, started by the test; requirements-dev.txt installs it, so a
# missing or broken install fails here instead of skipping)


@pytest.mark.slow
def test_milvus_backend_matches_the_exact_index_on_100k_codes(tmp_path):
    import milvus_lite  # noqa: F401  (needs pkg_resources: setuptools < 81, pinned in requirements-milvus.txt)
    import pymilvus  # noqa: F401
    rng = np.random.default_rng(6)
    db = np.packbits(rng.integers(0, 2, (100_000, 64), dtype=np.uint8), axis=1)
    queries = np.concatenate([db[rng.integers(0, len(db), 20)], rng.integers(0, 256, (20, 8), dtype=np.uint8)])
    exact = HammingIndex(64, "faiss")
    exact.add(db)
    uri = str(tmp_path / "milvus.db")
    index = HammingIndex(64, "milvus", uri=uri, collection="test_codes")  # starts milvus-lite
    index.add(db[:60_000])
    index.add(db[60_000:])
    assert len(index) == 100_000
    for k in (1, 10, 100):
        (md, mi), (ed, ei) = index.search(queries, k), exact.search(queries, k)
        np.testing.assert_array_equal(md, ed)  # the same top-k distances
        np.testing.assert_array_equal(mi, ei)  # and, with milvus-lite 2.5.1's BIN_FLAT, the same ties
    for radius in (0, 3, 12):
        got, want = index.range_search(queries, radius), exact.range_search(queries, radius)
        assert_same_range(got, [(d.tolist(), i.tolist()) for d, i in want])
    with pytest.raises(UserError, match="does not hold 32-bit codes"):
        HammingIndex(32, "milvus", uri=uri, collection="test_codes")
    # heavy ties: 20k codes drawn from 30 distinct values
    pool = db[rng.integers(0, len(db), 30)]
    tied_db = pool[rng.integers(0, 30, 20_000)]
    tied, tied_exact = HammingIndex(64, "milvus", uri=uri, collection="tied"), HammingIndex(64, "numpy")
    tied.add(tied_db)
    tied_exact.add(tied_db)
    for got, want in zip(tied.search(queries, 50), tied_exact.search(queries, 50)):
        np.testing.assert_array_equal(got, want)
    # save writes the reference only; load reconnects to the same collection
    path = tmp_path / "milvus.hidx"
    index.save(path)
    assert os.path.getsize(path) < 1000
    index._impl.client.close()
    back = HammingIndex.load(path)
    assert back.backend == "milvus" and len(back) == 100_000
    np.testing.assert_array_equal(back.search(queries, 10)[0], exact.search(queries, 10)[0])
