"""Resolving a config: built-in defaults < YAML file(s) < command-line flags < `-o key=value`, then
validated and frozen (utils.config.frozen: read-only; replace_config makes a changed one)."""
from __future__ import annotations

from typing import Any, Mapping

from utils.config.files import SCRATCH_CONFIG, default_config_path, saved_config
from utils.config.frozen import FrozenConfig, thaw
from utils.config.load import merge_file, parse_override, set_by_path
from utils.config.schema import DEFAULTS, FLAG_KEYS, LEGACY_MODEL_NAMES, default_config
from utils.config.validate import validate


def _gives_backbone_weights(flags, overrides):
    return bool(flags.get("pretrained_backbone")) or any(
        text.split("=", 1)[0].strip() == "model.backbone_weights" and text.split("=", 1)[1:] not in ([""], ["null"])
        for text in overrides or ())


def build_config(config_path: str | None = None, flags: Mapping[str, Any] | None = None,
                 overrides: Any = ()) -> FrozenConfig:
    """Resolve, validate and freeze the config. flags: {flag name: value or None} (FLAG_KEYS' names);
    overrides: ['k=v', ...]."""
    flags = {k: v for k, v in (flags or {}).items() if v is not None}
    cfg = default_config()
    if config_path is None:
        config_path = default_config_path(flags.get("dataset", DEFAULTS["dataset"]["name"]))
        if config_path is None and not _gives_backbone_weights(flags, overrides):
            config_path = SCRATCH_CONFIG  # the engine says so in one line
    if config_path is not None:
        merge_file(cfg, config_path)
    for name, value in flags.items():
        set_by_path(cfg, FLAG_KEYS[name], value, f"--{name.replace('_', '-')}")
    for text in overrides or ():
        key, value = parse_override(text)
        set_by_path(cfg, key, value, f"-o {text}")
    cfg["config_file"] = config_path
    name = cfg["model"]["name"]
    if isinstance(name, str) and name in LEGACY_MODEL_NAMES:  # a config_<K>.yaml saved by an older version
        cfg["model"]["name"] = LEGACY_MODEL_NAMES[name]
    validate(cfg)
    return FrozenConfig(cfg)


def replace_config(cfg: Mapping[str, Any], changes: Mapping[str, Any], source: str = "replace_config") -> FrozenConfig:
    """A new validated config: `cfg` with {"section.key": value} changed (the validated config itself
    stays as it was)."""
    new = thaw(cfg)
    for key, value in changes.items():
        set_by_path(new, key, thaw(value), source)
    validate(new)
    return FrozenConfig(new)


def config_for_weights(pretrained: str | None, bit: int | None, config: str | None = None, dataset: str | None = None,
                       data_path: str | None = None, overrides: Any = (), list_dir: str | None = None) -> FrozenConfig:
    """The config that trained these weights: -c if given, else the config_<K>.yaml the training
    run saved beside them, else configs/hashnet_<dataset>.yaml. Keeps preprocessing consistent."""
    if config is None and pretrained:
        config = saved_config(pretrained, bit)
    flags = {"bit": bit, "dataset": dataset, "data_path": data_path, "list_dir": list_dir or None}
    return build_config(config, flags, overrides)
