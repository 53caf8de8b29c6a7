"""The ONNX chain: export_model.py --format onnx (paddle2onnx) and onnxruntime (OnnxEncoder,
deploy/onnxruntime_python/infer.py) give Paddle Inference's and the dygraph network's codes, at the
lite data's 64 px crops (a 1x1 map before AlexNet's 6x6 pool) and at 128 px (3x3); missing packages,
a stale .onnx and a failed conversion are one-line errors that leave the export as it was."""
import hashlib
import importlib
import os
import sys

import numpy as np
import paddle
import pytest

pytestmark = pytest.mark.slow

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
LITE = os.path.join(ROOT, "configs", "hashnet_lite.yaml")


def _weights(cfg, folder, seed):
    from models import build_model
    from utils.config import save_config

    bit = cfg["model"]["bit"]
    prefix = os.path.join(folder, f"model_best_{bit}")
    paddle.seed(seed)
    paddle.save(build_model(cfg).state_dict(), prefix + ".pdparams")
    save_config(cfg, os.path.join(folder, f"config_{bit}.yaml"))
    return prefix


def _cfg(crop):
    from utils.config import build_config

    return build_config(LITE, {"bit": 32}, ["model.fc_dim=64", f"dataset.crop_size={crop}",
                                              f"dataset.resize_size={crop + 8}"])


def _export(prefix, out, *extra):
    import export_model

    export_model.main(["--bit", "32", "--pretrained", prefix, "--save-inference-dir", out, *extra])


def _snapshot(folder):
    return {n: hashlib.sha256(open(os.path.join(folder, n), "rb").read()).hexdigest() for n in os.listdir(folder)}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("onnx64"))
    cfg = _cfg(64)
    prefix = _weights(cfg, folder, seed=5)
    out = os.path.join(folder, "inference")
    _export(prefix, out, "--format", "onnx")
    return cfg, prefix, out


def test_the_export_prints_no_onnxruntime_warnings(exported, tmp_path, capfd):
    """onnxruntime warns about each initializer it prunes when the export loads the model to check it
    (three lines per export on the lite model): not a user's concern (issue 27)."""
    _, prefix, _ = exported
    _export(prefix, str(tmp_path / "inference"), "--format", "onnx")
    err = capfd.readouterr().err
    assert "onnxruntime" not in err and "Removing initializer" not in err, err


@pytest.mark.parametrize("crop", [64, 128])
def test_onnxruntime_gives_paddle_inference_and_dygraph_codes(crop, exported, tmp_path):
    from utils.inference.encoders import DygraphEncoder, InferenceEncoder
    from utils.inference.onnx import OnnxEncoder

    if crop == 64:
        cfg, prefix, out = exported
    else:
        cfg = _cfg(crop)
        prefix = _weights(cfg, str(tmp_path), seed=6)
        out = str(tmp_path / "inference")
        _export(prefix, out, "--onnx")
    assert os.path.isfile(os.path.join(out, "inference_32.onnx")) and os.path.isfile(os.path.join(out, "inference_32.json"))
    images = np.random.default_rng(crop).standard_normal((5, 3, crop, crop)).astype(np.float32)
    dygraph = DygraphEncoder(cfg, prefix)
    logits = dygraph.features(images)  # the network's pre-sign output z
    assert np.abs(logits).min() > 1e-4 * np.abs(logits).max()  # no bit so close to 0 that rounding could flip it
    onnx = OnnxEncoder(out, 32, cpu_threads=1)
    codes = onnx.encode_batch(images)
    assert codes.dtype == np.int8 and codes.shape == (5, 32)
    np.testing.assert_array_equal(codes, np.where(logits >= 0, 1, -1))
    np.testing.assert_array_equal(codes, InferenceEncoder(out, 32).encode_batch(images))
    np.testing.assert_array_equal(codes, dygraph.encode_batch(images))
    assert onnx.fingerprint == dygraph.fingerprint and onnx.preprocess == dygraph.preprocess
    np.testing.assert_array_equal(OnnxEncoder(out, 32, cpu_threads=2).encode_batch(images[:1]), codes[:1])


def test_cli_prints_the_lines_of_paddle_inference(exported, tmp_path, capsys):
    import cv2

    _, _, out = exported
    rng = np.random.default_rng(1)
    for i in range(3):
        cv2.imwrite(str(tmp_path / f"{i}.png"), rng.integers(0, 255, (70, 90, 3), dtype=np.uint8))
    paddle_infer = importlib.import_module("deploy.inference_python.infer")
    onnx_infer = importlib.import_module("deploy.onnxruntime_python.infer")
    paddle_infer.main(["--bit", "32", "--model-dir", out, "--img-path", str(tmp_path), "--batch-size", "2"])
    expected = capsys.readouterr().out
    onnx_infer.main(["--bit", "32", "--model-dir", out, "--img-path", str(tmp_path), "--batch-size", "2",
                     "--benchmark", "True", "--warmup", "1"])
    found = capsys.readouterr().out
    assert expected.count("\tcode: ") == 3 and found.startswith(expected)
    assert "images: 3  batch_size: 2  device: cpu  cpu_threads: 2  onnxruntime: " in found
    assert "inference_time(ms/img)" in found and "peak_memory(MB)" in found


def _one_line_error(capsys, main, argv, fragment):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and fragment in err[0], err


def test_missing_packages_name_the_requirements_file(exported, tmp_path, monkeypatch, capsys):
    import export_model

    cfg, prefix, out = exported
    target = str(tmp_path / "new")
    monkeypatch.setitem(sys.modules, "paddle2onnx", None)  # import paddle2onnx -> ImportError
    _one_line_error(capsys, export_model.main, ["--bit", "32", "--pretrained", prefix, "--save-inference-dir", target,
                                                "--format", "onnx"],
                    "the ONNX export needs paddle2onnx, which is not installed: pip install -r requirements-onnx.txt")
    assert os.listdir(target) == []  # nothing exported
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    onnx_infer = importlib.import_module("deploy.onnxruntime_python.infer")
    image = tmp_path / "x.png"
    import cv2

    cv2.imwrite(str(image), np.zeros((64, 64, 3), np.uint8))
    _one_line_error(capsys, onnx_infer.main, ["--bit", "32", "--model-dir", out, "--img-path", str(image)],
                    "needs onnxruntime, which is not installed: pip install -r requirements-onnx.txt")


def test_stale_or_missing_onnx_and_bad_flags_are_one_line_errors(exported, tmp_path, capsys):
    import shutil

    cfg, prefix, out = exported
    onnx_infer = importlib.import_module("deploy.onnxruntime_python.infer")
    image = str(tmp_path / "x.png")
    import cv2

    cv2.imwrite(image, np.zeros((64, 64, 3), np.uint8))
    stale = str(tmp_path / "stale")
    shutil.copytree(out, stale)
    other = _weights(cfg, str(tmp_path), seed=9)
    _export(other, stale)  # Paddle files only: the .onnx beside them is the old model's
    assert os.path.isfile(os.path.join(stale, "inference_32.onnx"))
    _one_line_error(capsys, onnx_infer.main, ["--bit", "32", "--model-dir", stale, "--img-path", image],
                    "is not the ONNX model")
    os.unlink(os.path.join(stale, "inference_32.onnx"))
    _one_line_error(capsys, onnx_infer.main, ["--bit", "32", "--model-dir", stale, "--img-path", image],
                    "inference_32.onnx (export it with export_model.py --bit 32 --format onnx)")
    _one_line_error(capsys, onnx_infer.main, ["--bit", "64", "--model-dir", out, "--img-path", image],
                    "holds a 32-bit model but --bit is 64")
    _one_line_error(capsys, onnx_infer.main, ["--bit", "32", "--model-dir", str(tmp_path / "no"), "--img-path", image],
                    "--model-dir: folder not found")
    _one_line_error(capsys, onnx_infer.main, ["--bit", "32", "--model-dir", out, "--img-path", image,
                                              "--batch-size", "0"], "--batch-size must be")
    _one_line_error(capsys, onnx_infer.main, ["--bit", "32", "--model-dir", out, "--img-path", str(tmp_path / "n.png")],
                    "--img-path: not found")


def test_a_failed_conversion_leaves_the_previous_export(exported, tmp_path, monkeypatch, capsys):
    import shutil

    import export_model
    from utils.errors import WeightsError
    from utils.inference import onnx

    cfg, prefix, out = exported
    folder = str(tmp_path / "inference")
    shutil.copytree(out, folder)
    before = _snapshot(folder)

    def broken(model_file, params_file, onnx_file, target=None):
        raise WeightsError(f"paddle2onnx could not convert {model_file}: unsupported op")

    monkeypatch.setattr(onnx, "convert_to_onnx", broken)
    other = _weights(cfg, str(tmp_path), seed=9)
    _one_line_error(capsys, export_model.main, ["--bit", "32", "--pretrained", other, "--save-inference-dir", folder,
                                                "--format", "onnx"], "paddle2onnx could not convert")
    assert _snapshot(folder) == before


def test_paddle2onnx_failure_is_a_weights_error(tmp_path):
    """paddle2onnx logs its error and calls sys.exit on a file it cannot parse: one WeightsError instead."""
    from utils.errors import WeightsError
    from utils.inference.onnx import convert_to_onnx

    (tmp_path / "m.json").write_text("{}")
    (tmp_path / "m.pdiparams").write_bytes(b"x")
    with pytest.raises(WeightsError, match="paddle2onnx could not convert .*m.json"):
        convert_to_onnx(str(tmp_path / "m.json"), str(tmp_path / "m.pdiparams"), str(tmp_path / "m.onnx"))
    assert not os.path.exists(tmp_path / "m.onnx")


def test_a_graph_onnxruntime_refuses_is_not_exported(exported, tmp_path, monkeypatch, capsys):
    """AlexNet as it was (the adaptive pool also in inference): paddle2onnx writes a stride-0 AveragePool
    that onnx's checker lets through and onnxruntime refuses; the export says so and writes nothing."""
    import export_model
    from models.alexnet import AlexNetBackbone

    cfg, prefix, out = exported
    def adaptive_pool(self, x):
        return self._avgpool(x)

    monkeypatch.setattr(AlexNetBackbone, "_pool6", adaptive_pool)
    target = str(tmp_path / "inference")
    _one_line_error(capsys, export_model.main, ["--bit", "32", "--pretrained", prefix, "--save-inference-dir", target,
                                                "--format", "onnx"],
                    f"onnxruntime refuses the ONNX model paddle2onnx converted ({target}/inference_32.onnx): ")
    assert os.listdir(target) == []
