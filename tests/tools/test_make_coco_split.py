"""tools.make_coco_split on tiny synthetic instances_*.json files with the real COCO schema.
(A 1-epoch training run through its lists is in test_dataset_configs.py.)"""
import json
import os

import cv2
import numpy as np
import pytest

from tests.tools.common import (assert_cli_error, check_partition, check_sha256sums, labels_by_path, lists,
                                outputs)
from tools.make_coco_split import make_split
from utils.errors import UserError

# The 80 COCO category ids (1..90 with gaps), as in the real files.
CATEGORY_IDS = [i for i in range(1, 91) if i not in (12, 26, 29, 30, 45, 66, 68, 69, 71, 83)]
NUM_TRAIN_IMAGES, NUM_VAL_IMAGES = 40, 24


def category(cat_id):
    name = {1: "person", 10: "traffic light", 90: "toothbrush"}.get(cat_id, f"thing{cat_id}")
    return {"supercategory": "stuff", "id": cat_id, "name": name}


def instances(split, image_ids, labels, first_ann_id):
    """A COCO instances document: images, annotations (with bbox/area/segmentation), categories."""
    images = [{"license": 1, "file_name": f"COCO_{split}_{i:012d}.jpg", "coco_url": "", "height": 48, "width": 64,
               "date_captured": "2013-11-14 16:28:13", "flickr_url": "", "id": i} for i in image_ids]
    anns, ann_id = [], first_ann_id
    for image_id in image_ids:
        for cat_id in labels.get(image_id, []):
            anns.append({"segmentation": [[1.0, 1.0, 5.0, 1.0, 5.0, 5.0]], "area": 8.0, "iscrowd": int(cat_id == 90),
                         "image_id": image_id, "bbox": [1.0, 1.0, 4.0, 4.0], "category_id": cat_id, "id": ann_id})
            ann_id += 1
    return {"info": {"description": "synthetic"}, "licenses": [], "images": images, "annotations": anns,
            "categories": [category(c) for c in CATEGORY_IDS]}


def write_coco(root, images=False):
    """Train and val instance files; 4 train and 2 val images have no annotation. Returns the labelled paths."""
    rng = np.random.default_rng(7)
    train_ids = [9] + sorted(rng.choice(np.arange(10, 600000), NUM_TRAIN_IMAGES - 1, replace=False).tolist())
    val_ids = sorted(rng.choice(np.arange(600000, 999999), NUM_VAL_IMAGES, replace=False).tolist())
    labels = {}
    for k, image_id in enumerate(train_ids + val_ids):
        labels[image_id] = sorted(set(rng.choice(CATEGORY_IDS, int(rng.integers(1, 4))).tolist()))
    labels[9] = [1, 10, 10, 90]  # duplicates (two instances of a category), a crowd one (90)
    for image_id in train_ids[-4:] + val_ids[-2:]:
        labels.pop(image_id)  # no annotation: dropped
    ann = os.path.join(root, "annotations")
    os.makedirs(ann, exist_ok=True)
    docs = {"train2014": instances("train2014", train_ids, labels, 1),
            "val2014": instances("val2014", val_ids, labels, 100000)}
    docs["val2014"]["images"].reverse()  # file order must not matter
    for split, doc in docs.items():
        with open(os.path.join(ann, f"instances_{split}.json"), "w") as f:
            json.dump(doc, f)
    pool = [f"{s}/COCO_{s}_{i:012d}.jpg" for s, ids in (("train2014", train_ids), ("val2014", val_ids))
            for i in ids if i in labels]
    if images:
        for k, rel in enumerate(pool):
            os.makedirs(os.path.join(root, os.path.dirname(rel)), exist_ok=True)
            image = np.random.default_rng(k).integers(0, 255, (48, 64, 3), dtype=np.uint8)
            cv2.imwrite(os.path.join(root, rel), image)
    return pool, labels, val_ids


@pytest.fixture(scope="module")
def coco(tmp_path_factory):
    root = tmp_path_factory.mktemp("coco")
    pool, labels, val_ids = write_coco(str(root), images=True)
    return str(root), pool, labels, val_ids


def split(coco, out, seed=0, num_query=10, num_train=20, **kw):
    return make_split(coco[0], num_query=num_query, num_train=num_train, seed=seed, out_dir=str(out), quiet=True, **kw)


def test_documented_counts_partition_and_summary(coco, tmp_path):
    summary = split(coco, tmp_path)
    got = lists(tmp_path)
    assert len(coco[1]) == NUM_TRAIN_IMAGES + NUM_VAL_IMAGES - 6
    assert len(got["test"][0]) == 10 and len(got["train"][0]) == 20
    assert len(got["database"][0]) == len(coco[1]) - 10
    assert all(labels.shape[1] == 80 for _, labels in got.values())
    check_partition(tmp_path, coco[1], train_in_database=True)
    check_sha256sums(tmp_path)
    assert "dropped (no label): 6" in summary and "classes: 80" in summary
    assert open(tmp_path / "summary.txt").read() == summary
    classes = open(tmp_path / "classes.txt").read().split()
    assert len(classes) == 80 and classes[0] == "person" and classes[9] == "traffic_light" and classes[79] == "toothbrush"


def test_labels_follow_sorted_category_ids(coco, tmp_path):
    split(coco, tmp_path)
    table = labels_by_path(tmp_path)
    # image 9: categories 1, 10 (twice), 90 (crowd) -> columns 0, 9, 79
    assert table["train2014/COCO_train2014_000000000009.jpg"] == (0, 9, 79)
    column = {cat_id: c for c, cat_id in enumerate(CATEGORY_IDS)}
    for image_id in coco[3][:3]:
        rel = f"val2014/COCO_val2014_{image_id:012d}.jpg"
        assert table[rel] == tuple(sorted(column[c] for c in set(coco[2][image_id])))


def test_same_seed_byte_identical_other_seed_differs(coco, tmp_path):
    split(coco, tmp_path / "a", seed=3)
    split(coco, tmp_path / "b", seed=3)
    split(coco, tmp_path / "c", seed=4)
    assert outputs(tmp_path / "a") == outputs(tmp_path / "b")
    assert outputs(tmp_path / "a")["test.txt"] != outputs(tmp_path / "c")["test.txt"]


def test_check_images_and_counts_too_large(coco, tmp_path):
    split(coco, tmp_path, check_images=True)
    with pytest.raises(UserError, match="--num-train: asked for 100 images, only 48"):
        split(coco, tmp_path, num_train=100)
    with pytest.raises(UserError, match="--num-query"):
        split(coco, tmp_path, num_query=58)


def rewrite(root, name, edit):
    path = os.path.join(root, "annotations", name)
    doc = json.load(open(path))
    edit(doc)
    with open(path, "w") as f:
        json.dump(doc, f)


@pytest.mark.parametrize("case, fragment", [
    ("no_annotations_dir", "annotations: folder not found"),
    ("missing_val", "instances_val2014.json: file not found"),
    ("bad_json", "instances_train2014.json:2: invalid JSON"),
    ("no_categories_key", "instances_val2014.json: top level: missing key 'categories'"),
    ("image_without_id", "instances_train2014.json: images[3]: missing or non-integer 'id'"),
    ("unknown_image", "instances_train2014.json: annotations[0]: image_id 123456789 is not in 'images'"),
    ("unknown_category", "instances_val2014.json: annotations[1]: category_id 12 is not in 'categories'"),
    ("categories_differ", "instances_val2014.json: its categories differ from those of"),
    ("missing_image_file", "images not found"),
    ("dot_dot_file_name", "image path 'train2014/../../etc/passwd.jpg' leads out of the data root"),  # issue 24
    ("nul_file_name", "contains a NUL or control character"),
])
def test_bad_inputs_name_the_file(tmp_path, case, fragment):
    root = str(tmp_path / "coco")
    write_coco(root)
    ann = os.path.join(root, "annotations")
    kw = {}
    if case == "no_annotations_dir":
        os.rename(ann, ann + ".moved")
    elif case == "missing_val":
        os.remove(os.path.join(ann, "instances_val2014.json"))
    elif case == "bad_json":
        with open(os.path.join(ann, "instances_train2014.json"), "w") as f:
            f.write('{"images": [],\n "annotations": [}\n')
    elif case == "no_categories_key":
        rewrite(root, "instances_val2014.json", lambda d: d.pop("categories"))
    elif case == "image_without_id":
        rewrite(root, "instances_train2014.json", lambda d: d["images"][3].pop("id"))
    elif case == "unknown_image":
        rewrite(root, "instances_train2014.json", lambda d: d["annotations"][0].update(image_id=123456789))
    elif case == "unknown_category":
        rewrite(root, "instances_val2014.json", lambda d: d["annotations"][1].update(category_id=12))
    elif case == "categories_differ":
        rewrite(root, "instances_val2014.json", lambda d: d["categories"].pop())
    elif case == "missing_image_file":
        kw["check_images"] = True
    elif case == "dot_dot_file_name":
        rewrite(root, "instances_train2014.json", lambda d: d["images"][2].update(file_name="../../etc/passwd.jpg"))
    elif case == "nul_file_name":
        rewrite(root, "instances_val2014.json", lambda d: d["images"][0].update(file_name="a\u0000b.jpg"))
    with pytest.raises(UserError) as info:
        split((root,), tmp_path / "out", **kw)
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)
    assert not os.path.exists(tmp_path / "out")  # nothing written on bad input


def test_command_line_help_and_one_line_error(tmp_path):
    from tests.tools.common import run_tool

    code, out, _ = run_tool("make_coco_split", "--help")
    assert code == 0 and "--num-query" in out and "HashNet" in out
    assert_cli_error("make_coco_split", "--coco-root", tmp_path / "nowhere", fragment="nowhere")



@pytest.mark.parametrize("path, fragment", [("/etc/passwd", "is absolute"), ("a/../../b.jpg", "'..'"),
                                            ("..\\b.jpg", "'..'"), ("a\x00b.jpg", "NUL"), ("a\x1b.jpg", "control"),
                                            (" a.jpg", "white space"), ('a"b.jpg', "double quote")])
def test_list_makers_refuse_paths_training_would_refuse(path, fragment):
    from tools.split_common import check_list_path

    with pytest.raises(UserError) as info:
        check_list_path(path, "where")
    assert fragment in str(info.value)
    assert check_list_path("train2014/a..b.jpg", "where") == "train2014/a..b.jpg"
    assert check_list_path("My Photos/a b.jpg", "where") == "My Photos/a b.jpg"  # written quoted
