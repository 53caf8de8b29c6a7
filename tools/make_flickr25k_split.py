"""Make the MIRFlickr-25K hashing split from its annotation files.

Input (MIRFLICKR-25000, https://press.liacs.nl/mirflickr/):
    <flickr-root>/mirflickr/im1.jpg ... im25000.jpg                 (mirflickr25k.zip; only with --check-images)
    <flickr-root>/mirflickr25k_annotations_v080/<concept>.txt         (mirflickr25k_annotations_v080.zip)
        one image number (1..25000) a line: the images showing the concept

Protocol (the usual one for deep hashing on MIRFlickr-25K):
    the 24 concepts animals, baby, bird, car, clouds, dog, female, flower, food, indoor, lake,
    male, night, people, plant_life, portrait, river, sea, sky, structures, sunset, transport,
    tree, water (label columns in this order; the stricter <concept>_r1.txt "relevant" variants
    and README.txt are not used); images with none of them are dropped; 2,000 images drawn at
    random are the queries (test.txt); all the others are the database; 5,000 images drawn at
    random from the database are the training set. mAP@5000.
List paths are relative to <flickr-root>: mirflickr/im1.jpg.

Example:
    python -m tools.make_flickr25k_split --flickr-root /data/mirflickr25k
    python main_single_gpu.py -c configs/hashnet_flickr25k.yaml --data-path /data/mirflickr25k --bit 64
"""
from __future__ import annotations

if not __package__:  # run by path (python <folder>/<file>.py): the package imports below would fail
    import sys

    print("error: run it from the repository root as a module: python -m tools.make_flickr25k_split [flags]", file=sys.stderr)
    raise SystemExit(2)

import os

import numpy as np

from tools.split_common import (check_count, check_images_exist, make_parser, query_database_train, random_protocol,
                                read_text, require_dir, seeded_order, tool_main, write_split)
from utils.errors import DataError

CONCEPTS = ("animals", "baby", "bird", "car", "clouds", "dog", "female", "flower", "food", "indoor", "lake", "male",
            "night", "people", "plant_life", "portrait", "river", "sea", "sky", "structures", "sunset", "transport",
            "tree", "water")


def read_annotation(path, num_images):
    """Image numbers (1-based) of one concept file."""
    numbers = []
    for lineno, line in enumerate(read_text(path, "a MIRFlickr annotation file: one image number a line").split("\n"), 1):
        token = line.strip()
        if not token:
            continue
        if not token.isdigit():
            raise DataError(f"{path}:{lineno}: {token[:40]!r} is not an image number")
        number = int(token)
        if not 1 <= number <= num_images:
            raise DataError(f"{path}:{lineno}: image number {number} is not in 1..{num_images}")
        numbers.append(number)
    return numbers


def load_flickr(annotation_dir, num_images):
    """(paths [num_images], labels uint8 [num_images, 24]) of all images."""
    require_dir(annotation_dir, "mirflickr25k_annotations_v080 with <concept>.txt files")
    labels = np.zeros((num_images, len(CONCEPTS)), dtype=np.uint8)
    for c, concept in enumerate(CONCEPTS):
        numbers = read_annotation(os.path.join(annotation_dir, f"{concept}.txt"), num_images)
        labels[np.asarray(numbers, dtype=np.int64) - 1, c] = 1
    paths = [f"mirflickr/im{i}.jpg" for i in range(1, num_images + 1)]
    return paths, labels


def make_split(flickr_root: str, annotations: str | None = None, num_query: int = 2000, num_train: int = 5000,
               num_images: int = 25000, seed: int = 0, out_dir: str | None = None, check_images: bool = False,
               quiet: bool = False) -> str:
    """Build the lists; returns the summary text. Raises DataError on bad input."""
    num_query = check_count("--num-query", num_query, 1)
    num_train = check_count("--num-train", num_train, 1)
    num_images = check_count("--num-images", num_images, 1)
    seed = check_count("--seed", seed, 0)
    annotation_dir = annotations or os.path.join(flickr_root, "mirflickr25k_annotations_v080")
    all_paths, all_labels = load_flickr(annotation_dir, num_images)
    keep = all_labels.sum(axis=1) > 0
    paths = [p for p, k in zip(all_paths, keep) if k]
    labels = all_labels[keep]
    dropped = int((~keep).sum())
    if not paths:
        raise DataError(f"{annotation_dir}: no image carries any of the {len(CONCEPTS)} concepts")
    if check_images:
        check_images_exist(flickr_root, paths)
    order = seeded_order(paths, seed, "flickr25k")
    splits = query_database_train(order, num_query, num_train, len(paths))
    header = [f"source: MIRFlickr-25K annotations v080 ({num_images} images, {len(CONCEPTS)} concepts, no _r1 variants)",
              random_protocol(num_query, num_train, seed)]
    return write_split(out_dir or os.path.join("data", "flickr25k"), "flickr25k", "make_flickr25k_split", paths, labels,
                       splits, list(CONCEPTS), header, dropped, quiet=quiet)


def parser():
    p = make_parser(__doc__, "flickr25k")
    p.add_argument("--flickr-root", default="./datasets/flickr25k",
                   help="folder holding mirflickr/ and mirflickr25k_annotations_v080/; list paths are relative to it")
    p.add_argument("--annotations", default=None,
                   help="the annotation folder (default: <flickr-root>/mirflickr25k_annotations_v080)")
    p.add_argument("--num-query", type=int, default=2000, help="number of queries (test.txt)")
    p.add_argument("--num-train", type=int, default=5000, help="number of training images, drawn from the database")
    p.add_argument("--num-images", type=int, default=25000, help="images in the collection (im1.jpg ... im<N>.jpg)")
    p.add_argument("--check-images", action="store_true", help="also check that every image exists under --flickr-root")
    return p


main = tool_main(parser, make_split, "flickr_root", "annotations", "num_query", "num_train", "num_images", "seed",
                 "out_dir", "check_images")


if __name__ == "__main__":
    main()
