"""RunFolder / ExportFolder: the names of an output folder's files, and the default model."""
import os

import pytest

from utils.errors import WeightsError
from utils.storage.run_folder import (ExportFolder, RunFolder, previous_prefix, released_path, resolve_weights,
                                      state_path, strip_suffix, weights_path)


def test_the_names_a_run_and_its_readers_rely_on(tmp_path):
    """The interface contract (docs/architecture.md, README), spelled out by hand."""
    run = RunFolder(str(tmp_path))
    assert run.best(64) == os.path.join(str(tmp_path), "model_best_64")
    assert run.last(16) == os.path.join(str(tmp_path), "model_last_16")
    assert weights_path(run.best(64)).endswith("model_best_64.pdparams")
    assert state_path(run.best(64)).endswith("model_best_64.pdopt")
    assert released_path(run.best(64)).endswith("model_best_64.safetensors")
    assert previous_prefix(run.last(64)).endswith("model_last_64.prev")
    assert run.config(32) == os.path.join(str(tmp_path), "config_32.yaml")
    assert run.finished(32) == os.path.join(str(tmp_path), "finished_32.txt")
    assert RunFolder.log_name("train", 48) == "train_48.log" and run.curves(48).endswith("vdl_48")
    assert run.code_cache(64).endswith("database_code_64")
    assert run.picture("a/b/00000.jpg", 64).endswith("retrieval_00000_64.jpg")
    assert run.export.path == os.path.join(str(tmp_path), "inference")
    assert run.int8_export.path == os.path.join(str(tmp_path), "inference_int8")
    assert RunFolder().path == "./output"
    export = ExportFolder("e")
    assert export.graph_files(64) == (os.path.join("e", "inference_64.json"), os.path.join("e", "inference_64.pdiparams"))
    assert export.graph_files(64, "int8")[0] == os.path.join("e", "inference_64.pdmodel")
    assert export.onnx(8).endswith("inference_8.onnx") and export.infer_cfg == os.path.join("e", "infer_cfg.yml")
    assert export.released(64) == os.path.join("e", "model_64.safetensors")
    assert strip_suffix("x/model_best_64.pdparams") == strip_suffix("x/model_best_64.safetensors") == "x/model_best_64"


def test_weights_prefer_safetensors_then_pdparams(tmp_path):
    prefix = str(tmp_path / "w")
    assert resolve_weights(prefix) == prefix + ".pdparams"  # nothing there: the name the error will give
    (tmp_path / "w.safetensors").write_bytes(b"x")
    assert resolve_weights(prefix) == prefix + ".safetensors"
    assert resolve_weights(prefix + ".pdparams") == prefix + ".pdparams"  # a file named is that file


def test_default_model_trained_weights_first_then_the_export_then_one_line_with_the_commands(tmp_path):
    run = RunFolder(str(tmp_path))
    with pytest.raises(WeightsError) as missing:
        run.default_model(64)
    assert str(missing.value) == (
        f"no 64-bit model: neither trained weights {tmp_path}/model_best_64.pdparams nor an exported model "
        f"{tmp_path}/inference/inference_64.json; make them with: python main_single_gpu.py --bit 64 --output-dir "
        f"{tmp_path}, then python export_model.py --bit 64 --pretrained {tmp_path}/model_best_64 --save-inference-dir "
        f"{tmp_path}/inference (or give --pretrained PREFIX / --model-dir DIR)")
    with pytest.raises(WeightsError, match="no exported model .* and no trained weights"):
        run.default_export(64)
    os.makedirs(tmp_path / "inference")
    (tmp_path / "inference" / "inference_64.json").write_text("{}")
    assert run.default_model(64)[:2] == ("model_dir", str(tmp_path / "inference"))
    assert run.default_export(64) == str(tmp_path / "inference")
    (tmp_path / "model_best_64.pdparams").write_bytes(b"x")
    kind, prefix, said = run.default_model(64)
    assert (kind, prefix) == ("pretrained", str(tmp_path / "model_best_64"))
    assert said == f"model: {tmp_path}/model_best_64.pdparams (trained weights; no --pretrained or --model-dir given)"
    os.unlink(tmp_path / "inference" / "inference_64.json")
    with pytest.raises(WeightsError, match="export the trained weights with: python export_model.py"):
        run.default_export(64)
