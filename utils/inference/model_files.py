"""Reading an exported model (export_model.py / utils.inference.export): its graph files and its
description (bit count, preprocessing, the weights' digest; the file names: utils.storage.run_folder)."""
import os

import yaml

from utils.errors import ConfigError, WeightsError
from utils.storage.fileio import file_sha256
from utils.storage.run_folder import ExportFolder


def exported_fingerprint(info, model_file, params_file):
    """The weights digest export_model.py recorded, when the model files are still the ones it wrote;
    else a digest of the files themselves (never equal to a weights digest: the cache is rebuilt)."""
    files = file_sha256(model_file, params_file)
    if info.get("weights_digest") and info.get("model_files_sha256") == files:
        return info["weights_digest"]
    return "files:" + files


def preprocess_settings(dataset_cfg):
    """The test-time preprocessing of a config's dataset section (or an export's description), plain
    values (lists, as YAML and JSON write them)."""
    return {k: list(dataset_cfg[k]) if isinstance(dataset_cfg[k], tuple) else dataset_cfg[k]
            for k in ("resize_size", "crop_size", "mean", "std")}


def load_infer_cfg(model_dir, bit):
    if not os.path.isdir(model_dir):
        raise ConfigError(f"--model-dir: folder not found: {model_dir}")
    path = ExportFolder(model_dir).infer_cfg
    if not os.path.isfile(path):
        raise WeightsError(f"{path} not found: is {model_dir} a folder written by export_model.py?")
    with open(path, encoding="utf-8") as f:
        info = yaml.safe_load(f) or {}
    missing = [k for k in ("bit", "resize_size", "crop_size", "mean", "std") if k not in info]
    if missing:
        raise WeightsError(f"{path}: missing keys {missing}")
    if bit is not None and int(info["bit"]) != int(bit):
        raise WeightsError(f"{model_dir} holds a {info['bit']}-bit model but --bit is {bit}")
    return info


def model_precision(info):
    """What an export folder holds: 'int8' for a quantised model (quantize.py), else 'fp32'."""
    return str(info.get("precision", "fp32"))


def model_files(model_dir, bit, precision="fp32"):
    """(graph, params) of an export: inference_<K>.json (PIR) for fp32, inference_<K>.pdmodel (the
    classic program, which Paddle Inference's oneDNN int8 passes need) for an int8 model."""
    files = ExportFolder(model_dir).graph_files(bit, precision)
    for path in files:
        if not os.path.isfile(path):
            raise WeightsError(f"model file not found: {path} (export it with export_model.py --bit {bit})")
    return files
