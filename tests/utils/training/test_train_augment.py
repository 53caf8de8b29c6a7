"""train.augment: false gives the training images the test transform (GreedyHash unsupervised, as the
authors' unsupervised_vgg.py); a method that learns from two augmented views refuses it."""
import os

import numpy as np
import pytest
from PIL import Image

from utils.config import CONFIG_DIR, build_config
from utils.errors import ConfigError
from utils.training.builders import build_split


@pytest.fixture
def tiny_list(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (80, 90, 3), dtype=np.uint8)).save(tmp_path / f"{i}.png")
    (tmp_path / "train.txt").write_text("".join(f"{i}.png\n" for i in range(3)), encoding="utf-8")
    return tmp_path


def config(method, root, overrides=()):
    return build_config(os.path.join(CONFIG_DIR, "methods", f"{method}_lite.yaml"), {"data_path": str(root)}, list(overrides))


def images(dataset):
    return np.stack([dataset[i][0] for i in range(len(dataset))])


def test_train_augment_false_gives_the_test_transform(tiny_list):
    cfg = config("greedyhash_unsup", tiny_list)
    assert cfg["train"]["augment"] is False  # the method's configs train without augmentation
    plain = images(build_split(cfg, tiny_list / "train.txt", train=False))
    np.testing.assert_array_equal(images(build_split(cfg, tiny_list / "train.txt", train=True)), plain)
    augmented = config("greedyhash_unsup", tiny_list, ["train.augment=true"])
    assert not np.array_equal(images(build_split(augmented, tiny_list / "train.txt", train=True)), plain)


def test_train_augment_false_is_refused_by_a_two_view_method(tiny_list):
    cfg = config("cibhash", tiny_list, ["train.augment=false"])
    with pytest.raises(ConfigError, match="train.augment: false, but loss 'cibhash'"):
        build_split(cfg, tiny_list / "train.txt", train=True)
    build_split(cfg, tiny_list / "train.txt", train=False)  # the query and database sets are not affected
