"""Make hashing lists from your own folder of images: one sub-folder per class, no labels, or a labels file.

Layouts (list paths are relative to --image-root, which is the --data-path for training):
    (default)       IMAGE_ROOT/<class>/.../*.jpg: the first folder level is the class, one label an
                    image. Images directly in IMAGE_ROOT have no class and are left out; so are the
                    images of a class with fewer than --min-per-class images (a query of a class
                    alone in the collection has nothing to find). Both are listed in summary.txt.
    --unlabeled     any folder tree: the lists hold the paths alone (no label columns, classes.txt
                    empty); training on them picks the default unsupervised method (docs/methods.md).
    --labels FILE   each image's labels, one or several (multi-label), paths relative to IMAGE_ROOT:
                    CSV, one image a row:  path,label[,label...]   (or several in one cell: path,"a;b")
                        cells in double quotes may hold commas; an image on several rows gets all
                        their labels; a first row "path,..." (or file/filename/image) is a header
                    JSON (*.json):  {"path": ["label", ...], ...}  or  [{"path": "...", "labels": [...]}]
                    A path in the file that is not an image under IMAGE_ROOT is counted and listed in
                    summary.txt (not an error); images the file does not name are left out (counted);
                    an image whose row has no label is dropped (counted).
Images: .jpg .jpeg .png .webp .bmp .tif .tiff in any case, in any depth of folders; hidden files
and folders are skipped; links to folders are followed once (a loop is listed, not followed).
Always skipped and listed: zero-byte files; paths a list cannot hold (a double quote or a control
character). With --check-images every image is decoded once, as training will (EXIF orientation
applied), and the ones that cannot be (truncated, corrupt, not an image) are skipped and listed too.
A path with spaces is written in double quotes ("My Photos/IMG 1.jpg"), as training reads it.

Counts, scaled to the N images kept (the queries are drawn first, the database is every other image,
the training images are drawn from the database):
    --num-query   default: 10% of N, at least 1 and at most 1,000 (60 photos: 6; 200,000: 1,000)
    --num-train   default: the whole database up to 10,000 (60 photos: 54; 200,000: 10,000)
The draw is SHA-256(seed, path) order: the same folder and seed give the same lists on any machine.

Example:
    python -m tools.make_folder_split --image-root ./photos --out-dir data/photos
    python main_single_gpu.py --dataset photos --data-path ./photos --bit 64
"""
from __future__ import annotations

if not __package__:  # run by path (python <folder>/<file>.py): the package imports below would fail
    import sys

    print("error: run it from the repository root as a module: python -m tools.make_folder_split [flags]",
          file=sys.stderr)
    raise SystemExit(2)

import collections
import os
import re
import shlex

import numpy as np

from tools.folder_check import check_files
from tools.folder_labels import read_labels
from tools.split_common import (check_class_name, check_count, check_list_path, make_parser, query_database_train,
                                random_protocol, seeded_order, tool_main, write_split)
from utils.data.folders import IMAGE_EXTENSIONS, scan_images
from utils.errors import DataError

MAX_QUERY, QUERY_SHARE, MAX_TRAIN = 1000, 0.10, 10000
NO_CLASS = "directly in the image root (no class folder)"
NOT_IN_LIST = "a path list files cannot hold (a double quote, a control character, white space at either end)"


def default_counts(num_images: int) -> tuple[int, int]:
    """(queries, training images) for a collection of num_images (the --help's rule)."""
    num_query = min(MAX_QUERY, max(1, round(num_images * QUERY_SHARE)))
    return num_query, min(MAX_TRAIN, num_images - num_query)


def writable_paths(paths):
    """(the paths a list can hold, [(path, reason)] of the others)."""
    kept, skipped = [], []
    for path in paths:
        try:
            kept.append(check_list_path(path, "image"))
        except DataError:
            skipped.append((path, NOT_IN_LIST))
    return kept, skipped


def by_folder(paths, min_per_class):
    """The first folder level as the class: (paths, class names, labels [N, C], skipped)."""
    in_root = [p for p in paths if "/" not in p]
    members = collections.defaultdict(list)
    for path in paths:
        if "/" in path:
            members[path.split("/", 1)[0]].append(path)
    if not members:
        raise DataError("no class folders (the images lie directly in --image-root); put each class in a "
                        "sub-folder, or use --unlabeled or --labels FILE")
    skipped = [(p, NO_CLASS) for p in in_root]
    names = []
    for name in sorted(members):
        try:
            check_class_name(name)
        except DataError as exc:
            skipped += [(p, f"class folder name refused: {exc}") for p in members[name]]
            continue
        if len(members[name]) < min_per_class:
            skipped += [(p, f"class {name!r} has {len(members[name])} image(s), fewer than --min-per-class "
                            f"{min_per_class}") for p in members[name]]
            continue
        names.append(name)
    if not names:
        raise DataError(f"no class folder has --min-per-class {min_per_class} usable images")
    kept = [p for name in names for p in members[name]]
    labels = np.zeros((len(kept), len(names)), dtype=np.uint8)
    row = 0
    for c, name in enumerate(names):
        labels[row:row + len(members[name]), c] = 1
        row += len(members[name])
    return kept, names, labels, skipped


def by_labels_file(paths, table, min_per_class):
    """Labels from a labels file: (paths, class names, labels [N, C], skipped, dropped without label)."""
    kept = [p for p in paths if table.labels.get(p)]
    dropped = sum(1 for p in paths if p in table.labels and not table.labels[p])
    counts = collections.Counter(label for p in kept for label in table.labels[p])
    rare = sorted(name for name, n in counts.items() if n < min_per_class)
    names = sorted(name for name in counts if name not in rare)
    index = {name: c for c, name in enumerate(names)}
    labels = np.zeros((len(kept), len(names)), dtype=np.uint8)
    for row, path in enumerate(kept):
        for label in table.labels[path]:
            if label in index:
                labels[row, index[label]] = 1
    skipped = [(p, f"its labels are only rare ones (fewer than --min-per-class {min_per_class} images: "
                   f"{', '.join(table.labels[p])})") for p, row in zip(kept, labels) if not row.any()]
    keep = labels.any(axis=1)
    if not keep.any():
        raise DataError(f"{table.path}: no label is carried by --min-per-class {min_per_class} usable images")
    return [p for p, k in zip(kept, keep) if k], names, labels[keep], skipped, dropped, rare


def data_set_name(out_dir, image_root):
    """The --dataset name for the lists: the out folder's name (default: the image root's, tidied)."""
    base = os.path.basename(os.path.normpath(out_dir if out_dir else os.path.abspath(image_root)))
    return re.sub(r"[^\w-]+", "_", base).strip("_") or "images"


def train_command(name, image_root, out_dir):
    command = f"python main_single_gpu.py --dataset {name} --data-path {shlex.quote(image_root)}"
    if os.path.abspath(out_dir) != os.path.abspath(os.path.join("data", name)):
        command += f" --list-dir {shlex.quote(out_dir)}"
    return command


def make_split(image_root: str, out_dir: str | None = None, unlabeled: bool = False, labels: str | None = None,
               num_query: int | None = None, num_train: int | None = None, min_per_class: int = 2,
               check_images: bool = False, workers: int = 4, seed: int = 0, quiet: bool = False) -> str:
    """Build the lists of a folder; returns the summary text. Raises DataError on bad input."""
    seed = check_count("--seed", seed, 0)
    min_per_class = check_count("--min-per-class", min_per_class, 1)
    workers = check_count("--workers", workers, 1)
    if unlabeled and labels:
        raise DataError("--unlabeled and --labels: give one (--labels FILE names the labels; --unlabeled: none)")
    scan = scan_images(image_root)
    name = data_set_name(out_dir, image_root)
    out_dir = out_dir or os.path.join("data", name)
    if not scan.paths:
        raise DataError(f"{image_root}: no images found ({' '.join(IMAGE_EXTENSIONS)}, any case; hidden folders "
                        f"are skipped)")
    paths, skipped = writable_paths(scan.paths)
    skipped = [*scan.skipped, *skipped]  # unreadable folders, link loops, dead links
    table = read_labels(labels) if labels else None
    if table is not None:
        found = set(paths)
        missing = [(f"{p}  ({table.unit} {table.lines[p]})", f"named in {labels} but not an image found under "
                    "--image-root") for p in table.labels if p not in found]
        unnamed = sum(1 for p in paths if p not in table.labels)
        paths = [p for p in paths if p in table.labels]
        if not paths:
            raise DataError(f"{labels}: names none of the {len(scan.paths)} images under {image_root} (paths "
                            f"must be relative to --image-root, e.g. {scan.paths[0]})")
    paths, bad = check_files(scan.root, paths, decode=check_images, workers=workers, progress=not quiet)
    skipped += bad
    dropped, rare = 0, []
    if unlabeled:
        classes, label_rows = [], np.zeros((len(paths), 0), dtype=np.uint8)
        layout = "any folder tree, unlabelled (--unlabeled): lists of paths alone"
    elif table is not None:
        paths, classes, label_rows, more, dropped, rare = by_labels_file(paths, table, min_per_class)
        skipped += more
        layout = f"labels from {labels} (multi-label)"
    else:
        paths, classes, label_rows, more = by_folder(paths, min_per_class)
        skipped += more
        layout = "one sub-folder per class (the first folder level)"
    if len(paths) < 2:
        raise DataError(f"{image_root}: {len(paths)} usable image(s); a split needs at least 2 (a query and a "
                        f"database image)")
    num_query, num_train = resolve_counts(len(paths), num_query, num_train)
    order = seeded_order(paths, seed, "folder", source=image_root)
    splits = query_database_train(order, num_query, num_train, len(paths))

    header = [f"source: {len(scan.paths)} image files under {scan.root}; layout: {layout}",
              random_protocol(num_query, num_train, seed),
              "checks: zero-byte files skipped; " + ("every image decoded (--check-images)" if check_images else
                                                     "images not decoded (--check-images finds unreadable ones)")]
    if table is not None:
        header.append(f"labels file: {len(table.labels)} paths named; {len(missing)} not found under --image-root "
                      f"(listed below); {unnamed} images under --image-root not named (left out, not listed)")
        skipped = missing + skipped
    if rare:
        header.append(f"labels on fewer than --min-per-class {min_per_class} images, left out: {', '.join(rare)}")
    if len(classes) == 1:
        header.append("only one class: every database image matches every query (use --unlabeled to learn "
                      "from the images alone)")
    header.append(f"skipped: {len(skipped)} files" + (", listed at the end by reason" if skipped else ""))
    header.append(f"train: {train_command(name, image_root, out_dir)}")
    return write_split(out_dir, name, "make_folder_split", paths, label_rows, splits, classes, header, dropped,
                       quiet=quiet, notes=skip_notes(skipped))


def resolve_counts(num_images, num_query, num_train):
    """(queries, training images): the flags' values checked, or default_counts' when not given."""
    auto_query, _ = default_counts(num_images)
    num_query = auto_query if num_query is None else check_count("--num-query", num_query, 1)
    if num_query >= num_images:
        raise DataError(f"--num-query {num_query}: only {num_images} usable images, and the database needs one")
    database = num_images - num_query
    num_train = min(MAX_TRAIN, database) if num_train is None else check_count("--num-train", num_train, 1)
    if num_train > database:
        raise DataError(f"--num-train {num_train}: only {database} database images to draw the training images "
                        f"from ({num_images} usable images, {num_query} queries)")
    return num_query, num_train


def skip_notes(skipped):
    """The end of summary.txt: the skipped files grouped by reason, each group headed by its count."""
    groups = collections.defaultdict(list)
    for path, why in skipped:
        groups[why].append(path)
    return [line for why, members in groups.items()
            for line in (f"skipped, {why} ({len(members)}):", *(f"    {shown_path(p)}" for p in members))]


def shown_path(path):
    """The path as summary.txt lists it: control characters (a newline in a file name) escaped."""
    return "".join(c if 32 <= ord(c) != 127 else f"\\x{ord(c):02x}" for c in path)


def parser():
    p = make_parser(__doc__, "folder")
    next(a for a in p._actions if a.dest == "out_dir").help = (
        "where the lists go (default: data/<name of --image-root>/, where `--dataset <name>` looks for them)")
    p.add_argument("--image-root", required=True,
                   help="the folder of images; list paths are relative to it (it is the --data-path for training)")
    layout = p.add_mutually_exclusive_group()
    layout.add_argument("--unlabeled", action="store_true", help="no labels: lists of paths alone, any folder tree")
    layout.add_argument("--labels", default=None, metavar="FILE",
                        help="CSV (path,label[,label...]) or JSON ({\"path\": [labels]}) file of each image's labels")
    p.add_argument("--num-query", type=int, default=None,
                   help="number of queries (test.txt); default: 10%% of the images, at least 1, at most 1000")
    p.add_argument("--num-train", type=int, default=None,
                   help="training images drawn from the database; default: the database, at most 10000")
    p.add_argument("--min-per-class", type=int, default=2,
                   help="a class (folder or label) on fewer images is left out (listed in summary.txt)")
    p.add_argument("--check-images", action="store_true",
                   help="decode every image once; skip and list the ones that cannot be decoded")
    p.add_argument("--workers", type=int, default=4, help="threads decoding images with --check-images")
    return p


main = tool_main(parser, make_split, "image_root", "out_dir", "unlabeled", "labels", "num_query", "num_train",
                 "min_per_class", "check_images", "workers", "seed")


if __name__ == "__main__":
    main()
