"""Make a small real-image hashing split from scikit-learn's handwritten digits (no download).

Input: `sklearn.datasets.load_digits()`, 1,797 real 8x8 grayscale scans of handwritten digits
(UCI "Optical Recognition of Handwritten Digits", 43 writers, 10 classes, 4-bit pixels 0..16).
The data ship inside the scikit-learn wheel (`pip install scikit-learn`, pinned in
requirements-dev.txt): nothing is downloaded, ever.

Output: the images as 8x8 grayscale PNG files (pixels scaled 0..16 -> 0..255, unchanged
otherwise), <image-out>/images/00000.png ... 01796.png in scikit-learn's order, and the lists
with one-hot labels (paths relative to <image-out>, the --data-path for training). The lists go
beside the images (<image-out>/{train,test,database}.txt) unless --out-dir says otherwise, so
`--data-path <image-out> --list-dir <image-out>` trains on it.

Protocol (the CIFAR-10 "cifar10-1" pattern at a small scale): --query-per-class queries a class
drawn at random (default 20: 200 queries, test.txt); the database is every other image (1,597);
--train-per-class training images a class are drawn from the database (default 50: 500,
train.txt). mAP over the whole ranking (topK = all). Used by benchmarks/quality_real.py and the
real-image quality tests.

Example:
    python -m tools.make_digits_split --image-out ./datasets/digits
    python main_single_gpu.py -c configs/hashnet_scratch.yaml --dataset digits \\
        --data-path ./datasets/digits --list-dir ./datasets/digits --bit 16
"""
from __future__ import annotations

if not __package__:  # run by path (python <folder>/<file>.py): the package imports below would fail
    import sys

    print("error: run it from the repository root as a module: python -m tools.make_digits_split [flags]", file=sys.stderr)
    raise SystemExit(2)

import os

import numpy as np

from tools.make_cifar10_split import write_png
from tools.split_common import check_count, make_parser, seeded_order, take_per_class, tool_main, write_split
from utils.errors import DataError

CLASS_NAMES = tuple(f"digit_{d}" for d in range(10))


def load_digits_images():
    """(relative paths [1797], class indices [1797], uint8 grayscale images [1797, 8, 8])."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise DataError("the digits data ship with scikit-learn: pip install scikit-learn==1.9.1 "
                        "(or pip install -r requirements-dev.txt)") from None
    digits = load_digits()
    images = np.rint(digits.images * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)
    paths = [f"images/{i:05d}.png" for i in range(len(images))]
    return paths, digits.target.astype(np.int64), images


def make_split(image_out: str = "./datasets/digits", query_per_class: int = 20, train_per_class: int = 50,
               seed: int = 0, out_dir: str | None = None, quiet: bool = False) -> str:
    """Write the PNG images and the lists; returns the summary text. Raises DataError on bad input."""
    query_per_class = check_count("--query-per-class", query_per_class, 1)
    train_per_class = check_count("--train-per-class", train_per_class, 1)
    seed = check_count("--seed", seed, 0)
    paths, classes, images = load_digits_images()
    labels = np.zeros((len(paths), len(CLASS_NAMES)), dtype=np.uint8)
    labels[np.arange(len(paths)), classes] = 1

    order = seeded_order(paths, seed, "digits")
    test, database = take_per_class(order, labels, query_per_class, CLASS_NAMES, "--query-per-class")
    train, _ = take_per_class(database, labels, train_per_class, CLASS_NAMES, "--train-per-class")
    try:
        os.makedirs(os.path.join(image_out, "images"), exist_ok=True)
        for rel, gray in zip(paths, images):
            write_png(os.path.join(image_out, rel), np.repeat(gray[:, :, None], 3, axis=2))
    except OSError as exc:
        raise DataError(f"{image_out}: cannot write the images: {exc.strerror or exc}") from None
    header = [f"source: scikit-learn load_digits ({len(paths)} real 8x8 grayscale scans, 10 classes); "
              f"PNG images under the --data-path",
              f"protocol: {query_per_class} queries a class drawn at random; database = all but the queries; "
              f"{train_per_class} training images a class drawn from the database; seed {seed}"]
    return write_split(out_dir or image_out, "digits", "make_digits_split", paths, labels,
                       {"test": test, "database": database, "train": train}, CLASS_NAMES, header, 0, quiet=quiet)


def parser():
    p = make_parser(__doc__, "digits")
    next(a for a in p._actions if a.dest == "out_dir").help = "where the lists go (default: --image-out)"
    p.add_argument("--image-out", default="./datasets/digits",
                   help="where the PNG images (images/) and, without --out-dir, the lists go; use it as --data-path")
    p.add_argument("--query-per-class", type=int, default=20, help="queries a class (10 classes)")
    p.add_argument("--train-per-class", type=int, default=50, help="training images a class, drawn from the database")
    return p


main = tool_main(parser, make_split, "image_out", "query_per_class", "train_per_class", "seed", "out_dir")


if __name__ == "__main__":
    main()
