"""Damaged or foreign model files end in one line naming the file (issue 24, defects 5, 8, 9): an
export whose files no longer match the sha256 its infer_cfg.yml records, an infer_cfg.yml with a
Python tag or a 100000-pixel resize, weights of the wrong dtype, a string or NaN in a .pdparams,
an empty code cache (rebuilt)."""
import os
import shutil

import numpy as np
import paddle
import pytest

import export_model
import predict
import quantize
from deploy.inference_python import infer
from tests.reliability.common import one_line_exit
from utils.inference.code_cache import cache_paths, cached_or_built


pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def exported(tiny16, tmp_path_factory):
    from utils.config import config_for_weights
    from utils.inference.export import export_model as export

    out = str(tmp_path_factory.mktemp("export") / "inference")
    export(config_for_weights(tiny16, 16), tiny16, out)
    return out


@pytest.fixture
def query(tiny_lite):
    return os.path.join(tiny_lite, "images", "test", "00000.jpg")


def damaged(exported, folder, how):
    folder = str(folder)
    shutil.copytree(exported, folder)
    if how == "truncated .pdiparams":
        path = os.path.join(folder, "inference_16.pdiparams")
        os.truncate(path, os.path.getsize(path) // 2)
    elif how == "broken .json":
        path = os.path.join(folder, "inference_16.json")
        with open(path, "r+") as f:
            f.truncate(os.path.getsize(path) - 100)
    elif how == "python tag":
        with open(os.path.join(folder, "infer_cfg.yml"), "a") as f:
            f.write("hook: !!python/object/apply:os.system ['echo owned']\n")
    elif how == "huge resize":
        path = os.path.join(folder, "infer_cfg.yml")
        text = open(path).read().replace("resize_size: 64", "resize_size: 100000")
        assert "resize_size: 100000" in text
        open(path, "w").write(text)
    return folder


CASES = {"truncated .pdiparams": "inference_16.pdiparams: differs from the file",
         "broken .json": "inference_16.json: differs from the file",
         "python tag": "infer_cfg.yml: not a valid infer_cfg.yml",
         "huge resize": "infer_cfg.yml: resize_size: must be an integer in [1, 4096], got 100000"}


@pytest.mark.parametrize("how", list(CASES))
def test_defect5_a_damaged_export_is_one_line_in_infer_predict_and_the_service(capsys, exported, tmp_path, how,
                                                                               tiny_lite, query):
    folder = damaged(exported, tmp_path / "model", how)
    one_line_exit(capsys, infer.main, ["--bit", "16", "--model-dir", folder, "--img-path", query], CASES[how])
    if how in ("truncated .pdiparams", "python tag"):  # the same code path: one case each is enough
        one_line_exit(capsys, predict.main, ["--bit", "16", "--img", query, "--model-dir", folder, "--data-path",
                                             tiny_lite, "--save-path", str(tmp_path / "cache")], CASES[how])
        from deploy.serving import cli

        one_line_exit(capsys, cli.main, ["--model-dir", folder, "--data-path", tiny_lite, "--port", "0",
                                         "--cache-dir", str(tmp_path / "cache"), "--store-dir",
                                         str(tmp_path / "store"), "--num-workers", "0"], CASES[how])


def test_defect5_an_export_with_no_digests_still_fails_in_one_line(capsys, exported, tmp_path, query):
    """A hand-made infer_cfg.yml (no sha256 recorded): Paddle's own error, as one line naming the files."""
    folder = damaged(exported, tmp_path / "model", "truncated .pdiparams")
    path = os.path.join(folder, "infer_cfg.yml")
    lines = [line for line in open(path) if not line.startswith(("model_files_sha256", "model_file_sha256", "  "))]
    open(path, "w").writelines(lines)
    one_line_exit(capsys, infer.main, ["--bit", "16", "--model-dir", folder, "--img-path", query],
                  "inference_16.pdiparams", "Paddle Inference cannot load the model")


def weights_variant(tiny16, folder, how):
    """A copy of tiny16's weights, damaged `how`; returns its PREFIX (with the config beside it)."""
    from utils.storage.weights import load_safetensors, save_safetensors

    os.makedirs(folder)
    shutil.copy(os.path.join(os.path.dirname(tiny16), "config_16.yaml"), folder)
    state, meta = load_safetensors(tiny16 + ".safetensors")
    prefix = os.path.join(folder, "w")
    if how == "float16 safetensors":
        save_safetensors({k: v.astype(np.float16) for k, v in state.items()}, prefix + ".safetensors", meta)
    elif how == "a string in the .pdparams":
        paddle.save({**state, "hash_layer.weight": "not a tensor"}, prefix + ".pdparams")
    elif how == "NaN weights":
        state["hash_layer.weight"][0, 0] = np.nan
        paddle.save(state, prefix + ".pdparams")
    return prefix


WEIGHT_CASES = {"float16 safetensors": "is float16, the model expects float32",
                "a string in the .pdparams": "tensor hash_layer.weight is a str, not an array",
                "NaN weights": "tensor hash_layer.weight holds NaN or infinite values"}


@pytest.mark.parametrize("how", list(WEIGHT_CASES))
def test_defect8_weights_of_another_dtype_a_string_or_nan_are_refused(capsys, tiny16, tiny_lite, tmp_path, query,
                                                                      how):
    prefix = weights_variant(tiny16, str(tmp_path / "w"), how)
    one_line_exit(capsys, predict.main, ["--bit", "16", "--img", query, "--pretrained", prefix, "--data-path",
                                         tiny_lite, "--save-path", str(tmp_path / "cache")], WEIGHT_CASES[how])
    one_line_exit(capsys, export_model.main, ["--bit", "16", "--pretrained", prefix, "--save-inference-dir",
                                              str(tmp_path / "export")], WEIGHT_CASES[how])
    one_line_exit(capsys, quantize.main, ["--bit", "16", "--pretrained", prefix, "--save-inference-dir",
                                          str(tmp_path / "int8"), "--data-path", tiny_lite, "--dataset", "lite",
                                          "--evaluate", "False", "--calib-images", "2"], WEIGHT_CASES[how])
    assert not os.path.exists(tmp_path / "export" / "infer_cfg.yml")


def test_defect9_an_empty_code_cache_is_rebuilt(capsys, tiny16, tiny_lite, tmp_path, query):
    cache = tmp_path / "cache"
    argv = ["--bit", "16", "--img", query, "--pretrained", tiny16, "--data-path", tiny_lite, "--save-path", str(cache),
            "--num-workers", "0", "--topk", "3"]
    predict.main(argv)
    first = capsys.readouterr()
    codes_path, meta_path = cache_paths(str(cache), 16)
    open(codes_path, "wb").close()  # zero bytes, its fingerprint intact
    predict.main(argv)
    again = capsys.readouterr()
    assert "encoding the database (cache unreadable (EOFError))" in again.err, again.err
    assert again.out == first.out and np.load(codes_path).shape == (48, 16)
    # the service builds its database through the same cache: an empty .npy is rebuilt there too
    import json

    open(codes_path, "wb").close()
    expected = {k: v for k, v in json.load(open(meta_path)).items() if k not in ("count", "codes_sha256")}
    said = []
    codes = cached_or_built(str(cache), expected, lambda: np.ones((48, 16), np.int8), said.append)
    assert codes.shape == (48, 16) and "cache unreadable (EOFError)" in said[0]
