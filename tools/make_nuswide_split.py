"""Make a NUS-WIDE hashing split (10, 21 or 81 concepts) from the NUS-WIDE concept label files.

Input (the NUS-WIDE release, https://lms.comp.nus.edu.sg/wp-content/uploads/2019/research/nuswide/NUS-WIDE.html):
    <nuswide-root>/ImageList/Imagelist.txt                 269,648 lines such as actor\\0001_2124494179.jpg
    <nuswide-root>/Groundtruth/AllLabels/Labels_<concept>.txt   81 files, one 0/1 a line, aligned with Imagelist.txt
    <nuswide-root>/Flickr/<concept>/<image>.jpg           the images (read only by --check-images)

Protocol:
    --concepts 21: the 21 concepts carried by the most images (counted from the label files;
    ties broken by name); --concepts 10: the 10 most frequent (NUS-WIDE-10 of the cross-modal
    hashing papers, e.g. Zhou et al., LSSH, SIGIR 2014, and DCMH's data: 186,577 images of the
    release carry one of them); --concepts 81: all of them. Label columns are in alphabetical concept
    order (classes.txt). Images carrying none of the chosen concepts are dropped. Queries:
    2,100 images drawn at random (test.txt; some published lists use 5,000: --num-query 5000);
    database: all the others; training: 10,500 images drawn from the database (--num-train;
    HashNet used 10,000). With --per-class the draw is per concept (e.g. 100 queries and 500
    training images carrying each of the 21 concepts, the DPSH-style lists): counts must then be
    multiples of the number of concepts.
List paths are <image-prefix> + the Imagelist.txt entry with '/' separators:
Flickr/actor/0001_2124494179.jpg, relative to <nuswide-root>.

Example:
    python -m tools.make_nuswide_split --nuswide-root /data/nus-wide --concepts 21
    python main_single_gpu.py -c configs/hashnet_nuswide_21.yaml --data-path /data/nus-wide --bit 64
"""
from __future__ import annotations

if not __package__:  # run by path (python <folder>/<file>.py): the package imports below would fail
    import sys

    print("error: run it from the repository root as a module: python -m tools.make_nuswide_split [flags]", file=sys.stderr)
    raise SystemExit(2)

import glob
import os

import numpy as np

from tools.split_common import (check_count, check_images_exist, check_list_path, make_parser, query_database_train,
                                read_bytes, read_text, require_dir, seeded_order, take_per_class, tool_main,
                                write_split)
from utils.errors import DataError


def read_image_list(path, prefix):
    """Imagelist.txt -> relative list paths."""
    lines = read_text(path, "the NUS-WIDE image list ImageList/Imagelist.txt").split("\n")
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise DataError(f"{path}: empty (expected one image a line)")
    paths = []
    for lineno, line in enumerate(lines, 1):
        entry = line.strip().replace("\\", "/")
        if not entry:
            raise DataError(f"{path}:{lineno}: empty line (the label files are aligned with this list line by line)")
        if "Flickr/" in entry:  # an absolute form such as C:\ImageData\Flickr\actor\x.jpg
            entry = entry.rsplit("Flickr/", 1)[1]
        while entry.startswith("./"):
            entry = entry[2:]
        entry = entry.lstrip("/")
        paths.append(check_list_path(prefix + entry, f"{path}:{lineno}"))
    return paths


def read_label_file(path, num_images):
    """One 0/1 a line -> uint8 [num_images]."""
    data = read_bytes(path, "a NUS-WIDE concept label file (one 0/1 a line)")
    tokens = data.split()
    joined = b"".join(tokens)
    values = np.frombuffer(joined, dtype=np.uint8)
    if len(joined) != len(tokens) or not np.isin(values, (ord("0"), ord("1"))).all():
        for lineno, line in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
            if line.strip() not in ("0", "1", ""):
                raise DataError(f"{path}:{lineno}: expected 0 or 1, got {line.strip()[:40]!r}")
    if len(tokens) != num_images:
        raise DataError(f"{path}: {len(tokens)} values, but ImageList/Imagelist.txt lists {num_images} images "
                        f"(one 0/1 a line, aligned with it)")
    return values - ord("0")


def load_nuswide(root, image_prefix="Flickr/"):
    """(paths [N], labels uint8 [N, 81], concept names [81]) of all images, concepts in alphabetical order."""
    require_dir(root, "the NUS-WIDE root with ImageList/ and Groundtruth/")
    paths = read_image_list(os.path.join(root, "ImageList", "Imagelist.txt"), image_prefix)
    label_dir = os.path.join(root, "Groundtruth", "AllLabels")
    require_dir(label_dir, "the concept label files Labels_<concept>.txt")
    files = sorted(glob.glob(os.path.join(glob.escape(label_dir), "Labels_*.txt")))
    if not files:
        raise DataError(f"{label_dir}: no Labels_<concept>.txt files")
    names = [os.path.basename(f)[len("Labels_"):-len(".txt")] for f in files]
    labels = np.zeros((len(paths), len(files)), dtype=np.uint8)
    for c, path in enumerate(files):
        labels[:, c] = read_label_file(path, len(paths))
    return paths, labels, names


def choose_concepts(labels, names, count, label_dir):
    """Column indices of the `count` most frequent concepts (ties: by name), in alphabetical order."""
    if count > len(names):
        raise DataError(f"{label_dir}: --concepts {count}, but only {len(names)} Labels_<concept>.txt files")
    freq = labels.astype(np.int64).sum(axis=0)
    ranked = sorted(range(len(names)), key=lambda c: (-freq[c], names[c]))
    return sorted(ranked[:count], key=lambda c: names[c])


def make_split(nuswide_root: str, concepts: int = 21, num_query: int = 2100, num_train: int = 10500,
               per_class: bool = False, seed: int = 0, out_dir: str | None = None, image_prefix: str = "Flickr/",
               check_images: bool = False, quiet: bool = False) -> str:
    """Build the lists; returns the summary text. Raises DataError on bad input."""
    concepts = check_count("--concepts", concepts, 1)
    num_query = check_count("--num-query", num_query, 1)
    num_train = check_count("--num-train", num_train, 1)
    seed = check_count("--seed", seed, 0)
    if per_class and (num_query % concepts or num_train % concepts):
        raise DataError(f"--per-class: --num-query ({num_query}) and --num-train ({num_train}) must be multiples "
                        f"of --concepts ({concepts})")
    all_paths, all_labels, all_names = load_nuswide(nuswide_root, image_prefix)
    columns = choose_concepts(all_labels, all_names, concepts, os.path.join(nuswide_root, "Groundtruth", "AllLabels"))
    labels = all_labels[:, columns]
    names = [all_names[c] for c in columns]
    keep = labels.sum(axis=1) > 0
    paths = [p for p, k in zip(all_paths, keep) if k]
    labels = labels[keep]
    dropped = int((~keep).sum())
    if check_images:  # the release keeps the images in <root>/Flickr/, whatever --image-prefix says
        check_images_exist(os.path.join(nuswide_root, "Flickr"), [p[len(image_prefix):] for p in paths])
    name = f"nuswide_{concepts}"
    order = seeded_order(paths, seed, "nuswide", source=os.path.join(nuswide_root, "ImageList", "Imagelist.txt"))
    if per_class:
        def take(pool, count, flag, _):
            return take_per_class(pool, labels, count // concepts, names, flag)

        splits = query_database_train(order, num_query, num_train, len(paths), take)
    else:
        splits = query_database_train(order, num_query, num_train, len(paths))
    how = f"{num_query // concepts} per concept" if per_class else "at random"
    header = [f"source: NUS-WIDE Imagelist.txt ({len(all_paths)} images) + {len(all_names)} concept label files; "
              f"concepts: the {concepts} most frequent, alphabetical",
              f"protocol: {num_query} queries drawn {how}; database = the rest; {num_train} training images drawn "
              f"{'per concept' if per_class else 'at random'} from the database; seed {seed}"]
    return write_split(out_dir or os.path.join("data", name), name, "make_nuswide_split", paths, labels,
                       splits, names, header, dropped, quiet=quiet)


def parser():
    p = make_parser(__doc__, "nuswide", "nuswide_<concepts>")
    p.add_argument("--nuswide-root", default="./datasets/nus-wide",
                   help="NUS-WIDE root (ImageList/, Groundtruth/, Flickr/); list paths are relative to it")
    p.add_argument("--concepts", type=int, default=21,
                   help="10 or 21 (the most frequent, counted from the label files) or 81 (all)")
    p.add_argument("--num-query", type=int, default=2100, help="number of queries (some lists use 5000)")
    p.add_argument("--num-train", type=int, default=10500, help="number of training images, drawn from the database")
    p.add_argument("--per-class", action="store_true",
                   help="draw queries and training images per concept (counts / concepts each)")
    p.add_argument("--image-prefix", default="Flickr/",
                   help="prepended to each Imagelist.txt entry ('' when --data-path will be the Flickr folder)")
    p.add_argument("--check-images", action="store_true", help="also check that every image exists under <nuswide-root>/Flickr/")
    return p


main = tool_main(parser, make_split, "nuswide_root", "concepts", "num_query", "num_train", "per_class", "seed",
                 "out_dir", "image_prefix", "check_images")


if __name__ == "__main__":
    main()
