"""PP-ShiTu's index settings (the `IndexProcess` section of a PaddleClas deploy yaml) read as this
project's: the exact Hamming index and its radius search.

PaddleClas's binary recognition configs (deploy/configs/inference_general_binary.yaml and the
build_*_binary.yaml files) describe the gallery index with flat keys under `IndexProcess`. Their
search (deploy/python/predict_system.py) asks the index for the `return_k` nearest items and keeps
those within `hamming_radius`; that is the first `return_k` items of this project's radius search,
which ranks by (distance, index). What each key does here:

    index_method    FLAT (any case; absent: FLAT): the exact index (--index-backend's). HNSW<M>
                    (PP-ShiTu's default HNSW32): the approximate `hnsw` backend (faiss
                    IndexBinaryHNSW, M links). IVF<n>,Flat, IVF<n> or IVF: the approximate `ivf`
                    backend (faiss IndexBinaryIVF, n lists; IVF alone: sqrt(n) lists), or Milvus'
                    BIN_IVF_FLAT with --index-backend milvus. note() says the answer is
                    approximate. Anything else (PQ, LSH, ...): refused
    dist_type       hamming (required). IP and L2 are float-feature distances: refused
    hamming_radius  N >= 0: radius search, every item within N bits (predict.py --radius N)
    return_k        k >= 1: at most k results, the nearest (predict.py --topk k)
    embedding_size  the code length in bits: must equal the model's
    index_dir       the folder that keeps the database's codes (the code cache)
    image_root      the image root of the database list (predict.py --data-path)
    delimiter, data_file, index_operation, batch_size, score_thres
                    accepted and not used (gallery building and float scores in PP-ShiTu; here
                    the database is the data set's database.txt, encoded and cached on first
                    use): note() names them

Anything else under IndexProcess is an error naming the key, as is a value of the wrong type.
Flags given on the command line win over the file.
"""
from __future__ import annotations

import dataclasses
import numbers
import os
import re

from utils.errors import ConfigError

# PP-ShiTu's build_gallery.py: HNSW32 (its default), IVF (IVF<n>,Flat with n = gallery / 8), Flat;
# for hamming it puts "B" in front and calls faiss.index_binary_factory
METHODS = (("flat", re.compile(r"^flat$", re.I)), ("hnsw", re.compile(r"^hnsw(\d+)$", re.I)),
           ("ivf", re.compile(r"^ivf(\d*)(?:\s*,\s*flat)?$", re.I)))
UNUSED_KEYS = ("delimiter", "data_file", "index_operation", "batch_size", "score_thres")
KEYS = ("index_method", "dist_type", "hamming_radius", "return_k", "embedding_size", "index_dir", "image_root",
        *UNUSED_KEYS)


@dataclasses.dataclass(frozen=True)
class IndexSettings:
    """What an IndexProcess section asks for; None: not set (the command line's default holds)."""
    source: str
    radius: int | None = None
    topk: int | None = None
    embedding_size: int | None = None
    index_dir: str | None = None
    image_root: str | None = None
    unused: tuple = ()
    method: str = "FLAT"  # index_method as written
    backend: str | None = None  # "hnsw" or "ivf" for an approximate method, None for FLAT
    backend_options: tuple = ()  # (name, value) pairs for that backend: m, nlist

    @property
    def approximate(self) -> bool:
        return self.backend is not None

    def index_choice(self, backend: str, options: dict) -> tuple[str, dict]:
        """(backend, options) of HammingIndex for these settings, given the command line's backend and
        its options: FLAT keeps them; HNSW/IVF take the approximate backend (IVF on milvus: BIN_IVF_FLAT)."""
        if not self.approximate:
            return backend, options
        extra = dict(self.backend_options)
        if backend == "milvus":
            if self.backend != "ivf":
                raise ConfigError(f"{self.source}: IndexProcess.index_method: {self.method!r} has no Milvus form (its "
                                  f"binary indexes are BIN_FLAT and BIN_IVF_FLAT): use IVF<n>,Flat or FLAT")
            return "milvus", {**options, "index_type": "BIN_IVF_FLAT", **extra}
        return str(self.backend), extra

    def check_bit(self, bit):
        """ConfigError naming the key when the settings do not fit a `bit`-bit model."""
        if self.embedding_size is not None and self.embedding_size != bit:
            raise ConfigError(f"{self.source}: IndexProcess.embedding_size: {self.embedding_size}, but the model's "
                              f"codes are {bit} bits")
        if self.radius is not None and self.radius > bit:
            raise ConfigError(f"{self.source}: IndexProcess.hamming_radius must be an integer in [0, {bit}] (the "
                              f"code length; beyond it every image is within the radius), got {self.radius}")
        return self

    def note(self):
        """A line naming the keys read and not used, and one saying the search is approximate; or None."""
        lines = []
        if self.unused:
            lines.append(f"{self.source}: IndexProcess keys not used here: {', '.join(self.unused)} (PP-ShiTu's "
                         f"gallery building and float scores; the database is the data set's database.txt)")
        if self.approximate:
            engine = {"hnsw": "an HNSW graph", "ivf": "inverted lists"}[self.backend]
            lines.append(f"{self.source}: IndexProcess.index_method {self.method}: approximate search ({engine}, "
                         f"as in PP-ShiTu): the answer may miss nearer database images; FLAT is exact")
        return "\n".join(lines) or None


def _fail(source, key, message):
    raise ConfigError(f"{source}: IndexProcess.{key}: {message}")


def _integer(source, key, value, low):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        _fail(source, key, f"must be an integer >= {low}, got {value!r}")
    return int(value)


def _text(source, key, value):
    if not isinstance(value, str) or not value or "\0" in value:
        _fail(source, key, f"must be a non-empty string without NUL bytes, got {value!r}")
    return value


def parse_index_process(section, source="IndexProcess"):
    """IndexSettings of an IndexProcess mapping; ConfigError (one line, naming the key) otherwise."""
    if not isinstance(section, dict):
        raise ConfigError(f"{source}: IndexProcess must be a mapping of keys (index_method, dist_type, ...), "
                          f"got {type(section).__name__}")
    for key in section:
        if key in ("build", "infer"):
            _fail(source, key, "PaddleClas 2.2's nested layout is not read; put the keys (dist_type, return_k, "
                               "...) directly under IndexProcess, as its current deploy configs do")
        if key not in KEYS:
            _fail(source, key, f"unknown key; PP-ShiTu's keys are {', '.join(KEYS)}")
    method = section.get("index_method", "FLAT")
    values = {"method": method}
    matched = [(name, m) for name, pattern in METHODS if isinstance(method, str) for m in [pattern.match(method)] if m]
    if not matched:
        _fail(source, "index_method", f"{method!r} is not supported: use FLAT (exact), HNSW<M> such as HNSW32, or "
                                      f"IVF<n>,Flat (approximate)")
    kind, match = matched[0]
    if kind == "hnsw":
        if int(match[1]) < 2:
            _fail(source, "index_method", f"{method!r}: an HNSW graph needs at least 2 links per node (HNSW32)")
        values.update(backend="hnsw", backend_options=(("m", int(match[1])),))
    elif kind == "ivf":
        if match[1] and int(match[1]) < 1:
            _fail(source, "index_method", f"{method!r}: IVF needs at least 1 list (IVF1024,Flat)")
        values.update(backend="ivf", backend_options=(("nlist", int(match[1])),) if match[1] else ())
    if "dist_type" not in section:
        _fail(source, "dist_type", "missing; set dist_type: hamming (the codes here are binary)")
    dist = section["dist_type"]
    if not isinstance(dist, str) or dist.lower() != "hamming":
        _fail(source, "dist_type", f"{dist!r} is not supported: the codes here are binary and searched by Hamming "
                                   f"distance (IP and L2 are for float features); use hamming")
    for key, low, name in (("hamming_radius", 0, "radius"), ("return_k", 1, "topk"), ("embedding_size", 1,
                                                                                       "embedding_size")):
        if section.get(key) is not None:
            values[name] = _integer(source, key, section[key], low)
    for key in ("index_dir", "image_root"):
        if section.get(key) is not None:
            values[key] = _text(source, key, section[key])
    if section.get("delimiter") is not None:
        _text(source, "delimiter", section["delimiter"])
    if section.get("data_file") is not None:
        _text(source, "data_file", section["data_file"])
    operation = section.get("index_operation")
    if operation is not None and (not isinstance(operation, str) or operation.lower() not in ("new", "append",
                                                                                              "remove")):
        _fail(source, "index_operation", f"must be new, append or remove, got {operation!r}")
    if section.get("batch_size") is not None:
        _integer(source, "batch_size", section["batch_size"], 1)
    score = section.get("score_thres")
    if score is not None and (isinstance(score, bool) or not isinstance(score, numbers.Real)):
        _fail(source, "score_thres", f"must be a number, got {score!r}")
    unused = tuple(k for k in UNUSED_KEYS if k in section)
    return IndexSettings(source=source, unused=unused, **values)


def read_index_config(path, flag="--index-config"):
    """IndexSettings of the IndexProcess section of the yaml file at `path` (the other sections of a
    PaddleClas deploy config, Global, RecPreProcess, ..., are ignored)."""
    import yaml

    from utils.storage.parsing import load_yaml  # safe, no aliases (they expand to gigabytes), bounded nesting

    if not os.path.isfile(path):
        raise ConfigError(f"{flag} {path}: file not found")
    try:
        with open(path, encoding="utf-8") as f:
            data = load_yaml(f)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        why = f": {exc.problem}" if getattr(exc, "problem", None) else ""
        raise ConfigError(f"{flag} {path}: not valid YAML{where}{why}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{flag} {path}: cannot read ({getattr(exc, 'strerror', None) or exc})") from None
    if not isinstance(data, dict) or "IndexProcess" not in data:
        raise ConfigError(f"{flag} {path}: no IndexProcess section (PP-ShiTu's index settings: index_method, "
                          f"dist_type: hamming, hamming_radius, return_k, ...)")
    return parse_index_process(data["IndexProcess"], path)
