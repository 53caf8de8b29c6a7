"""Retrieval metrics with exact, documented semantics (docs/architecture.md, "Evaluation").

Ranking: the database is ordered by Hamming distance to the query, ties by
database index ascending (stable), so every number here is reproducible
bit-for-bit across sort algorithms, block sizes and thread counts.
Relevance: a query and a database item are relevant when their 0/1 multi-hot
label vectors share at least one label (one-hot labels: same class).

Codes are +-1, 0/1 or bit-packed (pass `bit`), see utils.retrieval.to_bits.
Work is done in blocks of queries against the whole database, so memory stays
bounded (utils.retrieval.tuning.BLOCK_BYTES per worker thread) at any data set size.
"""
import numbers

import numpy as np

from utils.errors import CodeFormatError
from utils.retrieval.codes import bits_to_words
from utils.retrieval.scan import block_rows, distance_block, prepare_pair, run_blocks

__all__ = [
    "mean_average_precision",
    "precision_at_n",
    "precision_within_radius",
    "precision_recall_curve",
]


def _label_words(labels, what):
    arr = np.asarray(labels)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise CodeFormatError(f"{what} must be a 0/1 multi-hot array [n, C], got shape {arr.shape}")
    if arr.dtype.kind not in "biuf":
        raise CodeFormatError(f"{what} must be numeric 0/1, got dtype {arr.dtype}")
    if arr.shape[1] == 0:
        raise CodeFormatError(f"{what} have 0 columns")
    if arr.dtype.kind != "b" and not ((arr == 0) | (arr == 1)).all():
        raise CodeFormatError(f"{what} must contain only 0 and 1 (multi-hot vectors)")
    return bits_to_words(arr != 0)


class _Problem:
    """Validated codes and labels as uint64 words, shared by every metric."""

    def __init__(self, query_codes, db_codes, query_labels, db_labels, bit):
        self.qwords, self.dbwords, self.nbits = prepare_pair(query_codes, db_codes, bit)
        self.qlabels = _label_words(query_labels, "query labels")
        self.dblabels = _label_words(db_labels, "database labels")
        self.nq, self.ndb = self.qwords.shape[0], self.dbwords.shape[0]
        ql_cols = np.asarray(query_labels).shape[-1]
        dbl_cols = np.asarray(db_labels).shape[-1]
        if ql_cols != dbl_cols:
            raise CodeFormatError(f"query labels have {ql_cols} classes but database labels have {dbl_cols}")
        if self.qlabels.shape[0] != self.nq:
            raise CodeFormatError(f"{self.nq} query codes but {self.qlabels.shape[0]} query label rows")
        if self.dblabels.shape[0] != self.ndb:
            raise CodeFormatError(f"{self.ndb} database codes but {self.dblabels.shape[0]} database label rows")
        if self.nq == 0:
            raise CodeFormatError("no query codes to evaluate")
        if self.ndb == 0:
            raise CodeFormatError("the database is empty")

    def distances(self, s, e):
        return distance_block(self.qwords[s:e], self.dbwords, self.nbits)

    def relevant_at(self, s, e, index):
        """Relevance [rows, T] of database items `index` [rows, T] for queries s:e."""
        ql = self.qlabels[s:e]
        rel = None
        for w in range(ql.shape[1]):
            hit = (self.dblabels[:, w][index] & ql[:, w, None]) != 0
            rel = hit if rel is None else np.logical_or(rel, hit, out=rel)
        return rel

    def relevant_all(self, s, e):
        """Relevance [rows, ndb] of every database item for queries s:e."""
        ql = self.qlabels[s:e]
        tmp = np.empty((e - s, self.ndb), dtype=np.uint64)
        rel = np.empty((e - s, self.ndb), dtype=bool)
        for w in range(ql.shape[1]):
            np.bitwise_and(ql[:, w, None], self.dblabels[None, :, w], out=tmp)
            if w == 0:
                np.not_equal(tmp, 0, out=rel)
            else:
                rel |= tmp != 0
        return rel

    def ranked_relevance(self, s, e, depth):
        """Relevance of the first `depth` ranked items [rows, depth] for queries s:e."""
        order = np.argsort(self.distances(s, e), axis=1, kind="stable")
        if depth < self.ndb:
            order = order[:, :depth]
        return self.relevant_at(s, e, order)


def _resolve_topk(topk, ndb):
    if topk is None:
        return ndb
    if isinstance(topk, bool) or not isinstance(topk, numbers.Integral):
        raise CodeFormatError(f"topK must be an integer, None or -1, got {topk!r}")
    topk = int(topk)
    if topk == -1:
        return ndb
    if topk < 1:
        raise CodeFormatError(f"topK must be positive (or None/-1 for the whole database), got {topk}")
    return min(topk, ndb)


def _check_radius(radius):
    if isinstance(radius, bool) or not isinstance(radius, numbers.Real) \
            or not np.isfinite(radius) or radius < 0:
        raise CodeFormatError(f"radius must be a non-negative number, got {radius!r}")
    return radius


def mean_average_precision(query_codes, db_codes, query_labels, db_labels, topk=None, bit=None,
                           *, block_size=None, workers=None):
    """mAP@topK exactly as docs/architecture.md ("Evaluation") defines it.

    topK None, -1 or >= database size ranks the whole database. AP of one
    query = mean over its relevant positions r (within topK) of
    (relevant within the first r) / r; a query with no relevant item in its
    topK scores 0 and still counts in the mean over all queries (so mAP is
    not inflated by queries that find nothing).
    `block_size` (queries per block) and `workers` (threads) change speed and
    memory only, never the value.
    """
    prob = _Problem(query_codes, db_codes, query_labels, db_labels, bit)
    depth = _resolve_topk(topk, prob.ndb)
    ranks = np.arange(1, depth + 1, dtype=np.float64)

    def block(s, e):
        rel = prob.ranked_relevance(s, e, depth)
        cum = np.cumsum(rel, axis=1, dtype=np.int32)
        rows, cols = np.nonzero(rel)
        precision_at_hits = cum[rows, cols] / ranks[cols]
        sums = np.bincount(rows, weights=precision_at_hits, minlength=e - s)
        hits = cum[:, -1]
        return np.where(hits > 0, sums / np.maximum(hits, 1), 0.0)

    rows = block_rows(prob.ndb, block_size)
    ap = np.concatenate(run_blocks(block, prob.nq, rows, workers))
    return float(ap.sum() / prob.nq)


def precision_at_n(query_codes, db_codes, query_labels, db_labels, ns=(100, 500, 1000), bit=None,
                   *, block_size=None, workers=None):
    """{n: precision among the first n ranked items, averaged over all queries}.

    Same ranking as mean_average_precision; n past the database size is
    clipped to it (the denominator is the clipped n).
    """
    prob = _Problem(query_codes, db_codes, query_labels, db_labels, bit)
    if isinstance(ns, numbers.Integral):
        ns = (ns,)
    ns = tuple(ns)
    for n in ns:
        if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
            raise CodeFormatError(f"precision@n needs positive integers n, got {n!r}")
    if not ns:
        return {}
    cut = [min(int(n), prob.ndb) for n in ns]
    depth = max(cut)

    def block(s, e):
        cum = np.cumsum(prob.ranked_relevance(s, e, depth), axis=1, dtype=np.int32)
        return np.stack([cum[:, c - 1] / c for c in cut], axis=1)

    per_query = np.concatenate(run_blocks(block, prob.nq, block_rows(prob.ndb, block_size), workers))
    means = per_query.sum(axis=0) / prob.nq
    return {int(n): float(m) for n, m in zip(ns, means)}


def precision_within_radius(query_codes, db_codes, query_labels, db_labels, radius=2, bit=None,
                            *, block_size=None, workers=None):
    """Mean over ALL queries of the precision among items within `radius`.

    Retrieved set = database items at Hamming distance <= radius (inclusive).
    A query that retrieves nothing contributes precision 0 (the HashNet
    convention: an empty answer is a failed lookup, not a skipped one), so a
    model cannot score well by scattering codes far apart.
    """
    radius = _check_radius(radius)
    prob = _Problem(query_codes, db_codes, query_labels, db_labels, bit)

    def block(s, e):
        inside = prob.distances(s, e) <= radius
        retrieved = np.count_nonzero(inside, axis=1)
        inside &= prob.relevant_all(s, e)
        good = np.count_nonzero(inside, axis=1)
        return np.where(retrieved > 0, good / np.maximum(retrieved, 1), 0.0)

    per_query = np.concatenate(run_blocks(block, prob.nq, block_rows(prob.ndb, block_size), workers))
    return float(per_query.sum() / prob.nq)


def precision_recall_curve(query_codes, db_codes, query_labels, db_labels, bit=None,
                           *, block_size=None, workers=None):
    """Hamming-ball precision/recall for every radius r = 0..K.

    Returns dict(radius=[K+1], precision=[K+1], recall=[K+1], retrieving=[K+1]).
    At radius r a query retrieves the items at distance <= r.
    precision[r] = mean, over the queries that retrieve at least one item at r
      (`retrieving[r]` of them), of relevant retrieved / retrieved; 0 where no
      query retrieves anything. Averaging only over answering queries keeps the
      curve a trade-off curve; precision_within_radius, a single score, counts
      empty answers as 0 instead.
    recall[r] = mean, over the queries with at least one relevant item in the
      database, of relevant retrieved / all relevant; 0 if no query has any.
    """
    prob = _Problem(query_codes, db_codes, query_labels, db_labels, bit)
    nb = prob.nbits
    # Sort key: relevant items in [nb+1, 2nb+1], others in [0, nb]; one radix
    # sort per row then gives every cumulative count by binary search.
    key_dtype = np.uint8 if 2 * nb + 2 <= 255 else np.uint16 if 2 * nb + 2 <= 65535 else np.uint32
    bounds = np.concatenate([np.arange(nb + 1) + 1, np.arange(nb + 1) + nb + 2, [nb + 1]])
    bounds = bounds.astype(key_dtype)

    def block(s, e):
        key = prob.distances(s, e).astype(key_dtype)
        key += prob.relevant_all(s, e).astype(key_dtype) * key_dtype(nb + 1)
        key.sort(axis=1, kind="stable")
        counts = np.stack([np.searchsorted(row, bounds, side="left") for row in key])
        below = counts[:, : nb + 1]                 # not relevant, dist <= r
        rel_upto = counts[:, nb + 1: 2 * nb + 2]    # all items with key <= nb+1+r
        n_irrel = counts[:, -1:]                    # all irrelevant items
        good = rel_upto - n_irrel                   # relevant with dist <= r
        return below + good, good, prob.ndb - n_irrel[:, 0]

    parts = run_blocks(block, prob.nq, block_rows(prob.ndb, block_size), workers)
    retrieved = np.concatenate([p[0] for p in parts]).astype(np.float64)
    good = np.concatenate([p[1] for p in parts]).astype(np.float64)
    total_rel = np.concatenate([p[2] for p in parts]).astype(np.float64)

    answering = retrieved > 0
    n_answering = answering.sum(axis=0)
    prec_sum = np.where(answering, good / np.maximum(retrieved, 1), 0.0).sum(axis=0)
    precision = np.where(n_answering > 0, prec_sum / np.maximum(n_answering, 1), 0.0)
    has_rel = total_rel > 0
    n_has_rel = int(has_rel.sum())
    if n_has_rel:
        recall = (good[has_rel] / total_rel[has_rel, None]).sum(axis=0) / n_has_rel
    else:
        recall = np.zeros(nb + 1)
    return {
        "radius": np.arange(nb + 1),
        "precision": precision,
        "recall": recall,
        "retrieving": n_answering.astype(np.int64),
    }
