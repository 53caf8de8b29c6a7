"""Reading configs: YAML files (with `_base_`), -o key=value overrides, and setting keys by path."""
import os
import re

import yaml

from utils.config.schema import method_defaults
from utils.errors import ConfigError, quote
from utils.storage import parsing


class _YAMLLoader(parsing.StrictLoader):
    """safe_load without aliases and with a nesting bound (utils.storage.parsing), and 1e-5 and
    1E+3 are floats (YAML 1.2; PyYAML's 1.1 rules read a float without a dot as a string, and
    Paddle then fails deep inside an optimizer op)."""


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
    """Parse YAML with the project's rules (safe, no aliases, bounded nesting; 1e-5 is a float)."""
    return parsing.load_yaml(text_or_stream, _YAMLLoader)


def _set_loss_method(loss, name, source):
    """Setting loss.name to another method resets the `loss` section to that method's keys and
    published defaults (LOSSES[name].DEFAULTS, utils/losses/<name>.py); keys set after it (later
    in the same section, later files, -o) apply on top."""
    if name == loss["name"]:
        return
    if not isinstance(name, str):
        raise ConfigError(f"{source}: loss.name must be a method name, got {quote(name)}")
    try:
        section = method_defaults(name)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    loss.clear()
    loss.update(section)


def _unknown_key(source, where, section):
    method = f" for loss {section['name']!r}" if where.startswith("loss.") and isinstance(section, dict) else ""
    return ConfigError(f"{source}: unknown config key {where!r}{method}")


def _merge(base, override, source, prefix=""):
    if prefix == "loss." and "name" in override:
        _set_loss_method(base, override["name"], source)
    for key, value in override.items():
        where = f"{prefix}{key}"
        if key not in base:
            raise _unknown_key(source, where, base)
        if isinstance(base[key], dict):
            if not isinstance(value, dict):
                raise ConfigError(f"{source}: {where!r} must be a mapping")
            _merge(base[key], value, source, where + ".")
        else:
            base[key] = value


def _read_yaml(path, seen=()):
    """Read a YAML config; `_base_: other.yaml` (relative to the file) is merged first."""
    if not os.path.isfile(path):
        raise ConfigError(f"config file not found: {path}")
    if os.path.abspath(path) in seen:
        raise ConfigError(f"{path}: _base_ cycle")
    try:
        with open(path, "rb") as f:
            raw = f.read()
        data = load_yaml(raw.decode("utf-8")) or {}
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise ConfigError(f"{path}:{line}: not UTF-8 text (a config is UTF-8 YAML)") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config ({exc.strerror or exc})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}{line}: invalid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config must be a mapping")
    layers = []
    base = data.pop("_base_", None)
    if base is not None and (not isinstance(base, str) or not base or "\0" in base):
        raise ConfigError(f"{path}: _base_ must be the path of another config, got {quote(base)}")
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
                raise ConfigError(f"{source}: {dotted!r} is a section; set one of its keys")
            node[key] = value
        else:
            node = node[key]


def parse_override(text):
    """`key.sub=value` -> (key.sub, YAML-parsed value)."""
    if "=" not in text:
        raise ConfigError(f"-o {quote(text)}: expected key=value")
    key, raw = text.split("=", 1)
    try:
        value = load_yaml(raw) if raw != "" else None
    except yaml.YAMLError as exc:
        why = f" ({exc.problem})" if getattr(exc, "problem", None) else ""
        raise ConfigError(f"-o {quote(text)}: value is not valid YAML{why}") from None
    if _refers_to_itself(value):
        raise ConfigError(f"-o {quote(text)}: value refers to itself (a YAML alias cycle)")
    return key.strip(), value


def _refers_to_itself(value, parents=()):
    """True for YAML like `&a [*a]`, which loads as a list containing itself."""
    if isinstance(value, (list, dict)):
        if any(value is p for p in parents):
            return True
        children = value.values() if isinstance(value, dict) else value
        return any(_refers_to_itself(child, parents + (value,)) for child in children)
    return False


def merge_file(cfg, path):
    """Merge the YAML config at path (its `_base_` chain first) into cfg."""
    for source, data in _read_yaml(path):
        _merge(cfg, data, source)


def flag_defaults(defaults, config_path):
    """{config key: value} of the keys that have a flag, as a run with no flag and no -c gets them: the
    built-in defaults under config_path (loss section aside: no flag sets it). For --help; reads YAML only."""
    cfg = {k: dict(v) if isinstance(v, dict) else v for k, v in defaults.items()}
    for source, data in _read_yaml(config_path):
        _merge(cfg, {k: v for k, v in data.items() if k != "loss"}, source)
    return cfg

