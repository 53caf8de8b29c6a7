"""The Hamming index file: MAGIC, a 4-byte little-endian header length, a JSON header, then the
body (no pickle): the packed codes, the ids (int64 little-endian, when some were removed), the
backend's own state (faiss' serialized HNSW graph or IVF lists). The header names the format and
version, the bit count, the number of codes and their byte width, the backend and its options,
the next id, the sha256 of the body, and for the auto backend its timing record; a milvus index
holds no codes, only the reference to its collection.

Version 2 added the ids, the state, the options and the next id; version 1 files (and files
written before the format was renamed: HNETIDX / "hashnet-hamming-index") are read as they are.
"""
import hashlib
import json

import numpy as np

from utils.errors import RetrievalError
from utils.retrieval.codes import code_bytes
from utils.storage.fileio import atomic_open
from utils.storage.parsing import load_json

FORMAT = "hamming-index"
MAGIC = b"HAMMIDX\x00"
VERSION = 2
READABLE_VERSIONS = (1, 2)
LEGACY = {b"HNETIDX\x00": "hashnet-hamming-index"}  # magic -> format name of the files of HashNet-Paddle <= issue 15


def write_index_file(path, header, body):
    """Write header (a dict; format and version are added) and body atomically."""
    blob = json.dumps({**header, "format": FORMAT, "version": VERSION}, sort_keys=True).encode("utf-8")
    with atomic_open(path, "wb") as f:
        f.write(MAGIC)
        f.write(len(blob).to_bytes(4, "little"))
        f.write(blob)
        f.write(body)
    return path


def codes_checksum(body):
    return hashlib.sha256(body).hexdigest()


def parse_index_file(path, data, backend_names):
    """(header, body) of an index file's bytes; RetrievalError naming the file and what is wrong."""
    def bad(why):
        return RetrievalError(f"{path}: not a valid HammingIndex file ({why})")

    magic = data[:len(MAGIC)]
    formats = {MAGIC: FORMAT, **LEGACY}
    if len(data) < len(MAGIC) + 4 or magic not in formats:
        raise bad("no HammingIndex header: wrong file type or truncated")
    size = int.from_bytes(data[len(MAGIC):len(MAGIC) + 4], "little")
    start = len(MAGIC) + 4
    if start + size > len(data):
        raise bad("truncated header")
    try:
        header = load_json(data[start:start + size])  # nesting bounded before parsing
    except (UnicodeDecodeError, ValueError):
        raise bad("corrupt header") from None
    if not isinstance(header, dict) or header.get("format") != formats[magic]:
        raise bad("corrupt header")
    if header.get("version") not in READABLE_VERSIONS:
        raise bad(f"format version {header.get('version')}, this code reads versions "
                  f"{', '.join(map(str, READABLE_VERSIONS))}")
    try:
        bit, count, nbytes = (int(header[k]) for k in ("bit", "count", "code_bytes"))
        if bit < 1 or count < 0 or nbytes != code_bytes(bit) or header["codes"] not in ("inline", "server") \
                or header["backend"] not in backend_names:
            raise ValueError
    except (KeyError, TypeError, ValueError):
        raise bad("corrupt header") from None
    try:
        state = int(header.get("state_bytes", 0))
        if state < 0 or header.get("ids", "inline") != "inline" or not isinstance(header.get("backend_options", {}),
                                                                                  dict):
            raise ValueError
    except (TypeError, ValueError):
        raise bad("corrupt header") from None
    header.update(bit=bit, count=count, code_bytes=nbytes, state_bytes=state)
    body = data[start + size:]
    expected = (count * nbytes if header["codes"] == "inline" else 0) + (8 * count if "ids" in header else 0) + state
    if header["codes"] == "server" and header.get("version") == 1:
        if body:
            raise bad("unexpected bytes after the header")
        return header, body
    if len(body) != expected:
        raise bad(f"expected {expected} bytes after the header ({count} codes of {nbytes} bytes"
                  f"{', their ids' if 'ids' in header else ''}{', the backend state' if state else ''}), "
                  f"found {len(body)}: truncated or corrupt")
    if codes_checksum(body) != header.get("sha256"):
        raise bad("checksum mismatch: the codes are corrupt")
    return header, body


def split_body(path, header, body):
    """(codes, ids or None, state or None) bytes of a checked body."""
    count, nbytes = header["count"], header["code_bytes"]
    end = count * nbytes if header["codes"] == "inline" else 0
    codes, rest = body[:end], body[end:]
    ids = None
    if "ids" in header:
        ids, rest = rest[:8 * count], rest[8 * count:]
        values = np.frombuffer(ids, "<i8")
        if count and (values[0] < 0 or np.any(np.diff(values) <= 0)
                      or values[-1] >= int(header.get("next_id", values[-1] + 1))):
            raise RetrievalError(f"{path}: not a valid HammingIndex file (corrupt ids)")
    state = rest if header["state_bytes"] else None
    return codes, ids, state
