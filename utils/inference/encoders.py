"""Turning images into codes outside training, behind one Encoder protocol: from trained weights
(DygraphEncoder) or from an exported model (InferenceEncoder, Paddle Inference). Both take the
same preprocessing, so predict.py, infer.py, the service and the benchmarks get identical codes
either way, and both give the same `fingerprint` for the same weights (`weights_digest` of the
tensors, which the export records in infer_cfg.yml), so a code cache built from one is valid for
the other.
"""
from typing import Protocol

import numpy as np

from utils.inference.model_files import (create_predictor, exported_fingerprint, load_infer_cfg, model_files,
                                         model_precision, preprocess_settings)
from utils.inference.precision import apply_precision, check_precision
from utils.storage.weights import weights_digest


class Encoder(Protocol):
    """What predict.py, the code cache and the service need from an encoder."""

    bit: int             # code length K
    preprocess: dict     # resize_size, crop_size, mean, std: the test transform (utils.data.transforms)
    fingerprint: str     # the weights digest: equal for trained weights and their export

    def encode_batch(self, images: np.ndarray) -> np.ndarray:
        """+-1 int8 codes [n, K] of preprocessed float32 images [n, 3, crop, crop]."""


class InferenceEncoder:
    """Paddle Inference predictor over `inference_<K>.json/.pdiparams` (oneDNN on CPU by default), in
    fp32 or bf16; or over a quantised `inference_<K>.pdmodel/.pdiparams` in int8 (utils.inference.precision)."""

    def __init__(self, model_dir, bit=None, use_gpu=False, use_mkldnn=True, cpu_threads=None, gpu_id=0,
                 precision="fp32"):
        from paddle import inference

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
