"""Model weights in safetensors: a plain header + raw tensor bytes, so loading runs no code.

Paddle's .pdparams/.pdopt are pickles: paddle.load on a crafted one runs whatever its author
put in it. Released weights are therefore also written as `<prefix>.safetensors`, which
utils.checkpoint prefers when both exist. Metadata (bit count, backbone) travels in the header.
Pickles this project reads anyway (.pdparams, .pdopt) first pass `check_pickle`, which
unpickles them with only numpy arrays, dtypes, numpy scalars and plain containers allowed.
"""
import pickle

import numpy as np

from utils.errors import UserError
from utils.fileio import atomic_write_bytes

FORMAT = "hashnet-paddle-weights"


def to_numpy(state_dict):
    return {key: (value.numpy() if hasattr(value, "numpy") else np.asarray(value)) for key, value in state_dict.items()}


def safetensors_bytes(state_dict, metadata=None):
    """The safetensors file of state_dict (paddle tensors or arrays); metadata values become strings."""
    from safetensors.numpy import save

    meta = {"format": FORMAT, **{str(k): str(v) for k, v in (metadata or {}).items()}}
    arrays = {key: np.ascontiguousarray(value) for key, value in to_numpy(state_dict).items()}
    return save(arrays, metadata=meta)


def save_safetensors(state_dict, path, metadata=None):
    """Write state_dict (paddle tensors or arrays) atomically; metadata values become strings."""
    atomic_write_bytes(path, safetensors_bytes(state_dict, metadata))
    return path


def load_safetensors(path, what="weights file"):
    """(state dict of numpy arrays, metadata dict); UserError naming the file when it is not valid."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(path, framework="np") as f:
            metadata = dict(f.metadata() or {})
            state = {key: f.get_tensor(key) for key in f.keys()}
    except FileNotFoundError:
        raise UserError(f"{what} not found: {path}") from None
    except (SafetensorError, OSError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(f"{what} {path} cannot be read ({reason}); the file is corrupt or not safetensors") from None
    return state, metadata


# What paddle.save writes for state dicts and optimizer/scheduler state (Paddle 3, numpy 1.x/2.x).
SAFE_PICKLE_GLOBALS = {
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("collections", "OrderedDict"),
    ("builtins", "tuple"), ("builtins", "list"), ("builtins", "dict"), ("builtins", "set"),
    ("builtins", "frozenset"), ("builtins", "complex"),
}


class _Refused(pickle.UnpicklingError):
    """The pickle names something outside SAFE_PICKLE_GLOBALS."""


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) not in SAFE_PICKLE_GLOBALS:
            raise _Refused(f"{module}.{name}")
        return super().find_class(module, name)

    def persistent_load(self, pid):
        raise _Refused("a persistent id")


def check_pickle(path, what="weights file"):
    """UserError unless the pickle at path holds only arrays, numbers, strings and containers:
    anything else (a function, a class) is what makes a pickle run code, and is refused unread."""
    try:
        with open(path, "rb") as f:
            _RestrictedUnpickler(f, encoding="latin1").load()
    except _Refused as exc:
        raise UserError(f"{what} {path} is refused: its pickle refers to {exc} (pickles can run code); "
                        "if you trust its origin, convert it with tools/convert_weights.py --trust") from None
    except Exception:  # truncated or not a pickle: paddle.load will say so
        return
