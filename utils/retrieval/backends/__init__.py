"""Index backends behind one interface (Backend), picked by name from BACKENDS.

Adding a backend: a module here with a class that fills Backend, and one line in BACKENDS
(docs/architecture.md). HammingIndex checks and packs every argument before a backend sees it.
"""
from __future__ import annotations

from typing import Protocol

import numpy as np

from utils.retrieval.backends.approximate import HnswBackend, IvfBackend
from utils.retrieval.backends.auto import AutoBackend
from utils.retrieval.backends.faiss import FaissBackend
from utils.retrieval.backends.mih import MihBackend
from utils.retrieval.backends.milvus import MilvusBackend
from utils.retrieval.backends.numpy import NumpyBackend

TopK = tuple[np.ndarray, np.ndarray]
Hits = list[tuple[np.ndarray, np.ndarray]]


class Backend(Protocol):
    """What HammingIndex needs from a backend. Built as `cls(bit, threads=None, **options)`.

    Codes come in as packed uint8 rows [n, ceil(bit/8)] with zero padding bits. A backend numbers
    its items by position: 0 .. len-1 in the order they were added, renumbered in the same order
    after a removal (HammingIndex maps positions to the ids users see). Every answer is ranked by
    (distance, position): distances int32, positions int64. An exact backend (`exact = True`)
    returns what a flat scan returns; an approximate one (faiss HNSW and IVF, Milvus BIN_IVF_FLAT)
    may miss items, and a missing place of a top-k row holds distance -1 and position -1.
    """

    name: str
    exact: bool

    def __len__(self) -> int:
        """Codes held."""

    def add(self, packed: np.ndarray) -> None:
        """Append codes; their positions continue from len(self)."""

    def remove(self, positions: np.ndarray) -> None:
        """Drop the items at these positions (sorted, distinct, in range); the rest keep their order.
        A backend that cannot raises RetrievalError (one line) before changing anything."""

    def packed(self) -> np.ndarray | None:
        """The database as packed rows, or None where the codes live in a server (milvus)."""

    def search(self, qpacked: np.ndarray, k: int) -> TopK:
        """Top-k per query: (distances [nq, k'], positions [nq, k']), k' = min(k, len(self))."""

    def range_search(self, qpacked: np.ndarray, radius: int) -> Hits:
        """Per query, (distances, positions) of every item within radius (inclusive)."""

    def plan_topk(self, k: int) -> str:
        """In words, the engine a search(k) would use ("approximate: ..." for an approximate one)."""

    def plan_range(self, radius: int) -> str:
        """In words, the engine a range_search(radius) would use."""


BACKENDS: dict[str, type] = {"auto": AutoBackend, "numpy": NumpyBackend, "faiss": FaissBackend,
                             "milvus": MilvusBackend, "mih": MihBackend, "hnsw": HnswBackend, "ivf": IvfBackend}
APPROXIMATE = ("hnsw", "ivf")  # faiss IndexBinaryHNSW / IndexBinaryIVF: fast, may miss neighbours


def backend_names(approximate: bool = False) -> list[str]:
    """Names accepted by HammingIndex(backend=...). The exact ones by default (what predict.py
    --index-backend and the service offer); approximate=True adds hnsw and ivf."""
    return [name for name in BACKENDS if approximate or name not in APPROXIMATE]
