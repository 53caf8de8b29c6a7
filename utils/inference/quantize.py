"""int8 models for Paddle Inference's oneDNN int8 path: post-training quantisation (PTQ) of trained
weights calibrated on N training images; for quantisation-aware training (utils.training.qat
fine-tunes the weights under fake quantisation) the same conversion of the fine-tuned weights.

Why QAT does not export its own quantised graph: in Paddle 3.3.1, QAT.convert (after the zero-point
fix of models.quant) and a classic-program save run, and that graph run without oneDNN gives the
QAT network's codes exactly, but with oneDNN int8 (Config.enable_onednn_int8) 32 of 64 bits of the
lite model's codes change (per-tensor weight scales; PTQ's per-channel graphs run right). So
the fine-tuned weights go through PTQ (abs_max calibration, per-channel weights) instead.

Why the classic program format (inference_<K>.pdmodel): Paddle 3.3.1's PIR inference has no CPU
int8 passes (only the classic-IR quant_dequant_onednn / cpu_quantize passes exist), its
PostTrainingQuantization reads only classic programs, and a PIR export of quantised layers fails
for a dynamic batch size (quantize_linear creates a persistable buffer of the input's shape [-1, ...]).
So both chains save under paddle.pir_utils' old-IR guards. The folder is a normal export folder
(its description file says `precision: int8`), written as export_model.py writes its own: in full before
anything of a previous model there is replaced.
"""
import os
import shutil
import tempfile
import warnings

import numpy as np
import yaml

from utils.errors import ConfigError, DataError, WriteError
from utils.inference.model_files import model_file_digests, preprocess_settings
from utils.storage.fileio import Staged, file_sha256, remove_stale_temp_dirs, stage_bytes, staged_generation
from utils.storage.library_writes import check_library_files
from utils.storage.run_folder import ExportFolder
from utils.storage.weights import load_weights, weights_digest

# what an int8 graph outputs (its description's `output`): the code, not the pre-sign features (_code_output)
OUTPUT = "code, float32 +1/-1 per bit"
# PostTrainingQuantization's activation algorithms (weights: channel-wise abs max for all of them)
PTQ_ALGOS = ("KL", "hist", "abs_max", "avg", "mse")
QUANTIZED_OPS = ["conv2d", "matmul_v2"]  # AlexNet's convolutions and fully connected layers


def _input_spec(crop):
    import paddle

    return [paddle.static.InputSpec([None, 3, crop, crop], "float32", "x")]


def save_program(network, crop, prefix, target=None):
    """Save a dygraph network (eval mode) as a classic program PREFIX.pdmodel/.pdiparams, read back
    (Paddle's C++ save does not report a full disk); a WriteError names TARGET.pdmodel/.pdiparams
    (default PREFIX) when the files were cut short."""
    import paddle
    from paddle.pir_utils import DygraphOldIrGuard

    network.eval()
    with DygraphOldIrGuard():
        static = paddle.jit.to_static(network, input_spec=_input_spec(crop), full_graph=True)
        paddle.jit.save(static, prefix)
    check_library_files([(prefix + ext, (target or prefix) + ext) for ext in (".pdmodel", ".pdiparams")])


def _code_output(network):
    """The network followed by its code as a graph op (models.codes_from_logits), the int8 graph's
    output. Why not the pre-sign features, as the fp32 export: Paddle 3.3.1's oneDNN int8 passes
    quantise a graph that ends at the hash layer differently (measured on the TIPC PTQ chain's lite
    model: 7 of 100 codes changed by one bit), so int8 models keep the graph they always had. Their
    codes go through utils.encoding.sign_codes like any other output (the sign of +-1 is itself); an
    int8 model has no real-valued features to re-rank by."""
    import paddle

    from models import codes_from_logits

    class CodeOutput(paddle.nn.Layer):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, x):
            return codes_from_logits(self.model(x))

    return CodeOutput(network)


def calibration_images(cfg, num_images, seed=0):
    """num_images preprocessed images [n, 3, crop, crop] of the training list (test transform), drawn
    without replacement with `seed`: the activation ranges PTQ calibrates on."""
    from utils.config.files import dataset_lists
    from utils.data.dataset import ImageListDataset
    from utils.data.transforms import build_transform

    if num_images < 1:
        raise ConfigError(f"--calib-images: must be at least 1, got {num_images}")
    d = cfg["dataset"]
    train_list = dataset_lists(cfg)["train"]
    dataset = ImageListDataset(train_list, d["data_path"], build_transform(False, **preprocess_settings(d)))
    if num_images > len(dataset):
        raise DataError(f"--calib-images: {num_images} asked for, {train_list} has {len(dataset)} images")
    chosen = np.sort(np.random.default_rng(seed).choice(len(dataset), num_images, replace=False))
    return np.stack([dataset[int(i)][0] for i in chosen]).astype(np.float32), train_list


def write_int8_model(out_dir, bit, cfg, save, info):
    """Write an int8 model folder: save(work_dir, name) writes name.pdmodel/.pdiparams into work_dir;
    its description gets the preprocessing, `precision: int8` and `info`. Returns DIR/inference_<K>."""
    folder = ExportFolder(out_dir)
    name, prefix = folder.graph_name(bit), folder.graph_prefix(bit)
    try:
        os.makedirs(out_dir, exist_ok=True)
        work = tempfile.mkdtemp(prefix=f".quant-{os.getpid()}-", dir=out_dir)
    except OSError as exc:
        raise WriteError(prefix + ".pdmodel", exc) from None
    try:
        with staged_generation(out_dir) as staged:
            try:
                save(work, name)
            except OSError as exc:
                raise WriteError(f"{prefix}.pdmodel/.pdiparams", exc) from None
            graph = [os.path.join(work, name + ext) for ext in (".pdmodel", ".pdiparams")]
            check_library_files([(p, os.path.join(out_dir, os.path.basename(p))) for p in graph])
            staged += [Staged(p, os.path.join(out_dir, os.path.basename(p))) for p in graph]
            # no weights_digest: int8 codes differ from the fp32 weights', so a code cache of those
            # must not be taken for this model's (the fingerprint is the files' digest)
            meta = {"bit": bit, "backbone": cfg["model"]["backbone"], **preprocess_settings(cfg["dataset"]),
                    "precision": "int8", "output": OUTPUT, **info,
                    "model_files_sha256": file_sha256(*graph), "model_file_sha256": model_file_digests(graph)}
            text = yaml.safe_dump(meta, sort_keys=False).encode("utf-8")
            staged.append(stage_bytes(folder.infer_cfg, text))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    remove_stale_temp_dirs(out_dir, ".quant-")  # of runs killed before they finished
    return prefix


# the loggers of paddle's PTQ and of the program loader it calls (paddle.base.log_helper.get_logger: INFO)
PTQ_LOGGERS = ("paddle.static.quantization.post_training_quantization", "paddle.static.io")


def ptq_int8(cfg, pretrained, out_dir, num_images=64, algo="KL", batch_size=16, seed=0, info=None, images=None):
    """Post-training quantisation of trained weights (a PREFIX, or a network holding them): the fp32
    network as a classic program, its activation ranges calibrated (`algo`) on num_images training
    images (or on `images`, preprocessed [n, 3, crop, crop]: benchmarks), weights per channel;
    returns DIR/inference_<K> of the int8 model folder."""
    import paddle
    from paddle.pir_utils import OldIrGuard
    from paddle.static.quantization import PostTrainingQuantization

    from models import build_model
    from utils.runtime.log import quiet_loggers

    # PTQ logs each of its stages at INFO, and a deprecation warning about how it reads the program we
    # just wrote for it: neither is a user's concern (its other warnings still show)
    quiet_loggers(PTQ_LOGGERS, drop=("The old way to load inference model is deprecated",))
    if algo not in PTQ_ALGOS:
        raise ConfigError(f"--algo: {algo!r} is not one of {', '.join(PTQ_ALGOS)}")
    if batch_size < 1:
        raise ConfigError(f"--calib-batch-size: must be at least 1, got {batch_size}")
    bit, crop = cfg["model"]["bit"], cfg["dataset"]["crop_size"]
    if images is None:
        images, train_list = calibration_images(cfg, num_images, seed)
        train_list = os.path.abspath(train_list)
    else:
        train_list = "images given by the caller"
    if isinstance(pretrained, str):
        model = build_model(cfg)
        weights = {"fp32_weights": os.path.abspath(load_weights(model, pretrained))}
    else:
        model, weights = pretrained, {}
    digest = weights_digest(model.state_dict())
    batches = [images[i:i + batch_size] for i in range(0, len(images), batch_size)]

    def save(work, name):
        fp32 = os.path.join(work, "fp32")
        save_program(_code_output(model), crop, os.path.join(fp32, name), target=os.path.join(out_dir, name))
        with OldIrGuard(), paddle.static.scope_guard(paddle.static.Scope()):  # leaves the global scope alone
            paddle.enable_static()
            try:
                ptq = PostTrainingQuantization(
                    executor=paddle.static.Executor(paddle.CPUPlace()), model_dir=fp32,
                    model_filename=name + ".pdmodel", params_filename=name + ".pdiparams",
                    data_loader=lambda: ({"x": b} for b in batches), batch_nums=len(batches), algo=algo,
                    quantizable_op_type=QUANTIZED_OPS, weight_quantize_type="channel_wise_abs_max",
                    onnx_format=True)
                with warnings.catch_warnings():  # numpy, on the histogram of a bool tensor (KL, hist)
                    warnings.filterwarnings("ignore", "Converting input from bool", RuntimeWarning)
                    ptq.quantize()
                ptq.save_quantized_model(work, model_filename=name + ".pdmodel", params_filename=name + ".pdiparams")
            finally:
                paddle.disable_static()

    quantization = {"method": "ptq", "algo": algo, "calibration_images": int(len(images)),
                    "calibration_list": train_list, "seed": int(seed), **(info or {})}
    return write_int8_model(out_dir, bit, cfg, save, {"quantization": quantization, **weights,
                                                      "fp32_weights_digest": digest})


def qat_weights(cfg, network):
    """A plain network (models.build_model) holding the weights of a QAT-wrapped one: the wrapped
    layers keep the original parameters under their original names; the quantisers' state is dropped."""
    from models import build_model

    plain = build_model(cfg)
    trained = network.state_dict()
    plain.set_state_dict({k: trained[k] for k in plain.state_dict()})
    plain.eval()
    return plain
