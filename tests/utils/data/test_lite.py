import os

import numpy as np
import pytest

from utils.data.images import read_image
from utils.data.lists import parse_list
from utils.errors import UserError
from utils.data.lite import ensure_lite_dataset, generate_lite_dataset, LITE_CLASSES

SMALL = dict(num_database=60, num_test=12, num_train=40, image_size=64)


def all_files(root):
    out = {}
    for folder, _, files in os.walk(root):
        for name in files:
            path = os.path.join(folder, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, root)] = f.read()
    return out


def test_classes():
    assert len(LITE_CLASSES) == 12 and len(set(LITE_CLASSES)) == 12
    assert "red_circle" in LITE_CLASSES and "yellow_triangle" in LITE_CLASSES


def test_generation_is_byte_identical_for_a_seed(tmp_path):
    a = generate_lite_dataset(str(tmp_path / "a"), seed=3, **SMALL)
    b = generate_lite_dataset(str(tmp_path / "b"), seed=3, **SMALL)
    files_a, files_b = all_files(a), all_files(b)
    assert len(files_a) == 12 + 60 + 5
    assert files_a == files_b
    c = generate_lite_dataset(str(tmp_path / "c"), seed=4, **SMALL)
    files_c = all_files(c)
    assert files_c.keys() == files_a.keys()
    assert files_c["images/database/00000.jpg"] != files_a["images/database/00000.jpg"]


def test_layout_lists_and_label_statistics(tmp_path):
    root = generate_lite_dataset(str(tmp_path / "lite"), seed=0, **SMALL)
    with open(os.path.join(root, "classes.txt"), encoding="utf-8") as f:
        assert f.read().split("\n")[:-1] == list(LITE_CLASSES)
    with open(os.path.join(root, "README.txt"), encoding="utf-8") as f:
        readme = f.read()
    assert "seed: 0" in readme and "database (database.txt): 60" in readme

    test_paths, test_labels = parse_list(os.path.join(root, "test.txt"), 12)
    db_paths, db_labels = parse_list(os.path.join(root, "database.txt"), 12)
    train_paths, train_labels = parse_list(os.path.join(root, "train.txt"), 12)
    assert len(test_paths) == 12 and len(db_paths) == 60 and len(train_paths) == 40
    assert test_paths[0] == "images/test/00000.jpg" and db_paths[-1] == "images/database/00059.jpg"
    # Training images: a sorted subset of the database without repeats, same labels.
    assert len(set(train_paths)) == 40 and set(train_paths) <= set(db_paths)
    positions = [db_paths.index(p) for p in train_paths]
    assert positions == sorted(positions)
    np.testing.assert_array_equal(train_labels, db_labels[positions])
    for labels in (test_labels, db_labels):
        per_image = labels.sum(axis=1)
        assert per_image.min() >= 1 and per_image.max() <= 3
    assert db_labels.sum(axis=0).min() > 0  # all 12 classes present
    image = read_image(os.path.join(root, db_paths[0]))
    assert image.shape == (64, 64, 3)


def test_default_size_statistics_are_balanced(tmp_path):
    root = generate_lite_dataset(str(tmp_path / "lite"), seed=0, num_database=300, num_test=10, num_train=100,
                                 image_size=32)
    _, labels = parse_list(os.path.join(root, "database.txt"), 12)
    assert 1.6 < labels.sum(axis=1).mean() < 2.1
    freq = labels.mean(axis=0)
    assert freq.min() > 0.08 and freq.max() < 0.25


def test_objects_are_visible_in_their_colour(tmp_path):
    """A crude check that labels match pixels: a red object means many strongly red pixels."""
    root = generate_lite_dataset(str(tmp_path / "lite"), seed=1, **SMALL)
    paths, labels = parse_list(os.path.join(root, "database.txt"), 12)
    red = [i for i, name in enumerate(LITE_CLASSES) if name.startswith("red_")]
    for path, label in zip(paths[:30], labels[:30]):
        img = read_image(os.path.join(root, path)).astype(int)
        red_pixels = ((img[..., 0] > 160) & (img[..., 1] < 90) & (img[..., 2] < 90)).sum()
        if label[red].any():
            assert red_pixels > 40, path
        else:
            assert red_pixels < 10, path


def test_atomic_no_tmp_left_and_existing_not_regenerated(tmp_path, capsys):
    root = str(tmp_path / "lite")
    assert ensure_lite_dataset(root, seed=0, **SMALL) == root
    assert "lite data set: generated 12 queries, 60 database images" in capsys.readouterr().out
    assert sorted(os.listdir(tmp_path)) == ["lite"]  # no lite.tmp-<pid> left behind
    marker = os.path.join(root, "database.txt")
    before = os.stat(marker).st_mtime_ns
    os.utime(marker, ns=(1, 1))
    assert ensure_lite_dataset(root, seed=0, **SMALL) == root
    assert capsys.readouterr().out == ""
    assert os.stat(marker).st_mtime_ns == 1 != before


def test_interrupted_generation_leaves_nothing(tmp_path, monkeypatch):
    import utils.data.lite as lite

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(lite, "_readme", boom)
    with pytest.raises(KeyboardInterrupt):
        lite.ensure_lite_dataset(str(tmp_path / "lite"), **SMALL)
    assert os.listdir(tmp_path) == []


def test_regenerate_over_existing_lite_but_not_over_foreign_folder(tmp_path):
    root = str(tmp_path / "lite")
    generate_lite_dataset(root, seed=0, **SMALL)
    generate_lite_dataset(root, seed=1, **SMALL)
    with open(os.path.join(root, "README.txt"), encoding="utf-8") as f:
        assert "seed: 1" in f.read()
    assert sorted(os.listdir(tmp_path)) == ["lite"]

    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("precious")
    with pytest.raises(UserError, match="not a lite data set"):
        ensure_lite_dataset(str(foreign), **SMALL)
    assert (foreign / "keep.txt").read_text() == "precious"
    assert sorted(os.listdir(tmp_path)) == ["lite", "mine"]


def test_bad_counts(tmp_path):
    with pytest.raises(UserError, match="num_train"):
        generate_lite_dataset(str(tmp_path / "x"), num_database=10, num_test=2, num_train=11, image_size=32)
    with pytest.raises(UserError, match="num_test"):
        generate_lite_dataset(str(tmp_path / "x"), num_database=10, num_test=0, num_train=5, image_size=32)
