"""Rescoring: the Hamming top-N candidates re-ranked by the real-valued (pre-sign) features.

A binary first stage finds N candidates cheaply; their features, kept as int8 (`Int8Features`: one
byte a dimension, a quarter of float32's memory, plus one float32 scale per dimension for the whole
store), then rank them by cosine similarity (or dot product) to the query's float features. This is
the "binary search + rescoring" of sentence-transformers' `quantize_embeddings(precision="ubinary")`
(Shakir, Aarsen and Lee, "Binary and Scalar Embedding Quantization", 2024). Rescoring only reorders
the candidates: it never brings in an item the Hamming stage did not return.

"Top-N rescored" takes as candidates every item within the Hamming distance of the N-th nearest,
not just the first N: short codes put many items at one distance, and cutting that tie by database
index would leave relevant items out of the rescoring for no reason but their position. The
candidates are capped at TIE_CAP_FACTOR x N (the first ones by (distance, index) when more tie), so
the cost stays bounded however coarse the codes are (`tied_candidates`).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from utils.errors import CodeFormatError

METRICS = ("cosine", "dot")
TIE_CAP_FACTOR = 10  # top-N rescoring ranks at most this many times N candidates (ties at the N-th distance)


@dataclasses.dataclass(frozen=True)
class Int8Features:
    """Features [n, K] stored as int8 `values` times a per-dimension float32 `scale` [K]:
    feature[i, j] ~= values[i, j] * scale[j], with an error of at most scale[j] / 2 (values clipped to
    +-127 beyond the range the scale was fitted on)."""

    values: np.ndarray  # int8 [n, K]
    scale: np.ndarray   # float32 [K]

    @classmethod
    def quantize(cls, features: np.ndarray, scale: np.ndarray | None = None) -> Int8Features:
        """Quantise float features; `scale` None fits it (the largest |feature| of each dimension / 127)."""
        features = np.asarray(features, dtype=np.float32)
        if features.ndim != 2:
            raise CodeFormatError(f"features must be a 2-D array [n, K], got shape {features.shape}")
        if not np.isfinite(features).all():
            raise CodeFormatError("features hold NaN or infinity")
        if scale is None:
            peak = np.abs(features).max(axis=0) if len(features) else np.zeros(features.shape[1], np.float32)
            scale = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
        scale = np.asarray(scale, dtype=np.float32)
        if scale.shape != (features.shape[1],):
            raise CodeFormatError(f"scale must have one value per dimension ({features.shape[1]}), got {scale.shape}")
        values = np.clip(np.rint(features / scale), -127, 127).astype(np.int8)
        return cls(values, scale)

    def __len__(self) -> int:
        return len(self.values)

    @property
    def nbytes(self) -> int:
        """Bytes held: one a dimension a vector, plus 4 a dimension for the scales."""
        return int(self.values.nbytes + self.scale.nbytes)

    def dequantize(self, rows: np.ndarray | None = None) -> np.ndarray:
        """float32 features of `rows` (all when None)."""
        values = self.values if rows is None else self.values[rows]
        return values.astype(np.float32) * self.scale

    def append(self, features: np.ndarray) -> Int8Features:
        """A store with `features` added, quantised with this store's scales."""
        more = Int8Features.quantize(features, self.scale)
        return Int8Features(np.concatenate([self.values, more.values]), self.scale)

    def extended(self, features: np.ndarray) -> Int8Features:
        """A store with `features` added without clipping them: the scale of a dimension is widened
        where a new feature would exceed it (the stored rows then requantised); an empty store is
        fitted to `features` alone."""
        features = np.asarray(features, dtype=np.float32)
        if features.ndim != 2 or features.shape[1] != self.scale.size:
            raise CodeFormatError(f"features must be a 2-D array [n, {self.scale.size}], got shape {features.shape}")
        if not len(self.values):
            return Int8Features.quantize(features)
        peak = np.abs(features).max(axis=0) / 127.0 if len(features) else self.scale
        if not (peak > self.scale).any():
            return self.append(features)
        scale = np.maximum(self.scale, peak).astype(np.float32)
        return Int8Features.quantize(np.concatenate([self.dequantize(), features]), scale)


def feature_scores(query: np.ndarray, store: Int8Features, rows: np.ndarray, metric: str = "cosine") -> np.ndarray:
    """Similarity (higher is nearer) of one float query [K] to the stored features of `rows`."""
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    candidates = store.dequantize(rows)
    query = np.asarray(query, dtype=np.float32)
    scores = candidates @ query
    if metric == "cosine":
        norms = np.linalg.norm(candidates, axis=1) * np.linalg.norm(query)
        scores = np.divide(scores, norms, out=np.zeros_like(scores), where=norms > 0)
    return scores


def rescore(query: np.ndarray, store: Int8Features, distances: np.ndarray, ids: np.ndarray, k: int,
            metric: str = "cosine", positions: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The Hamming candidates (`distances`, `ids`, in their Hamming order) re-ranked by feature
    similarity to `query`, ties kept in Hamming order; returns (distances, ids, scores) of the best k.
    `positions`: the rows of `store` the ids name (the ids themselves when None)."""
    rows = ids if positions is None else positions
    scores = feature_scores(query, store, np.asarray(rows, dtype=np.int64), metric)
    order = np.argsort(-scores, kind="stable")[:k]
    return distances[order], ids[order], scores[order]


def candidate_pool(n: int) -> int:
    """How many Hamming neighbours to fetch for top-`n` rescoring: the cap on its candidates."""
    return n * TIE_CAP_FACTOR


def tied_candidates(distances: np.ndarray, n: int, cap: int | None = None) -> int:
    """How many of a Hamming answer ordered by (distance, index) are the candidates of top-`n`
    rescoring: every item within the distance of the n-th (all of its ties), at most `cap`
    (default candidate_pool(n)); all of them when the answer holds fewer than n."""
    distances = np.asarray(distances)
    cap = candidate_pool(n) if cap is None else cap
    if len(distances) <= n:
        return len(distances)
    return int(min(np.searchsorted(distances, distances[n - 1], side="right"), cap))
