"""Config validation: each key's type and range (the `loss` section: by its method), flag pairs."""
from utils.config.schema import DEFAULTS, SUPPORTED_BITS
from utils.errors import ConfigError, quote


def _check(cond, where, message):
    if not cond:
        raise ConfigError(f"{where}: {message}")


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _is_path(v):
    """A path the OS can take: a non-empty string without a NUL byte."""
    return isinstance(v, str) and v != "" and "\0" not in v


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
                raise ConfigError(f"{where}: must be a number, got {value!r} ({_type_name(value)})")
            if isinstance(default, bool) and not isinstance(value, bool) and key != "onednn_conv":
                raise ConfigError(f"{where}: must be true or false, got {value!r} ({_type_name(value)})")


RULE_KEYS = ("match", "lr_mult", "weight_decay")


def check_param_group_rules(rules):
    """train.param_groups: a list of {match: glob, lr_mult: number >= 0, weight_decay: number >= 0}
    (at least one of the two numbers); ConfigError naming the rule at fault."""
    if not isinstance(rules, list):
        raise ConfigError(f"train.param_groups: must be a list of rules {{match, lr_mult, weight_decay}}, got {rules!r}")
    for i, rule in enumerate(rules):
        where = f"train.param_groups[{i}]"
        if not isinstance(rule, dict):
            raise ConfigError(f"{where}: must be a mapping with keys {', '.join(RULE_KEYS)}, got {rule!r}")
        unknown = sorted(set(rule) - set(RULE_KEYS))
        if unknown:
            raise ConfigError(f"{where}: unknown key {unknown[0]!r} (keys: {', '.join(RULE_KEYS)})")
        if not isinstance(rule.get("match"), str) or not rule["match"]:
            raise ConfigError(f"{where}.match: must be a parameter-name pattern (glob), got {rule.get('match')!r}")
        if "lr_mult" not in rule and "weight_decay" not in rule:
            raise ConfigError(f"{where}: sets neither lr_mult nor weight_decay")
        for key in ("lr_mult", "weight_decay"):
            value = rule.get(key, 0)
            if not (isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0):
                raise ConfigError(f"{where}.{key}: must be a number >= 0, got {value!r}")


def validate(cfg):
    """Every check of a resolved config, flags included, before anything is built; ConfigError names
    the key (or flag) at fault."""
    _check_number_types(cfg)
    if cfg["eval_only"] and not cfg["pretrained"]:
        raise ConfigError("--eval needs --pretrained PREFIX (the weights to evaluate)")
    if cfg["init_from"] and cfg["pretrained"] and not cfg["eval_only"]:
        raise ConfigError(f"--init-from/init_from ({cfg['init_from']}) and --pretrained both give the starting "
                          f"weights; give one")
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
    _check(0 < t["lr_decay_gamma"] < 1, "train.lr_decay_gamma",
           f"must be in (0, 1) (no decay: train.lr_decay_every above the epochs), got {t['lr_decay_gamma']!r}")
    _check(t["lr_schedule"] in ("step", "cosine"), "train.lr_schedule", f"must be step or cosine, got {t['lr_schedule']!r}")
    _check(_is_int(t["warmup_epochs"]) and 0 <= t["warmup_epochs"] and (t["warmup_epochs"] < t["epochs"] or
                                                                        t["warmup_epochs"] == 0),
           "train.warmup_epochs", f"must be an integer >= 0 and below train.epochs, got {t['warmup_epochs']!r}")
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
    _check(m["hash_init_std"] > 0, "model.hash_init_std", f"must be > 0, got {m['hash_init_std']!r}")
    _check(m["classifier_init_std"] is None or (isinstance(m["classifier_init_std"], (int, float)) and not
                                                isinstance(m["classifier_init_std"], bool) and
                                                m["classifier_init_std"] > 0),
           "model.classifier_init_std", f"must be null or a number > 0, got {m['classifier_init_std']!r}")
    check_param_group_rules(t["param_groups"])
    _check(_is_int(m["fc_dim"]) and m["fc_dim"] >= 8, "model.fc_dim", f"must be an integer >= 8, got {m['fc_dim']!r}")
    from utils.losses import check_loss_config  # each method checks its own keys (utils/losses/<name>.py)

    check_loss_config(cfg)
    _check(cfg["device"] in ("auto", "cpu", "gpu"), "--device", f"must be auto, cpu or gpu, got {cfg['device']!r}")
    _check(_is_int(cfg["threads"]) and cfg["threads"] >= 0, "--threads", f"must be an integer >= 0, got {cfg['threads']!r}")
    for where, value in (("--data-path/dataset.data_path", d["data_path"]), ("--output-dir/output_dir", cfg["output_dir"])):
        _check(_is_path(value), where, f"must be a path, got {quote(value)}")
    for where, value in (("--list-dir/dataset.list_dir", d["list_dir"]), ("--pretrained", cfg["pretrained"]),
                         ("--resume", cfg["resume"]), ("--init-from", cfg["init_from"]),
                         ("model.backbone_weights", m["backbone_weights"])):
        _check(value is None or _is_path(value), where, f"must be a path, got {quote(value)}")
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
    _check(t["amp"] in (None, "fp16", "bf16"), "train.amp",
           f"must be null (fp32), fp16 or bf16 (mixed precision on GPU), got {t['amp']!r}")
    _check(_is_int(d["max_image_pixels"]) and d["max_image_pixels"] >= 1, "dataset.max_image_pixels",
           f"must be an integer >= 1, got {d['max_image_pixels']!r}")
    _check(isinstance(d["name"], str) and d["name"].replace("_", "").replace("-", "").isalnum(), "--dataset",
           f"invalid data set name {d['name']!r}")
