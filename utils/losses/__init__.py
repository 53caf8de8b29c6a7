"""Hashing losses, one file per method, picked by name from LOSSES.

Adding a method: write utils/losses/<method>.py with a HashLoss subclass (NAME, DEFAULTS,
MODEL, MULTI_LABEL, SUPERVISED, check_options, forward), add it to LOSSES below, and add its configs;
the config schema (the `loss` section's keys) and the engine pick it up from here. The shallow
methods (fitted, not trained: utils/losses/shallow.py) are in SHALLOW_METHODS; `loss.name` picks from both.
"""
import numpy as np

from utils.errors import ConfigError
from utils.losses.base import HashLoss
from utils.losses.bihalf import BiHalfLoss
from utils.losses.cibhash import CIBHashLoss
from utils.losses.csq import CSQLoss
from utils.losses.dch import DCHLoss
from utils.losses.dpn import DPNLoss
from utils.losses.dpsh import DPSHLoss
from utils.losses.dsh import DSHLoss
from utils.losses.dshsd import DSHSDLoss
from utils.losses.greedyhash import GreedyHashLoss
from utils.losses.greedyhash_unsup import GreedyHashUnsupervisedLoss
from utils.losses.hashnet import HashNetLoss, caffe_beta, epoch_beta
from utils.losses.lcdsh import LCDSHLoss
from utils.losses.orthohash import OrthoHashLoss
from utils.losses.ppshitu import PPShiTuLoss
from utils.losses.shallow import ITQMethod, LSHMethod, PCAHMethod, SpectralHashingMethod
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
    # learn without labels (SUPERVISED = False): lists of paths alone, or train.use_labels: false
    "bihalf": BiHalfLoss,
    "greedyhash_unsup": GreedyHashUnsupervisedLoss,
    "cibhash": CIBHashLoss,
}

# fitted in closed form on a backbone's features, not trained (utils/training/shallow.py)
SHALLOW_METHODS = {
    "lsh": LSHMethod,
    "pcah": PCAHMethod,
    "itq": ITQMethod,
    "sh": SpectralHashingMethod,
}

# The method for data without labels when the user names none: the best unsupervised method on real images
# (docs/methods.md, section "No labels"); its config is configs/methods/<name>_scratch.yaml (from scratch)
# or <name>_coco.yaml (ImageNet weights). Read it from here (tools that write unlabelled lists do).
DEFAULT_UNSUPERVISED_METHOD = "cibhash"


def loss_class(name):
    """The method `name`: a HashLoss subclass (LOSSES) or a ShallowMethod (SHALLOW_METHODS)."""
    if name in LOSSES:
        return LOSSES[name]
    if name in SHALLOW_METHODS:
        return SHALLOW_METHODS[name]
    raise ConfigError(f"loss.name: unknown loss {name!r}; choose from {sorted(LOSSES)} or, fitted without "
                      f"training, {sorted(SHALLOW_METHODS)}")


def is_shallow(name):
    """True for a method fitted in closed form (utils/training/shallow.py) rather than trained."""
    return name in SHALLOW_METHODS


def check_loss_config(cfg):
    """Config validation of the `loss` section: option values, and the head the method needs."""
    cls = loss_class(cfg["loss"]["name"])
    cls.check_options({k: v for k, v in cfg["loss"].items() if k != "name"})
    if cfg["model"]["name"] != cls.MODEL:
        raise ConfigError(f"loss.name {cls.NAME!r} needs model.name {cls.MODEL!r} (its head), got "
                        f"{cfg['model']['name']!r}")
    if not cfg["train"]["use_labels"] and cls.SUPERVISED:
        raise ConfigError(f"train.use_labels: false, but loss {cls.NAME!r} learns from labels; pick a method that "
                          f"learns without them: {', '.join(unsupervised_methods())}")


def unsupervised_methods():
    """The names of the methods that learn without labels, trained ones first."""
    return [n for n, c in LOSSES.items() if not c.SUPERVISED] + sorted(SHALLOW_METHODS)


def is_multi_label(labels):
    """True when some image carries more than one label."""
    return bool((np.asarray(labels).sum(axis=1) > 1).any())


def build_loss(cfg, num_train, num_classes, comm=None, train_labels=None):
    """The configured loss; given train_labels ([n, C] multi-hot), a method that cannot learn
    from these data refuses them (UserError naming the method and the data set)."""
    cls = loss_class(cfg["loss"]["name"])
    if getattr(cls, "SHALLOW", False):
        raise ConfigError(f"loss {cls.NAME!r} is fitted, not trained: it has no loss to build")
    options = {k: v for k, v in cfg["loss"].items() if k != "name"}
    if train_labels is not None:
        cls.check_data(options, is_multi_label(train_labels), cfg["dataset"]["name"])
    return cls(num_train=num_train, bit=cfg["model"]["bit"], num_classes=num_classes, comm=comm, **options)


__all__ = ["DEFAULT_UNSUPERVISED_METHOD", "LOSSES", "SHALLOW_METHODS", "HashLoss", "HashNetLoss", "build_loss",
           "caffe_beta", "check_loss_config", "epoch_beta", "is_multi_label", "is_shallow", "loss_class",
           "unsupervised_methods"] + [cls.__name__ for cls in (*LOSSES.values(), *SHALLOW_METHODS.values())]
