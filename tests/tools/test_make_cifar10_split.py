"""tools.make_cifar10_split on tiny synthetic CIFAR-10 binary batches (30 records a file)."""
import os

import cv2
import numpy as np
import pytest

from tests.tools.common import assert_cli_error, check_partition, check_sha256sums, labels_by_path, lists, outputs
from tools.make_cifar10_split import CLASS_NAMES, RECORD, make_split
from utils.errors import UserError

PER_FILE = 30
FILES = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]


def records(file_index):
    """(labels [30], pixels [30, 3072]) of one synthetic batch: every class 3 times, pixels seeded."""
    rng = np.random.default_rng(100 + file_index)
    labels = rng.permutation(np.arange(PER_FILE) % 10).astype(np.uint8)
    pixels = rng.integers(0, 256, (PER_FILE, 3072), dtype=np.uint8)
    return labels, pixels


def write_cifar(folder, meta=True):
    os.makedirs(folder, exist_ok=True)
    for k, name in enumerate(FILES):
        labels, pixels = records(k)
        data = np.concatenate([labels[:, None], pixels], axis=1)
        with open(os.path.join(folder, name), "wb") as f:
            f.write(data.tobytes())
    if meta:
        with open(os.path.join(folder, "batches.meta.txt"), "w") as f:
            f.write("\n".join(CLASS_NAMES) + "\n\n")


@pytest.fixture(scope="module")
def cifar(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("cifar") / "cifar-10-batches-bin")
    write_cifar(folder)
    return folder


def split(folder, out, seed=0, query=2, train=5, **kw):
    return make_split(folder, image_out=str(out / "images"), query_per_class=query, train_per_class=train, seed=seed,
                      out_dir=str(out / "lists"), quiet=True, **kw)


def all_paths():
    return [f"train/{i:05d}.png" for i in range(5 * PER_FILE)] + [f"test/{i:05d}.png" for i in range(PER_FILE)]


def test_documented_counts_partition_and_balance(cifar, tmp_path):
    split(cifar, tmp_path)
    got = lists(tmp_path / "lists")
    assert [len(got[s][0]) for s in ("test", "train", "database")] == [20, 50, 180 - 70]
    assert (got["test"][1].sum(axis=0) == 2).all() and (got["train"][1].sum(axis=0) == 5).all()
    assert all((lab.sum(axis=1) == 1).all() and lab.shape[1] == 10 for _, lab in got.values())  # one-hot
    check_partition(tmp_path / "lists", all_paths(), train_in_database=False)
    check_sha256sums(tmp_path / "lists")
    assert open(tmp_path / "lists" / "classes.txt").read().split() == list(CLASS_NAMES)


def test_train_in_database_variant(cifar, tmp_path):
    split(cifar, tmp_path, train_in_database=True)
    got = lists(tmp_path / "lists")
    assert len(got["database"][0]) == 180 - 20
    check_partition(tmp_path / "lists", all_paths(), train_in_database=True)


def test_images_and_labels_match_the_records(cifar, tmp_path):
    split(cifar, tmp_path)
    table = labels_by_path(tmp_path / "lists")
    for file_index, k, rel in ((0, 0, "train/00000.png"), (1, 7, "train/00037.png"), (4, 29, "train/00149.png"),
                               (5, 3, "test/00003.png")):
        labels, pixels = records(file_index)
        assert table[rel] == (int(labels[k]),)
        image = cv2.imread(str(tmp_path / "images" / rel), cv2.IMREAD_COLOR_RGB)
        expected = pixels[k].reshape(3, 32, 32).transpose(1, 2, 0)  # 1024 R, 1024 G, 1024 B, row-major
        np.testing.assert_array_equal(image, expected)
    assert len(os.listdir(tmp_path / "images" / "train")) == 150 and len(os.listdir(tmp_path / "images" / "test")) == 30


def test_same_seed_byte_identical_other_seed_differs(cifar, tmp_path):
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        split(cifar, tmp_path / name, seed=seed)
    assert outputs(tmp_path / "a" / "lists") == outputs(tmp_path / "b" / "lists")
    assert outputs(tmp_path / "a" / "lists")["test.txt"] != outputs(tmp_path / "c" / "lists")["test.txt"]
    png = "train/00042.png"
    assert open(tmp_path / "a" / "images" / png, "rb").read() == open(tmp_path / "c" / "images" / png, "rb").read()
    mtime = os.stat(tmp_path / "a" / "images" / png).st_mtime_ns
    split(cifar, tmp_path / "a", seed=1)  # a rerun leaves identical images alone
    assert os.stat(tmp_path / "a" / "images" / png).st_mtime_ns == mtime


def test_standard_names_without_meta_file(tmp_path):
    folder = str(tmp_path / "bin")
    write_cifar(folder, meta=False)
    split(folder, tmp_path)
    assert open(tmp_path / "lists" / "classes.txt").read().split() == list(CLASS_NAMES)


@pytest.mark.parametrize("case, fragment", [
    ("no_folder", "cifar-10-batches-bin: folder not found"),
    ("missing_test", "test_batch.bin: file not found"),
    ("pickle_version", "data_batch_3.bin: file not found (found the Python pickle version"),
    ("extra_byte", f"data_batch_2.bin: wrong record size: {PER_FILE * RECORD + 1} bytes"),
    ("cifar100", "data_batch_1.bin: wrong record size"),
    ("pickle_file", "data_batch_4.bin: a Python pickle"),
    ("bad_label", "test_batch.bin: record 2 (byte 6146): label 10 is not 0..9"),
    ("bad_meta", "batches.meta.txt: expected 10 class names, got 9"),
    ("too_many_queries", "class 'airplane' has 18 images left, need 20"),
])
def test_bad_inputs_name_the_file(tmp_path, case, fragment):
    folder = str(tmp_path / "cifar-10-batches-bin")
    kw = {}
    if case != "no_folder":
        write_cifar(folder)
    target = {"missing_test": "test_batch.bin", "pickle_version": "data_batch_3.bin", "extra_byte": "data_batch_2.bin",
              "cifar100": "data_batch_1.bin", "pickle_file": "data_batch_4.bin", "bad_label": "test_batch.bin"}.get(case)
    path = os.path.join(folder, target) if target else None
    if case == "missing_test":
        os.remove(path)
    elif case == "pickle_version":
        os.rename(path, path[:-4])
    elif case == "extra_byte":
        open(path, "ab").write(b"\0")
    elif case == "cifar100":
        open(path, "wb").write(bytes(3 * (RECORD + 1)))
    elif case == "pickle_file":
        open(path, "wb").write(b"\x80\x04\x95" + bytes(RECORD - 3))
    elif case == "bad_label":
        data = bytearray(open(path, "rb").read())
        data[2 * RECORD] = 10
        open(path, "wb").write(bytes(data))
    elif case == "bad_meta":
        open(os.path.join(folder, "batches.meta.txt"), "w").write("\n".join(CLASS_NAMES[:9]))
    elif case == "too_many_queries":
        kw["query"] = 20
    with pytest.raises(UserError) as info:
        split(folder, tmp_path, **kw)
    assert fragment in str(info.value)
    assert not os.path.exists(tmp_path / "lists")


def test_command_line_help_and_one_line_error(tmp_path):
    from tests.tools.common import run_tool

    code, out, _ = run_tool("make_cifar10_split", "--help")
    assert code == 0 and "3,073 bytes" in out and "--image-out" in out
    folder = tmp_path / "bin"
    write_cifar(str(folder))
    open(folder / "data_batch_5.bin", "ab").write(b"\0\0")
    assert_cli_error("make_cifar10_split", "--cifar-dir", folder, "--image-out", tmp_path / "img",
                     "--out-dir", tmp_path / "lists", fragment="data_batch_5.bin: wrong record size")
