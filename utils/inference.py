"""Turning images into codes outside training: from trained weights (dygraph) or from an
exported model (Paddle Inference). Both expose the same `encode_batch` and the same
preprocessing, so predict.py, infer.py and the benchmarks give identical codes either way.

Both also expose the same `fingerprint` for the same weights: `weights_digest` of the tensors,
which export_model.py records in infer_cfg.yml, so a code cache built from one is valid for
the other.
"""
import os

import numpy as np
import yaml

from utils.errors import UserError
from utils.storage.fileio import file_sha256
from utils.storage.weights import weights_digest


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
        raise UserError(f"--model-dir: folder not found: {model_dir}")
    path = os.path.join(model_dir, "infer_cfg.yml")
    if not os.path.isfile(path):
        raise UserError(f"{path} not found: is {model_dir} a folder written by export_model.py?")
    with open(path, encoding="utf-8") as f:
        info = yaml.safe_load(f) or {}
    missing = [k for k in ("bit", "resize_size", "crop_size", "mean", "std") if k not in info]
    if missing:
        raise UserError(f"{path}: missing keys {missing}")
    if bit is not None and int(info["bit"]) != int(bit):
        raise UserError(f"{model_dir} holds a {info['bit']}-bit model but --bit is {bit}")
    return info


def default_model(folder, bit):
    """The main job's model in folder (./output) when no model was named: ("pretrained", PREFIX, what)
    for trained weights folder/model_best_<K>, else ("model_dir", DIR, what) for an export in
    folder/inference; a UserError naming both and the commands that make them when neither is there."""
    from utils.storage.weights import resolve_weights

    prefix = os.path.join(folder, f"model_best_{bit}")
    exported = os.path.join(folder, "inference")
    weights = resolve_weights(prefix)
    if os.path.isfile(weights):
        return "pretrained", prefix, f"model: {weights} (trained weights; no --pretrained or --model-dir given)"
    if os.path.isfile(os.path.join(exported, f"inference_{bit}.json")):
        return "model_dir", exported, (f"model: {exported}/inference_{bit}.json (exported; no {prefix} weights, "
                                       "no --pretrained or --model-dir given)")
    raise UserError(f"no {bit}-bit model: neither trained weights {prefix}.pdparams nor an exported model "
                    f"{exported}/inference_{bit}.json; make them with: python main_single_gpu.py --bit {bit} "
                    f"--output-dir {folder}, then python export_model.py --bit {bit} --pretrained {prefix} "
                    f"--save-inference-dir {exported} (or give --pretrained PREFIX / --model-dir DIR)")


def default_model_dir(folder, bit):
    """folder/inference when it holds an exported bit-bit model, else a UserError with the commands."""
    exported = os.path.join(folder, "inference")
    if os.path.isfile(os.path.join(exported, f"inference_{bit}.json")):
        return exported
    prefix = os.path.join(folder, f"model_best_{bit}")
    export = f"python export_model.py --bit {bit} --pretrained {prefix} --save-inference-dir {exported}"
    from utils.storage.weights import resolve_weights

    if os.path.isfile(resolve_weights(prefix)):
        raise UserError(f"no exported model {exported}/inference_{bit}.json: export the trained weights with: "
                        f"{export} (or give --model-dir DIR)")
    raise UserError(f"no exported model {exported}/inference_{bit}.json and no trained weights {prefix}.pdparams: "
                    f"python main_single_gpu.py --bit {bit} --output-dir {folder}, then {export} "
                    "(or give --model-dir DIR)")


def model_files(model_dir, bit):
    prefix = os.path.join(model_dir, f"inference_{bit}")
    files = (prefix + ".json", prefix + ".pdiparams")
    for path in files:
        if not os.path.isfile(path):
            raise UserError(f"model file not found: {path} (export it with export_model.py --bit {bit})")
    return files


class InferenceEncoder:
    """Paddle Inference predictor over `inference_<K>.json/.pdiparams` (oneDNN on CPU by default)."""

    def __init__(self, model_dir, bit=None, use_gpu=False, use_mkldnn=True, cpu_threads=None, gpu_id=0):
        from paddle import inference

        self.info = load_infer_cfg(model_dir, bit)
        self.bit = int(self.info["bit"])
        self.preprocess = preprocess_settings(self.info)
        model_file, params_file = model_files(model_dir, self.bit)
        config = inference.Config(model_file, params_file)
        if use_gpu:
            config.enable_use_gpu(256, gpu_id)
        else:
            config.disable_gpu()
            if use_mkldnn:
                config.enable_mkldnn()
            else:
                config.disable_mkldnn()
            if cpu_threads:
                config.set_cpu_math_library_num_threads(int(cpu_threads))
        # Note: enable_memory_optim() breaks predictor creation for .json (PIR) models in Paddle 3.3.
        config.switch_ir_optim(True)
        config.disable_glog_info()
        self.predictor = inference.create_predictor(config)
        self.input = self.predictor.get_input_handle(self.predictor.get_input_names()[0])
        self.output = self.predictor.get_output_handle(self.predictor.get_output_names()[0])
        self.fingerprint = exported_fingerprint(self.info, model_file, params_file)

    def encode_batch(self, images):
        self.input.reshape(list(images.shape))
        self.input.copy_from_cpu(np.ascontiguousarray(images, dtype=np.float32))
        self.predictor.run()
        return np.where(self.output.copy_to_cpu() >= 0, 1, -1).astype(np.int8)


class DygraphEncoder:
    """The trained network in dygraph mode, from `<prefix>.pdparams`."""

    def __init__(self, cfg, pretrained):
        import paddle

        from models import CodeHead, build_model
        from utils.storage.weights import load_weights

        self.bit = cfg["model"]["bit"]
        self.preprocess = preprocess_settings(cfg["dataset"])
        model = build_model(cfg)
        self.weights_file = load_weights(model, pretrained)
        self.model = CodeHead(model)
        self.model.eval()
        self.fingerprint = weights_digest(model.state_dict())
        self._paddle = paddle

    def encode_batch(self, images):
        with self._paddle.no_grad():
            codes = self.model(self._paddle.to_tensor(np.ascontiguousarray(images, dtype=np.float32)))
        return codes.numpy().astype(np.int8)


def encode_list(encoder, list_path, data_root, batch_size=32, num_workers=0, desc="encode"):
    """Codes of every image of a list file, in list order, with decoding in worker processes."""
    from tqdm import tqdm

    from utils.data.dataset import ImageListDataset
    from utils.data.loader import build_dataloader
    from utils.data.transforms import build_transform

    transform = build_transform(False, **encoder.preprocess)
    dataset = ImageListDataset(list_path, data_root, transform)
    loader = build_dataloader(dataset, batch_size, shuffle=False, drop_last=False, num_workers=num_workers)
    codes = [encoder.encode_batch(images.numpy()) for images, _, _ in tqdm(loader, desc=desc, disable=None)]
    return np.concatenate(codes), dataset
