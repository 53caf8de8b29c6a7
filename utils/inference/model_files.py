"""The files of an exported model (export_model.py / utils.inference.export): inference_<K>.json and
.pdiparams, and infer_cfg.yml (preprocessing, bit count, the weights' digest); and which model the
commands use when none is named (the main job's ./output)."""
import os

import yaml

from utils.errors import ConfigError, WeightsError
from utils.storage.fileio import file_sha256


def exported_fingerprint(info, model_file, params_file):
    """The weights digest export_model.py recorded, when the model files are still the ones it wrote;
    else a digest of the files themselves (never equal to a weights digest: the cache is rebuilt)."""
    files = file_sha256(model_file, params_file)
    if info.get("weights_digest") and info.get("model_files_sha256") == files:
        return info["weights_digest"]
    return "files:" + files


def preprocess_settings(dataset_cfg):
    return {k: dataset_cfg[k] for k in ("resize_size", "crop_size", "mean", "std")}


def load_infer_cfg(model_dir, bit):
    if not os.path.isdir(model_dir):
        raise ConfigError(f"--model-dir: folder not found: {model_dir}")
    path = os.path.join(model_dir, "infer_cfg.yml")
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


def default_model(folder, bit):
    """The main job's model in folder (./output) when no model was named: ("pretrained", PREFIX, what)
    for trained weights folder/model_best_<K>, else ("model_dir", DIR, what) for an export in
    folder/inference; a WeightsError naming both and the commands that make them when neither is there."""
    from utils.storage.weights import resolve_weights

    prefix = os.path.join(folder, f"model_best_{bit}")
    exported = os.path.join(folder, "inference")
    weights = resolve_weights(prefix)
    if os.path.isfile(weights):
        return "pretrained", prefix, f"model: {weights} (trained weights; no --pretrained or --model-dir given)"
    if os.path.isfile(os.path.join(exported, f"inference_{bit}.json")):
        return "model_dir", exported, (f"model: {exported}/inference_{bit}.json (exported; no {prefix} weights, "
                                       "no --pretrained or --model-dir given)")
    raise WeightsError(f"no {bit}-bit model: neither trained weights {prefix}.pdparams nor an exported model "
                    f"{exported}/inference_{bit}.json; make them with: python main_single_gpu.py --bit {bit} "
                    f"--output-dir {folder}, then python export_model.py --bit {bit} --pretrained {prefix} "
                    f"--save-inference-dir {exported} (or give --pretrained PREFIX / --model-dir DIR)")


def default_model_dir(folder, bit):
    """folder/inference when it holds an exported bit-bit model, else a WeightsError with the commands."""
    exported = os.path.join(folder, "inference")
    if os.path.isfile(os.path.join(exported, f"inference_{bit}.json")):
        return exported
    prefix = os.path.join(folder, f"model_best_{bit}")
    export = f"python export_model.py --bit {bit} --pretrained {prefix} --save-inference-dir {exported}"
    from utils.storage.weights import resolve_weights

    if os.path.isfile(resolve_weights(prefix)):
        raise WeightsError(f"no exported model {exported}/inference_{bit}.json: export the trained weights with: "
                        f"{export} (or give --model-dir DIR)")
    raise WeightsError(f"no exported model {exported}/inference_{bit}.json and no trained weights {prefix}.pdparams: "
                    f"python main_single_gpu.py --bit {bit} --output-dir {folder}, then {export} "
                    "(or give --model-dir DIR)")


def model_precision(info):
    """What an export folder holds: 'int8' for a quantised model (quantize.py), else 'fp32'."""
    return str(info.get("precision", "fp32"))


def model_files(model_dir, bit, precision="fp32"):
    """(graph, params) of an export: inference_<K>.json (PIR) for fp32, inference_<K>.pdmodel (the
    classic program, which Paddle Inference's oneDNN int8 passes need) for an int8 model."""
    prefix = os.path.join(model_dir, f"inference_{bit}")
    files = (prefix + (".pdmodel" if precision == "int8" else ".json"), prefix + ".pdiparams")
    for path in files:
        if not os.path.isfile(path):
            raise WeightsError(f"model file not found: {path} (export it with export_model.py --bit {bit})")
    return files
