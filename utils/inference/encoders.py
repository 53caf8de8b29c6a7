"""Turning images into codes outside training, behind one Encoder protocol: from trained weights
(DygraphEncoder) or from an exported model (InferenceEncoder, Paddle Inference). Both take the
same preprocessing and give their network's pre-sign features to the one encoding step
(utils.encoding.encode), so predict.py, infer.py, the service and the benchmarks get identical codes
either way, and both give the same `fingerprint` for the same weights (`weights_digest` of the
tensors, which the export records beside the graph), so a code cache built from one is valid for
the other.
"""
from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from utils.encoding import Encoded, encode
from utils.inference.model_files import (create_predictor, exported_fingerprint, load_infer_cfg, model_files,
                                         model_precision, preprocess_settings)
from utils.inference.precision import apply_precision, check_precision
from utils.storage.weights import weights_digest


class Encoder(Protocol):
    """What predict.py, the code cache and the service need from an encoder."""

    bit: int             # code length K
    preprocess: dict     # resize_size, crop_size, mean, std: the test transform (utils.data.transforms)
    fingerprint: str     # the weights digest: equal for trained weights and their export

    def features(self, images: np.ndarray) -> np.ndarray:
        """Pre-sign features [n, K] of preprocessed float32 images [n, 3, crop, crop]."""
        ...

    def encode(self, images: np.ndarray) -> Encoded:
        """Features and +-1 codes of preprocessed images (utils.encoding.encode)."""
        ...

    def encode_batch(self, images: np.ndarray) -> np.ndarray:
        """+-1 int8 codes [n, K] of preprocessed float32 images [n, 3, crop, crop]."""
        ...


class EncoderBase:
    """encode / encode_batch of every encoder, from its `features` through utils.encoding.encode."""

    bit: int

    def features(self, images: Any) -> np.ndarray:
        raise NotImplementedError

    def encode(self, images: Any) -> Encoded:
        return encode(self, images)

    def encode_batch(self, images: Any) -> np.ndarray:
        return self.encode(images).codes


class InferenceEncoder(EncoderBase):
    """Paddle Inference predictor over `inference_<K>.json/.pdiparams` (oneDNN on CPU by default), in
    fp32 or bf16; or over a quantised `inference_<K>.pdmodel/.pdiparams` in int8 (utils.inference.precision)."""

    def __init__(self, model_dir: str, bit: int | None = None, use_gpu: bool = False, use_mkldnn: bool = True,
                 cpu_threads: int | None = None, gpu_id: int = 0, precision: str = "fp32") -> None:
        from paddle import inference

        if use_gpu:
            from utils.runtime.device import require_gpu_build

            require_gpu_build("--use-gpu True")  # a CPU build would run on the CPU and report gpu
        self.info = load_infer_cfg(model_dir, bit)
        self.bit = int(self.info["bit"])
        self.preprocess = preprocess_settings(self.info)
        check_precision(precision, model_precision(self.info), use_gpu, use_mkldnn)
        self.precision = precision
        model_file, params_file = model_files(model_dir, self.bit, precision, self.info)  # sha256 checked
        config = inference.Config(model_file, params_file)
        if use_gpu:
            config.enable_use_gpu(256, gpu_id)
        else:
            config.disable_gpu()
            if use_mkldnn:
                config.enable_mkldnn()
                # Paddle 3.3's oneDNN conv + concat + activation fusion fails to build the predictor when
                # the convolutions were first fused with BatchNorm (GoogLeNet with model.batch_norm: the
                # Inception blocks' conv -> BN -> concat -> ReLU; "drr attr [fuse_activation] is not
                # found"); no other backbone has that pattern, so leaving it out changes nothing else.
                config.delete_pass("conv_concat_activation_onednn_fuse_pass")
            else:
                config.disable_mkldnn()
            if cpu_threads:
                config.set_cpu_math_library_num_threads(int(cpu_threads))
            apply_precision(config, precision)
        # Note: enable_memory_optim() breaks predictor creation for .json (PIR) models in Paddle 3.3.
        config.switch_ir_optim(True)
        config.disable_glog_info()
        self.predictor = create_predictor(config, (model_file, params_file))
        self.input = self.predictor.get_input_handle(self.predictor.get_input_names()[0])
        self.output = self.predictor.get_output_handle(self.predictor.get_output_names()[0])
        self.fingerprint = exported_fingerprint(self.info, model_file, params_file)

    def features(self, images: np.ndarray) -> np.ndarray:
        """The graph's output: pre-sign features (or, from an export of an earlier version, the codes)."""
        self.input.reshape(list(images.shape))
        self.input.copy_from_cpu(np.ascontiguousarray(images, dtype=np.float32))
        self.predictor.run()
        return self.output.copy_to_cpu()


class DygraphEncoder(EncoderBase):
    """The trained network in dygraph mode, from `<prefix>.pdparams` (or .safetensors)."""

    def __init__(self, cfg: Any, pretrained: str) -> None:
        import paddle

        from models import build_model
        from utils.storage.weights import load_weights

        self.bit = cfg["model"]["bit"]
        self.preprocess = preprocess_settings(cfg["dataset"])
        self.model = build_model(cfg)
        self.weights_file = load_weights(self.model, pretrained)
        self.model.eval()  # every head returns its pre-sign output z in eval mode
        self.fingerprint = weights_digest(self.model.state_dict())
        self._paddle = paddle

    def features(self, images: np.ndarray) -> np.ndarray:
        with self._paddle.no_grad():
            return self.model(self._paddle.to_tensor(np.ascontiguousarray(images, dtype=np.float32))).numpy()


def encode_dataset(encoder: Encoder, dataset: Any, batch_size: int = 32, num_workers: int = 0,
                   desc: str = "encode") -> Encoded:
    """Features and codes of every item of an image dataset (ImageListDataset), in its order, with
    decoding in worker processes."""
    return encode_items(encoder, dataset, batch_size, num_workers, desc)[0]


def encode_items(encoder: Encoder, dataset: Any, batch_size: int = 32, num_workers: int = 0,
                 desc: str = "encode") -> tuple[Encoded, np.ndarray]:
    """(features and codes, the dataset indices they belong to) of the items of an image dataset
    that gives (image, label, index) or None for an item it skips (a bad image), in dataset order."""
    from tqdm import tqdm

    from utils.data.loader import build_dataloader
    from utils.encoding import concatenate

    loader = build_dataloader(dataset, batch_size, shuffle=False, drop_last=False, num_workers=num_workers)
    parts, indices = [], []
    for images, _, index in tqdm(loader, desc=desc, disable=None):
        parts.append(encoder.encode(images.numpy()))
        indices.append(index.numpy().astype(np.int64))
    return concatenate(parts, encoder.bit), np.concatenate(indices) if indices else np.zeros(0, np.int64)


def list_dataset(encoder: Encoder, list_path: str, data_root: str) -> Any:
    """The images of a list file with the encoder's test-time preprocessing."""
    from utils.data.dataset import ImageListDataset
    from utils.data.transforms import build_transform

    return ImageListDataset(list_path, data_root, build_transform(False, **encoder.preprocess))


def encode_list(encoder: Encoder, list_path: str, data_root: str, batch_size: int = 32, num_workers: int = 0,
                desc: str = "encode") -> tuple[np.ndarray, Any]:
    """(codes, dataset) of every image of a list file, in list order."""
    dataset = list_dataset(encoder, list_path, data_root)
    return encode_dataset(encoder, dataset, batch_size, num_workers, desc).codes, dataset
