"""tools.make_imagenet100_split on a tiny ImageNet-like folder of JPEGs written with cv2."""
import os

import cv2
import numpy as np
import pytest

from tests.tools.common import assert_cli_error, check_partition, check_sha256sums, labels_by_path, lists, outputs
from tools.make_imagenet100_split import make_split
from utils.errors import UserError

# The class list's order (not sorted) is the label order; n09999999 exists on disk but is not listed.
WNIDS = ["n04000003", "n01000001", "n03000002", "n02000004"]
TRAIN_PER_CLASS, VAL_PER_CLASS = 6, 3


def write_imagenet(root, wnids=WNIDS, train=TRAIN_PER_CLASS, val=VAL_PER_CLASS, class_list=True):
    for c, wnid in enumerate(list(wnids) + ["n09999999"]):
        for split, count in (("train", train), ("val", val)):
            folder = os.path.join(root, split, wnid)
            os.makedirs(folder, exist_ok=True)
            for k in range(count):
                name = f"{wnid}_{k + 1}.JPEG" if split == "train" else f"ILSVRC2012_val_{c * 100 + k + 1:08d}.JPEG"
                cv2.imwrite(os.path.join(folder, name), np.full((12, 16, 3), (20 * c + k) % 256, dtype=np.uint8))
            open(os.path.join(folder, "notes.txt"), "w").write("not an image\n")
    if class_list:
        with open(os.path.join(root, "classes.txt"), "w") as f:
            f.write("# ImageNet-100 classes\n" + "\n".join(wnids) + "\n")
    return os.path.join(root, "classes.txt")


@pytest.fixture(scope="module")
def imagenet(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("imagenet"))
    return root, write_imagenet(root)


def split(imagenet, out, seed=0, train=2, **kw):
    return make_split(imagenet[0], imagenet[1], train_per_class=train, seed=seed, out_dir=str(out), quiet=True, **kw)


def pool():
    return ([f"train/{w}/{w}_{k + 1}.JPEG" for w in WNIDS for k in range(TRAIN_PER_CLASS)]
            + [f"val/{w}/ILSVRC2012_val_{c * 100 + k + 1:08d}.JPEG" for c, w in enumerate(WNIDS) for k in range(3)])


def test_documented_counts_and_partition(imagenet, tmp_path):
    split(imagenet, tmp_path)
    got = lists(tmp_path)
    assert len(got["test"][0]) == 4 * VAL_PER_CLASS and len(got["database"][0]) == 4 * TRAIN_PER_CLASS
    assert len(got["train"][0]) == 4 * 2 and (got["train"][1].sum(axis=0) == 2).all()
    assert all(p.startswith("val/") for p in got["test"][0]) and all(p.startswith("train/") for p in got["database"][0])
    assert all((lab.sum(axis=1) == 1).all() and lab.shape[1] == 4 for _, lab in got.values())
    check_partition(tmp_path, pool(), train_in_database=True)
    check_sha256sums(tmp_path)
    assert open(tmp_path / "classes.txt").read().split() == WNIDS


def test_one_hot_labels_follow_the_class_list_order(imagenet, tmp_path):
    split(imagenet, tmp_path)
    table = labels_by_path(tmp_path)
    assert table["train/n04000003/n04000003_1.JPEG"] == (0,)
    assert table["train/n01000001/n01000001_6.JPEG"] == (1,)
    assert table["val/n02000004/ILSVRC2012_val_00000302.JPEG"] == (3,)
    assert not any("n09999999" in p or p.endswith(".txt") for p in table)


def test_same_seed_byte_identical_other_seed_differs(imagenet, tmp_path):
    for name, seed in (("a", 9), ("b", 9), ("c", 10)):
        split(imagenet, tmp_path / name, seed=seed)
    assert outputs(tmp_path / "a") == outputs(tmp_path / "b")
    assert outputs(tmp_path / "a")["train.txt"] != outputs(tmp_path / "c")["train.txt"]
    assert outputs(tmp_path / "a")["test.txt"] == outputs(tmp_path / "c")["test.txt"]  # the queries are all of val


@pytest.mark.parametrize("case, fragment", [
    ("no_class_list", "classes.txt: file not found"),
    ("bad_wnid", "classes.txt:3: 'dog' is not a WordNet id"),
    ("duplicate", "classes.txt:6: n01000001 is listed twice (first on line 3)"),
    ("empty_list", "classes.txt: no class listed"),
    ("no_val", "val: folder not found"),
    ("missing_class", os.path.join("train", "n03000002") + ": folder not found"),
    ("empty_class", os.path.join("val", "n02000004") + ": no images"),
    ("too_few", "class 'n04000003' has 6 images left, need 7"),
])
def test_bad_inputs_name_the_file(tmp_path, case, fragment):
    root = str(tmp_path / "imagenet")
    class_list = write_imagenet(root)
    kw = {}
    if case == "no_class_list":
        os.remove(class_list)
    elif case == "bad_wnid":
        open(class_list, "w").write("# classes\nn04000003\ndog\n")
    elif case == "duplicate":
        open(class_list, "a").write("n01000001\n")
    elif case == "empty_list":
        open(class_list, "w").write("# nothing\n\n")
    elif case == "no_val":
        os.rename(os.path.join(root, "val"), os.path.join(root, "validation"))
    elif case == "missing_class":
        os.rename(os.path.join(root, "train", "n03000002"), os.path.join(root, "train", "x"))
    elif case == "empty_class":
        folder = os.path.join(root, "val", "n02000004")
        for name in os.listdir(folder):
            if name.endswith(".JPEG"):
                os.remove(os.path.join(folder, name))
    elif case == "too_few":
        kw["train"] = 7
    with pytest.raises(UserError) as info:
        split((root, class_list), tmp_path / "out", **kw)
    assert fragment in str(info.value)
    assert not os.path.exists(tmp_path / "out")


def test_command_line_help_and_one_line_error(imagenet, tmp_path):
    from tests.tools.common import run_tool

    code, out, _ = run_tool("make_imagenet100_split", "--help")
    assert code == 0 and "--class-list" in out and "130" in out
    assert_cli_error("make_imagenet100_split", "--imagenet-root", imagenet[0], "--class-list", tmp_path / "none.txt",
                     "--out-dir", tmp_path / "out", fragment="none.txt: file not found")
