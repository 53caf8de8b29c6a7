"""Hashing losses, one file per method, picked by name from LOSSES.

Adding a method: write utils/losses/<method>.py with a HashLoss subclass (NAME, DEFAULTS,
MODEL, MULTI_LABEL, check_options, forward), add it to LOSSES below, and add its configs;
the config schema (the `loss` section's keys) and the engine pick it up from here.
"""
import numpy as np

from utils.errors import ConfigError
from utils.losses.base import HashLoss
from utils.losses.csq import CSQLoss
from utils.losses.dch import DCHLoss
from utils.losses.dpn import DPNLoss
from utils.losses.dpsh import DPSHLoss
from utils.losses.dsh import DSHLoss
from utils.losses.dshsd import DSHSDLoss
from utils.losses.greedyhash import GreedyHashLoss
from utils.losses.hashnet import HashNetLoss, caffe_beta, epoch_beta
from utils.losses.lcdsh import LCDSHLoss
from utils.losses.orthohash import OrthoHashLoss
from utils.losses.ppshitu import PPShiTuLoss
from utils.losses.ssdh import SSDHLoss

LOSSES = {
    "hashnet": HashNetLoss,
    "dsh": DSHLoss,
    "ssdh": SSDHLoss,
    "dpsh": DPSHLoss,
    "dch": DCHLoss,
    "dshsd": DSHSDLoss,
    "lcdsh": LCDSHLoss,
    "csq": CSQLoss,
    "greedyhash": GreedyHashLoss,
    "ppshitu": PPShiTuLoss,
    "orthohash": OrthoHashLoss,
    "dpn": DPNLoss,
}


def loss_class(name):
    if name not in LOSSES:
        raise ConfigError(f"loss.name: unknown loss {name!r}; choose from {sorted(LOSSES)}")
    return LOSSES[name]


def check_loss_config(cfg):
    """Config validation of the `loss` section: option values, and the head the method needs."""
    cls = loss_class(cfg["loss"]["name"])
    cls.check_options({k: v for k, v in cfg["loss"].items() if k != "name"})
    if cfg["model"]["name"] != cls.MODEL:
        raise ConfigError(f"loss.name {cls.NAME!r} needs model.name {cls.MODEL!r} (its head), got "
                        f"{cfg['model']['name']!r}")


def is_multi_label(labels):
    """True when some image carries more than one label."""
    return bool((np.asarray(labels).sum(axis=1) > 1).any())


def build_loss(cfg, num_train, num_classes, comm=None, train_labels=None):
    """The configured loss; given train_labels ([n, C] multi-hot), a method that cannot learn
    from these data refuses them (UserError naming the method and the data set)."""
    cls = loss_class(cfg["loss"]["name"])
    options = {k: v for k, v in cfg["loss"].items() if k != "name"}
    if train_labels is not None:
        cls.check_data(options, is_multi_label(train_labels), cfg["dataset"]["name"])
    return cls(num_train=num_train, bit=cfg["model"]["bit"], num_classes=num_classes, comm=comm, **options)


__all__ = ["LOSSES", "HashLoss", "HashNetLoss", "build_loss", "caffe_beta", "check_loss_config", "epoch_beta",
           "is_multi_label", "loss_class"] + [cls.__name__ for cls in LOSSES.values()]
