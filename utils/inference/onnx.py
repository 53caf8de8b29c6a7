"""ONNX: an exported model's Paddle graph converted by paddle2onnx (inference_<K>.onnx, written by
export_model.py --format onnx) and run by onnxruntime (OnnxEncoder, behind the Encoder protocol of
utils.inference.encoders). Optional: paddle2onnx, onnx, onnxoptimizer and onnxruntime come from
requirements-onnx.txt; without them the ONNX commands stop with one line naming that file."""
import os

import numpy as np

from utils.errors import DependencyError, WeightsError
from utils.inference.encoders import EncoderBase
from utils.inference.model_files import load_infer_cfg, preprocess_settings
from utils.storage.fileio import file_sha256
from utils.storage.run_folder import ExportFolder

REQUIREMENTS = "requirements-onnx.txt"
OPSET = 13  # opset 13: every op of the HashNet graphs; onnxruntime 1.31 runs 7-22


def require(*modules, what="the ONNX export"):
    """Import the optional ONNX packages, or a DependencyError naming the requirements file."""
    import importlib

    found = []
    for name in modules:
        try:
            found.append(importlib.import_module(name))
        except ImportError:
            raise DependencyError(f"{what} needs {name.replace('_', '-')}, which is not installed: "
                                  f"pip install -r {REQUIREMENTS}") from None
    return found


def convert_to_onnx(model_file, params_file, onnx_file, target=None):
    """Convert a Paddle inference graph (.json + .pdiparams) to onnx_file, checked by onnx's checker.
    No post-pass (optimize_tool "none"): paddle2onnx 2.1.0's default, polygraphy, installs packages
    from the network and crashed here with SIGFPE; its "onnxoptimizer" pass list names an unknown
    pass ('eliminate_nop_cast ') and always falls back to the unoptimised graph with a warning.
    onnxruntime optimises the graph itself when it loads it. `target`: the name errors give the model
    (the export's final path, where onnx_file is a temp file beside it)."""
    target = target or onnx_file
    paddle2onnx, onnx = require("paddle2onnx", "onnx")
    from paddle2onnx.utils import logging as p2o_logging

    level, p2o_logging.log_level = p2o_logging.log_level, 1  # its warnings and errors, not its progress
    try:
        paddle2onnx.export(model_file, params_file, save_file=onnx_file, opset_version=OPSET,
                           enable_onnx_checker=True, optimize_tool="none")
    except (SystemExit, UnboundLocalError):  # paddle2onnx logs its own failure, then exits (or trips over
        # the model it has not got)
        raise WeightsError(f"paddle2onnx could not convert {model_file} to {target} (its error is printed above)") from None
    except Exception as exc:
        raise WeightsError(f"paddle2onnx could not convert {model_file} to {target}: {exc}") from None
    finally:
        p2o_logging.log_level = level
    if not os.path.isfile(onnx_file):
        raise WeightsError(f"paddle2onnx wrote no ONNX model {target}")
    from utils.storage.library_writes import check_library_files

    check_library_files([(onnx_file, target)])  # a file its C++ writer cut short on a full disk: WriteError
    try:
        onnx.checker.check_model(onnx_file, full_check=True)
    except Exception as exc:
        raise WeightsError(f"paddle2onnx wrote an invalid ONNX model {target}: {exc}") from None
    try:  # the checker passes graphs onnxruntime refuses (a stride-0 AveragePool): load it once
        import onnxruntime
    except ImportError:
        return
    try:
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3  # errors only: its "Removing initializer" warnings are about its own pruning
        onnxruntime.InferenceSession(onnx_file, options, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise WeightsError(f"onnxruntime refuses the ONNX model paddle2onnx converted ({target}): "
                           f"{str(exc).splitlines()[0]}") from None


class OnnxEncoder(EncoderBase):
    """onnxruntime (CPU) over `inference_<K>.onnx`; the same preprocessing and fingerprint as the
    Paddle model it was converted from (the export's description records the ONNX file's sha256)."""

    def __init__(self, model_dir, bit=None, cpu_threads=None):
        (ort,) = require("onnxruntime", what="onnxruntime inference")
        self.info = load_infer_cfg(model_dir, bit)
        self.bit = int(self.info["bit"])
        self.preprocess = preprocess_settings(self.info)
        path = ExportFolder(model_dir).onnx(self.bit)
        if not os.path.isfile(path):
            raise WeightsError(f"model file not found: {path} (export it with export_model.py --bit {self.bit} "
                               "--format onnx)")
        options = ort.SessionOptions()
        if cpu_threads:
            options.intra_op_num_threads = int(cpu_threads)
            options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise WeightsError(f"onnxruntime cannot load {path}: {exc}") from None
        self.input_name = self.session.get_inputs()[0].name
        sha = file_sha256(path)
        if self.info.get("onnx_sha256") != sha:  # an older conversion beside a newer Paddle export
            raise WeightsError(f"{path} is not the ONNX model {ExportFolder(model_dir).infer_cfg} describes (exported again "
                               "without --format onnx, or changed since): export it with export_model.py "
                               f"--bit {self.bit} --format onnx")
        self.fingerprint = self.info.get("weights_digest") or "files:" + sha

    def features(self, images):
        (out,) = self.session.run(None, {self.input_name: np.ascontiguousarray(images, dtype=np.float32)})
        return out
