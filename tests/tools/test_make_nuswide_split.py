"""tools.make_nuswide_split on tiny synthetic NUS-WIDE label files (81 concepts, 300 images)."""
import os

import cv2
import numpy as np
import pytest

from tests.tools.common import assert_cli_error, check_partition, check_sha256sums, labels_by_path, lists, outputs
from tools.make_nuswide_split import make_split
from utils.errors import UserError

NUM_IMAGES = 300
CONCEPTS = [f"c{i:02d}" for i in range(81)]
TOP21 = [f"c{i:02d}" for i in range(0, 81, 4)]  # made frequent on purpose: the 21 most frequent
TOP10 = TOP21[:10]                                # and the 10 most frequent of those (NUS-WIDE-10)


def nuswide_labels(num_images=NUM_IMAGES):
    rng = np.random.default_rng(11)
    p = np.where(np.isin(CONCEPTS, TOP10), 0.35, np.where(np.isin(CONCEPTS, TOP21), 0.2, 0.02))
    labels = (rng.random((num_images, 81)) < p).astype(np.uint8)
    labels[0] = 0
    labels[0, [4, 8]] = 1          # image 0: c04 and c08 (both in the top 21: columns 1 and 2)
    labels[1] = 0
    labels[1, 1] = 1               # image 1: only c01, not in the top 21
    labels[2] = 0                  # image 2: no concept at all
    return labels


def entry(i):
    return f"{CONCEPTS[i % 81]}\\{i:04d}_{1000000 + i}.jpg"


def write_nuswide(root, images=False, num_images=NUM_IMAGES):
    labels = nuswide_labels(num_images)
    os.makedirs(os.path.join(root, "ImageList"), exist_ok=True)
    lines = [entry(i) for i in range(num_images)]
    lines[3] = "C:\\ImageData\\Flickr\\" + lines[3]  # the absolute form some copies have
    with open(os.path.join(root, "ImageList", "Imagelist.txt"), "w", newline="") as f:
        f.write("\r\n".join(lines) + "\r\n")
    label_dir = os.path.join(root, "Groundtruth", "AllLabels")
    os.makedirs(label_dir, exist_ok=True)
    for c, name in enumerate(CONCEPTS):
        with open(os.path.join(label_dir, f"Labels_{name}.txt"), "w") as f:
            f.write("".join(f"{v}\n" for v in labels[:, c]))
    if images:
        for i in range(num_images):
            if labels[i].any():
                path = os.path.join(root, "Flickr", *entry(i).split("\\"))
                os.makedirs(os.path.dirname(path), exist_ok=True)
                cv2.imwrite(path, np.full((40, 56, 3), (i * 37) % 256, dtype=np.uint8))
    return labels


def path(i):
    return "Flickr/" + entry(i).replace("\\", "/")


@pytest.fixture(scope="module")
def nus(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("nuswide"))
    return root, write_nuswide(root)


def split(root, out, concepts=21, seed=0, num_query=20, num_train=40, **kw):
    return make_split(root, concepts=concepts, num_query=num_query, num_train=num_train, seed=seed, out_dir=str(out),
                      quiet=True, **kw)


def test_synthetic_top21_is_what_the_test_assumes(nus):
    freq = nus[1].sum(axis=0)
    for top in (np.isin(CONCEPTS, TOP21), np.isin(CONCEPTS, TOP10)):
        assert freq[top].min() > freq[~top].max()


def test_nuswide_10_the_ten_most_frequent_deterministic_checksummed(nus, tmp_path):
    """NUS-WIDE-10: the 10 concepts carried by the most images, every image carrying one of them
    with exactly its raw labels at those columns; same seed -> byte-identical lists whose
    SHA256SUMS check (also with sha256sum -c)."""
    for name in ("a", "b"):
        split(nus[0], tmp_path / name, concepts=10, seed=3)
    assert outputs(tmp_path / "a") == outputs(tmp_path / "b")
    check_sha256sums(tmp_path / "a")
    assert open(tmp_path / "a" / "classes.txt").read().split() == TOP10
    columns = [CONCEPTS.index(c) for c in TOP10]
    pool = [path(i) for i in range(NUM_IMAGES) if nus[1][i, columns].any()]
    check_partition(tmp_path / "a", pool)
    table = labels_by_path(tmp_path / "a")
    for i in range(NUM_IMAGES):
        if nus[1][i, columns].any():
            assert table[path(i)] == tuple(np.flatnonzero(nus[1][i, columns]).tolist())


@pytest.mark.parametrize("concepts", [21, 81])
def test_documented_counts_and_partition(nus, tmp_path, concepts):
    summary = split(nus[0], tmp_path, concepts=concepts)
    labels = nus[1] if concepts == 81 else nus[1][:, np.isin(CONCEPTS, TOP21)]
    pool = [path(i) for i in range(NUM_IMAGES) if labels[i].any()]
    got = lists(tmp_path)
    assert len(got["test"][0]) == 20 and len(got["train"][0]) == 40 and len(got["database"][0]) == len(pool) - 20
    assert all(lab.shape[1] == concepts for _, lab in got.values())
    check_partition(tmp_path, pool)
    check_sha256sums(tmp_path)
    assert f"dropped (no label): {NUM_IMAGES - len(pool)}" in summary
    classes = open(tmp_path / "classes.txt").read().split()
    assert classes == (TOP21 if concepts == 21 else CONCEPTS)


def test_labels_and_paths(nus, tmp_path):
    split(nus[0], tmp_path / "21", concepts=21)
    split(nus[0], tmp_path / "81", concepts=81)
    t21, t81 = labels_by_path(tmp_path / "21"), labels_by_path(tmp_path / "81")
    assert t21[path(0)] == (1, 2) and t81[path(0)] == (4, 8)
    assert path(1) not in t21 and t81[path(1)] == (1,)   # only a non-top concept: dropped from the 21 lists
    assert path(2) not in t21 and path(2) not in t81     # no concept: dropped from both
    assert path(3) in t81                                 # C:\ImageData\Flickr\ prefix stripped
    for i in range(4, 30):
        if nus[1][i].any():
            assert t81[path(i)] == tuple(np.flatnonzero(nus[1][i]).tolist())


def test_per_class_draw(nus, tmp_path):
    split(nus[0], tmp_path, concepts=21, num_query=21, num_train=42, per_class=True)
    got = lists(tmp_path)
    assert len(got["test"][0]) == 21 and len(got["train"][0]) == 42
    assert (got["test"][1].sum(axis=0) >= 1).all() and (got["train"][1].sum(axis=0) >= 2).all()
    with pytest.raises(UserError, match="multiples of --concepts"):
        split(nus[0], tmp_path, concepts=21, num_query=20, per_class=True)


def test_same_seed_byte_identical_other_seed_differs(nus, tmp_path):
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        split(nus[0], tmp_path / name, seed=seed)
    assert outputs(tmp_path / "a") == outputs(tmp_path / "b")
    assert outputs(tmp_path / "a")["test.txt"] != outputs(tmp_path / "c")["test.txt"]


def test_image_prefix_and_check_images(tmp_path):
    root = str(tmp_path / "nus")
    write_nuswide(root, images=True)
    split(root, tmp_path / "out", check_images=True)
    split(root, tmp_path / "flat", image_prefix="", check_images=True)  # lists relative to <root>/Flickr/
    for rel in lists(tmp_path / "flat")["test"][0]:
        assert rel.count("/") == 1 and os.path.isfile(os.path.join(root, "Flickr", rel))
    os.remove(os.path.join(root, "Flickr", *entry(0).split("\\")))
    with pytest.raises(UserError, match="images not found"):
        split(root, tmp_path / "out", check_images=True)


@pytest.mark.parametrize("case, fragment", [
    ("no_root", "nuswide: folder not found"),
    ("no_imagelist", "Imagelist.txt: file not found"),
    ("blank_line", "Imagelist.txt:7: empty line"),
    ("quote_in_path", "Imagelist.txt:5: image path"),
    ("bad_value", "Labels_c03.txt:5: expected 0 or 1, got '2'"),
    ("short_file", "Labels_c10.txt: 299 values, but ImageList/Imagelist.txt lists 300 images"),
    ("no_label_files", "AllLabels: no Labels_<concept>.txt files"),
    ("too_many_concepts", "--concepts 90, but only 81"),
    ("too_many_queries", "--num-query"),
])
def test_bad_inputs_name_the_file(tmp_path, case, fragment):
    root = str(tmp_path / "nuswide")
    kw = {}
    if case != "no_root":
        write_nuswide(root)
    imagelist = os.path.join(root, "ImageList", "Imagelist.txt")
    label_dir = os.path.join(root, "Groundtruth", "AllLabels")
    if case == "no_imagelist":
        os.remove(imagelist)
    elif case in ("blank_line", "quote_in_path"):
        lines = open(imagelist).read().split("\n")
        lines[6 if case == "blank_line" else 4] = "" if case == "blank_line" else "actor\\my\"photo.jpg"
        open(imagelist, "w").write("\n".join(lines))
    elif case == "bad_value":
        lines = open(os.path.join(label_dir, "Labels_c03.txt")).read().split("\n")
        lines[4] = "2"
        open(os.path.join(label_dir, "Labels_c03.txt"), "w").write("\n".join(lines))
    elif case == "short_file":
        lines = open(os.path.join(label_dir, "Labels_c10.txt")).read().splitlines()
        open(os.path.join(label_dir, "Labels_c10.txt"), "w").write("\n".join(lines[:-1]) + "\n")
    elif case == "no_label_files":
        for name in os.listdir(label_dir):
            os.remove(os.path.join(label_dir, name))
    elif case == "too_many_concepts":
        kw["concepts"] = 90
    elif case == "too_many_queries":
        kw["num_query"] = 1000
    with pytest.raises(UserError) as info:
        split(root, tmp_path / "out", **kw)
    assert fragment in str(info.value)
    assert not os.path.exists(tmp_path / "out")


def test_command_line_help_and_one_line_error(nus, tmp_path):
    from tests.tools.common import run_tool

    code, out, _ = run_tool("make_nuswide_split", "--help")
    assert code == 0 and "--concepts" in out and "5,000" in out
    assert_cli_error("make_nuswide_split", "--nuswide-root", nus[0], "--concepts", "82", "--out-dir", tmp_path,
                     fragment="AllLabels: --concepts 82, but only 81")
