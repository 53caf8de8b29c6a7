"""A validated config is read-only: FrozenConfig, a dict whose sections are FrozenConfigs and whose
lists are tuples. It reads like the plain dict it was built from (cfg["train"]["lr"], ** and json
work), but any change raises a TypeError: code that needs another config asks for a new validated
one (utils.config.replace_config), so nothing downstream sees a config that was never checked.
"""
from __future__ import annotations

from typing import Any, NoReturn


class FrozenConfig(dict):
    """A read-only dict (nested); thaw() gives the plain, mutable form (YAML, tests)."""

    def __init__(self, data: Any = (), **kwargs: Any) -> None:
        super().__init__({k: freeze(v) for k, v in dict(data, **kwargs).items()})

    def _read_only(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise TypeError("a validated config is read-only; make a changed one with "
                        "utils.config.replace_config(cfg, {'section.key': value})")

    __setitem__ = __delitem__ = _read_only
    clear = pop = popitem = setdefault = update = __ior__ = _read_only

    def __reduce__(self) -> tuple:  # pickle (paddle.distributed.spawn) and copy: rebuilt from plain data
        return FrozenConfig, (thaw(self),)

    def __copy__(self) -> FrozenConfig:
        return self

    def __deepcopy__(self, memo: dict) -> FrozenConfig:
        return self

    def __repr__(self) -> str:
        return f"FrozenConfig({dict.__repr__(self)})"


def freeze(value: Any) -> Any:
    """Mappings -> FrozenConfig, lists and tuples -> tuples, recursively; anything else as it is."""
    if isinstance(value, FrozenConfig):
        return value
    if isinstance(value, dict):
        return FrozenConfig(value)
    if isinstance(value, (list, tuple)):
        return tuple(freeze(v) for v in value)
    return value


def thaw(value: Any) -> Any:
    """The plain form: dicts and lists (what YAML and the validation read)."""
    if isinstance(value, dict):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [thaw(v) for v in value]
    return value
