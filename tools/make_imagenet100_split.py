"""Make the ImageNet-100 hashing split from a class list and the ImageNet (ILSVRC 2012) folders.

Input:
    --class-list FILE       the 100 classes, one WordNet id (n01440764) a line; '#' starts a comment.
                            The label vector follows this order (classes.txt repeats it).
    <imagenet-root>/train/<wnid>/*.JPEG   the training images of each class
    <imagenet-root>/val/<wnid>/*.JPEG     the validation images, sorted into class folders
                                          (the usual layout; the official val/ is flat)
    (.JPEG, .jpeg, .jpg and .png are taken, any case; other files are ignored)

Protocol (HashNet, Cao et al. 2017; docs/datasets.md):
    queries (test.txt) = all validation images of the 100 classes (50 a class: 5,000);
    database = all training images of the 100 classes (about 128,500); training set = 130
    images a class drawn at random from the database (13,000, a subset of the database).
    One-hot labels; mAP@1000.
List paths are relative to <imagenet-root>: train/n01440764/n01440764_10026.JPEG.

Example:
    python -m tools.make_imagenet100_split --imagenet-root /data/ILSVRC2012 --class-list imagenet100_classes.txt
    python main_single_gpu.py -c configs/hashnet_imagenet100.yaml --data-path /data/ILSVRC2012 --bit 64
"""
from __future__ import annotations

if not __package__:  # run by path (python <folder>/<file>.py): the package imports below would fail
    import sys

    print("error: run it from the repository root as a module: python -m tools.make_imagenet100_split [flags]", file=sys.stderr)
    raise SystemExit(2)

import os
import re

import numpy as np

from tools.split_common import (check_count, check_list_path, make_parser, read_text, require_dir, seeded_order,
                                take_per_class, tool_main, write_split)
from utils.errors import DataError

IMAGE_EXTENSIONS = (".jpeg", ".jpg", ".png")
WNID = re.compile(r"n\d{8}")


def read_class_list(path):
    """The wnids of a class list file, in order."""
    wnids, seen = [], {}
    for lineno, line in enumerate(read_text(path, "a class list: one WordNet id a line").split("\n"), 1):
        wnid = line.split("#", 1)[0].strip()
        if not wnid:
            continue
        if not WNID.fullmatch(wnid):
            raise DataError(f"{path}:{lineno}: {wnid[:40]!r} is not a WordNet id like n01440764")
        if wnid in seen:
            raise DataError(f"{path}:{lineno}: {wnid} is listed twice (first on line {seen[wnid]})")
        seen[wnid] = lineno
        wnids.append(wnid)
    if not wnids:
        raise DataError(f"{path}: no class listed (expected one WordNet id a line)")
    return wnids


def class_images(root, split, wnid):
    """Sorted relative paths of the images of one class folder."""
    folder = os.path.join(root, split, wnid)
    require_dir(folder, f"the {split} images of class {wnid}")
    try:
        names = sorted(n for n in os.listdir(folder) if n.lower().endswith(IMAGE_EXTENSIONS))
    except OSError as exc:
        raise DataError(f"{folder}: cannot list: {exc.strerror or exc}") from None
    if not names:
        raise DataError(f"{folder}: no images (.JPEG, .jpg, .png)")
    return [check_list_path(f"{split}/{wnid}/{n}", folder) for n in names]


def make_split(imagenet_root: str, class_list: str, train_per_class: int = 130, seed: int = 0,
               out_dir: str | None = None, quiet: bool = False) -> str:
    """Build the lists; returns the summary text. Raises DataError on bad input."""
    train_per_class = check_count("--train-per-class", train_per_class, 1)
    seed = check_count("--seed", seed, 0)
    wnids = read_class_list(class_list)
    require_dir(imagenet_root, "the ImageNet root with train/ and val/")
    for split in ("train", "val"):
        require_dir(os.path.join(imagenet_root, split), f"{split}/<wnid>/ class folders")
    paths, classes, is_val = [], [], []
    for split in ("val", "train"):
        for c, wnid in enumerate(wnids):
            found = class_images(imagenet_root, split, wnid)
            paths.extend(found)
            classes.extend([c] * len(found))
            is_val.extend([split == "val"] * len(found))
    labels = np.zeros((len(paths), len(wnids)), dtype=np.uint8)
    labels[np.arange(len(paths)), classes] = 1
    val = np.asarray(is_val)
    test = np.flatnonzero(val)
    database = np.flatnonzero(~val)
    order = seeded_order(paths, seed, "imagenet100", source=imagenet_root)
    train, _ = take_per_class(order[~val[order]], labels, train_per_class, wnids, "--train-per-class")
    header = [f"source: ImageNet train/ and val/ folders of the {len(wnids)} classes of {os.path.basename(class_list)}",
              f"protocol: queries = all val images; database = all train images; {train_per_class} training images "
              f"a class drawn at random from the database; seed {seed}"]
    return write_split(out_dir or os.path.join("data", "imagenet100"), "imagenet100", "make_imagenet100_split", paths,
                       labels, {"test": test, "database": database, "train": train}, wnids, header, 0, quiet=quiet)


def parser():
    p = make_parser(__doc__, "imagenet100")
    p.add_argument("--imagenet-root", default="./datasets/imagenet",
                   help="folder with train/<wnid>/ and val/<wnid>/; list paths are relative to it")
    p.add_argument("--class-list", required=True, help="file with the classes' WordNet ids, one a line")
    p.add_argument("--train-per-class", type=int, default=130, help="training images a class")
    return p


main = tool_main(parser, make_split, "imagenet_root", "class_list", "train_per_class", "seed", "out_dir")


if __name__ == "__main__":
    main()
