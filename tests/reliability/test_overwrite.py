"""A run never replaces another run's model without a word (issue 27): another kind of model in --output-dir is
refused in one line with the folder left byte for byte; --overwrite replaces it; the same kind re-runs as before;
finished_<K>.txt is there after a run that ended and gone after one that was stopped."""
import os

import pytest
import yaml

from tests.reliability.common import assert_one_line_error, assert_same_folder, folder_bytes, train
from utils.config import CONFIG_DIR

pytestmark = pytest.mark.slow
DSH = ["-c", os.path.join(CONFIG_DIR, "methods", "dsh_lite.yaml")]


def finished(out):
    path = out / "finished_16.txt"
    return open(path, encoding="utf-8").read() if path.exists() else None


def saved_loss(out):
    return yaml.safe_load(open(out / "config_16.yaml", encoding="utf-8"))["loss"]["name"]


def test_another_method_is_refused_overwrite_replaces_and_the_same_kind_reruns(tiny_lite, tmp_path):
    out = tmp_path / "out"
    code, _, stderr = train(tiny_lite, out, 1)
    assert code == 0, stderr[-2000:]
    assert finished(out).startswith("finished: 1 epoch of hashnet, 16 bits, best weights ")
    before = folder_bytes(out)
    code, _, stderr = train(tiny_lite, out, 1, *DSH)
    line = assert_one_line_error(code, stderr, f"--output-dir {out}: it holds the 16-bit model of another run "
                                               "(method (loss.name) hashnet;", "this run is method (loss.name) dsh",
                                 "--output-dir DIR", "--overwrite")
    assert code == 2, line
    assert_same_folder(before, folder_bytes(out))
    code, _, stderr = train(tiny_lite, out, 2, "-o", "train.lr=0.002")  # the same kind, another schedule
    assert code == 0, stderr[-2000:]
    assert finished(out).startswith("finished: 2 epochs of hashnet") and saved_loss(out) == "hashnet"
    code, _, stderr = train(tiny_lite, out, 1, *DSH, "--overwrite")
    assert code == 0, stderr[-2000:]
    assert finished(out).startswith("finished: 1 epoch of dsh") and saved_loss(out) == "dsh"
    assert "overwrite" not in yaml.safe_load(open(out / "config_16.yaml", encoding="utf-8"))


def test_a_stopped_run_takes_the_finished_mark_with_its_first_weights(tiny_lite, tmp_path):
    out = tmp_path / "out"
    code, _, stderr = train(tiny_lite, out, 1)
    assert code == 0 and finished(out), stderr[-2000:]
    # 32 training images + 60 evaluated in epoch 1: the 100th image read is in epoch 2, after epoch 1's weights
    code, _, stderr = train(tiny_lite, out, 3, fault="signal_image:SIGINT:100")
    assert code == 130 and "resume with --resume" in stderr, stderr[-2000:]
    assert finished(out) is None
    code, _, stderr = train(tiny_lite, out, 3, "--resume", str(out / "model_last_16"))
    assert code == 0, stderr[-2000:]
    assert finished(out).startswith("finished: 3 epochs of hashnet")
