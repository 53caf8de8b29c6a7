"""Query by image: an encoder, the database's codes (cached), a HammingIndex and the result rows.

The one search pipeline behind predict.py, the search service (deploy/serving) and the benchmarks:

    searcher = Searcher.from_settings(SearchSettings(bit=64, pretrained="...", config=cfg), log=print)
    result = searcher.search(searcher.encode_images([rgb]).codes, k=10)     # or radius=2
    for match in result.matches: match.rank, match.distance, match.path, match.labels

With `rescore=N` a top-k search takes the N nearest codes, with every code tied at the N-th one's
distance (at most utils.retrieval.rescore.TIE_CAP_FACTOR x N), and re-ranks them by the cosine
similarity of their pre-sign features (kept as int8 beside the code cache, utils.retrieval.rescore)
to the query's features; search() then needs the query's features (`encode_images(...).features`).

A database is one or more sources (ListSource: the images of a list file under a data root, their
codes cached by utils.inference.code_cache; utils.inference.folder_source.FolderSource: every image
under a folder, no labels, its cache updated incrementally); the service appends the images it is sent. Database
indices count from 0 over the sources in order. Searches and appends hold one lock, so a search
sees the index and the entries of the same moment.
"""
from __future__ import annotations

import dataclasses
import os
import threading
from typing import Any, Callable, Iterable, Mapping, Protocol, Sequence

import numpy as np

from utils.data.lists import class_names, parse_list
from utils.encoding import Encoded
from utils.inference.code_cache import list_codes
from utils.inference.encoders import Encoder
from utils.errors import ConfigError
from utils.retrieval import HammingIndex
from utils.retrieval.rescore import Int8Features, candidate_pool, rescore, tied_candidates
from utils.storage.run_folder import DEFAULT_OUTPUT

Log = Callable[[str], Any]


class DatabaseSource(Protocol):
    """Where database images come from: their paths (relative to `root`), labels and codes."""

    @property
    def name(self) -> str:
        """What a match's `source` says ("data", "added")."""
        ...

    @property
    def root(self) -> str:
        """The absolute folder the paths are relative to."""
        ...

    def entries(self, num_classes: int | None) -> tuple[list[str], np.ndarray]:
        """(paths, labels [n, C] 0/1) in database order; num_classes: the database's C (None for the
        first source, which sets it)."""
        ...

    def codes(self, encoder: Encoder, batch_size: int, num_workers: int, log: Log) -> np.ndarray:
        """+-1 int8 codes [n, K] in the order of entries()."""
        ...


@dataclasses.dataclass(frozen=True)
class ListSource:
    """The images of a list file (paths relative to data_root), their codes cached in cache_dir
    (rebuilt when the model, the preprocessing, the list or the root changes)."""

    list_path: str
    data_root: str
    cache_dir: str
    name: str = "data"
    desc: str = "encode database"
    num_workers: int | None = None         # image decoding processes (None: the searcher's)

    @property
    def root(self) -> str:
        return os.path.abspath(self.data_root)

    def entries(self, num_classes: int | None) -> tuple[list[str], np.ndarray]:
        return parse_list(self.list_path, num_classes)

    def codes(self, encoder: Encoder, batch_size: int, num_workers: int, log: Log) -> np.ndarray:
        workers = num_workers if self.num_workers is None else self.num_workers
        return list_codes(encoder, self.list_path, self.data_root, self.cache_dir, batch_size, workers, self.desc, log)

    def codes_and_features(self, encoder: Encoder, batch_size: int, num_workers: int,
                           log: Log) -> tuple[np.ndarray, Int8Features]:
        """The codes and their int8 features (both cached; a cache without features is rebuilt)."""
        workers = num_workers if self.num_workers is None else self.num_workers
        return list_codes(encoder, self.list_path, self.data_root, self.cache_dir, batch_size, workers, self.desc, log,
                          features=True)


@dataclasses.dataclass(frozen=True)
class Match:
    """One result row: rank (from 1), database index, Hamming distance, and the entry it names."""

    rank: int
    index: int
    distance: int
    source: str
    path: str
    labels: np.ndarray  # int8 0/1 [C]
    score: float | None = None  # with rescoring: the feature similarity the match was ranked by


@dataclasses.dataclass(frozen=True)
class SearchResult:
    matches: list[Match]
    radius: int | None
    within_radius: int | None   # with a radius: how many were within it (before the cap)
    database_size: int
    nearest_distance: int | None = None  # with a radius and nothing within it: how far the nearest image is


@dataclasses.dataclass(frozen=True)
class SearchSettings:
    """What a Searcher is built from (predict.py's flags, the service's, a benchmark's arguments).

    The model is trained weights `pretrained` (run in dygraph with `config`, the config that trained
    them) or an export `model_dir` (Paddle Inference). The database is `database` (a list file and
    its data root, cached in cache_dir) or, when None, the database list of `config`'s data set."""

    bit: int
    config: Any = None                     # the resolved config (utils.config): weights and data set
    pretrained: str | None = None
    model_dir: str | None = None
    database: DatabaseSource | None = None
    cache_dir: str = DEFAULT_OUTPUT
    backend: str = "auto"
    index_options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    threads: int = 0                       # CPU threads (0: all cores; with predictors: per predictor)
    predictors: int | None = None          # an export shared by threads: a pool of this many predictors
    use_mkldnn: bool = True
    batch_size: int = 32
    num_workers: int = 2
    rescore: int = 0                       # > 0: top-k re-ranked among this many Hamming candidates by features


class Searcher:
    """Exact Hamming search of query images over a database of images (see the module docstring)."""

    def __init__(self, encoder: Encoder, sources: Iterable[DatabaseSource], *, backend: str = "auto",
                 threads: int | None = None, index_options: Mapping[str, Any] | None = None, batch_size: int = 32,
                 num_workers: int = 2, log: Log = print, rescore: int = 0) -> None:
        from utils.data.transforms import build_transform

        self.encoder = encoder
        self.bit = encoder.bit
        self.transform = build_transform(False, **encoder.preprocess)
        self.index = HammingIndex(self.bit, backend, threads=threads, **(index_options or {}))
        self.backend = backend
        self.rescore = int(rescore)
        self.features: Int8Features | None = None  # with rescoring: the database's, row for row
        self.paths: list[str] = []
        self.sources: list[str] = []
        self.labels: list[np.ndarray] = []
        self.roots: dict[str, str] = {}
        self.num_classes: int | None = None
        self._lock = threading.Lock()
        list_dir = None  # the first source's list folder: where the split tools write classes.txt
        for source in sources:
            if not self.roots and isinstance(source, ListSource):
                list_dir = os.path.dirname(os.path.abspath(source.list_path))
            features = None
            if self.rescore:
                if not hasattr(source, "codes_and_features"):
                    raise ConfigError(f"rescoring needs the features of every database source; {source.name!r} keeps "
                                      f"codes only")
                codes, features = source.codes_and_features(encoder, batch_size, num_workers, log)
            else:
                codes = source.codes(encoder, batch_size, num_workers, log)
            paths, labels = source.entries(self.num_classes)
            self.roots[source.name] = source.root
            self.num_classes = labels.shape[1] if self.num_classes is None else self.num_classes
            self.append(source.name, paths, labels, codes, features)
        first = next(iter(self.roots.values()), None)
        self.class_names = class_names(first, self.num_classes or 0, list_dir) if first is not None else []

    @classmethod
    def from_settings(cls, settings: SearchSettings, extra_sources: Sequence[DatabaseSource] = (),
                      log: Log = print, encoder: Encoder | None = None) -> Searcher:
        """Build the encoder (trained weights or export; or take the one given, built from the same
        settings) and the database of `settings`, then the extra sources (the service's added images)."""
        encoder = encoder or build_encoder(settings)
        database = settings.database or config_database(settings.config, settings.cache_dir)
        return cls(encoder, [database, *extra_sources], backend=settings.backend, threads=settings.threads or None,
                   index_options=settings.index_options, batch_size=settings.batch_size,
                   num_workers=settings.num_workers, log=log, rescore=settings.rescore)

    def __len__(self) -> int:
        return len(self.paths)

    # ------------------------------------------------------------------ queries

    def encode_images(self, images: Sequence[np.ndarray]) -> Encoded:
        """Features and codes of uint8 RGB images (the test-time preprocessing of the model)."""
        return self.encoder.encode(np.stack([self.transform(image) for image in images]))

    def search(self, code: np.ndarray, k: int | None = 10, radius: int | None = None,
               features: np.ndarray | None = None) -> SearchResult:
        """The matches of one query code: the k nearest, or with a radius every database image within
        it (inclusive), the nearest k of them when k is not None; ranked by (distance, index). With
        rescoring (top-k only) the k best by feature similarity among the max(k, `rescore`) nearest
        codes and the codes tied with the last of them (utils.retrieval.rescore.tied_candidates);
        `features`: the query's pre-sign features [K] or [1, K]."""
        scores, top = None, 0  # top: k of a top-k search
        with self._lock:
            if radius is None:
                if k is None:
                    raise ValueError("Searcher.search: give k, a radius, or both")
                top = k
                wanted = candidate_pool(max(k, self.rescore)) if self.rescore else k  # rescoring: the ties too
                distances, indices = (a[0] for a in self.index.search(code, wanted))
                within = None
            else:
                distances, indices = self.index.range_search(code, radius)[0]
                within = len(indices)
                distances, indices = distances[:k], indices[:k]
            nearest = None
            if radius is not None and not within and len(self.paths):  # say how far the answer would be
                nearest = int(self.index.search(code, 1)[0][0][0])
            found = indices >= 0  # an approximate backend marks the places it found nothing for with -1
            distances, indices = distances[found], indices[found]
            if self.rescore and radius is None:
                if features is None or self.features is None:
                    raise ValueError("Searcher.search: rescoring needs the query's features")
                query = np.asarray(features, np.float32).reshape(-1)
                m = tied_candidates(distances, max(top, self.rescore))
                distances, indices, scores = rescore(query, self.features, distances[:m], indices[:m], top)
            matches = [Match(rank, int(i), int(d), self.sources[i], self.paths[i], self.labels[i],
                             None if scores is None else float(scores[rank - 1]))
                       for rank, (d, i) in enumerate(zip(distances, indices), 1)]
            return SearchResult(matches, radius, within, len(self.paths), nearest)

    def entry(self, index: int) -> tuple[str, str, np.ndarray]:
        """(source, path, labels) of a database index."""
        return self.sources[index], self.paths[index], self.labels[index]

    def labels_of(self, path: str, source: str = "data") -> np.ndarray | None:
        """The label row of the first entry of `source` with this path, else None."""
        with self._lock:
            for i, (p, s) in enumerate(zip(self.paths, self.sources)):
                if p == path and s == source:
                    return self.labels[i]
        return None

    def image_path(self, match: Match) -> str:
        """The file of a match (its source's root joined with its path)."""
        return os.path.join(self.roots[match.source], match.path)

    # ------------------------------------------------------------------ growing

    def append(self, source: str, paths: Sequence[str], labels: Any, codes: np.ndarray,
               features: Int8Features | np.ndarray | None = None) -> range:
        """Add entries of `source` with their codes (and, with rescoring, their features: float
        [n, K] or an Int8Features, requantised to the database's scales); returns their indices."""
        rows = [np.asarray(row, np.int8) for row in labels]
        if self.rescore and features is None:
            raise ConfigError(f"rescoring needs the features of the entries added from {source!r}")
        with self._lock:
            first = len(self.paths)
            if self.rescore:
                self.features = grown_store(self.features, features)
            if len(rows):
                self.index.add(codes)
            self.paths.extend(paths)
            self.sources.extend([source] * len(paths))
            self.labels.extend(rows)
            return range(first, len(self.paths))


def grown_store(store: Int8Features | None, features: Int8Features | np.ndarray | None) -> Int8Features:
    """`store` with `features` after it: the first store is taken as it is, later features are
    requantised to its per-dimension scales."""
    if isinstance(features, Int8Features):
        if store is None:
            return features
        features = features.dequantize()
    return Int8Features.quantize(np.asarray(features)) if store is None else store.append(np.asarray(features))


def config_database(cfg: Any, cache_dir: str) -> ListSource:
    """The database list of a config's data set (made first for the lite set when absent)."""
    from utils.config import dataset_lists

    return ListSource(dataset_lists(cfg)["database"], cfg["dataset"]["data_path"], cache_dir)


def build_encoder(settings: SearchSettings) -> Encoder:
    """The export (Paddle Inference, oneDNN as asked) or the trained weights (dygraph), with the
    process's device and threads set up the way predict.py always has."""
    from utils.inference.encoders import DygraphEncoder, InferenceEncoder
    from utils.runtime.device import setup_device

    if settings.model_dir and settings.predictors is not None:
        from utils.inference.encoder_pool import EncoderPool

        return EncoderPool(settings.model_dir, settings.bit, size=settings.predictors, threads=settings.threads,
                           use_mkldnn=settings.use_mkldnn)
    if settings.model_dir:
        encoder = InferenceEncoder(settings.model_dir, settings.bit, use_mkldnn=settings.use_mkldnn,
                                   cpu_threads=settings.threads or os.cpu_count())
        setup_device("cpu", settings.threads)
        return encoder
    if settings.pretrained is None:
        raise ValueError("SearchSettings: give pretrained (trained weights) or model_dir (an export)")
    setup_device(settings.config["device"], settings.threads)
    return DygraphEncoder(settings.config, settings.pretrained)
