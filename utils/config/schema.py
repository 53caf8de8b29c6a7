"""The config schema: every key with its default (derived from the declarations of utils.config.spec).
A key that is not here is an error wherever it comes from, so a typo in a YAML file or an override
fails loudly instead of being ignored.

The `loss` section is the method's: its keys and published defaults are the loss class's DEFAULTS
(utils/losses/<method>.py, picked by loss.name from utils.losses.LOSSES); default_config() puts
the default method's (HashNet's) there.
"""
import copy

from utils.config.spec import SPEC, SUPPORTED_BITS, flag_keys, nested_defaults  # noqa: F401 (SUPPORTED_BITS: re-exported)

DEFAULT_METHOD = "hashnet"
# model.name values of configs saved before the generic head was renamed (it was named after HashNet)
LEGACY_MODEL_NAMES = {"hashnet": "linear"}

DEFAULTS = nested_defaults(SPEC)  # every section but `loss`, whose keys are the chosen method's

# The main_*.py flags and the config keys they set.
FLAG_KEYS = flag_keys(SPEC)


def method_defaults(name):
    """The `loss` section of method `name`: {"name": name, its DEFAULTS} (ConfigError for an unknown
    name). Imports utils.losses (and paddle) on first use only."""
    from utils.losses import loss_class

    return {"name": name, **copy.deepcopy(loss_class(name).DEFAULTS)}


def default_config():
    """The built-in config: DEFAULTS with the default method's `loss` section, in section order."""
    base = copy.deepcopy(DEFAULTS)
    cfg = {key: base.pop(key) for key in ("dataset", "model")}
    cfg["loss"] = method_defaults(DEFAULT_METHOD)
    cfg.update(base)
    return cfg
