"""Make the CIFAR-10 hashing split from the BINARY version of CIFAR-10 (no pickle is read).

Input (cifar-10-binary.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html, unpacked):
    <cifar-dir>/data_batch_1.bin ... data_batch_5.bin, test_batch.bin
        records of 3,073 bytes: 1 label byte (0..9) + 3,072 pixel bytes (1,024 red, 1,024 green,
        1,024 blue, row-major 32x32); 10,000 records a file
    <cifar-dir>/batches.meta.txt   the class names, one a line (optional; the standard names otherwise)

Output: the 60,000 images as PNG files, <image-out>/train/00000.png ... 49999.png (the five
data batches in order) and <image-out>/test/00000.png ... 09999.png, and the lists with
one-hot labels (paths relative to <image-out>, which is the --data-path for training).
Existing identical PNG files are left alone.

Protocol (the common one for deep hashing, e.g. DPSH / DeepHash-pytorch "cifar10"):
    the 60,000 images pooled; 100 images a class drawn at random are the queries (1,000,
    test.txt); 500 a class from the remaining images are the training set (5,000, train.txt);
    the remaining 54,000 are the database (database.txt). With --train-in-database the training
    images are also in the database (59,000, the "cifar10-1" variant). mAP over the whole
    ranking (topK = all).

Example:
    python -m tools.make_cifar10_split --cifar-dir /data/cifar-10-batches-bin --image-out ./datasets/cifar10
    python main_single_gpu.py -c configs/hashnet_cifar10.yaml --data-path ./datasets/cifar10 --bit 64
"""
from __future__ import annotations

if not __package__:  # run by path (python <folder>/<file>.py): the package imports below would fail
    import sys

    print("error: run it from the repository root as a module: python -m tools.make_cifar10_split [flags]", file=sys.stderr)
    raise SystemExit(2)

import os

import cv2
import numpy as np

from tools.split_common import (check_count, make_parser, read_bytes, read_text, require_dir, seeded_order,
                                take_per_class, tool_main, write_split)
from utils.errors import DataError
from utils.storage.fileio import atomic_write_bytes

RECORD = 1 + 32 * 32 * 3
TRAIN_FILES = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
TEST_FILE = "test_batch.bin"
CLASS_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def read_batch(path):
    """(labels uint8 [n], images uint8 [n, 32, 32, 3] RGB) of one binary batch file."""
    data = read_bytes(path, "a CIFAR-10 binary batch (from cifar-10-binary.tar.gz)")
    if data[:1] == b"\x80":  # a binary record starts with a label 0..9; a pickle with 0x80
        raise DataError(f"{path}: a Python pickle, not a binary batch: use the binary version (cifar-10-binary.tar.gz)")
    if len(data) == 0 or len(data) % RECORD:
        hint = ""
        if len(data) % (RECORD + 1) == 0 and len(data):
            hint = "; 3,074-byte records are CIFAR-100 (2 label bytes)"
        raise DataError(f"{path}: wrong record size: {len(data)} bytes is not a non-zero multiple of {RECORD} "
                        f"(1 label byte + 3,072 pixel bytes){hint}")
    records = np.frombuffer(data, dtype=np.uint8).reshape(-1, RECORD)
    labels = records[:, 0]
    bad = np.flatnonzero(labels > 9)
    if len(bad):
        raise DataError(f"{path}: record {int(bad[0])} (byte {int(bad[0]) * RECORD}): label {int(labels[bad[0]])} "
                        f"is not 0..9 (is this CIFAR-10?)")
    images = records[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return labels, images


def read_class_names(cifar_dir):
    path = os.path.join(cifar_dir, "batches.meta.txt")
    if not os.path.exists(path):
        return list(CLASS_NAMES)
    names = [line.strip() for line in read_text(path, "the class names, one a line").split("\n") if line.strip()]
    if len(names) != 10:
        raise DataError(f"{path}: expected 10 class names, got {len(names)}")
    return [n.replace(" ", "_") for n in names]


def write_png(path, rgb):
    """Encode (deterministically) and write unless an identical file is already there."""
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(rgb[:, :, ::-1]))
    if not ok:
        raise DataError(f"{path}: cannot encode PNG")
    data = buf.tobytes()
    try:
        with open(path, "rb") as f:
            if f.read() == data:
                return
    except OSError:
        pass
    atomic_write_bytes(path, data)  # checked and renamed into place: a full disk is one line, no torn PNG


def load_cifar(cifar_dir):
    """(relative paths [60000], labels uint8 [N], images uint8 [N, 32, 32, 3]) in file order."""
    require_dir(cifar_dir, "cifar-10-batches-bin with data_batch_1.bin ... test_batch.bin")
    for name in TRAIN_FILES + (TEST_FILE,):
        path = os.path.join(cifar_dir, name)
        if not os.path.isfile(path):
            hint = ""
            if os.path.isfile(os.path.join(cifar_dir, name[:-4])):
                hint = " (found the Python pickle version; this tool reads the binary version, cifar-10-binary.tar.gz)"
            raise DataError(f"{path}: file not found{hint}")
    paths, labels, images = [], [], []
    for folder, files in (("train", TRAIN_FILES), ("test", (TEST_FILE,))):
        count = 0
        for name in files:
            lab, img = read_batch(os.path.join(cifar_dir, name))
            labels.append(lab)
            images.append(img)
            paths.extend(f"{folder}/{i:05d}.png" for i in range(count, count + len(lab)))
            count += len(lab)
    return paths, np.concatenate(labels), np.concatenate(images)


def make_split(cifar_dir: str, image_out: str = "./datasets/cifar10", query_per_class: int = 100,
               train_per_class: int = 500, train_in_database: bool = False, seed: int = 0, out_dir: str | None = None,
               quiet: bool = False) -> str:
    """Write the PNG images and the lists; returns the summary text. Raises DataError on bad input."""
    query_per_class = check_count("--query-per-class", query_per_class, 1)
    train_per_class = check_count("--train-per-class", train_per_class, 1)
    seed = check_count("--seed", seed, 0)
    paths, classes, images = load_cifar(cifar_dir)
    names = read_class_names(cifar_dir)
    labels = np.zeros((len(paths), 10), dtype=np.uint8)
    labels[np.arange(len(paths)), classes] = 1

    order = seeded_order(paths, seed, "cifar10")
    test, rest = take_per_class(order, labels, query_per_class, names, "--query-per-class")
    train, database = take_per_class(rest, labels, train_per_class, names, "--train-per-class")
    if train_in_database:
        database = rest
    if len(database) == 0:
        raise DataError("the database would be empty; lower --query-per-class / --train-per-class")

    try:
        for folder in ("train", "test"):
            os.makedirs(os.path.join(image_out, folder), exist_ok=True)
        for rel, rgb in zip(paths, images):
            write_png(os.path.join(image_out, rel), rgb)
    except OSError as exc:
        raise DataError(f"{image_out}: cannot write the images: {exc.strerror or exc}") from None

    header = [f"source: CIFAR-10 binary batches ({len(paths)} images); PNG images under the --data-path",
              f"protocol: {query_per_class} queries and {train_per_class} training images a class, drawn at random; "
              f"database = {'all but the queries' if train_in_database else 'the rest (no query, no training image)'}; "
              f"seed {seed}"]
    return write_split(out_dir or os.path.join("data", "cifar10"), "cifar10", "make_cifar10_split", paths, labels,
                       {"test": test, "database": database, "train": train}, names, header, 0, quiet=quiet)


def parser():
    p = make_parser(__doc__, "cifar10")
    p.add_argument("--cifar-dir", default="./datasets/cifar-10-batches-bin",
                   help="the unpacked binary version: data_batch_{1..5}.bin, test_batch.bin")
    p.add_argument("--image-out", default="./datasets/cifar10",
                   help="where the PNG images go (train/, test/); use it as --data-path for training")
    p.add_argument("--query-per-class", type=int, default=100, help="queries a class (10 classes)")
    p.add_argument("--train-per-class", type=int, default=500, help="training images a class")
    p.add_argument("--train-in-database", action="store_true",
                   help="keep the training images in the database too (59,000 instead of 54,000)")
    return p


main = tool_main(parser, make_split, "cifar_dir", "image_out", "query_per_class", "train_per_class",
                 "train_in_database", "seed", "out_dir")


if __name__ == "__main__":
    main()
