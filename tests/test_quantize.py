"""int8 on CPU, end to end on tiny lite data: trained weights -> quantize.py (PTQ, QAT) -> an int8
model folder -> Paddle Inference with oneDNN int8 (infer.py --precision int8), codes within the
Hamming budget of the fp32 network's."""
import os
import re

import numpy as np
import pytest
import yaml

import quantize
from deploy.inference_python import infer
from utils.config import config_for_weights
from utils.inference.encoders import DygraphEncoder, InferenceEncoder
from utils.inference.quantize import calibration_images

from tests.test_pipeline import BIT, train

pytestmark = pytest.mark.slow

BUDGET_MEAN, BUDGET_MAX = BIT / 16, BIT / 4  # test_tipc's int8 budget for PTQ


@pytest.fixture(scope="module")
def weights(tiny_lite, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    train(tiny_lite, out, "--epoch", "1", "-o", "train.eval_untrained=False")
    return str(out / f"model_best_{BIT}")


def _quantize(weights, tiny_lite, out, *extra):
    quantize.main(["--bit", str(BIT), "--pretrained", weights, "--data-path", tiny_lite, "--save-inference-dir",
                   str(out), "--calib-images", "16", "--calib-batch-size", "8", *extra])


def _codes_of_both(weights, tiny_lite, model_dir):
    cfg = config_for_weights(weights, BIT, data_path=tiny_lite)
    images, _ = calibration_images(cfg, 32, seed=1)  # all 32 training images
    fp32 = DygraphEncoder(cfg, weights).encode_batch(images)
    int8 = InferenceEncoder(str(model_dir), BIT, cpu_threads=2, precision="int8")
    return fp32, int8.encode_batch(images), int8


# what Paddle's PTQ and its int8 passes print that says nothing to a user (issue 27): stage logs at INFO,
# a deprecation warning about how PTQ reads our program, ~30 `---    quantized 0 fusion_gru ops` lines
LIBRARY_CHATTER = r"---\s|-INFO: |The old way to load|Converting input from bool"


def test_ptq_writes_an_int8_model_whose_codes_are_within_the_budget(weights, tiny_lite, tmp_path, capfd):
    capsys = capfd  # C++ output too
    _quantize(weights, tiny_lite, tmp_path, "--method", "ptq", "--algo", "abs_max")
    out, err = capsys.readouterr()
    assert not re.search(LIBRARY_CHATTER, err), err
    assert re.search(r"^mAP@all: fp32 \d\.\d{4}  int8 \d\.\d{4}  \(difference [+-]\d\.\d{4}\); mean Hamming distance "
                     r"fp32 vs int8 codes: \d+\.\d{3} of 16 bits$", out, flags=re.M), out
    assert sorted(n for n in os.listdir(tmp_path) if not n.startswith(".")) == [
        "infer_cfg.yml", f"inference_{BIT}.pdiparams", f"inference_{BIT}.pdmodel"]  # no temp files left
    info = yaml.safe_load((tmp_path / "infer_cfg.yml").read_text())
    assert info["precision"] == "int8" and info["quantization"]["algo"] == "abs_max"
    assert info["quantization"]["calibration_images"] == 16 and "weights_digest" not in info
    fp32, int8, encoder = _codes_of_both(weights, tiny_lite, tmp_path)
    distance = (fp32 != int8).sum(axis=1)
    assert set(np.unique(int8)) <= {-1, 1}
    assert distance.mean() <= BUDGET_MEAN and distance.max() <= BUDGET_MAX, distance
    # int8 codes are not the fp32 weights' codes: a code cache of those must not be reused
    assert encoder.fingerprint.startswith("files:")

    # infer.py runs it with --precision int8, and refuses it (one line, exit 2) in fp32
    images = os.path.join(tiny_lite, "images", "test")
    infer.main(["--bit", str(BIT), "--model-dir", str(tmp_path), "--img-path", images, "--precision", "int8",
                "--batch-size", "4", "--benchmark", "True", "--warmup", "1"])
    printed, err = capsys.readouterr()
    assert not re.search(LIBRARY_CHATTER, err), err
    assert len(re.findall(r"\tcode: [01]{16}\t", printed)) == len(os.listdir(images))
    assert "precision: int8" in printed
    with pytest.raises(SystemExit) as exit_info:
        infer.main(["--bit", str(BIT), "--model-dir", str(tmp_path), "--img-path", images])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --precision fp32") and "--precision int8" in err[0]


def test_qat_fine_tunes_and_writes_an_int8_model(weights, tiny_lite, tmp_path, capsys):
    _quantize(weights, tiny_lite, tmp_path, "--method", "qat", "--epoch", "1", "--batch-size", "8")
    assert "int8 model (QAT (1 epochs" in capsys.readouterr().out
    info = yaml.safe_load((tmp_path / "infer_cfg.yml").read_text())
    assert info["quantization"]["method"] == "qat" and info["quantization"]["epochs"] == 1
    assert np.isfinite(info["quantization"]["losses"]).all()
    fp32, int8, _ = _codes_of_both(weights, tiny_lite, tmp_path)
    # the fine-tuning moves the weights: its codes stay near the start's (TIPC's QAT budget: K/4 mean)
    assert (fp32 != int8).sum(axis=1).mean() <= BIT / 4


def test_qat_converts_with_the_zero_point_fix():
    """Paddle 3.3.1's own abs-max quanter has no zero point and QAT.convert fails on it; ours converts."""
    import paddle
    from paddle.quantization import QAT

    from models.quant import qat_config

    net = paddle.nn.Sequential(paddle.nn.Conv2D(3, 4, 3), paddle.nn.Flatten(), paddle.nn.Linear(4 * 6 * 6, 2))
    qat = QAT(qat_config())
    wrapped = qat.quantize(net, inplace=False)
    wrapped.train()
    wrapped(paddle.randn([2, 3, 8, 8]))
    wrapped.eval()
    converted = qat.convert(wrapped, inplace=False)
    assert "LinearQuanterDequanter" in str(converted)


@pytest.mark.parametrize("argv, needle", [
    (["--method", "ptq", "--calib-images", "0"], "--calib-images must be an integer >= 1"),
    (["--method", "ptq", "--calib-images", "999"], "--calib-images: 999 asked for"),
    (["--method", "qat", "--epoch", "0"], "--epoch must be an integer >= 1"),
])
def test_bad_flags_are_one_line_errors(weights, tiny_lite, tmp_path, capsys, argv, needle):
    with pytest.raises(SystemExit) as exit_info:
        quantize.main(["--bit", str(BIT), "--pretrained", weights, "--data-path", tiny_lite,
                       "--save-inference-dir", str(tmp_path / "q"), *argv])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0], err
    assert not os.path.exists(tmp_path / "q" / "infer_cfg.yml")
