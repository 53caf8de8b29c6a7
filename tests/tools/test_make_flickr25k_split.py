"""tools.make_flickr25k_split on tiny synthetic MIRFlickr annotation files (80 images)."""
import os

import cv2
import numpy as np
import pytest

from tests.tools.common import assert_cli_error, check_partition, check_sha256sums, labels_by_path, lists, outputs
from tools.make_flickr25k_split import CONCEPTS, make_split
from utils.errors import UserError

NUM_IMAGES = 80


def flickr_labels():
    labels = (np.random.default_rng(5).random((NUM_IMAGES, 24)) < 0.12).astype(np.uint8)
    labels[4] = 0
    labels[4, [CONCEPTS.index("baby"), CONCEPTS.index("sky")]] = 1  # im5: baby, sky -> columns 1, 18
    labels[9] = 0                                                     # im10: only in animals_r1.txt -> dropped
    labels[10] = 0                                                    # im11: nothing -> dropped
    return labels


def write_flickr(root, images=False):
    labels = flickr_labels()
    ann = os.path.join(root, "mirflickr25k_annotations_v080")
    os.makedirs(ann, exist_ok=True)
    for c, concept in enumerate(CONCEPTS):
        numbers = np.flatnonzero(labels[:, c]) + 1
        with open(os.path.join(ann, f"{concept}.txt"), "w") as f:
            f.write("".join(f"{n}\n" for n in numbers))
    open(os.path.join(ann, "animals_r1.txt"), "w").write("10\n")  # relevance variants are not used
    open(os.path.join(ann, "README.txt"), "w").write("MIRFLICKR-25000 annotations\n")
    if images:
        os.makedirs(os.path.join(root, "mirflickr"), exist_ok=True)
        for i in range(1, NUM_IMAGES + 1):
            cv2.imwrite(os.path.join(root, "mirflickr", f"im{i}.jpg"), np.full((30, 40, 3), 3 * i, dtype=np.uint8))
    return labels


@pytest.fixture(scope="module")
def flickr(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("flickr"))
    return root, write_flickr(root, images=True)


def split(root, out, seed=0, num_query=10, num_train=25, **kw):
    return make_split(root, num_query=num_query, num_train=num_train, num_images=NUM_IMAGES, seed=seed,
                      out_dir=str(out), quiet=True, **kw)


def test_documented_counts_and_partition(flickr, tmp_path):
    summary = split(flickr[0], tmp_path, check_images=True)
    labels = flickr[1]
    pool = [f"mirflickr/im{i + 1}.jpg" for i in range(NUM_IMAGES) if labels[i].any()]
    got = lists(tmp_path)
    assert len(got["test"][0]) == 10 and len(got["train"][0]) == 25 and len(got["database"][0]) == len(pool) - 10
    assert all(lab.shape[1] == 24 for _, lab in got.values())
    check_partition(tmp_path, pool)
    check_sha256sums(tmp_path)
    assert f"dropped (no label): {NUM_IMAGES - len(pool)}" in summary
    assert open(tmp_path / "classes.txt").read().split() == list(CONCEPTS)


def test_labels_for_hand_checked_images(flickr, tmp_path):
    split(flickr[0], tmp_path)
    table = labels_by_path(tmp_path)
    assert table["mirflickr/im5.jpg"] == (1, 18)
    assert "mirflickr/im10.jpg" not in table and "mirflickr/im11.jpg" not in table
    for i in range(12, 30):
        if flickr[1][i].any():
            assert table[f"mirflickr/im{i + 1}.jpg"] == tuple(np.flatnonzero(flickr[1][i]).tolist())


def test_same_seed_byte_identical_other_seed_differs(flickr, tmp_path):
    for name, seed in (("a", 2), ("b", 2), ("c", 3)):
        split(flickr[0], tmp_path / name, seed=seed)
    assert outputs(tmp_path / "a") == outputs(tmp_path / "b")
    assert outputs(tmp_path / "a")["test.txt"] != outputs(tmp_path / "c")["test.txt"]


@pytest.mark.parametrize("case, fragment", [
    ("no_annotations", "mirflickr25k_annotations_v080: folder not found"),
    ("missing_concept", "plant_life.txt: file not found"),
    ("not_a_number", "night.txt:3: 'im12' is not an image number"),
    ("out_of_range", f"tree.txt:2: image number {NUM_IMAGES + 1} is not in 1..{NUM_IMAGES}"),
    ("missing_image", "images not found"),
    ("too_many_train", "--num-train: asked for 500 images"),
])
def test_bad_inputs_name_the_file(tmp_path, case, fragment):
    root = str(tmp_path / "flickr")
    write_flickr(root)
    ann = os.path.join(root, "mirflickr25k_annotations_v080")
    kw = {}
    if case == "no_annotations":
        os.rename(ann, ann + "_old")
    elif case == "missing_concept":
        os.remove(os.path.join(ann, "plant_life.txt"))
    elif case == "not_a_number":
        open(os.path.join(ann, "night.txt"), "w").write("1\n2\nim12\n")
    elif case == "out_of_range":
        open(os.path.join(ann, "tree.txt"), "w").write(f"1\n{NUM_IMAGES + 1}\n")
    elif case == "missing_image":
        kw["check_images"] = True
    elif case == "too_many_train":
        kw["num_train"] = 500
    with pytest.raises(UserError) as info:
        split(root, tmp_path / "out", **kw)
    assert fragment in str(info.value)
    assert not os.path.exists(tmp_path / "out")


def test_command_line_help_and_one_line_error(flickr, tmp_path):
    from tests.tools.common import run_tool

    code, out, _ = run_tool("make_flickr25k_split", "--help")
    assert code == 0 and "_r1" in out and "--num-query" in out
    assert_cli_error("make_flickr25k_split", "--flickr-root", flickr[0], "--annotations", tmp_path / "nope",
                     "--out-dir", tmp_path / "out", fragment="nope: folder not found")
