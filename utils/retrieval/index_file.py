"""The Hamming index file: MAGIC, a 4-byte little-endian header length, a JSON header, then the
packed codes (no pickle). The header names the format and version, the bit count, the number of
codes and their byte width, the backend, the sha256 of the codes, and for the auto backend its
timing record; a milvus index holds no codes, only the reference to its collection.

Files written before the format was renamed (HNETIDX / "hashnet-hamming-index", version 1) are
read as they are.
"""
import hashlib
import json

from utils.errors import RetrievalError
from utils.retrieval.codes import code_bytes
from utils.storage.fileio import atomic_open
from utils.storage.parsing import load_json

FORMAT = "hamming-index"
MAGIC = b"HAMMIDX\x00"
VERSION = 1
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
    if header.get("version") != VERSION:
        raise bad(f"format version {header.get('version')}, this code reads version {VERSION}")
    try:
        bit, count, nbytes = (int(header[k]) for k in ("bit", "count", "code_bytes"))
        if bit < 1 or count < 0 or nbytes != code_bytes(bit) or header["codes"] not in ("inline", "server") \
                or header["backend"] not in backend_names:
            raise ValueError
    except (KeyError, TypeError, ValueError):
        raise bad("corrupt header") from None
    header.update(bit=bit, count=count, code_bytes=nbytes)
    body = data[start + size:]
    if header["codes"] == "server":
        if body:
            raise bad("unexpected bytes after the header")
        return header, body
    if len(body) != count * nbytes:
        raise bad(f"expected {count} codes of {nbytes} bytes = {count * nbytes} bytes after the header, "
                  f"found {len(body)}: truncated or corrupt")
    if codes_checksum(body) != header.get("sha256"):
        raise bad("checksum mismatch: the codes are corrupt")
    return header, body
