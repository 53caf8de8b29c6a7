"""A folder of one's own photos trains with no config (issue 25 item 2): make_folder_split's lists,
then `main_single_gpu.py --dataset NAME --data-path DIR --list-dir LISTS`; the first lines say which
recipe and why; a supervised method asked for with -c on unlabelled lists refuses in one line."""
import os

import cv2
import numpy as np
import pytest

from tests.reliability.common import assert_one_line_error, run
from tools.make_folder_split import make_split
from utils.config import SCRATCH_CONFIG

pytestmark = pytest.mark.slow  # trains twice, 2 epochs on 8x8 images

TINY = ["--bit", "16", "--epoch", "2", "--batch-size", "8", "-o", "dataset.num_workers=0", "-o", "model.fc_dim=64",
        "-o", "train.eval_every=2"]


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Two classes of 12 tiny photos, folders and files with spaces in their names."""
    root = tmp_path_factory.mktemp("own") / "My Photos"
    rng = np.random.default_rng(0)
    for name in ("red things", "blue"):
        os.makedirs(root / name)
        for i in range(12):
            pixels = rng.integers(0, 90, (8, 8, 3), dtype=np.uint8)
            pixels[..., 0 if name == "blue" else 2] += 150
            cv2.imwrite(str(root / name / f"IMG {i}.jpg"), pixels)
    return str(root)


def first_lines(out, count=6):
    with open(os.path.join(out, "train_16.log"), encoding="utf-8") as f:
        return "".join(f.readlines()[:count])


def test_labelled_folder_trains_with_the_scratch_recipe(photos, tmp_path):
    lists = str(tmp_path / "lists")
    make_split(photos, out_dir=lists, check_images=True, quiet=True)
    assert '"blue/IMG 1' in open(os.path.join(lists, "database.txt"), encoding="utf-8").read()
    code, out, err = run("main_single_gpu.py", "--dataset", "mine", "--data-path", photos, "--list-dir", lists,
                         "--output-dir", str(tmp_path / "run"), *TINY)
    assert code == 0, err
    assert "data set 'mine' has no config of its own and no --pretrained-backbone was given: training with the " \
           "from-scratch recipe" in first_lines(tmp_path / "run")


def test_unlabelled_folder_trains_the_default_unsupervised_method(photos, tmp_path):
    lists = str(tmp_path / "lists")
    make_split(photos, out_dir=lists, unlabeled=True, quiet=True)
    code, out, err = run("main_single_gpu.py", "--dataset", "mine", "--data-path", photos, "--list-dir", lists,
                         "--output-dir", str(tmp_path / "run"), *TINY)
    assert code == 0, err
    assert "the lists of data set 'mine' have no labels" in first_lines(tmp_path / "run")
    assert "training the default unsupervised method 'cibhash' with" in first_lines(tmp_path / "run")
    assert os.path.isfile(tmp_path / "run" / "model_best_16.pdparams")
    # a supervised recipe named with -c refuses these lists in one line, naming the list and the way out
    code, out, err = run("main_single_gpu.py", "-c", SCRATCH_CONFIG, "--dataset", "mine",
                         "--data-path", photos, "--list-dir", lists, "--output-dir", str(tmp_path / "run2"), *TINY)
    assert_one_line_error(code, err, os.path.join(lists, "train.txt"), "have no labels", "loss 'hashnet' learns "
                          "from labels", "cibhash")
