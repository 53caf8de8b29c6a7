"""Index backends behind one interface (Backend), picked by name from BACKENDS.

Adding a backend: a module here with a class that fills Backend, and one line in BACKENDS
(docs/architecture.md). HammingIndex checks and packs every argument before a backend sees it.
"""
from typing import Protocol

import numpy as np

from utils.retrieval.backends.auto import AutoBackend
from utils.retrieval.backends.faiss import FaissBackend
from utils.retrieval.backends.milvus import MilvusBackend
from utils.retrieval.backends.numpy import NumpyBackend


class Backend(Protocol):
    """What HammingIndex needs from a backend. Built as `cls(bit, threads=None, **options)`.

    Codes come in as packed uint8 rows [n, ceil(bit/8)] with zero padding bits. Every answer is
    exact and ranked by (distance, index): distances int32, indices int64 (database indices count
    from 0 in the order codes were added).
    """

    name: str

    def __len__(self) -> int:
        """Codes held."""

    def add(self, packed: np.ndarray) -> None:
        """Append codes; their indices continue from len(self)."""

    def packed(self) -> np.ndarray | None:
        """The database as packed rows, or None where the codes live in a server (milvus)."""

    def search(self, qpacked: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k per query: (distances [nq, k'], indices [nq, k']), k' = min(k, len(self))."""

    def range_search(self, qpacked: np.ndarray, radius: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per query, (distances, indices) of every item within radius (inclusive)."""

    def plan_topk(self, k: int) -> str:
        """In words, the engine a search(k) would use."""

    def plan_range(self, radius: int) -> str:
        """In words, the engine a range_search(radius) would use."""


BACKENDS = {"auto": AutoBackend, "numpy": NumpyBackend, "faiss": FaissBackend, "milvus": MilvusBackend}


def backend_names():
    """Names accepted by HammingIndex(backend=...) and predict.py --index-backend."""
    return list(BACKENDS)
