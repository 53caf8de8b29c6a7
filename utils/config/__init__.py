"""Configuration: built-in defaults < YAML file(s) < command-line flags < `-o key=value`.

spec       one declaration per key: default, type, range or choices, flag, help
schema     every key and its default (the `loss` section: the chosen method's), the flag -> key map
frozen     the validated config is read-only (FrozenConfig); replace_config makes a changed one
load       YAML files with `_base_`, overrides, setting keys by path
validate   every check of a resolved config, before anything is built
files      where configs and list files are; the config saved beside a run's weights
build      build_config / config_for_weights: the resolved config
"""
from utils.config.build import build_config, config_for_weights, replace_config
from utils.config.files import (CONFIG_DIR, SCRATCH_CONFIG, config_yaml, dataset_lists, default_config_path, list_dir,
                                save_config, saved_config)
from utils.config.frozen import FrozenConfig, freeze, thaw
from utils.config.load import load_yaml, parse_override, set_by_path
from utils.config.schema import DEFAULTS, FLAG_KEYS, SUPPORTED_BITS, default_config, method_defaults
from utils.config.validate import validate

__all__ = ["CONFIG_DIR", "DEFAULTS", "FLAG_KEYS", "SCRATCH_CONFIG", "SUPPORTED_BITS", "FrozenConfig", "build_config",
           "config_for_weights", "config_yaml", "dataset_lists", "default_config", "default_config_path", "freeze",
           "list_dir", "load_yaml", "method_defaults", "parse_override", "replace_config", "save_config",
           "saved_config", "set_by_path", "thaw", "validate"]
