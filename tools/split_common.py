"""Shared code of the split tools: seeded selection, input checks, and writing the outputs.

Every tool writes, into its ``--out-dir`` (default ``data/<name>/``):

    train.txt, test.txt, database.txt   one image a line: ``<relative/path> <v1> ... <vC>`` (0/1),
                                        or the path alone for unlabelled images (C = 0)
    classes.txt                         the class names, one a line, in label-vector order (empty: C = 0)
    SHA256SUMS                          ``sha256sum -c SHA256SUMS`` (run in the folder) verifies the three lists
    summary.txt                         counts, mean labels per image, dropped images, class frequencies

Each file is written atomically (temp file + rename); SHA256SUMS is written after the lists,
so an interrupted run is detected by ``sha256sum -c``. Lines are in input order (the order of
the annotation files), not in the random order, so lists are easy to diff.

Randomness: the order in which images are drawn is the order of SHA-256(tool, seed, image
path). It depends only on the seed and the image paths: not on the numpy or Python version,
the platform, or the order of the input files. The same inputs and seed give byte-identical
outputs everywhere.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import sys
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from utils.cli import exit_on_user_error
from utils.cli.flags import HelpFormatter as CliHelpFormatter
from utils.data.lists import format_path
from utils.errors import DataError, quote
from utils.storage import fileio
from utils.storage.fileio import atomic_open

LISTS = ("train", "test", "database")


# --------------------------------------------------------------------------- command line


class HelpFormatter(CliHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Keep the module docstring's layout and show the defaults (utils.cli.flags.HelpFormatter's rules)."""


def make_parser(doc: str, name: str, list_name: str | None = None) -> argparse.ArgumentParser:
    """An argparse parser whose description is the tool's docstring, with --seed and --out-dir."""
    list_name = list_name or name
    p = argparse.ArgumentParser(prog=f"python -m tools.make_{name}_split", description=doc,
                                formatter_class=HelpFormatter)
    p.add_argument("--seed", type=int, default=0, help="seed of the random draw (any integer >= 0)")
    p.add_argument("--out-dir", default=None,
                   help=f"where the lists go (default: data/{list_name}/, where `--dataset {list_name}` looks for them)")
    return p


def tool_main(parser: Callable[[], argparse.ArgumentParser], make_split: Callable[..., str],
              *flags: str) -> Callable[..., str]:
    """The main(argv=None) of a split tool: parse the tool's flags and call make_split with the values
    of `flags` (argparse dests), in order; bad input ends as one `error: ...` line (exit 2)."""

    @exit_on_user_error
    def main(argv=None):
        args = parser().parse_args(argv)
        return make_split(*(getattr(args, flag) for flag in flags))

    return main


def check_count(name, value, minimum=0):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise DataError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


# --------------------------------------------------------------------------- reading inputs


def require_dir(path, what):
    if not os.path.isdir(path):
        if os.path.exists(path):
            raise DataError(f"{path}: not a folder (expected {what})")
        raise DataError(f"{path}: folder not found (expected {what})")
    return path


def read_bytes(path, what):
    return fileio.read_bytes(path, "file", hint=f" (expected {what})")


def read_text(path, what):
    data = read_bytes(path, what)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise DataError(f"{path}:{line}: not UTF-8 text (expected {what})") from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def check_list_path(path, where):
    """A path as it will be written in a list: relative, inside the data root (no `..` part), no
    double quote (a path with spaces is written quoted), no NUL or other control character
    (training refuses all of these, so a list holding one would fail only later)."""
    if not path or path.strip() != path or '"' in path:
        raise DataError(f"{where}: image path {quote(path)} is empty, starts or ends with white space or contains "
                        "a double quote; list files cannot hold it")
    if any(ord(c) < 32 or ord(c) == 127 for c in path):
        raise DataError(f"{where}: image path {quote(path)} contains a NUL or control character")
    if os.path.isabs(path) or path.startswith(("/", "\\")):
        raise DataError(f"{where}: image path {quote(path)} is absolute; list paths are relative to the data root")
    if ".." in path.replace("\\", "/").split("/"):
        raise DataError(f"{where}: image path {quote(path)} leads out of the data root with '..'")
    return path


def check_images_exist(root, paths):
    """Every listed image must exist under root (the future --data-path)."""
    missing = [p for p in paths if not os.path.isfile(os.path.join(root, p))]
    if missing:
        raise DataError(f"{root}: {len(missing)} of {len(paths)} images not found, "
                        f"e.g. {os.path.join(root, missing[0])} (is --data-path/root right?)")


# --------------------------------------------------------------------------- seeded selection


def seeded_order(keys, seed, salt, source=None):
    """Indices of `keys` in the seeded random order: sorted by SHA-256(salt, seed, key).

    keys must be unique (the image paths). Depends on nothing but (salt, seed, keys).
    """
    prefix = f"{salt}\0{int(seed)}\0".encode()
    digests = [hashlib.sha256(prefix + k.encode("utf-8")).digest() for k in keys]
    if len(set(keys)) != len(keys):
        seen = set()
        dup = next(k for k in keys if k in seen or seen.add(k))
        raise DataError(f"{source + ': ' if source else ''}image {dup!r} is listed more than once")
    return np.array(sorted(range(len(keys)), key=digests.__getitem__), dtype=np.int64)


def take_first(order, count, what, pool):
    """The first `count` of `order` and the rest (both keep the order)."""
    if count > len(order):
        raise DataError(f"{what}: asked for {count} images, only {len(order)} {pool}")
    return order[:count], order[count:]


def query_database_train(order, num_query, num_train, num_labelled, take=take_first):
    """The HashNet protocol on a seeded order: the queries are drawn first, the database is the rest,
    and the training images are drawn from the database. take(pool, count, flag, what) -> (taken,
    rest) draws (default: the first ones of the order). Returns {"test", "database", "train"}."""
    test, database = take(order, num_query, "--num-query", "labelled images")
    if len(database) == 0:
        raise DataError(f"--num-query {num_query}: leaves no image for the database ({num_labelled} labelled images)")
    train, _ = take(database, num_train, "--num-train", "database images (training images come from the database)")
    return {"test": test, "database": database, "train": train}


def random_protocol(num_query, num_train, seed):
    """The header line of a split drawn by query_database_train at random."""
    return (f"protocol: {num_query} random queries; database = the rest; {num_train} training images drawn "
            f"from the database; seed {seed}")


def take_per_class(order, labels, per_class, class_names, what):
    """For each class in turn, the first `per_class` images of `order` carrying it that are not
    taken yet (for one-hot labels: a stratified draw). Returns (taken, rest), rest in order."""
    order = np.asarray(order, dtype=np.int64)
    taken = np.zeros(len(labels), dtype=bool)
    picked = []
    for c, name in enumerate(class_names):
        candidates = order[labels[order, c].astype(bool) & ~taken[order]]
        if len(candidates) < per_class:
            raise DataError(f"{what}: class {name!r} has {len(candidates)} images left, need {per_class} per class")
        chosen = candidates[:per_class]
        taken[chosen] = True
        picked.append(chosen)
    chosen = np.concatenate(picked) if picked else np.zeros(0, dtype=np.int64)
    return chosen, order[~taken[order]]


# --------------------------------------------------------------------------- writing outputs


def format_list(paths, labels, indices):
    """List text of the images `indices` (written in ascending index order)."""
    indices = np.sort(np.asarray(indices, dtype=np.int64))
    labels = np.asarray(labels)
    n, c = len(indices), labels.shape[1]
    cells = np.full((n, 2 * c), ord(" "), dtype=np.uint8)
    cells[:, 1::2] = (labels[indices] != 0).astype(np.uint8) + ord("0")
    rows = cells.tobytes().decode("ascii")
    width = 2 * c
    return "".join(f"{format_path(paths[i])}{rows[k * width:(k + 1) * width]}\n" for k, i in enumerate(indices))


def _stats_row(name, labels):
    n = len(labels)
    mean = float(labels.sum()) / n if n else 0.0
    return f"{name:<13} {n:>9d} {mean:>13.3f}"


NOTES_SHOWN = 40  # summary lines printed of a long skip list (summary.txt holds them all)


def _shortened(notes, out_dir):
    if len(notes) <= NOTES_SHOWN:
        return list(notes)
    return [*notes[:NOTES_SHOWN], f"... {len(notes) - NOTES_SHOWN} more lines in {os.path.join(out_dir, 'summary.txt')}"]


def _write(path, text):
    """Atomically, as UTF-8 bytes with LF line ends on every platform."""
    with atomic_open(path, "wb") as f:
        f.write(text.encode("utf-8"))


def check_class_name(name, where="class name"):
    """A name classes.txt can hold on one line and read back unchanged (it strips each line): not
    empty, no white space at either end, no newline or other control character; spaces inside are fine."""
    if not isinstance(name, str) or not name or name.strip() != name:
        raise DataError(f"{where} {quote(name)} is empty or starts or ends with white space")
    if any(ord(c) < 32 or ord(c) == 127 or c in "\u2028\u2029\x85" for c in name):
        raise DataError(f"{where} {quote(name)} contains a newline or another control character")
    return name


def write_split(out_dir: str | None, dataset: str, tool: str, paths: Sequence[str], labels: Any,
                splits: Mapping[str, Any], class_names: Sequence[str], header: Iterable[str], dropped: int,
                quiet: bool = False, notes: Sequence[str] = ()) -> str:
    """Write the lists, classes.txt, SHA256SUMS and summary.txt; print the summary; return its text.

    tool: the module name (for the summary); paths: relative image paths [N]; labels: 0/1 array
    [N, C] (C = 0, no class names: unlabelled images, lists of paths alone); splits:
    {"train"|"test"|"database": index array}; header: lines describing the source and the protocol;
    dropped: the number of images left out because they carry no label; notes: lines that end the
    summary (what was skipped and why; printed shortened when long, written whole).
    """
    labels = np.asarray(labels)
    if labels.ndim != 2 or labels.shape[0] != len(paths) or labels.shape[1] != len(class_names):
        raise ValueError(f"labels {labels.shape} do not match {len(paths)} paths x {len(class_names)} classes")
    for name in class_names:
        check_class_name(name)
    for path in paths:  # whatever the tool checked on reading: no list with a path training refuses
        check_list_path(path, f"{dataset}")
    for split in LISTS:
        idx = np.asarray(splits[split], dtype=np.int64)
        if len(idx) == 0:
            raise DataError(f"the {split} list would be empty; check the counts")
        if class_names and (labels[idx].sum(axis=1) == 0).any():
            raise ValueError(f"{split}: an image without labels")  # the tools drop them first
    if len(np.intersect1d(splits["test"], splits["database"])) or len(np.intersect1d(splits["test"], splits["train"])):
        raise ValueError("queries overlap the database or the training set")

    out_dir = out_dir or os.path.join("data", dataset)
    texts = {split: format_list(paths, labels, splits[split]) for split in LISTS}
    sums = "".join(f"{hashlib.sha256(texts[s].encode('utf-8')).hexdigest()}  {s}.txt\n" for s in sorted(LISTS))

    used = np.unique(np.concatenate([np.asarray(splits[s], dtype=np.int64) for s in LISTS]))
    lines = [f"{dataset}: hashing split made by python -m tools.{tool}"]
    lines += list(header)
    if class_names:
        lines.append(f"labelled images used: {len(used)}; dropped (no label): {dropped}; classes: {len(class_names)}")
    else:
        lines.append(f"images used: {len(used)}; unlabelled (lists of paths alone, classes.txt empty)")
    lines.append("")
    cut = None if class_names else 23  # unlabelled: no labels/image column
    lines.append(f"{'list':<13} {'images':>9} {'labels/image':>13}"[:cut])
    for split in ("test", "database", "train"):
        lines.append(_stats_row(split + ".txt", labels[np.asarray(splits[split], dtype=np.int64)])[:cut])
    lines.append(_stats_row("all", labels[used])[:cut])
    if class_names:
        lines.append("")
        lines.append("class frequencies (images carrying the class)")
        lines.append(f"{'idx':>4} {'class':<20} {'all':>9} {'test':>7} {'database':>9} {'train':>7}")
    freq = {s: labels[np.asarray(splits[s], dtype=np.int64)].astype(np.int64).sum(axis=0) for s in LISTS}
    freq_all = labels[used].astype(np.int64).sum(axis=0)
    for c, name in enumerate(class_names):
        lines.append(f"{c:>4d} {name:<20} {freq_all[c]:>9d} {freq['test'][c]:>7d} {freq['database'][c]:>9d} "
                     f"{freq['train'][c]:>7d}")
    if notes:
        lines.append("")
    shown = "\n".join(lines + _shortened(notes, out_dir)) + "\n"
    lines += notes
    summary = "\n".join(lines) + "\n"
    try:
        for split in LISTS:
            _write(os.path.join(out_dir, f"{split}.txt"), texts[split])
        _write(os.path.join(out_dir, "classes.txt"), "".join(f"{name}\n" for name in class_names))
        _write(os.path.join(out_dir, "SHA256SUMS"), sums)  # last of the lists: an interrupted run fails the check
        _write(os.path.join(out_dir, "summary.txt"), summary)
    except OSError as exc:  # making the folder; the writes themselves end as WriteError lines
        raise DataError(f"{out_dir}: cannot write the lists: {exc.strerror or exc}") from None
    if not quiet:
        sys.stdout.write(shown)
        print(f"wrote {os.path.join(out_dir, '')}{{train,test,database}}.txt, classes.txt, SHA256SUMS, summary.txt")
    return summary
