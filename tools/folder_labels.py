"""The --labels FILE of tools.make_folder_split: each image's labels, from CSV or JSON.

CSV (any file name but *.json): one image a row, `path,label[,label...]`; a cell may hold several
labels separated by ";" (`a.jpg,"cat;dog"` = `a.jpg,cat,dog`); a cell in double quotes may hold
commas; an image on several rows gets the labels of all of them; blank rows and rows whose first
cell starts with "#" are skipped, and so is a first row whose first cell is a header word (path,
file, filename, image, image_path, any case).
JSON (*.json): an object `{"path": ["label", ...]}` (a single "label" string works too) or a list
of objects `[{"path": "...", "labels": [...]}, ...]`.
Paths are relative to the image root ("./" and doubled "/" are tidied); labels keep their spaces
inside, lose them at both ends. A syntax error, an absolute path or one with ".." is a DataError
naming file:line; whether the images exist is the caller's business (a missing one is not fatal).
"""
from __future__ import annotations

import csv
import dataclasses
import json
import posixpath

from tools.split_common import check_class_name, read_text
from utils.errors import DataError, quote

HEADER_WORDS = ("path", "file", "filename", "image", "image_path")
WHAT = "a labels file: CSV rows path,label[,label...] or JSON {\"path\": [\"label\", ...]}"


@dataclasses.dataclass
class LabelsFile:
    """labels: {relative path: its labels, in first-seen order}; lines: {relative path: the line
    (CSV) or entry number (JSON, from 1) that first named it}; unit: "line" or "entry"."""

    path: str
    labels: dict[str, list[str]]
    lines: dict[str, int]
    unit: str = "line"


def tidy_path(text: str, where: str) -> str:
    path = text.strip()
    if not path:
        raise DataError(f"{where}: the image path is empty")
    if path.startswith(("/", "\\")) or (len(path) > 1 and path[1] == ":"):
        raise DataError(f"{where}: image path {quote(path)} is absolute; paths are relative to --image-root")
    if ".." in path.replace("\\", "/").split("/"):
        raise DataError(f"{where}: image path {quote(path)} holds '..'; paths are relative to --image-root")
    return posixpath.normpath(path)


def _labels_of(cells, where: str) -> list[str]:
    found = []
    for cell in cells:
        for label in cell.split(";"):
            label = label.strip()
            if label:
                found.append(check_class_name(label, f"{where}: label"))
    return found


def _add(result: LabelsFile, path: str, labels: list[str], line: int) -> None:
    known = result.labels.setdefault(path, [])
    known.extend(label for label in labels if label not in known)
    result.lines.setdefault(path, line)


def read_csv(path: str) -> LabelsFile:
    text = read_text(path, WHAT)
    result = LabelsFile(path, {}, {})
    reader = csv.reader(text.split("\n"), strict=True)
    first, start = True, 1
    try:
        for row in reader:
            where, start = f"{path}:{start}", reader.line_num + 1  # a row may span lines (a quoted newline)
            if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
                continue
            if first and row[0].strip().lower() in HEADER_WORDS:
                first = False
                continue
            first = False
            if len(row) == 1 and ";" in row[0]:
                raise DataError(f"{where}: one cell {quote(row[0])}; the file is comma-separated: "
                                "path,label[,label...] (several labels in one cell: path,\"a;b\")")
            _add(result, tidy_path(row[0], where), _labels_of(row[1:], where), int(where.rsplit(":", 1)[1]))
    except csv.Error as exc:  # named by the line its row starts on (an unclosed quote: where it opened)
        raise DataError(f"{path}:{start}: not valid CSV ({exc})") from None
    return result


def read_json(path: str) -> LabelsFile:
    text = read_text(path, WHAT)
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}:{exc.lineno}: invalid JSON ({exc.msg}, column {exc.colno})") from None
    result = LabelsFile(path, {}, {}, "entry")
    if isinstance(doc, dict):
        entries = list(doc.items())
    elif isinstance(doc, list):
        entries = []
        for k, item in enumerate(doc, 1):
            if not isinstance(item, dict) or not isinstance(item.get("path"), str):
                raise DataError(f"{path}: entry {k}: expected an object with \"path\" and \"labels\", "
                                f"got {quote(item)}")
            entries.append((item["path"], item.get("labels", [])))
    else:
        raise DataError(f"{path}: expected a JSON object {{\"path\": [\"label\", ...]}} or a list of objects")
    for k, (image, labels) in enumerate(entries, 1):
        where = f"{path}: entry {k} ({quote(image)})"
        if isinstance(labels, str):
            labels = [labels]
        if not isinstance(labels, list) or not all(isinstance(v, str) for v in labels):
            raise DataError(f"{where}: the labels must be a list of strings, got {quote(labels)}")
        _add(result, tidy_path(image, where), _labels_of(labels, where), k)
    return result


def read_labels(path: str) -> LabelsFile:
    """The labels of a CSV or JSON labels file (by its extension: .json is JSON, anything else CSV)."""
    return read_json(path) if path.lower().endswith(".json") else read_csv(path)
