"""Make the COCO 2014 hashing split (HashNet protocol) from the official instance annotations.

Input (the COCO 2014 release, https://cocodataset.org/#download):
    <coco-root>/annotations/instances_train2014.json   (annotations_trainval2014.zip)
    <coco-root>/annotations/instances_val2014.json
    <coco-root>/train2014/*.jpg, <coco-root>/val2014/*.jpg   (only with --check-images)

Protocol (HashNet, Cao et al. 2017; docs/datasets.md):
    the union of train2014 and val2014 (123,287 images); images without any instance annotation
    are dropped (122,218 remain); an image's labels are the categories of all its instance
    annotations (crowd ones included); the 80 categories map to label 0..79 in ascending
    category-id order; 5,000 images drawn at random are the queries (test.txt), all the others
    are the database (117,218, database.txt); 10,000 images drawn at random from the database are
    the training set (train.txt, a subset of the database).
List paths are relative to <coco-root>: train2014/COCO_train2014_000000000009.jpg.

Example:
    python -m tools.make_coco_split --coco-root /data/coco --seed 0
    python main_single_gpu.py -c configs/hashnet_coco.yaml --data-path /data/coco --bit 64
"""
from __future__ import annotations

if not __package__:  # run by path (python <folder>/<file>.py): the package imports below would fail
    import sys

    print("error: run it from the repository root as a module: python -m tools.make_coco_split [flags]", file=sys.stderr)
    raise SystemExit(2)

import json
import os

import numpy as np

from tools.split_common import (check_count, check_images_exist, check_list_path, make_parser, query_database_train,
                                random_protocol, read_bytes, seeded_order, tool_main, write_split)
from utils.errors import DataError

SPLITS = (("train2014", "instances_train2014.json"), ("val2014", "instances_val2014.json"))


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _need(cond, path, where, message):
    if not cond:
        raise DataError(f"{path}: {where}: {message}")


def load_instances(path):
    """Read and check one instances_*.json: ({image id: file_name}, {category id: name}, [(image id, category id)])."""
    data = read_bytes(path, "a COCO instances_*.json annotation file")
    try:
        doc = json.loads(data)
    except UnicodeDecodeError:
        raise DataError(f"{path}: not UTF-8 text (expected a COCO instances JSON file)") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}:{exc.lineno}: invalid JSON ({exc.msg}, column {exc.colno})") from None
    _need(isinstance(doc, dict), path, "top level", "expected a JSON object with images, annotations, categories")
    for key in ("images", "annotations", "categories"):
        _need(key in doc, path, "top level", f"missing key {key!r} (is this an instances_*.json file?)")
        _need(isinstance(doc[key], list), path, key, f"expected a list, got {type(doc[key]).__name__}")

    images = {}
    for i, im in enumerate(doc["images"]):
        where = f"images[{i}]"
        _need(isinstance(im, dict), path, where, "expected an object")
        _need(_is_int(im.get("id")), path, where, "missing or non-integer 'id'")
        _need(isinstance(im.get("file_name"), str) and im["file_name"], path, where, "missing or empty 'file_name'")
        _need(im["id"] not in images, path, where, f"duplicate image id {im['id']}")
        images[im["id"]] = im["file_name"]

    categories = {}
    for i, cat in enumerate(doc["categories"]):
        where = f"categories[{i}]"
        _need(isinstance(cat, dict), path, where, "expected an object")
        _need(_is_int(cat.get("id")), path, where, "missing or non-integer 'id'")
        _need(isinstance(cat.get("name"), str) and cat["name"].strip(), path, where, "missing or empty 'name'")
        _need(cat["id"] not in categories, path, where, f"duplicate category id {cat['id']}")
        categories[cat["id"]] = cat["name"]
    _need(categories, path, "categories", "empty list")

    pairs = []
    for i, ann in enumerate(doc["annotations"]):
        where = f"annotations[{i}]"
        _need(isinstance(ann, dict), path, where, "expected an object")
        image_id, cat_id = ann.get("image_id"), ann.get("category_id")
        _need(_is_int(image_id), path, where, "missing or non-integer 'image_id'")
        _need(_is_int(cat_id), path, where, "missing or non-integer 'category_id'")
        _need(image_id in images, path, where, f"image_id {image_id} is not in 'images'")
        _need(cat_id in categories, path, where, f"category_id {cat_id} is not in 'categories'")
        pairs.append((image_id, cat_id))
    return images, categories, pairs


def build_coco(annotation_dir):
    """(paths [N], labels uint8 [N, C], class names [C], number of images without a category)."""
    all_paths, all_cats, categories, first = [], [], None, None
    for folder, filename in SPLITS:
        path = os.path.join(annotation_dir, filename)
        images, cats, pairs = load_instances(path)
        if categories is None:
            categories, first = cats, path
        elif cats != categories:
            raise DataError(f"{path}: its categories differ from those of {first}")
        labels = {}
        for image_id, cat_id in pairs:
            labels.setdefault(image_id, set()).add(cat_id)
        for image_id in sorted(images):  # ascending image id: the same order whatever the JSON order
            rel = f"{folder}/{images[image_id]}"
            check_list_path(rel, f"{path}: image {image_id}")
            all_paths.append(rel)
            all_cats.append(labels.get(image_id, ()))
    cat_ids = sorted(categories)
    column = {cat_id: c for c, cat_id in enumerate(cat_ids)}
    labels = np.zeros((len(all_paths), len(cat_ids)), dtype=np.uint8)
    for i, cats in enumerate(all_cats):
        for cat_id in cats:
            labels[i, column[cat_id]] = 1
    keep = labels.sum(axis=1) > 0
    paths = [p for p, k in zip(all_paths, keep) if k]
    names = [categories[c].strip().replace(" ", "_") for c in cat_ids]
    return paths, labels[keep], names, int((~keep).sum())


def make_split(coco_root: str, annotations: str | None = None, num_query: int = 5000, num_train: int = 10000,
               seed: int = 0, out_dir: str | None = None, check_images: bool = False, quiet: bool = False) -> str:
    """Build the lists; returns the summary text. Raises DataError on bad input."""
    num_query = check_count("--num-query", num_query, 1)
    num_train = check_count("--num-train", num_train, 1)
    seed = check_count("--seed", seed, 0)
    annotation_dir = annotations or os.path.join(coco_root, "annotations")
    if not os.path.isdir(annotation_dir):
        raise DataError(f"{annotation_dir}: folder not found (expected the COCO 2014 annotations: "
                        f"instances_train2014.json, instances_val2014.json)")
    paths, labels, names, dropped = build_coco(annotation_dir)
    if check_images:
        check_images_exist(coco_root, paths)
    order = seeded_order(paths, seed, "coco", source=annotation_dir)
    splits = query_database_train(order, num_query, num_train, len(paths))
    header = [f"source: COCO 2014 train2014 + val2014 instance annotations ({len(paths) + dropped} images)",
              random_protocol(num_query, num_train, seed)]
    return write_split(out_dir or os.path.join("data", "coco"), "coco", "make_coco_split", paths, labels,
                       splits, names, header, dropped, quiet=quiet)


def parser():
    p = make_parser(__doc__, "coco")
    p.add_argument("--coco-root", default="./datasets/coco",
                   help="COCO 2014 root (train2014/, val2014/, annotations/); list paths are relative to it")
    p.add_argument("--annotations", default=None,
                   help="folder with instances_train2014.json and instances_val2014.json (default: <coco-root>/annotations)")
    p.add_argument("--num-query", type=int, default=5000, help="number of queries (test.txt)")
    p.add_argument("--num-train", type=int, default=10000, help="number of training images, drawn from the database")
    p.add_argument("--check-images", action="store_true", help="also check that every image exists under --coco-root")
    return p


main = tool_main(parser, make_split, "coco_root", "annotations", "num_query", "num_train", "seed", "out_dir",
                 "check_images")


if __name__ == "__main__":
    main()
