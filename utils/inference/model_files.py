"""Reading an exported model (export_model.py / utils.inference.export): its graph files and its
description (preprocessing, bit count, the weights' digest, the files' sha256; the file names:
utils.storage.run_folder.ExportFolder).

Before Paddle reads a model, its description is read with the safe loader (utils.storage.parsing)
and range-checked, and the model files are checked against the sha256 it records
(`model_file_sha256` per file, `model_files_sha256` of both), so a damaged or swapped file is one
line naming it rather than a traceback from Paddle, or wrong codes.
"""
import hashlib
import os

import yaml

from utils.errors import ConfigError, WeightsError, quote
from utils.storage.parsing import load_yaml
from utils.storage.run_folder import INFER_CFG, ExportFolder

MAX_IMAGE_SIDE = 4096  # resize_size / crop_size above this are damage, not a setting (a 100000 px resize: 30 GB)


_digest_cache = {}  # (path, size, mtime) of the files -> their digests: a model's files are read once


def _digests(files):
    """({file name: sha256}, sha256 of the files' bytes in order), each file read once."""
    key = tuple((os.path.abspath(p), os.stat(p).st_size, os.stat(p).st_mtime_ns) for p in files)
    if key not in _digest_cache:
        combined, each = hashlib.sha256(), {}
        for path in files:
            own = hashlib.sha256()
            with open(path, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    own.update(block)
                    combined.update(block)
            each[os.path.basename(path)] = own.hexdigest()
        _digest_cache.clear()
        _digest_cache[key] = (each, combined.hexdigest())
    return _digest_cache[key]


def model_file_digests(files):
    """{file name: sha256} of an export's model files, as the export's description records them."""
    return dict(_digests(files)[0])


def verify_model_files(info, files, cfg_path):
    """The combined sha256 of the model files, after checking them against what cfg_path records;
    WeightsError naming the file that differs (both, for exports that recorded only the combined sum)."""
    each, combined = _digests(files)
    recorded = info.get("model_file_sha256")
    if isinstance(recorded, dict):
        for path in files:
            want = recorded.get(os.path.basename(path))
            if want is not None and want != each[os.path.basename(path)]:
                raise WeightsError(f"{path}: differs from the file {cfg_path} describes (sha256 recorded at export); "
                                   "it was damaged or replaced: export the model again")
    if info.get("model_files_sha256") not in (None, combined):
        raise WeightsError(f"{' / '.join(files)}: differ from the files {cfg_path} describes (model_files_sha256); "
                           "damaged or replaced: export the model again")
    return combined


def exported_fingerprint(info, model_file, params_file, files_sha256=None):
    """The weights digest export_model.py recorded, when the model files are still the ones it wrote;
    else a digest of the files themselves (never equal to a weights digest: the cache is rebuilt)."""
    files = files_sha256 or _digests((model_file, params_file))[1]
    if info.get("weights_digest") and info.get("model_files_sha256") == files:
        return info["weights_digest"]
    return "files:" + files


# a report line of Paddle's IR passes (C++, printed whatever the log settings; colour codes around it)
PASS_REPORT = r"^(\x1b\[[0-9;]*m)?---\s"


def create_predictor(config, files):
    """paddle.inference.create_predictor, with Paddle's error for a model it cannot read (damaged
    files with no sha256 recorded to catch it first) as one WeightsError line naming the files."""
    from paddle import inference

    from utils.runtime.log import native_stderr_without

    try:
        if config.onednn_int8_enabled():  # its passes print ~30 `---    quantized 0 fusion_gru ops` lines
            with native_stderr_without(PASS_REPORT):
                return inference.create_predictor(config)
        return inference.create_predictor(config)
    except Exception as exc:  # RuntimeError / ValueError / OSError from Paddle's C++ readers
        first = next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
        raise WeightsError(f"{' / '.join(files)}: Paddle Inference cannot load the model ({first[:200]}); "
                           "the files are damaged or not an export of this project") from None


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
    info = read_infer_cfg(path)
    if bit is not None and int(info["bit"]) != int(bit):
        raise WeightsError(f"{model_dir} holds a {info['bit']}-bit model but --bit is {bit}")
    return info


def _number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def read_infer_cfg(path):
    """An export's description read safely (no tags, no aliases, bounded nesting) with its values
    checked; WeightsError naming the file and the key."""
    try:
        with open(path, "rb") as f:
            info = load_yaml(f.read().decode("utf-8"))
    except OSError as exc:
        raise WeightsError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        why = getattr(exc, "problem", None) or type(exc).__name__
        raise WeightsError(f"{path}: not a valid {INFER_CFG} ({why})") from None
    info = {} if info is None else info
    if not isinstance(info, dict):
        raise WeightsError(f"{path}: not a valid {INFER_CFG} (a mapping of keys expected)")
    missing = [k for k in ("bit", "resize_size", "crop_size", "mean", "std") if k not in info]
    if missing:
        raise WeightsError(f"{path}: missing keys {missing}")

    def check(ok, key, what):
        if not ok:
            raise WeightsError(f"{path}: {key}: must be {what}, got {quote(info[key])}")

    from utils.config import SUPPORTED_BITS

    check(info["bit"] in SUPPORTED_BITS and not isinstance(info["bit"], bool), "bit", f"one of {SUPPORTED_BITS}")
    for key in ("resize_size", "crop_size"):
        check(isinstance(info[key], int) and not isinstance(info[key], bool) and 1 <= info[key] <= MAX_IMAGE_SIDE,
              key, f"an integer in [1, {MAX_IMAGE_SIDE}]")
    check(info["crop_size"] <= info["resize_size"], "crop_size", f"at most resize_size ({info['resize_size']})")
    for key in ("mean", "std"):
        check(isinstance(info[key], list) and len(info[key]) == 3 and all(_number(v) and abs(v) < 1e6 for v in info[key]),
              key, "a list of 3 numbers")
    check(all(v > 0 for v in info["std"]), "std", "a list of 3 numbers > 0")
    return info


def model_precision(info):
    """What an export folder holds: 'int8' for a quantised model (quantize.py), else 'fp32'."""
    return str(info.get("precision", "fp32"))


def model_files(model_dir, bit, precision="fp32", info=None):
    """(graph, params) of an export: inference_<K>.json (PIR) for fp32, inference_<K>.pdmodel (the
    classic program, which Paddle Inference's oneDNN int8 passes need) for an int8 model. With
    info (its description), the files are checked against the sha256 recorded there first."""
    files = ExportFolder(model_dir).graph_files(bit, precision)
    for path in files:
        if not os.path.isfile(path):
            raise WeightsError(f"model file not found: {path} (export it with export_model.py --bit {bit})")
    if info is not None:
        verify_model_files(info, files, ExportFolder(model_dir).infer_cfg)
    return files
