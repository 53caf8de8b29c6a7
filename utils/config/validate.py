"""Config validation: each key's value against its declaration (utils.config.spec; the `loss`
section: by its method), then the rules that relate two keys."""
from __future__ import annotations

from typing import Any

from utils.config.spec import SPEC, SUPPORTED_BITS, Key
from utils.errors import ConfigError, quote


def _check(cond: bool, where: str, message: str) -> None:
    if not cond:
        raise ConfigError(f"{where}: {message}")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _is_path(v: Any) -> bool:
    """A path the OS can take: a non-empty string without a NUL byte."""
    return isinstance(v, str) and v != "" and "\0" not in v


def _type_name(value: Any) -> str:
    return {str: "a string", bool: "a boolean", type(None): "null", list: "a list", dict: "a mapping"}.get(
        type(value), type(value).__name__)


def _in_bounds(key: Key, v: float) -> bool:
    low_ok = key.low is None or (v > key.low if key.low_open else v >= key.low)
    high_ok = key.high is None or (v < key.high if key.high_open else v <= key.high)
    return low_ok and high_ok


def check_key(key: Key, value: Any) -> None:
    """ConfigError naming the key (or its flag) when `value` does not fit its declaration."""
    if value is None and key.nullable:
        return
    got = f"got {quote(value)}"  # bounded: at most 200 characters of a hostile value
    if key.kind == "number":
        _check(_is_number(value), key.where, f"must be a number, {got} ({_type_name(value)})")
        _check(_in_bounds(key, value), key.where, f"must be {key.what}, {got}")
    elif key.kind == "int":
        _check(_is_int(value) and _in_bounds(key, value), key.where, f"must be {key.what}, {got}")
    elif key.kind == "bool":
        _check(isinstance(value, bool), key.where, f"must be true or false, {got} ({_type_name(value)})")
    elif key.kind == "choice":
        _check(any(value is c or (type(value) is type(c) and value == c) for c in key.choices), key.where,
               f"must be {key.what}, {got}")
    elif key.kind == "path":
        _check(_is_path(value), key.where, f"must be a path, {got}")
    elif key.kind == "bit":
        _check(_is_int(value) and value in SUPPORTED_BITS, key.where,
               f"{quote(value)} is not a supported bit length {SUPPORTED_BITS}")
    elif key.kind == "list3":
        _check(isinstance(value, list) and len(value) == 3 and all(_is_number(v) for v in value), key.where,
               f"must be {key.what}, {got}")
    elif key.kind == "topk":
        _check(value is None or (_is_int(value) and (value == -1 or value >= 1)), key.where,
               f"must be {key.what}, {got}")
    elif key.kind == "rules":
        check_param_group_rules(value)
    elif key.kind == "name":
        _check(isinstance(value, str) and value.replace("_", "").replace("-", "").isalnum(), key.where,
               f"invalid data set name {quote(value)}")


def _value(cfg: dict, path: str) -> Any:
    node: Any = cfg
    for part in path.split("."):
        node = node[part]
    return node


RULE_KEYS = ("match", "lr_mult", "weight_decay")


def check_param_group_rules(rules):
    """train.param_groups: a list of {match: glob, lr_mult: number >= 0, weight_decay: number >= 0}
    (at least one of the two numbers); ConfigError naming the rule at fault."""
    if not isinstance(rules, (list, tuple)):  # a tuple: the frozen form of a validated list
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


def validate(cfg: dict) -> None:
    """Every check of a resolved config (plain dicts), flags included, before anything is built;
    ConfigError names the key (or flag) at fault."""
    if cfg["eval_only"] and not cfg["pretrained"]:
        raise ConfigError("--eval needs --pretrained PREFIX (the weights to evaluate)")
    if cfg["init_from"] and cfg["pretrained"] and not cfg["eval_only"]:
        raise ConfigError(f"--init-from/init_from ({cfg['init_from']}) and --pretrained both give the starting "
                          f"weights; give one")
    for key in SPEC:
        check_key(key, _value(cfg, key.path))
    d, t = cfg["dataset"], cfg["train"]
    _check(t["warmup_epochs"] < t["epochs"] or t["warmup_epochs"] == 0, "train.warmup_epochs",
           f"must be an integer >= 0 and below train.epochs, got {quote(t['warmup_epochs'])}")
    _check(_is_int(d["crop_size"]) and _is_int(d["resize_size"]) and 64 <= d["crop_size"] <= d["resize_size"],
           "dataset.crop_size", f"need 64 <= crop_size <= resize_size, got {quote(d['crop_size'])} / {quote(d['resize_size'])}")
    from utils.losses import check_loss_config  # each method checks its own keys (utils/losses/<name>.py)

    check_loss_config(cfg)
