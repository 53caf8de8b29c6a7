"""utils.evaluation.metrics against slow, obvious pure-Python references (docs/architecture.md: ranking and metrics)."""
import functools

import numpy as np
import pytest

from utils.evaluation import metrics
from utils.errors import UserError
from utils.evaluation.metrics import (mean_average_precision, precision_at_n, precision_recall_curve,
                                      precision_within_radius)
from utils.retrieval import pack_codes


# ---------------------------------------------------------------- references

def ref_dist(q01, d01):
    q01, d01 = q01.tolist(), d01.tolist()
    return [[sum(1 for a, b in zip(q, d) if a != b) for d in d01] for q in q01]


def ref_relevant(ql, dl):
    ql, dl = ql.tolist(), dl.tolist()
    return [[any(a and b for a, b in zip(x, y)) for y in dl] for x in ql]


def ref_rank(row):
    return sorted(range(len(row)), key=lambda j: (row[j], j))


def ref_map(dist, rel, topk):
    n = len(dist[0])
    if topk is None or topk == -1 or topk > n:
        topk = n
    total = 0.0
    for row, rrow in zip(dist, rel):
        hits, precisions = 0, []
        for r, j in enumerate(ref_rank(row)[:topk], start=1):
            if rrow[j]:
                hits += 1
                precisions.append(hits / r)
        total += sum(precisions) / len(precisions) if precisions else 0.0
    return total / len(dist)


def ref_precision_at_n(dist, rel, n):
    n = min(n, len(dist[0]))
    return sum(sum(rrow[j] for j in ref_rank(row)[:n]) / n for row, rrow in zip(dist, rel)) / len(dist)


def ref_precision_radius(dist, rel, radius):
    total = 0.0
    for row, rrow in zip(dist, rel):
        got = [j for j in range(len(row)) if row[j] <= radius]
        total += sum(rrow[j] for j in got) / len(got) if got else 0.0
    return total / len(dist)


def ref_pr_curve(dist, rel, nbits):
    precision, recall = [], []
    for r in range(nbits + 1):
        ps, rs = [], []
        for row, rrow in zip(dist, rel):
            got = [j for j in range(len(row)) if row[j] <= r]
            good = sum(rrow[j] for j in got)
            if got:
                ps.append(good / len(got))
            if sum(rrow):
                rs.append(good / sum(rrow))
        precision.append(sum(ps) / len(ps) if ps else 0.0)
        recall.append(sum(rs) / len(rs) if rs else 0.0)
    return precision, recall


# ---------------------------------------------------------------- data

@functools.lru_cache(maxsize=None)
def make_case(nbits, multi_label, distinct=None, nq=25, ndb=300, ncls=6, seed=0):
    """Codes correlated with labels, a few queries without any relevant item, and
    (with `distinct`) only a handful of distinct codes so ties are everywhere."""
    rng = np.random.default_rng([nbits, int(multi_label), distinct or 0, seed])
    n = nq + ndb
    if multi_label:
        labels = (rng.random((n, ncls)) < 0.3).astype(np.uint8)
    else:
        labels = np.eye(ncls, dtype=np.uint8)[rng.integers(0, ncls, n)]
    # class 0 never appears in the database; queries 0-2 have only class 0
    labels[nq:, 0] = 0
    labels[:3] = 0
    labels[:3, 0] = 1
    if distinct:
        pool = rng.choice(np.array([-1, 1], np.int8), (distinct, nbits))
        codes = pool[rng.integers(0, distinct, n)]
    else:
        centers = rng.choice(np.array([-1, 1], np.int8), (ncls, nbits))
        codes = rng.choice(np.array([-1, 1], np.int8), (n, nbits))
        first = labels.argmax(axis=1)
        keep = rng.random((n, nbits)) < 0.7
        codes = np.where(keep, centers[first], codes).astype(np.int8)
    q, d = codes[:nq], codes[nq:]
    ql, dl = labels[:nq], labels[nq:]
    dist = ref_dist(q > 0, d > 0)
    rel = ref_relevant(ql, dl)
    return q, d, ql, dl, dist, rel


CASES = [(12, True, None), (16, False, None), (32, True, None), (48, False, None),
         (64, True, None), (64, False, None), (8, True, 4), (8, False, 3), (16, True, 5)]
TOPKS = [None, -1, 1, 7, 100, 300, 10 ** 6]


# ---------------------------------------------------------------- mAP

@pytest.mark.parametrize("nbits,multi,distinct", CASES)
def test_map_matches_reference(nbits, multi, distinct):
    q, d, ql, dl, dist, rel = make_case(nbits, multi, distinct)
    for topk in TOPKS:
        got = mean_average_precision(q, d, ql, dl, topk=topk)
        assert got == pytest.approx(ref_map(dist, rel, topk), abs=1e-12), topk


def test_map_hand_computed():
    # ranking: db1 (d=0, irrelevant), db2 (d=0), db0 (d=1), db3 (d=2)
    q = [[0, 0, 0, 0]]
    d = [[0, 0, 0, 1], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 1, 1]]
    ql = [[1, 0]]
    dl = [[1, 0], [0, 1], [1, 1], [1, 0]]
    assert mean_average_precision(q, d, ql, dl) == pytest.approx((1 / 2 + 2 / 3 + 3 / 4) / 3)
    assert mean_average_precision(q, d, ql, dl, topk=2) == pytest.approx(1 / 2)
    assert mean_average_precision(q, d, ql, dl, topk=1) == 0.0


def test_map_ties_go_to_lower_index():
    # all database codes equal: the ranking is the database order
    q = np.ones((1, 8))
    d = np.ones((5, 8))
    ql = [[1, 0]]
    dl = [[0, 1], [1, 0], [0, 1], [0, 1], [1, 0]]
    assert mean_average_precision(q, d, ql, dl) == pytest.approx((1 / 2 + 2 / 5) / 2)
    dl_reversed = dl[::-1]
    assert mean_average_precision(q, d, ql, dl_reversed) == pytest.approx((1 / 1 + 2 / 4) / 2)


def test_queries_without_relevant_items_count_as_zero():
    q, d, ql, dl, dist, rel = make_case(32, True)
    assert not any(rel[0]) and not any(rel[1])
    full = mean_average_precision(q, d, ql, dl, topk=100)
    rest = mean_average_precision(q[3:], d, ql[3:], dl, topk=100)
    assert full == pytest.approx(rest * (len(q) - 3) / len(q))
    assert mean_average_precision(q[:3], d, ql[:3], dl) == 0.0


@pytest.mark.parametrize("nbits,multi,distinct", [(12, True, None), (64, False, None), (8, True, 4)])
def test_code_forms_give_identical_results(nbits, multi, distinct):
    q, d, ql, dl, _, _ = make_case(nbits, multi, distinct)
    base = mean_average_precision(q, d, ql, dl, topk=50)
    forms = [
        ((q > 0).astype(np.uint8), (d > 0).astype(np.uint8), None),
        (q > 0, d > 0, None),
        (q.astype(np.float32) * 0.7, d.astype(np.float64), None),
        (pack_codes(q), pack_codes(d), nbits),
        (pack_codes(q), d, nbits),
    ]
    for qf, df, bit in forms:
        assert mean_average_precision(qf, df, ql, dl, topk=50, bit=bit) == base
        assert precision_within_radius(qf, df, ql, dl, bit=bit) == \
            precision_within_radius(q, d, ql, dl)
    # labels as bool / float are the same labels
    assert mean_average_precision(q, d, ql.astype(bool), dl.astype(np.float32), topk=50) == base


@pytest.mark.parametrize("nbits,multi,distinct", [(64, True, None), (8, False, 3)])
def test_block_size_and_threads_do_not_change_results(nbits, multi, distinct, monkeypatch):
    q, d, ql, dl, _, _ = make_case(nbits, multi, distinct)
    base_map = mean_average_precision(q, d, ql, dl, topk=100, block_size=len(q), workers=1)
    base_pr = precision_recall_curve(q, d, ql, dl, block_size=len(q), workers=1)
    base_pn = precision_at_n(q, d, ql, dl, ns=(5, 50), block_size=len(q), workers=1)
    for block_size, workers in [(1, 1), (1, 2), (3, 2), (7, 1)]:
        assert mean_average_precision(q, d, ql, dl, topk=100, block_size=block_size,
                                      workers=workers) == base_map
        pr = precision_recall_curve(q, d, ql, dl, block_size=block_size, workers=workers)
        np.testing.assert_array_equal(pr["precision"], base_pr["precision"])
        np.testing.assert_array_equal(pr["recall"], base_pr["recall"])
        assert precision_at_n(q, d, ql, dl, ns=(5, 50), block_size=block_size,
                              workers=workers) == base_pn
    # the automatic block size, squeezed by a tiny memory budget
    monkeypatch.setattr("utils.retrieval.tuning.BLOCK_BYTES", 1)
    assert mean_average_precision(q, d, ql, dl, topk=100) == base_map


def test_wide_codes_use_16_bit_distances():
    rng = np.random.default_rng(3)
    q = rng.choice([-1, 1], (6, 300))
    d = rng.choice([-1, 1], (40, 300))
    ql = np.eye(3, dtype=int)[rng.integers(0, 3, 6)]
    dl = np.eye(3, dtype=int)[rng.integers(0, 3, 40)]
    dist, rel = ref_dist(q > 0, d > 0), ref_relevant(ql, dl)
    assert mean_average_precision(q, d, ql, dl, topk=10) == pytest.approx(ref_map(dist, rel, 10))
    curve = precision_recall_curve(q, d, ql, dl)
    want_p, want_r = ref_pr_curve(dist, rel, 300)
    np.testing.assert_allclose(curve["precision"], want_p, atol=1e-12)
    np.testing.assert_allclose(curve["recall"], want_r, atol=1e-12)


# ---------------------------------------------------------------- other metrics

@pytest.mark.parametrize("nbits,multi,distinct", CASES)
def test_precision_within_radius_matches_reference(nbits, multi, distinct):
    q, d, ql, dl, dist, rel = make_case(nbits, multi, distinct)
    for radius in (0, 2, 5, nbits):
        got = precision_within_radius(q, d, ql, dl, radius=radius)
        assert got == pytest.approx(ref_precision_radius(dist, rel, radius), abs=1e-12)


def test_precision_within_radius_counts_empty_answers_as_zero():
    q = [[1, 1, 1, 1], [-1, -1, -1, -1]]
    d = [[1, 1, 1, 1], [1, 1, 1, -1]]
    ql = [[1], [1]]
    dl = [[1], [1]]
    # query 1 is 3+ bits from everything: it retrieves nothing within radius 2
    assert precision_within_radius(q, d, ql, dl, radius=2) == pytest.approx(0.5)


@pytest.mark.parametrize("nbits,multi,distinct", CASES)
def test_precision_recall_curve_matches_reference(nbits, multi, distinct):
    q, d, ql, dl, dist, rel = make_case(nbits, multi, distinct)
    curve = precision_recall_curve(q, d, ql, dl)
    want_p, want_r = ref_pr_curve(dist, rel, nbits)
    np.testing.assert_array_equal(curve["radius"], np.arange(nbits + 1))
    np.testing.assert_allclose(curve["precision"], want_p, atol=1e-12)
    np.testing.assert_allclose(curve["recall"], want_r, atol=1e-12)
    retrieving = [sum(1 for row in dist if min(row) <= r) for r in range(nbits + 1)]
    assert curve["retrieving"].tolist() == retrieving


@pytest.mark.parametrize("nbits,multi,distinct", CASES[:4] + CASES[-2:])
def test_precision_at_n_matches_reference(nbits, multi, distinct):
    q, d, ql, dl, dist, rel = make_case(nbits, multi, distinct)
    got = precision_at_n(q, d, ql, dl, ns=(1, 10, 100, 5000))
    for n, value in got.items():
        assert value == pytest.approx(ref_precision_at_n(dist, rel, n), abs=1e-12)


# ---------------------------------------------------------------- bad input

def _ok():
    q, d, ql, dl, _, _ = make_case(16, True)
    return q, d, ql, dl


@pytest.mark.parametrize("change, match", [
    (dict(topk=0), "topK"),
    (dict(topk=-2), "topK"),
    (dict(topk=1.5), "topK"),
    (dict(topk=True), "topK"),
    (dict(db_codes=np.ones((300, 32))), "16 bits but database codes have 32"),
    (dict(query_labels=np.ones((25, 5))), "5 classes but database labels have 6"),
    (dict(db_labels=np.ones((299, 6))), "300 database codes but 299"),
    (dict(query_labels=np.ones((24, 6))), "25 query codes but 24"),
    (dict(query_labels=np.full((25, 6), 2)), "only 0 and 1"),
    (dict(db_labels=np.full((300, 6), np.nan)), "only 0 and 1"),
    (dict(db_labels=np.ones((300, 6, 1))), "multi-hot"),
    (dict(query_codes=np.ones((0, 16)), query_labels=np.ones((0, 6))), "no query"),
    (dict(db_codes=np.ones((0, 16)), db_labels=np.ones((0, 6))), "empty"),
    (dict(query_codes=np.full((25, 16), np.nan)), "query codes: codes contain NaN"),
    (dict(bit=64), "columns"),
])
def test_map_rejects_bad_input(change, match):
    q, d, ql, dl = _ok()
    args = dict(query_codes=q, db_codes=d, query_labels=ql, db_labels=dl)
    args.update(change)
    with pytest.raises(UserError, match=match):
        mean_average_precision(**args)


def test_other_metrics_reject_bad_input():
    q, d, ql, dl = _ok()
    with pytest.raises(UserError, match="radius"):
        precision_within_radius(q, d, ql, dl, radius=-1)
    with pytest.raises(UserError, match="positive integers"):
        precision_at_n(q, d, ql, dl, ns=(0,))
    with pytest.raises(UserError, match="0 columns"):
        precision_recall_curve(q, d, np.ones((25, 0)), np.ones((300, 0)))


def test_public_names():
    assert set(metrics.__all__) == {"mean_average_precision", "precision_at_n",
                                    "precision_within_radius", "precision_recall_curve"}
