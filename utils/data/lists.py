"""List files: one image a line, `<relative/path.jpg> <v1> ... <vC>` (0/1 multi-hot labels, paths
relative to the data root), and the data set's class names (classes.txt beside the lists, else beside the images).

A path with white space in it (a user's "My Photos/IMG 1.jpg") is written in double quotes:
`"My Photos/IMG 1.jpg" 0 1`; a path cannot hold a double quote itself (format_path refuses it).

A list of unlabelled images has the path alone on every line (C = 0: labels of shape [n, 0]), for the
methods that learn without labels; a list that mixes both forms is an error naming the line."""
import os

import numpy as np

from utils.errors import ConfigError, DataError
from utils.storage.fileio import read_bytes

_DROP_01 = str.maketrans("", "", "01")


def read_list(list_path, num_classes=None):
    """Parse a list file: (paths, labels float32 [n, C], line numbers); C = 0 for a list of paths alone."""
    list_path = os.fspath(list_path)
    if num_classes is not None and (isinstance(num_classes, bool) or int(num_classes) < 0):
        raise ConfigError(f"{list_path}: num_classes must be >= 0 (0: paths alone), got {num_classes!r}")
    raw = read_bytes(list_path, "list file", folder_hint=", expected a list file")
    try:
        text = raw.decode("utf-8-sig")  # utf-8-sig drops a BOM
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].replace(b"\r\n", b"\n").replace(b"\r", b"\n").count(b"\n") + 1
        raise DataError(f"{list_path}:{line}: not UTF-8 text (byte {exc.start}); list files must be UTF-8") from None
    text = text.replace("\r\n", "\n").replace("\r", "\n")  # CRLF and CR line ends read as LF

    expected = None if num_classes is None else int(num_classes)
    paths, bits, linenos = [], [], []
    for lineno, line in enumerate(text.split("\n"), 1):
        where = f"{list_path}:{lineno}"
        tokens = _split_line(line, where)
        if not tokens:
            continue
        labels = tokens[1:]
        if "\x00" in tokens[0]:
            raise DataError(f"{where}: the image path contains a NUL character")
        if expected is None:
            expected = len(labels)
        if len(labels) != expected:
            if not labels:
                raise DataError(f"{where}: no labels")
            if expected == 0:
                raise DataError(f"{where}: {len(labels)} labels in a list whose first image has none (a list is "
                                f"either all unlabelled or all labelled)")
            raise DataError(f"{where}: expected {expected} labels, got {len(labels)}")
        joined = "".join(labels)
        if len(joined) != expected or joined.translate(_DROP_01):
            # Slow path: some token is not a plain "0"/"1" (e.g. "1.0", or an error).
            chars = []
            for token in labels:
                try:
                    value = float(token)
                except ValueError:
                    value = None
                if value not in (0.0, 1.0):
                    raise DataError(f"{where}: label {token!r} is not 0 or 1")
                chars.append("1" if value == 1.0 else "0")
            joined = "".join(chars)
        paths.append(tokens[0])
        bits.append(joined)
        linenos.append(lineno)
    if not paths:
        raise DataError(f"{list_path}: no images listed (the list is empty)")
    if expected == 0:
        return paths, np.zeros((len(paths), 0), dtype=np.float32), linenos
    flat = np.frombuffer("".join(bits).encode("ascii"), dtype=np.uint8)
    labels = (flat - ord("0")).reshape(len(paths), expected).astype(np.float32)
    return paths, labels, linenos


def _split_line(line, where):
    """[path, label, ...] of one line; a path in double quotes may hold white space."""
    stripped = line.lstrip()
    if not stripped.startswith('"'):
        return line.split()
    end = stripped.find('"', 1)
    if end < 0:
        raise DataError(f"{where}: the quoted image path has no closing double quote")
    path, rest = stripped[1:end], stripped[end + 1:]
    if not path:
        raise DataError(f"{where}: the quoted image path is empty")
    if rest and not rest[0].isspace():
        raise DataError(f"{where}: white space expected after the closing double quote of the image path")
    return [path, *rest.split()]


def format_path(path):
    """The path as a list line's first field: in double quotes when it holds white space."""
    if '"' in path:
        raise DataError(f"image path {path!r} contains a double quote; list files cannot hold it")
    if any(c.isspace() for c in path):
        return f'"{path}"'
    return path


def list_has_labels(list_path):
    """Whether the first image line of a list file has label columns: True, False (a list of paths
    alone), or None when the file cannot be read or lists nothing (training then says why). Reads the
    first lines only: the engine picks a recipe by it before anything is loaded."""
    try:
        with open(list_path, "rb") as f:
            for raw in f:
                for line in raw.decode("utf-8-sig").split("\r"):  # CR line ends too
                    if line.strip():
                        return len(_split_line(line.strip(), list_path)) > 1
    except (OSError, UnicodeDecodeError, DataError):
        return None
    return None


def parse_list(list_path, num_classes=None):
    """Read a list file. Returns (paths as written, labels float32 [n, C]).

    Blank lines are skipped, CRLF is fine. Every malformed line is a DataError
    ``"<file>:<line>: ..."``. When num_classes is None, C is taken from the first line (0 when it has
    the path alone: a list of unlabelled images).
    """
    paths, labels, _ = read_list(list_path, num_classes)
    return paths, labels


def class_names(data_root, num_classes, list_dir=None):
    """The class names of classes.txt (one a line, in label order) beside the lists (where the split
    tools write it) or else in data_root, when it lists num_classes of them, else "0", "1", ...: what
    predict.py and the search service print."""
    for folder in (list_dir, data_root):
        path = os.path.join(folder, "classes.txt") if folder else None
        if path and os.path.isfile(path):
            with open(path, encoding="utf-8") as f:
                names = [line.strip() for line in f if line.strip()]
            if len(names) == num_classes:
                return names
    return [str(i) for i in range(num_classes)]


def labels_of(image_path, data_root, list_paths):
    """The label row of image_path when the lists (paths relative to data_root) name it, else None:
    a query from the data set, whose matches can then be judged."""
    rel = os.path.relpath(os.path.abspath(image_path), os.path.abspath(data_root))
    for path in list_paths:
        paths, labels = parse_list(path)
        if rel in paths:
            return labels[paths.index(rel)]
    return None
