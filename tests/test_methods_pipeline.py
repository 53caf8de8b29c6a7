"""A method with a classifier head (SSDH) end to end: CLI training -> --eval -> export -> Paddle
Inference -> predict, on tiny lite data. Export and predict build the model from the saved config
alone (no data, no class count): the classifier is a training device and the codes do not need it."""
import os
import re

import numpy as np
import paddle
import pytest

import export_model
import main_single_gpu
import predict
from utils.config import build_config
from utils.inference.encoders import DygraphEncoder, encode_list, InferenceEncoder

pytestmark = pytest.mark.slow

BIT = 16
CONFIG = os.path.join(os.path.dirname(__file__), "..", "configs", "methods", "ssdh_lite.yaml")


@pytest.fixture(scope="module")
def ssdh_run(tiny_lite, tmp_path_factory):
    out = tmp_path_factory.mktemp("ssdh")
    main_single_gpu.main(["-c", CONFIG, "--data-path", tiny_lite, "--bit", str(BIT), "--epoch", "1", "--batch-size", "8",
                          "--output-dir", str(out), "--threads", "2", "-o", "model.fc_dim=64",
                          "-o", "dataset.num_workers=0", "-o", "train.eval_untrained=false"])
    return out


def test_cli_training_writes_weights_with_the_classifier(ssdh_run, tiny_lite, capsys):
    state = paddle.load(str(ssdh_run / f"model_best_{BIT}.pdparams"))
    assert list(state["classifier.weight"].shape) == [BIT, 12]  # lite: 12 labels
    log = (ssdh_run / f"train_{BIT}.log").read_text()
    assert "[epoch 1] mAP@all" in log and " beta " not in log  # SSDH has no continuation parameter
    saved = build_config(str(ssdh_run / f"config_{BIT}.yaml"))
    assert saved["loss"]["name"] == "ssdh" and saved["model"]["name"] == "ssdh"
    main_single_gpu.main(["--eval", "--pretrained", str(ssdh_run / f"model_best_{BIT}"), "--data-path", tiny_lite,
                          "--bit", str(BIT), "--output-dir", str(ssdh_run)])
    last = capsys.readouterr().out.strip().splitlines()[-1]
    best = paddle.load(str(ssdh_run / f"model_best_{BIT}.pdopt"))["best"]["map"]
    assert last == f"mAP@all: {best:.4f}"


def test_export_and_predict_give_the_dygraph_codes(ssdh_run, tiny_lite, tmp_path, capsys):
    weights = str(ssdh_run / f"model_best_{BIT}")
    export_model.main(["--bit", str(BIT), "--pretrained", weights, "--save-inference-dir", str(tmp_path / "inf")])
    cfg = build_config(str(ssdh_run / f"config_{BIT}.yaml"))
    db_list = os.path.join(tiny_lite, "database.txt")
    expected, _ = encode_list(DygraphEncoder(cfg, weights), db_list, tiny_lite, batch_size=16)
    got, _ = encode_list(InferenceEncoder(str(tmp_path / "inf"), BIT, cpu_threads=2), db_list, tiny_lite, batch_size=16)
    np.testing.assert_array_equal(got, expected)
    query = os.path.join(tiny_lite, "images", "test", "00000.jpg")
    common = ["--bit", str(BIT), "--img", query, "--data-path", tiny_lite, "--topk", "5", "--num-workers", "0"]
    predict.main(common + ["--pretrained", weights, "--save-path", str(tmp_path / "w")])
    out_w = capsys.readouterr().out
    predict.main(common + ["--model-dir", str(tmp_path / "inf"), "--save-path", str(tmp_path / "m")])
    out_m = capsys.readouterr().out
    rows = [re.findall(r"^\s+\d+\s+\d+\s+(\S+)", text, re.M) for text in (out_w, out_m)]
    assert len(rows[0]) == 5 and rows[0] == rows[1]
