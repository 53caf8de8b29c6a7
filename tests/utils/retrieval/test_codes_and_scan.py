"""utils.retrieval against slow, obvious pure-Python references."""
import numpy as np
import pytest

from utils.errors import UserError
from utils.retrieval import hamming_distances, hamming_radius, hamming_topk, pack_codes, to_bits, unpack_codes


def ref_dist(q01, d01):
    """Pair-by-pair Hamming distance with Python loops."""
    q01, d01 = q01.tolist(), d01.tolist()
    return [[sum(1 for a, b in zip(q, d) if a != b) for d in d01] for q in q01]


def random_pm1(rng, n, k, distinct=None):
    """+-1 codes; with `distinct`, drawn from a small pool so distances tie a lot."""
    if distinct is None:
        return rng.choice(np.array([-1, 1], np.int8), (n, k))
    pool = rng.choice(np.array([-1, 1], np.int8), (distinct, k))
    return pool[rng.integers(0, distinct, n)]


BITS = [8, 12, 16, 32, 48, 64, 100]


@pytest.mark.parametrize("k", BITS)
def test_to_bits_forms_agree(k):
    rng = np.random.default_rng(k)
    pm1 = random_pm1(rng, 9, k)
    bits = pm1 > 0
    zero_one = bits.astype(np.uint8)
    packed = np.packbits(bits, axis=1)
    assert to_bits(pm1).dtype == bool
    np.testing.assert_array_equal(to_bits(pm1), bits)
    np.testing.assert_array_equal(to_bits(pm1.astype(np.float32)), bits)
    np.testing.assert_array_equal(to_bits(zero_one), bits)
    np.testing.assert_array_equal(to_bits(bits), bits)
    np.testing.assert_array_equal(to_bits(packed, bit=k), bits)
    # bit given but an unpacked array passed: still read as codes
    np.testing.assert_array_equal(to_bits(pm1, bit=k), bits)


def test_to_bits_sign_rule_and_single_code():
    np.testing.assert_array_equal(to_bits([0.3, -0.2, 0.0, 5]), [[True, False, False, True]])
    assert to_bits(np.array([1, -1, 1])).shape == (1, 3)
    assert to_bits(np.array([0b10100000], np.uint8), bit=3).tolist() == [[True, False, True]]


def test_packed_padding_bits_are_ignored():
    packed = np.array([[0b10111111]], np.uint8)  # only the first 2 bits are code bits
    np.testing.assert_array_equal(to_bits(packed, bit=2), [[True, False]])


@pytest.mark.parametrize("k", BITS)
def test_pack_unpack_round_trip(k):
    rng = np.random.default_rng(100 + k)
    pm1 = random_pm1(rng, 7, k)
    packed = pack_codes(pm1)
    assert packed.dtype == np.uint8 and packed.shape == (7, (k + 7) // 8)
    back = unpack_codes(packed, k)
    assert back.dtype == np.int8
    np.testing.assert_array_equal(back, pm1)
    np.testing.assert_array_equal(pack_codes(packed, bit=k), packed)


def test_pack_is_big_endian():
    code = [[1, -1, -1, -1, -1, -1, -1, -1, 1, 1]]
    np.testing.assert_array_equal(pack_codes(code), [[0b10000000, 0b11000000]])


@pytest.mark.parametrize("k", BITS + [300])
def test_hamming_distances_match_reference(k):
    rng = np.random.default_rng(k)
    q, d = random_pm1(rng, 6, k), random_pm1(rng, 25, k)
    got = hamming_distances(q, d)
    assert got.shape == (6, 25)
    np.testing.assert_array_equal(got, ref_dist(q > 0, d > 0))
    np.testing.assert_array_equal(hamming_distances(pack_codes(q), pack_codes(d), bit=k), got)
    np.testing.assert_array_equal(hamming_distances((q > 0).astype(np.uint8), d), got)


def ref_topk(dist, k):
    out_d, out_i = [], []
    for row in dist:
        order = sorted(range(len(row)), key=lambda j: (row[j], j))[:k]
        out_i.append(order)
        out_d.append([row[j] for j in order])
    return out_d, out_i


@pytest.mark.parametrize("k_bits,distinct", [(8, 3), (12, None), (64, 5), (64, None)])
@pytest.mark.parametrize("k", [1, 5, 40, 1000])
def test_hamming_topk_matches_reference(k_bits, distinct, k):
    rng = np.random.default_rng(k_bits * 7 + k)
    q, d = random_pm1(rng, 11, k_bits, distinct), random_pm1(rng, 60, k_bits, distinct)
    ref_d, ref_i = ref_topk(ref_dist(q > 0, d > 0), k)
    for block_size in (None, 1, 4):
        dist, idx = hamming_topk(q, d, k, block_size=block_size, workers=2)
        assert idx.shape == (11, min(k, 60))
        np.testing.assert_array_equal(idx, ref_i)
        np.testing.assert_array_equal(dist, ref_d)


@pytest.mark.parametrize("radius", [0, 1, 2, 5, 64])
def test_hamming_radius_matches_reference(radius):
    rng = np.random.default_rng(radius)
    q, d = random_pm1(rng, 9, 16, 6), random_pm1(rng, 80, 16, 6)
    dist = ref_dist(q > 0, d > 0)
    got = hamming_radius(q, d, radius, block_size=2)
    assert len(got) == 9
    for row, (gd, gi) in zip(dist, got):
        want = sorted((j for j in range(len(row)) if row[j] <= radius), key=lambda j: (row[j], j))
        assert gi.tolist() == want
        assert gd.tolist() == [row[j] for j in want]


@pytest.mark.parametrize("bad, bit, match", [
    (np.zeros((2, 3, 4)), None, "shape"),
    (np.array([[1.0, np.nan]]), None, "NaN"),
    (np.array([["a", "b"]]), None, "numeric"),
    (np.zeros((2, 0)), None, "0 bits"),
    (np.zeros((2, 3), np.uint8), 64, "columns"),
    (np.array([[300, 1]], np.int16), 16, "0..255"),
    (np.zeros((2, 2), np.uint8), 0, "positive"),
    (np.zeros((2, 2), np.uint8), True, "positive"),
])
def test_to_bits_rejects_bad_input(bad, bit, match):
    with pytest.raises(UserError, match=match):
        to_bits(bad, bit)


def test_search_rejects_bad_input():
    q, d = np.ones((2, 16)), np.ones((5, 32))
    with pytest.raises(UserError, match="16 bits but database codes have 32"):
        hamming_distances(q, d)
    with pytest.raises(UserError, match="k must be"):
        hamming_topk(q, q, 0)
    with pytest.raises(UserError, match="radius"):
        hamming_radius(q, q, -1)
    with pytest.raises(UserError, match="block_size"):
        hamming_topk(q, q, 1, block_size=0)
    with pytest.raises(UserError, match="^query codes: "):
        hamming_distances(np.full((1, 4), np.nan), q)


def test_format_code_gives_the_bit_string_and_its_hex():
    """The one formatter behind predict.py, infer.py and the service: bits read as one number."""
    from utils.retrieval import format_code

    assert format_code(np.array([1, -1, 1, 1, -1, -1, -1, -1, 1])) == ("101100001", "161")  # 9 bits: 3 hex digits
    assert format_code(np.array([[0, 1, 1, 0, 0.5, -2.0, 0, 1]])) == ("01101001", "69")
    bits, hexcode = format_code(np.where(np.arange(64) % 3 == 0, 1, -1))
    assert len(bits) == 64 and len(hexcode) == 16 and int(hexcode, 16) == int(bits, 2)
