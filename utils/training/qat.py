"""Quantisation-aware fine-tuning (quantize.py --method qat): trained weights, wrapped with
paddle.quantization.QAT fake quantisers (models.quant), trained a few more epochs with the
method's loss, so the network learns weights that lose little when its convolutions and fully
connected layers run in int8. utils.inference.quantize (qat_weights, ptq_int8) makes the int8 model.
"""
import numpy as np
import paddle
from tqdm import tqdm

from utils.errors import ConfigError, TrainingError
from utils.runtime.distributed import Comm
from utils.training.builders import build_data, build_network, build_training, seed_everything
from utils.training.engine import train_step


def qat_finetune(cfg, epochs, logger):
    """(qat, network, epoch losses): cfg['pretrained'] weights fine-tuned `epochs` epochs with fake
    quantisation at cfg['train']['lr']; the HashNet continuation goes on from the epoch the
    weights were trained to (cfg['train']['epochs'])."""
    from paddle.quantization import QAT

    from models.quant import qat_config

    if not cfg["pretrained"]:
        raise ConfigError("--pretrained: quantisation-aware training starts from trained weights")
    if epochs < 1:
        raise ConfigError(f"--epoch: must be at least 1, got {epochs}")
    # the project's oneDNN convolution (utils.runtime.onednn_conv) swaps the layers' class, and QAT
    # wraps only layers of exactly nn.Conv2D / nn.Linear: keep paddle's convolution here
    cfg = {**cfg, "train": {**cfg["train"], "onednn_conv": False}}
    seed_everything(cfg["train"]["seed"])
    data = build_data(cfg)
    model = build_network(cfg, data.num_classes, logger)
    qat = QAT(qat_config())
    model.train()
    qat.quantize(model, inplace=True)
    parts = build_training(cfg, data, model, Comm(0, 1))
    first = cfg["train"]["epochs"]  # the weights' own epochs: beta continues from there
    losses = []
    for epoch in range(first, first + epochs):
        paddle.seed(cfg["train"]["seed"] * 100003 + epoch)
        data.train_loader.batch_sampler.set_epoch(epoch)
        parts.criterion.on_epoch_start(epoch)
        model.train()
        steps, values = len(data.train_loader), []
        for step, (images, labels, indices) in enumerate(tqdm(data.train_loader, desc=f"qat epoch {epoch - first + 1}/"
                                                              f"{epochs}", leave=False, disable=None)):
            parts.criterion.on_step(epoch * steps + step)
            value = float(train_step(model, parts.criterion, parts.optimizer, images, labels, indices))
            if not np.isfinite(value):
                raise TrainingError(f"QAT loss became {value} at step {step + 1}; lower --lr")
            values.append(value)
        losses.append(float(np.mean(values)))
        logger.info(f"qat epoch {epoch - first + 1}/{epochs} loss {losses[-1]:.4f} lr {parts.optimizer.get_lr():.2e}")
    model.eval()
    return qat, model, losses
