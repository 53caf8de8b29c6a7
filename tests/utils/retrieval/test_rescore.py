"""utils.retrieval.rescore: the int8 feature store (a quarter of float32's memory, error within half a
step), the candidates of top-N rescoring (ties at the N-th distance) and the re-ranking of Hamming
candidates, against float references written here."""
import math

import numpy as np
import pytest

from utils.errors import CodeFormatError
from utils.retrieval.rescore import TIE_CAP_FACTOR, candidate_pool, feature_scores, Int8Features, rescore, tied_candidates


def features(n, k, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, k)) * rng.uniform(0.1, 3.0, k)).astype(np.float32)  # dimensions of unlike range


def cosine(a, b):
    """Pair by pair, in float64."""
    dot = sum(float(x) * float(y) for x, y in zip(a, b))
    return dot / (math.sqrt(sum(float(x) ** 2 for x in a)) * math.sqrt(sum(float(y) ** 2 for y in b)))


@pytest.mark.parametrize("k", [16, 64])
def test_int8_store_is_a_quarter_of_float32_and_within_half_a_step(k):
    f = features(500, k)
    store = Int8Features.quantize(f)
    assert store.values.dtype == np.int8 and store.values.shape == f.shape
    assert store.values.nbytes * 4 == f.nbytes                  # one byte a dimension a vector
    assert store.nbytes <= f.nbytes / 4 + 4 * k                  # plus one float32 scale a dimension, once
    err = np.abs(store.dequantize() - f)
    assert (err <= store.scale / 2 + 1e-6).all()
    np.testing.assert_allclose(np.abs(store.values).max(axis=0), 127)  # each dimension's range fully used


def test_hand_computed_case():
    """Scale = max |f| / 127 per dimension: [2, 0.5] / 127; 0.6 / (2 / 127) = 38.1 -> 38,
    0.1 / (0.5 / 127) = 25.4 -> 25."""
    store = Int8Features.quantize(np.array([[2.0, -0.5], [0.6, 0.1]], np.float32))
    np.testing.assert_allclose(store.scale, [2 / 127, 0.5 / 127], rtol=1e-6)
    np.testing.assert_array_equal(store.values, [[127, -127], [38, 25]])


def test_appended_features_use_the_store_scales_and_clip():
    store = Int8Features.quantize(np.array([[1.0, 1.0]], np.float32))
    grown = store.append(np.array([[0.5, 3.0]], np.float32))
    np.testing.assert_array_equal(grown.scale, store.scale)
    np.testing.assert_array_equal(grown.values[1], [64, 127])  # 3.0 is past the fitted range: clipped


@pytest.mark.parametrize("bad", [np.zeros(4), np.array([[np.nan, 1.0]])])
def test_bad_features_are_one_line_errors(bad):
    with pytest.raises(CodeFormatError):
        Int8Features.quantize(bad)


@pytest.mark.parametrize("k", [16, 64])
def test_cosine_and_dot_scores_match_float_within_the_quantisation_tolerance(k):
    db, query = features(300, k, 1), features(1, k, 2)[0]
    store = Int8Features.quantize(db)
    rows = np.arange(0, 300, 3)
    got_cos, got_dot = feature_scores(query, store, rows), feature_scores(query, store, rows, "dot")
    half = store.scale / 2                                       # the largest error of a stored value
    for r, gc, gd in zip(rows, got_cos, got_dot):
        dot_tol = float(np.abs(query) @ half) + 1e-4
        assert abs(gd - float(query.astype(np.float64) @ db[r])) <= dot_tol
        cos_tol = 2 * float(np.linalg.norm(half)) / float(np.linalg.norm(db[r])) + 1e-5  # |cos(a,b)-cos(a,b')|
        assert abs(gc - cosine(query, db[r])) <= cos_tol
    reference = sorted(rows, key=lambda r: -cosine(query, db[r]))
    got = rows[np.argsort(-got_cos, kind="stable")]
    # the ranking agrees with float's wherever the float scores are further apart than the tolerance
    float_cos = {r: cosine(query, db[r]) for r in rows}
    tol = max(2 * float(np.linalg.norm(half)) / float(np.linalg.norm(db[r])) for r in rows)
    position = {r: i for i, r in enumerate(got)}
    for i, a in enumerate(reference):
        for b in reference[i + 1:]:
            if float_cos[a] - float_cos[b] > 2 * tol:
                assert position[a] < position[b]


def test_rescore_reorders_only_the_candidates_and_keeps_hamming_order_on_ties():
    db = features(50, 16, 3)
    store = Int8Features.quantize(db)
    ids = np.array([7, 3, 11, 40, 22, 5], np.int64)            # a Hamming top-6, in Hamming order
    distances = np.array([1, 2, 2, 3, 3, 3], np.int32)
    query = db[22] + 0.01
    d, i, s = rescore(query, store, distances, ids, k=4)
    assert set(i) <= set(ids) and len(i) == 4 and i[0] == 22
    assert list(s) == sorted(s, reverse=True)
    for dist, item in zip(d, i):
        assert dist == distances[list(ids).index(item)]           # each keeps its own Hamming distance
    twins = Int8Features(np.repeat(store.values[:1], 50, axis=0), store.scale)  # every score equal
    _, tied, _ = rescore(query, twins, distances, ids, k=6)
    np.testing.assert_array_equal(tied, ids)


def test_the_candidates_are_the_first_n_and_their_ties_up_to_the_cap():
    """Hand-computed: distances in (distance, index) order, the n-th one's distance taken whole."""
    distances = np.array([0, 1, 2, 2, 2, 2, 3], np.int32)
    assert tied_candidates(distances, 3) == 6                  # the 3rd is at 2: all four 2s come in
    assert tied_candidates(distances, 2) == 2                  # the 2nd is at 1: nothing ties with it
    assert tied_candidates(distances, 3, cap=4) == 4           # more ties than the cap: the first 4
    assert tied_candidates(distances, 7) == tied_candidates(distances, 9) == 7  # fewer than n: all of them
    assert tied_candidates(np.zeros(100, np.int32), 5) == 5 * TIE_CAP_FACTOR == candidate_pool(5)


def test_extended_widens_the_scale_instead_of_clipping():
    """The service's store of added images grows one upload at a time: a later feature beyond the
    fitted range widens that dimension's scale (the kept rows requantised) instead of being clipped."""
    first = np.array([[1.0, -2.0], [0.5, 1.0]], np.float32)
    store = Int8Features.quantize(first)                       # scales 1/127 and 2/127
    same = store.extended(np.array([[0.25, 2.0]], np.float32))  # within range: the scales stay
    np.testing.assert_array_equal(same.scale, store.scale)
    grown = store.extended(np.array([[4.0, 0.5]], np.float32))  # dimension 0 grows to 4/127
    np.testing.assert_allclose(grown.scale, [4 / 127, 2 / 127], rtol=1e-6)
    want = np.array([[1.0, -2.0], [0.5, 1.0], [4.0, 0.5]])
    assert np.abs(grown.dequantize() - want).max() <= grown.scale.max() / 2 + 1e-6  # nothing clipped
    empty = Int8Features(np.zeros((0, 2), np.int8), np.ones(2, np.float32))
    np.testing.assert_allclose(empty.extended(first).scale, store.scale)  # an empty store: fitted afresh
    with pytest.raises(CodeFormatError, match="2-D"):
        store.extended(np.zeros(2, np.float32))
