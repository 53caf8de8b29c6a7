"""--init-from: DSH's short-to-long code training (utils/training/init_from.py), on tiny lite data."""
import logging
import os
import re

import numpy as np
import paddle
import pytest

import main_single_gpu
from tests.conftest import ROOT
from utils.config import build_config
from utils.storage.weights import read_weights, save_safetensors
from utils.training.builders import build_network

pytestmark = pytest.mark.slow  # builds full-size networks (AlexNet 4096, VGG16, ResNet50) or trains

CONFIG = os.path.join(ROOT, "configs", "methods", "dsh_lite.yaml")
TINY = ["-o", "model.fc_dim=64", "-o", "dataset.resize_size=72", "-o", "dataset.crop_size=64",
        "-o", "dataset.num_workers=0", "-o", "train.eval_untrained=false"]


def run(tiny_lite, out, bit, *extra):
    main_single_gpu.main(["-c", CONFIG, "--data-path", tiny_lite, "--bit", str(bit), "--epoch", "1",
                          "--batch-size", "8", "--seed", "4", "--threads", "2", "--device", "cpu",
                          "--output-dir", str(out), *TINY, *extra])


@pytest.fixture(scope="module")
def short_model(tiny_lite, tmp_path_factory):
    """A trained 16-bit DSH model: the prefix of its best weights."""
    out = tmp_path_factory.mktemp("dsh16")
    run(tiny_lite, out, 16)
    return str(out / "model_best_16")


def network(tiny_lite, bit, init_from=None, seed=4, backbone=None):
    overrides = [TINY[i + 1] for i in range(0, len(TINY), 2)] + ([f"model.backbone={backbone}"] if backbone else [])
    cfg = build_config(CONFIG, {"data_path": tiny_lite, "bit": bit, "seed": seed, "init_from": init_from,
                                "device": "cpu"}, overrides)
    return build_network(cfg, 12, logging.getLogger("test")), cfg


def codes(model, images):
    model.eval()
    with paddle.no_grad():
        return (model(images).numpy() >= 0).astype(np.int8)


def test_first_bits_equal_the_short_model_codes_before_any_step(short_model, tiny_lite):
    long_model, _ = network(tiny_lite, 48, init_from=short_model)
    fresh, _ = network(tiny_lite, 48)  # the same build without the flag
    short, _ = network(tiny_lite, 16)
    short.set_state_dict(read_weights(short_model)[0])
    paddle.seed(1)
    images = paddle.randn([16, 3, 64, 64])
    got, want = codes(long_model, images), codes(short, images)
    assert got.shape == (16, 48) and want.shape == (16, 16)
    assert (got[:, :16] == want).all()
    trained = read_weights(short_model)[0]
    state, fresh_state = long_model.state_dict(), fresh.state_dict()
    for key, value in trained.items():
        if key.startswith("backbone."):  # every backbone tensor, BatchNorm statistics included
            np.testing.assert_array_equal(state[key].numpy(), np.asarray(value))
    w, b = state["hash_layer.weight"].numpy(), state["hash_layer.bias"].numpy()
    np.testing.assert_array_equal(w[:, :16], np.asarray(trained["hash_layer.weight"]))  # [in, K]: columns
    np.testing.assert_array_equal(b[:16], np.asarray(trained["hash_layer.bias"]))
    # the other 32 units keep the initialisation of the same build without the flag
    np.testing.assert_array_equal(w[:, 16:], fresh_state["hash_layer.weight"].numpy()[:, 16:])
    np.testing.assert_array_equal(b[16:], fresh_state["hash_layer.bias"].numpy()[16:])
    assert not np.array_equal(w[:, :16], fresh_state["hash_layer.weight"].numpy()[:, :16])


def test_the_run_reports_the_copy_and_then_trains(short_model, tiny_lite, tmp_path, capsys):
    run(tiny_lite, tmp_path, 48, "--init-from", short_model)
    out = capsys.readouterr()
    log = (tmp_path / "train_48.log").read_text()
    line = re.search(r"init-from \S+: copied the backbone \((\d+) tensors\) and hash units 0\.\.15 of the 16-bit "
                     r"model into this 48-bit one; hash units 16\.\.47 initialised as usual", log)
    assert line and int(line.group(1)) > 0, log
    assert re.fullmatch(r"mAP@all: \d\.\d{4}", out.out.strip().splitlines()[-1])
    trained = read_weights(str(tmp_path / "model_last_48"))[0]
    start = read_weights(short_model)[0]
    assert np.asarray(trained["hash_layer.weight"]).shape[1] == 48
    assert not np.array_equal(np.asarray(trained["hash_layer.weight"])[:, :16], np.asarray(start["hash_layer.weight"]))


def one_line_error(capsys, argv, fragment):
    with pytest.raises(SystemExit) as exc:
        main_single_gpu.main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert exc.value.code == 2 and len(err) == 1 and err[0].startswith("error: ") and fragment in err[0], err


def test_refused_in_one_line(short_model, tiny_lite, tmp_path, capsys):
    base = ["-c", CONFIG, "--data-path", tiny_lite, "--epoch", "1", "--batch-size", "8", "--output-dir",
            str(tmp_path / "run"), "--device", "cpu", *TINY]
    one_line_error(capsys, [*base, "--bit", "48", "--init-from", str(tmp_path / "none")],
                   f"--init-from: weights not found: {tmp_path / 'none'}.pdparams")
    long_model, _ = network(tiny_lite, 48)
    save_safetensors(long_model.state_dict(), str(tmp_path / "long48.safetensors"))
    one_line_error(capsys, [*base, "--bit", "16", "--init-from", str(tmp_path / "long48")],
                   "a 48-bit model cannot start a 16-bit one")
    other, _ = network(tiny_lite, 16, backbone="mobilenetv3_small")
    save_safetensors(other.state_dict(), str(tmp_path / "mobilenet16.safetensors"))
    one_line_error(capsys, [*base, "--bit", "48", "--init-from", str(tmp_path / "mobilenet16")],
                   "a different backbone than model.backbone alexnet")
    one_line_error(capsys, [*base, "--bit", "48", "--init-from", short_model, "--pretrained", short_model],
                   "and --pretrained both give the starting weights")
    assert not (tmp_path / "run" / "model_last_48.pdparams").exists()
