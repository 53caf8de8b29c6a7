"""End to end on CPU: train -> evaluate -> export -> Paddle Inference -> predict, on tiny lite data."""
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
# fc6/fc7 narrowed to 256 keeps checkpoints small and the suite fast; the full-width model is
# exported and compared in test_full_size_alexnet_export_matches_dygraph.
TINY = ["-o", "model.fc_dim=256", "-o", "dataset.resize_size=72", "-o", "dataset.crop_size=64", "-o", "dataset.num_workers=0",
        "-o", "train.eval_every=1", "-o", "train.log_every=1"]


def train(tiny_lite, out, *extra):
    argv = ["--dataset", "lite", "--data-path", tiny_lite, "--bit", str(BIT), "--batch-size", "8", "--seed", "5",
            "--output-dir", str(out), "--threads", "2", "--lr", "0.001", *TINY, *extra]
    main_single_gpu.main(argv)


@pytest.fixture(scope="module")
def trained(tiny_lite, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    train(tiny_lite, out, "--epoch", "2")
    return out


def test_training_writes_checkpoints_config_and_reports_map(trained, capsys):
    for name in (f"model_best_{BIT}.pdparams", f"model_best_{BIT}.pdopt", f"model_last_{BIT}.pdparams",
                 f"model_last_{BIT}.pdopt", f"config_{BIT}.yaml", f"train_{BIT}.log"):
        assert os.path.isfile(trained / name), name
    assert not [n for n in os.listdir(trained) if n.endswith(".tmp")]
    log = (trained / f"train_{BIT}.log").read_text()
    assert "[untrained] mAP@all" in log and "[epoch 2] mAP@all" in log
    state = paddle.load(str(trained / f"model_last_{BIT}.pdopt"))
    assert state["epoch"] == 1 and state["bit"] == BIT
    assert state["loss"]["memory_filled"].numpy().sum() == 32  # every training image is in the memory


def test_eval_flag_prints_the_map_line_last(trained, tiny_lite, capsys):
    # no -c/-o: the config_16.yaml saved beside the weights (fc_dim 256, 64x64 crops) is used
    main_single_gpu.main(["--eval", "--pretrained", str(trained / f"model_best_{BIT}"), "--data-path", tiny_lite,
                          "--bit", str(BIT), "--output-dir", str(trained)])
    lines = capsys.readouterr().out.strip().splitlines()
    assert re.fullmatch(r"mAP@all: \d\.\d{4}", lines[-1])
    best = paddle.load(str(trained / f"model_best_{BIT}.pdopt"))["best"]["map"]
    assert lines[-1] == f"mAP@all: {best:.4f}"  # the saved best weights reproduce the reported value


def test_eval_plots(trained, tiny_lite, tmp_path):
    main_single_gpu.main(["--eval", "--plots", "--pretrained", str(trained / f"model_best_{BIT}"), "--data-path",
                          tiny_lite, "--bit", str(BIT), "--output-dir", str(tmp_path)])
    for name in (f"pr_curve_{BIT}.png", f"precision_at_n_{BIT}.png"):
        data = (tmp_path / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000


def test_export_then_paddle_inference_codes_equal_dygraph_codes(trained, tiny_lite, tmp_path):
    weights = str(trained / f"model_best_{BIT}")
    export_model.main(["--bit", str(BIT), "--pretrained", weights, "--save-inference-dir", str(tmp_path)])
    assert os.path.isfile(tmp_path / f"inference_{BIT}.json")
    assert os.path.isfile(tmp_path / f"inference_{BIT}.pdiparams")
    cfg = build_config(str(trained / f"config_{BIT}.yaml"))
    dygraph = DygraphEncoder(cfg, weights)
    db_list = os.path.join(tiny_lite, "database.txt")
    expected, _ = encode_list(dygraph, db_list, tiny_lite, batch_size=16)
    for mkldnn in (True, False):
        static = InferenceEncoder(str(tmp_path), BIT, use_mkldnn=mkldnn, cpu_threads=2)
        assert static.preprocess == dygraph.preprocess
        got, _ = encode_list(static, db_list, tiny_lite, batch_size=16)
        np.testing.assert_array_equal(got, expected)
    assert len(np.unique(expected, axis=0)) > 1  # not a degenerate constant code


def run_predict(argv, capsys):
    """predict.py's answer (stdout) followed by what it said about the model and the cache (stderr)."""
    predict.main(argv)
    captured = capsys.readouterr()
    return captured.out + captured.err


def ranks(output):
    return [line.split()[2] for line in output.splitlines() if re.match(r"\s+\d+\s+\d+\s+images/", line)]


def test_predict_from_weights_and_from_export_agree_and_cache(trained, tiny_lite, tmp_path, capsys):
    weights = str(trained / f"model_best_{BIT}")
    export_dir = tmp_path / "export"
    export_model.main(["--bit", str(BIT), "--pretrained", weights, "--save-inference-dir", str(export_dir)])
    query = os.path.join(tiny_lite, "images", "test", "00000.jpg")
    common = ["--bit", str(BIT), "--img", query, "--data-path", tiny_lite, "--topk", "8", "--num-workers", "0"]
    out_w = run_predict(common + ["--pretrained", weights, "--save-path", str(tmp_path / "w"), "--show"], capsys)
    out_m = run_predict(common + ["--model-dir", str(export_dir), "--save-path", str(tmp_path / "m")], capsys)
    assert "encoding the database (no cache yet)" in out_w
    assert "query labels:" in out_w  # the query is one of the data set's test images: matches are judged
    assert len(ranks(out_w)) == 8 and ranks(out_w) == ranks(out_m)
    codes_w = np.load(tmp_path / "w" / f"database_code_{BIT}.npy", allow_pickle=False)
    codes_m = np.load(tmp_path / "m" / f"database_code_{BIT}.npy", allow_pickle=False)
    np.testing.assert_array_equal(codes_w, codes_m)
    assert os.path.isfile(tmp_path / "w" / f"retrieval_00000_{BIT}.jpg")
    # distances are non-decreasing and ties are in database order
    rows = [line.split() for line in out_w.splitlines() if re.match(r"\s+\d+\s+\d+\s+images/", line)]
    keys = [(int(r[1]), r[2]) for r in rows]
    assert keys == sorted(keys)

    again = run_predict(common + ["--pretrained", weights, "--save-path", str(tmp_path / "w")], capsys)
    assert "encoding the database" not in again and ranks(again) == ranks(out_w)

    radius = run_predict(common + ["--pretrained", weights, "--save-path", str(tmp_path / "w"), "--radius", "3"], capsys)
    assert "within Hamming radius 3" in radius
    assert all(int(r.split()[1]) <= 3 for r in radius.splitlines() if re.match(r"\s+\d+\s+\d+\s+images/", r))


def test_stale_cache_is_rebuilt_when_weights_change(trained, tiny_lite, tmp_path, capsys):
    query = os.path.join(tiny_lite, "images", "test", "00001.jpg")
    common = ["--bit", str(BIT), "--img", query, "--data-path", tiny_lite, "--num-workers", "0",
              "--save-path", str(tmp_path)]
    first = run_predict(common + ["--pretrained", str(trained / f"model_best_{BIT}")], capsys)
    assert "no cache yet" in first
    # other weights: the last checkpoint differs from the best one only if training moved on; force a change
    state = paddle.load(str(trained / f"model_last_{BIT}.pdparams"))
    state["hash_layer.bias"] = state["hash_layer.bias"] + 1.0
    other = tmp_path / "other"
    other.mkdir()
    paddle.save(state, str(other / f"model_{BIT}.pdparams"))
    (other / f"config_{BIT}.yaml").write_text((trained / f"config_{BIT}.yaml").read_text())
    second = run_predict(common + ["--pretrained", str(other / f"model_{BIT}")], capsys)
    assert "fingerprint differs: model_sha256" in second
    # a torn cache (codes without their fingerprint) is not trusted
    os.remove(tmp_path / f"database_code_{BIT}.json")
    third = run_predict(common + ["--pretrained", str(other / f"model_{BIT}")], capsys)
    assert "encoding the database (no cache yet)" in third


def test_resumed_run_ends_with_the_same_weights_as_an_uninterrupted_one(tiny_lite, tmp_path):
    whole, part = tmp_path / "whole", tmp_path / "part"
    train(tiny_lite, whole, "--epoch", "3", "-o", "train.eval_untrained=false")
    train(tiny_lite, part, "--epoch", "1", "-o", "train.eval_untrained=false")  # stopped after epoch 1
    train(tiny_lite, part, "--epoch", "3", "--resume", str(part / f"model_last_{BIT}"))
    a = paddle.load(str(whole / f"model_last_{BIT}.pdparams"))
    b = paddle.load(str(part / f"model_last_{BIT}.pdparams"))
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_allclose(a[key].numpy(), b[key].numpy(), rtol=0, atol=1e-6, err_msg=key)
    sa = paddle.load(str(whole / f"model_last_{BIT}.pdopt"))
    sb = paddle.load(str(part / f"model_last_{BIT}.pdopt"))
    np.testing.assert_allclose(sa["loss"]["memory_codes"].numpy(), sb["loss"]["memory_codes"].numpy(), atol=1e-6)
    # and a different seed really gives different weights (the comparison above can fail)
    other = tmp_path / "other"
    train(tiny_lite, other, "--epoch", "1", "--seed", "6", "-o", "train.eval_untrained=false")
    c = paddle.load(str(other / f"model_last_{BIT}.pdparams"))
    assert not np.allclose(c["hash_layer.weight"].numpy(), b["hash_layer.weight"].numpy())


def test_full_size_alexnet_export_matches_dygraph(tiny_lite, tmp_path):
    coco = os.path.join(os.path.dirname(__file__), "..", "configs", "hashnet_coco.yaml")
    cfg = build_config(coco, {"bit": 64, "data_path": tiny_lite})  # plain AlexNet, 224x224
    from models import build_model

    paddle.seed(11)
    paddle.save(build_model(cfg).state_dict(), str(tmp_path / "w.pdparams"))
    from utils.config import save_config

    save_config(cfg, str(tmp_path / "config_64.yaml"))
    export_model.main(["--bit", "64", "--pretrained", str(tmp_path / "w"), "--save-inference-dir", str(tmp_path / "inf")])
    db_list = os.path.join(tiny_lite, "database.txt")
    expected, _ = encode_list(DygraphEncoder(cfg, str(tmp_path / "w")), db_list, tiny_lite, batch_size=16)
    got, _ = encode_list(InferenceEncoder(str(tmp_path / "inf"), 64, cpu_threads=2), db_list, tiny_lite, batch_size=16)
    np.testing.assert_array_equal(got, expected)


def test_validation_split_picks_the_best_epoch_and_says_so(tiny_lite, tmp_path):
    train(tiny_lite, tmp_path, "--epoch", "2", "-o", "dataset.val_fraction=0.25", "-o", "train.eval_untrained=false")
    log = (tmp_path / f"train_{BIT}.log").read_text()
    assert "model selection: best epoch by validation mAP (8 images held out" in log
    assert log.count("validation mAP@all") == 2
    state = paddle.load(str(tmp_path / f"model_last_{BIT}.pdopt"))
    filled = state["loss"]["memory_filled"].numpy()
    assert filled.sum() == 24  # the 8 held-out images never enter the loss memory


def test_split_validation_is_deterministic_and_disjoint():
    from utils.data.dataset import split_validation

    keep, held = split_validation(40, 0.25, seed=3)
    again = split_validation(40, 0.25, seed=3)
    assert len(held) == 10 and len(keep) == 30 and not set(keep) & set(held)
    assert (keep == again[0]).all() and (held == again[1]).all()
    assert not (held == split_validation(40, 0.25, seed=4)[1]).all()


def test_same_seed_same_weights_other_seed_other_weights(tiny_lite, tmp_path):
    for name, seed in (("a", "5"), ("b", "5"), ("c", "6")):
        train(tiny_lite, tmp_path / name, "--epoch", "1", "--seed", seed, "-o", "train.eval_untrained=false")
    a, b, c = (paddle.load(str(tmp_path / n / f"model_last_{BIT}.pdparams")) for n in "abc")
    for key in a:
        np.testing.assert_array_equal(a[key].numpy(), b[key].numpy(), err_msg=key)
    assert not np.array_equal(a["hash_layer.weight"].numpy(), c["hash_layer.weight"].numpy())


def test_per_bit_coco_configs_carry_the_reference_seeds():
    root = os.path.join(os.path.dirname(__file__), "..", "configs")
    for bit, seed in ((16, 0), (32, 2000), (48, 200), (64, 2000)):
        cfg = build_config(os.path.join(root, f"hashnet_coco_{bit}.yaml"))
        assert (cfg["model"]["bit"], cfg["train"]["seed"]) == (bit, seed)
        assert cfg["train"]["lr"] == 0.001 and cfg["train"]["epochs"] == 150 and cfg["dataset"]["topk"] == 5000
