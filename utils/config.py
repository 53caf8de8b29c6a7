"""Configuration: built-in defaults < YAML file(s) < command-line flags < `-o key=value`.

DEFAULTS is the schema: a key that is not in it is an error wherever it comes from, so a
typo in a YAML file or an override fails loudly instead of being ignored.
"""
import copy
import os
import re

import yaml

from utils.errors import UserError
from utils.storage.fileio import atomic_open

SUPPORTED_BITS = (8, 12, 16, 24, 32, 48, 64, 128)

DEFAULTS = {
    "dataset": {
        "name": "lite",
        "data_path": "./datasets/lite/",
        "list_dir": None,          # default: data/<name>/ ; the lite set keeps its lists in data_path
        "num_classes": None,       # None: read from the list files
        "topk": -1,                # mAP@topK; -1 or None: the whole database
        "resize_size": 256,
        "crop_size": 224,
        "mean": [0.485, 0.456, 0.406],
        "std": [0.229, 0.224, 0.225],
        "num_workers": 2,
        "lite_seed": 0,
        "val_fraction": 0.0,       # > 0: hold out this part of train.txt to pick the best epoch
        "skip_bad_images": False,  # True: skip unreadable/missing images, count them, report at the end
        "allow_outside_root": False,  # True: accept absolute and ../ list paths outside data_path
        "max_image_pixels": 100_000_000,  # decompression-bomb guard, checked from the image header
    },
    "model": {
        "name": "hashnet",
        "backbone": "alexnet",
        "bit": 64,
        "dropout": 0.5,
        "fc_dim": 4096,            # width of fc6/fc7; ImageNet weights need 4096
        "batch_norm": False,       # BatchNorm after each conv: for training from scratch
        "hash_lr_mult": 10.0,
        "hash_bias_lr_mult": None,  # None: same as hash_lr_mult (Caffe used 20)
        "backbone_weights": None,   # a local .pdparams, or "imagenet" to download through paddle.vision
        "needs_backbone_weights": False,  # a fine-tuning recipe: warn when trained without backbone_weights
    },
    "loss": {
        "name": "hashnet",
        "alpha": 0.1,              # theta = alpha * <h_i, h_j>; None: 10 / bit (Caffe)
        "continuation": "epoch",   # epoch: beta = sqrt(epoch // beta_step + 1); iteration: Caffe's schedule
        "beta_step": 20,
        "beta_gamma": 0.005,       # iteration: beta = (1 + beta_gamma * iter) ** beta_power,
        "beta_power": 0.5,         #   updated every beta_step_iters iterations
        "beta_step_iters": 200,
        "pair_weighting": "balanced",  # balanced: S/S1 and S/S0; constant: similar pairs x similar_weight
        "similar_weight": 1.0,     # Caffe's class_num
        "memory_max_age": None,    # pair with memory codes written in the last N steps; null: all; 0: in-batch
        "memory_warmup_epochs": 0,  # first epochs: in-batch pairs only
        "self_pairs": True,        # pair each image with its own code too (i = j), as the reproductions do
    },
    "train": {
        "epochs": 150,
        "batch_size": 64,          # per device
        "lr": 0.001,               # at a global batch of base_batch
        "base_batch": 64,
        "momentum": 0.9,
        "weight_decay": 0.0005,
        "clip_grad_norm": None,    # clip the global gradient norm at this value (null: never)
        "lr_decay_every": 50,
        "lr_decay_gamma": 0.5,
        "seed": 0,
        "eval_every": 10,
        "log_every": 10,
        "eval_untrained": True,
        "loss_rise_epochs": 3,     # warn when the epoch loss rises this many epochs in a row (0: never)
        "cpu_malloc_reuse": True,  # CPU: keep freed large buffers for the next step (utils/runtime/cpu.py)
        "onednn_conv": "auto",     # auto | true | false: convolutions through oneDNN on CPU (utils/runtime/onednn_conv.py)
    },
    "device": "auto",              # auto | cpu | gpu
    "threads": 0,                  # CPU threads per process; 0: cores / processes
    "output_dir": "./output",
    "pretrained": None,            # a weights prefix (or .pdparams) to start from / evaluate
    "resume": None,                # a checkpoint prefix to continue training from
    "eval_only": False,
    "plots": False,                # write P-R curve and precision@N plots (matplotlib) after evaluation
}

# The main_*.py flags and the config keys they set.
FLAG_KEYS = {
    "dataset": "dataset.name",
    "data_path": "dataset.data_path",
    "list_dir": "dataset.list_dir",
    "bit": "model.bit",
    "epoch": "train.epochs",
    "batch_size": "train.batch_size",
    "lr": "train.lr",
    "seed": "train.seed",
    "num_workers": "dataset.num_workers",
    "output_dir": "output_dir",
    "pretrained": "pretrained",
    "pretrained_backbone": "model.backbone_weights",
    "resume": "resume",
    "eval": "eval_only",
    "plots": "plots",
    "device": "device",
    "threads": "threads",
    "skip_bad_images": "dataset.skip_bad_images",
    "allow_outside_data_root": "dataset.allow_outside_root",
}


class _YAMLLoader(yaml.SafeLoader):
    """safe_load, except that 1e-5 and 1E+3 are floats (YAML 1.2; PyYAML's 1.1 rules read a
    float without a dot as a string, and Paddle then fails deep inside an optimizer op)."""


_YAMLLoader.yaml_implicit_resolvers = {k: list(v) for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_YAMLLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                  |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                  |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
                  |[-+]?\.(?:inf|Inf|INF)
                  |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."))


def load_yaml(text_or_stream):
    """Parse YAML with the project's rules (safe; 1e-5 is a float)."""
    return yaml.load(text_or_stream, Loader=_YAMLLoader)


def _set_loss_method(loss, name, source):
    """Setting loss.name to another method resets the `loss` section to that method's keys and
    published defaults (LOSSES[name].DEFAULTS, utils/losses/<name>.py); keys set after it (later
    in the same section, later files, -o) apply on top. HashNet's are DEFAULTS["loss"]."""
    if name == loss["name"]:
        return
    from utils.losses import loss_class  # imports paddle: only when a config picks another method

    if not isinstance(name, str):
        raise UserError(f"{source}: loss.name must be a method name, got {name!r}")
    try:
        defaults = DEFAULTS["loss"] if name == DEFAULTS["loss"]["name"] else loss_class(name).DEFAULTS
    except UserError as exc:
        raise UserError(f"{source}: {exc}") from None
    loss.clear()
    loss.update({"name": name, **copy.deepcopy({k: v for k, v in defaults.items() if k != "name"})})


def _unknown_key(source, where, section):
    method = f" for loss {section['name']!r}" if where.startswith("loss.") and isinstance(section, dict) else ""
    return UserError(f"{source}: unknown config key {where!r}{method}")


def _merge(base, override, source, prefix=""):
    if prefix == "loss." and "name" in override:
        _set_loss_method(base, override["name"], source)
    for key, value in override.items():
        where = f"{prefix}{key}"
        if key not in base:
            raise _unknown_key(source, where, base)
        if isinstance(base[key], dict):
            if not isinstance(value, dict):
                raise UserError(f"{source}: {where!r} must be a mapping")
            _merge(base[key], value, source, where + ".")
        else:
            base[key] = value


def _read_yaml(path, seen=()):
    """Read a YAML config; `_base_: other.yaml` (relative to the file) is merged first."""
    if not os.path.isfile(path):
        raise UserError(f"config file not found: {path}")
    if os.path.abspath(path) in seen:
        raise UserError(f"{path}: _base_ cycle")
    try:
        with open(path, encoding="utf-8") as f:
            data = load_yaml(f) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise UserError(f"{path}{line}: invalid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: a config must be a mapping")
    layers = []
    base = data.pop("_base_", None)
    if base:
        base_path = os.path.join(os.path.dirname(path), base)
        layers.extend(_read_yaml(base_path, seen + (os.path.abspath(path),)))
    layers.append((path, data))
    return layers


def set_by_path(cfg, dotted, value, source):
    keys = dotted.split(".")
    if keys == ["loss", "name"]:
        _set_loss_method(cfg["loss"], value, source)
    node = cfg
    for i, key in enumerate(keys):
        if not isinstance(node, dict) or key not in node:
            raise _unknown_key(source, ".".join(keys[:i + 1]), node)
        if i == len(keys) - 1:
            if isinstance(node[key], dict):
                raise UserError(f"{source}: {dotted!r} is a section; set one of its keys")
            node[key] = value
        else:
            node = node[key]


def parse_override(text):
    """`key.sub=value` -> (key.sub, YAML-parsed value)."""
    if "=" not in text:
        raise UserError(f"-o {text!r}: expected key=value")
    key, raw = text.split("=", 1)
    try:
        value = load_yaml(raw) if raw != "" else None
    except yaml.YAMLError:
        raise UserError(f"-o {text!r}: value is not valid YAML") from None
    if _refers_to_itself(value):
        raise UserError(f"-o {text!r}: value refers to itself (a YAML alias cycle)")
    return key.strip(), value


def _refers_to_itself(value, parents=()):
    """True for YAML like `&a [*a]`, which loads as a list containing itself."""
    if isinstance(value, (list, dict)):
        if any(value is p for p in parents):
            return True
        children = value.values() if isinstance(value, dict) else value
        return any(_refers_to_itself(child, parents + (value,)) for child in children)
    return False


CONFIG_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs")
# the recipe for a data set with no config of its own and no ImageNet weights
SCRATCH_CONFIG = os.path.join(CONFIG_DIR, "hashnet_scratch.yaml")


def default_config_path(dataset):
    path = os.path.join(CONFIG_DIR, f"hashnet_{dataset}.yaml")
    return path if os.path.isfile(path) else None


def _gives_backbone_weights(flags, overrides):
    return bool(flags.get("pretrained_backbone")) or any(
        text.split("=", 1)[0].strip() == "model.backbone_weights" and text.split("=", 1)[1:] not in ([""], ["null"])
        for text in overrides or ())


def build_config(config_path=None, flags=None, overrides=()):
    """Resolve the config. flags: {flag_name: value or None}; overrides: ['k=v', ...]."""
    flags = {k: v for k, v in (flags or {}).items() if v is not None}
    cfg = copy.deepcopy(DEFAULTS)
    if config_path is None:
        config_path = default_config_path(flags.get("dataset", DEFAULTS["dataset"]["name"]))
        if config_path is None and not _gives_backbone_weights(flags, overrides):
            config_path = SCRATCH_CONFIG  # the engine says so in one line
    if config_path is not None:
        for path, data in _read_yaml(config_path):
            _merge(cfg, data, path)
    for name, value in flags.items():
        set_by_path(cfg, FLAG_KEYS[name], value, f"--{name.replace('_', '-')}")
    for text in overrides or ():
        key, value = parse_override(text)
        set_by_path(cfg, key, value, f"-o {text}")
    cfg["config_file"] = config_path
    validate(cfg)
    return cfg


def _check(cond, where, message):
    if not cond:
        raise UserError(f"{where}: {message}")


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _type_name(value):
    return {str: "a string", bool: "a boolean", type(None): "null", list: "a list", dict: "a mapping"}.get(
        type(value), type(value).__name__)


def _check_number_types(cfg):
    """Keys whose default is a number (float) need a number, and those whose default is true/false
    need true/false: one line naming the key, not a TypeError inside Paddle. (Each method checks
    its own `loss` keys; other keys have their own checks in validate.)"""
    for section in ("dataset", "model", "train"):
        for key, default in DEFAULTS[section].items():
            value, where = cfg[section][key], f"{section}.{key}"
            if isinstance(default, float) and not (isinstance(value, (int, float)) and not isinstance(value, bool)):
                raise UserError(f"{where}: must be a number, got {value!r} ({_type_name(value)})")
            if isinstance(default, bool) and not isinstance(value, bool) and key != "onednn_conv":
                raise UserError(f"{where}: must be true or false, got {value!r} ({_type_name(value)})")


def validate(cfg):
    _check_number_types(cfg)
    d, m, t = cfg["dataset"], cfg["model"], cfg["train"]
    _check(_is_int(m["bit"]) and m["bit"] in SUPPORTED_BITS, "--bit/model.bit",
           f"{m['bit']!r} is not a supported bit length {SUPPORTED_BITS}")
    _check(_is_int(t["batch_size"]) and t["batch_size"] >= 2, "--batch-size/train.batch_size",
           f"must be an integer >= 2 (pairs need two images), got {t['batch_size']!r}")
    _check(_is_int(t["epochs"]) and t["epochs"] >= 0, "--epoch/train.epochs", f"must be an integer >= 0, got {t['epochs']!r}")
    _check(_is_int(t["seed"]) and t["seed"] >= 0, "--seed/train.seed", f"must be an integer >= 0, got {t['seed']!r}")
    _check(isinstance(t["lr"], (int, float)) and t["lr"] > 0, "--lr/train.lr", f"must be > 0, got {t['lr']!r}")
    _check(t["clip_grad_norm"] is None or (isinstance(t["clip_grad_norm"], (int, float)) and not
                                           isinstance(t["clip_grad_norm"], bool) and t["clip_grad_norm"] > 0),
           "train.clip_grad_norm", f"must be null or a number > 0, got {t['clip_grad_norm']!r}")
    _check(_is_int(t["loss_rise_epochs"]) and t["loss_rise_epochs"] >= 0, "train.loss_rise_epochs",
           f"must be an integer >= 0, got {t['loss_rise_epochs']!r}")
    for key in ("eval_every", "log_every", "lr_decay_every", "base_batch"):
        _check(_is_int(t[key]) and t[key] >= 1, f"train.{key}", f"must be an integer >= 1, got {t[key]!r}")
    _check(isinstance(d["val_fraction"], (int, float)) and 0 <= d["val_fraction"] < 1, "dataset.val_fraction",
           f"must be in [0, 1), got {d['val_fraction']!r}")
    _check(_is_int(d["num_workers"]) and d["num_workers"] >= 0, "--num-workers/dataset.num_workers",
           f"must be an integer >= 0, got {d['num_workers']!r}")
    _check(_is_int(d["crop_size"]) and _is_int(d["resize_size"]) and 64 <= d["crop_size"] <= d["resize_size"],
           "dataset.crop_size", f"need 64 <= crop_size <= resize_size, got {d['crop_size']!r} / {d['resize_size']!r}")
    _check(d["topk"] is None or (_is_int(d["topk"]) and (d["topk"] == -1 or d["topk"] >= 1)), "dataset.topk",
           f"must be -1 (all), None or a positive integer, got {d['topk']!r}")
    _check(_is_int(m["fc_dim"]) and m["fc_dim"] >= 8, "model.fc_dim", f"must be an integer >= 8, got {m['fc_dim']!r}")
    from utils.losses import check_loss_config  # each method checks its own keys (utils/losses/<name>.py)

    check_loss_config(cfg)
    _check(cfg["device"] in ("auto", "cpu", "gpu"), "--device", f"must be auto, cpu or gpu, got {cfg['device']!r}")
    _check(_is_int(cfg["threads"]) and cfg["threads"] >= 0, "--threads", f"must be an integer >= 0, got {cfg['threads']!r}")
    for where, value in (("--data-path/dataset.data_path", d["data_path"]), ("--output-dir/output_dir", cfg["output_dir"])):
        _check(isinstance(value, str) and value != "", where, f"must be a path, got {value!r}")
    for where, value in (("--list-dir/dataset.list_dir", d["list_dir"]), ("--pretrained", cfg["pretrained"]),
                         ("--resume", cfg["resume"]), ("model.backbone_weights", m["backbone_weights"])):
        _check(value is None or (isinstance(value, str) and value != ""), where, f"must be a path, got {value!r}")
    for key in ("mean", "std"):
        _check(isinstance(d[key], list) and len(d[key]) == 3 and all(isinstance(v, (int, float)) and
                                                                      not isinstance(v, bool) for v in d[key]),
               f"dataset.{key}", f"must be a list of 3 numbers, got {d[key]!r}")
    _check(d["num_classes"] is None or (_is_int(d["num_classes"]) and d["num_classes"] >= 1), "dataset.num_classes",
           f"must be null or an integer >= 1, got {d['num_classes']!r}")
    for key in ("skip_bad_images", "allow_outside_root"):
        _check(isinstance(d[key], bool), f"dataset.{key}", f"must be true or false, got {d[key]!r}")
    _check(isinstance(t["cpu_malloc_reuse"], bool), "train.cpu_malloc_reuse",
           f"must be true or false, got {t['cpu_malloc_reuse']!r}")
    _check(t["onednn_conv"] in ("auto", True, False), "train.onednn_conv",
           f"must be auto, true or false, got {t['onednn_conv']!r}")
    _check(_is_int(d["max_image_pixels"]) and d["max_image_pixels"] >= 1, "dataset.max_image_pixels",
           f"must be an integer >= 1, got {d['max_image_pixels']!r}")
    _check(isinstance(d["name"], str) and d["name"].replace("_", "").replace("-", "").isalnum(), "--dataset",
           f"invalid data set name {d['name']!r}")


def list_dir(cfg):
    d = cfg["dataset"]
    if d["list_dir"]:
        return d["list_dir"]
    if d["name"] == "lite":
        return d["data_path"]
    return os.path.join("data", d["name"])


def dataset_lists(cfg):
    """Make the built-in lite data when asked for and absent; return {split: list path}."""
    d = cfg["dataset"]
    if d["name"] == "lite":
        from utils.data.lite import ensure_lite_dataset

        ensure_lite_dataset(d["data_path"], seed=d["lite_seed"])
    elif not os.path.isdir(d["data_path"]):
        raise UserError(f"--data-path: folder not found: {d['data_path']}")
    folder = list_dir(cfg)
    lists = {split: os.path.join(folder, f"{split}.txt") for split in ("train", "test", "database")}
    for split, path in lists.items():
        if not os.path.isfile(path):
            raise UserError(f"{split} list not found: {path} (set --list-dir or dataset.list_dir)")
    return lists


def config_yaml(cfg):
    """The resolved config as the YAML text saved beside a run's weights (config_<K>.yaml)."""
    return yaml.safe_dump({k: v for k, v in cfg.items() if k != "config_file"}, sort_keys=False)


def save_config(cfg, path):
    """Write the resolved config atomically, so a run's outputs say how they were made."""
    with atomic_open(path, "w", encoding="utf-8") as f:
        f.write(config_yaml(cfg))
