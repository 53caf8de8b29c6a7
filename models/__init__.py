"""Model registry: backbones and heads are picked by name from plain dicts."""
from models.alexnet import AlexNetBackbone
from models.googlenet import GoogLeNetBackbone
from models.mobilenet import MobileNetV3LargeBackbone, MobileNetV3SmallBackbone
from models.pplcnet import PPLCNetX25Backbone
from models.resnet import ResNet18Backbone, ResNet50Backbone
from models.vgg import VGG16Backbone
from models.hash_model import HashModel, codes_from_logits
from models.cibhash import CIBHashNet
from models.dshsd import DSHSDNet
from models.greedyhash import GreedyHashNet
from models.orthohash import OrthoHashNet
from models.ppshitu import PPShiTuNet
from models.spectral import SpectralHashNet
from models.ssdh import SSDHNet
from models.unsupervised import UnsupervisedHashNet

BACKBONES = {
    "alexnet": AlexNetBackbone,
    # paddle.vision networks (pretrained=False, its parameter names); each takes the model options
    # dropout / fc_dim / batch_norm and ignores those that do not apply to it
    "vgg16": VGG16Backbone,
    "resnet18": ResNet18Backbone,
    "resnet50": ResNet50Backbone,
    "mobilenetv3_large": MobileNetV3LargeBackbone,
    "mobilenetv3_small": MobileNetV3SmallBackbone,
    "googlenet": GoogLeNetBackbone,
    # written from the PP-LCNet paper with PaddleClas's parameter names (no paddle.vision network)
    "pplcnet_x2_5": PPLCNetX25Backbone,
}

MODELS = {
    "linear": HashModel,  # backbone + fc(K); the methods without a classifier train this head
    # heads with a classifier (train mode returns (z, class_logits)); utils/losses/<name>.py
    "ssdh": SSDHNet,
    "dshsd": DSHSDNet,
    "greedyhash": GreedyHashNet,
    "ppshitu": PPShiTuNet,  # tanh embedding + FC, PaddleClas's binary general-recognition model
    "orthohash": OrthoHashNet,  # fc(K) + BatchNorm (no classifier): OrthoHash's code balance
    # heads of the methods that learn without labels (utils/losses/{bihalf,greedyhash_unsup,cibhash}.py)
    "unsupervised": UnsupervisedHashNet,  # centred features -> fc(K); train mode: (z, centred features)
    "cibhash": CIBHashNet,  # centred features -> fc(1024) -> ReLU -> fc(K), CIBHash's encoder
    "spectral": SpectralHashNet,  # spectral hashing's fitted sinusoids, z = cos(fc(K)) (utils/training/shallow.py)
}


def build_model(cfg, num_classes=None):
    """Build the network described by cfg['model'] (a resolved config dict). num_classes: for
    heads with a classifier, when training (without it they only encode: export, predict)."""
    from utils.errors import ConfigError

    mcfg = cfg["model"]
    if mcfg["backbone"] not in BACKBONES:
        raise ConfigError(f"model.backbone: unknown backbone {mcfg['backbone']!r}; choose from {sorted(BACKBONES)}")
    if mcfg["name"] not in MODELS:
        raise ConfigError(f"model.name: unknown model {mcfg['name']!r}; choose from {sorted(MODELS)}")
    backbone = BACKBONES[mcfg["backbone"]](dropout=mcfg["dropout"], fc_dim=mcfg["fc_dim"],
                                         batch_norm=mcfg["batch_norm"])
    model = MODELS[mcfg["name"]](backbone, bit=mcfg["bit"], hash_lr_mult=mcfg["hash_lr_mult"],
                                hash_bias_lr_mult=mcfg["hash_bias_lr_mult"], num_classes=num_classes,
                                hash_init_std=mcfg["hash_init_std"], hash_bias_init=mcfg["hash_bias_init"],
                                classifier_init_std=mcfg["classifier_init_std"])
    if mcfg.get("freeze_backbone"):
        model.freeze_backbone()
    return model


__all__ = ["BACKBONES", "MODELS", "HashModel", "build_model", "codes_from_logits"]
