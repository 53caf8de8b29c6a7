"""Resolving a config: built-in defaults < YAML file(s) < command-line flags < `-o key=value`, then
validated and frozen (utils.config.frozen: read-only; replace_config makes a changed one)."""
from __future__ import annotations

import os
from typing import Any, Mapping

from utils.config.files import SCRATCH_CONFIG, default_config_path, saved_config, unsupervised_config
from utils.config.frozen import FrozenConfig, thaw
from utils.config.load import merge_file, parse_override, set_by_path
from utils.config.schema import DEFAULTS, FLAG_KEYS, LEGACY_MODEL_NAMES, default_config
from utils.config.validate import validate
from utils.data.lists import list_has_labels
from utils.storage.fileio import display_path


def _gives_backbone_weights(flags, overrides):
    return bool(flags.get("pretrained_backbone")) or any(
        text.split("=", 1)[0].strip() == "model.backbone_weights" and text.split("=", 1)[1:] not in ([""], ["null"])
        for text in overrides or ())


def _list_dir_setting(flags, overrides):
    """dataset.list_dir as --list-dir or -o dataset.list_dir=... give it (None: not given)."""
    found = flags.get("list_dir")
    for text in overrides or ():
        key, _, value = text.partition("=")
        if key.strip() == "dataset.list_dir":
            found = value.strip() or None
    return found


def choose_recipe(dataset: str, flags: Mapping[str, Any], overrides: Any) -> tuple[str | None, str | None]:
    """(config file, the line that says why) for a data set with no configs/hashnet_<name>.yaml and
    no -c: lists of paths alone -> the default unsupervised method; labelled lists without ImageNet
    weights -> the scratch recipe; with them -> the built-in defaults (the fine-tuning recipe: None)."""
    weights = _gives_backbone_weights(flags, overrides)
    train_list = os.path.join(_list_dir_setting(flags, overrides) or os.path.join("data", dataset), "train.txt")
    if list_has_labels(train_list) is False:
        method, path = unsupervised_config(weights)
        return path, (f"the lists of data set {dataset!r} have no labels ({display_path(train_list)} holds image "
                      f"paths alone) and no -c was given: training the default unsupervised method {method!r} "
                      f"with {display_path(path)} (pass -c to choose another)")
    if weights:
        return None, None
    return SCRATCH_CONFIG, (f"data set {dataset!r} has no config of its own and no --pretrained-backbone was given: "
                            f"training with the from-scratch recipe {display_path(SCRATCH_CONFIG)} (pass -c to "
                            f"choose another)")


def build_config(config_path: str | None = None, flags: Mapping[str, Any] | None = None,
                 overrides: Any = ()) -> FrozenConfig:
    """Resolve, validate and freeze the config. flags: {flag name: value or None} (FLAG_KEYS' names);
    overrides: ['k=v', ...]. Without config_path: configs/hashnet_<dataset>.yaml, else choose_recipe's
    (cfg["config_choice"] holds its reason, which the engine logs first)."""
    flags = {k: v for k, v in (flags or {}).items() if v is not None}
    cfg = default_config()
    choice = None
    if config_path is None:
        dataset = flags.get("dataset", DEFAULTS["dataset"]["name"])
        config_path = default_config_path(dataset)
        if config_path is None:
            config_path, choice = choose_recipe(dataset, flags, overrides)
    if config_path is not None:
        merge_file(cfg, config_path)
    for name, value in flags.items():
        set_by_path(cfg, FLAG_KEYS[name], value, f"--{name.replace('_', '-')}")
    for text in overrides or ():
        key, value = parse_override(text)
        set_by_path(cfg, key, value, f"-o {text}")
    cfg["config_file"] = config_path
    cfg["config_choice"] = choice
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
