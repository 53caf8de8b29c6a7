"""Checking files that a library wrote itself, before they are renamed into place.

Paddle's C++ save (paddle.jit.save, save_inference_model, PostTrainingQuantization) writes
`.json` / `.pdmodel` / `.pdiparams` through a C++ stream whose errors it does not check: on a full
disk or past `ulimit -f` it returns normally and leaves a short file (checked: Paddle 3.3.1 on
Linux). So each such file is read back before it is trusted: a `.json` must parse, a `.pdmodel`
(a protobuf ProgramDesc) must hold whole fields, a `.pdiparams` must hold whole tensors (each
header's dtype and shape give the bytes that follow); and the file must be able to grow by one
byte (a write cut at a tensor boundary leaves a file that parses but sits at the limit that cut
it). A file that fails becomes a WriteError naming its target and the cause.
No paddle import: the formats are read byte by byte.
"""
import json
import os

from utils.errors import WriteError

# VarType.Type of paddle/fluid/framework/framework.proto -> bytes per element
_DTYPE_BYTES = {0: 1, 1: 2, 2: 4, 3: 8, 4: 2, 5: 4, 6: 8, 20: 1, 21: 1, 22: 2, 23: 8, 24: 16, 32: 1, 33: 1}


class _Short(Exception):
    """The bytes end inside a record: the file was cut short."""


def _varint(data, pos):
    result = shift = 0
    while True:
        if pos >= len(data):
            raise _Short
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 70:
            raise _Short


def proto_fields(data):
    """(field number, wire type, value) of each field of a protobuf message; _Short when cut."""
    pos, fields = 0, []
    while pos < len(data):
        key, pos = _varint(data, pos)
        wire = key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire in (1, 5):
            end = pos + (8 if wire == 1 else 4)
            value, pos = data[pos:end], end
        elif wire == 2:
            size, pos = _varint(data, pos)
            value, pos = data[pos:pos + size], pos + size
        else:
            raise _Short
        if pos > len(data):
            raise _Short
        fields.append((key >> 3, wire, value))
    return fields


def _tensor_bytes(desc):
    """Bytes of the data of a tensor whose TensorDesc (data_type = 1, dims = 2) is `desc`; None
    for a dtype this module does not know (such a file is not judged)."""
    dtype, dims = None, []
    for field, wire, value in proto_fields(desc):
        if field == 1 and wire == 0:
            dtype = value
        elif field == 2 and wire == 0:
            dims.append(value)
        elif field == 2 and wire == 2:  # packed
            pos = 0
            while pos < len(value):
                dim, pos = _varint(value, pos)
                dims.append(dim)
    if dtype not in _DTYPE_BYTES or any(d >= 1 << 63 for d in dims):
        return None
    count = 1
    for dim in dims:
        count *= dim
    return count * _DTYPE_BYTES[dtype]


def pdiparams_tensors(data):
    """The number of whole tensors in a `.pdiparams` file's bytes (Paddle's save_combine layout:
    per tensor a uint32 version, a uint64 LoD level count and levels, a uint32 version, an int32
    TensorDesc size, the TensorDesc, the data); _Short when cut; None when not judged."""
    pos, count = 0, 0
    while pos < len(data):
        if pos + 12 > len(data):
            raise _Short
        levels = int.from_bytes(data[pos + 4:pos + 12], "little")
        pos += 12
        for _ in range(levels):
            if pos + 8 > len(data):
                raise _Short
            pos += 8 + int.from_bytes(data[pos:pos + 8], "little")
        if pos + 8 > len(data):
            raise _Short
        size = int.from_bytes(data[pos + 4:pos + 8], "little", signed=True)
        pos += 8
        if size < 0 or pos + size > len(data):
            raise _Short
        nbytes = _tensor_bytes(data[pos:pos + size])
        if nbytes is None:
            return None
        pos += size + nbytes
        if pos > len(data):
            raise _Short
        count += 1
    return count


def _complete(path):
    """True when the file's format says it is whole (or the format is not one checked here)."""
    with open(path, "rb") as f:
        data = f.read()
    try:
        if path.endswith(".json"):
            json.loads(data)
        elif path.endswith(".pdmodel"):
            proto_fields(data)
        elif path.endswith(".pdiparams"):
            pdiparams_tensors(data)
    except (_Short, ValueError, RecursionError):
        return False
    return True


def _grow_and_sync(path):
    """None when one more byte can be appended to the file (then taken away again) and the file
    synced to disk (the library did not), else the error."""
    size = os.path.getsize(path)
    try:
        fd = os.open(path, os.O_WRONLY)
    except OSError as exc:
        return exc
    try:
        try:
            os.pwrite(fd, b"\0", size)
        except OSError as exc:
            return exc
        os.ftruncate(fd, size)
        os.fsync(fd)
        return None
    finally:
        os.close(fd)


def check_library_files(files):
    """files: (written path, target path) pairs of files a library wrote; WriteError naming the
    target when one was cut short (a full disk, a file size limit)."""
    for written, target in files:
        complete = _complete(written)
        error = _grow_and_sync(written)
        if error is not None:
            raise WriteError(target, error)
        if not complete:
            raise WriteError(target, "the file was cut short (disk full or a file size limit?)")
