"""Weight files: `<prefix>.pdparams` (paddle's pickle) and `<prefix>.safetensors` (no code runs on load).

Paddle's .pdparams/.pdopt are pickles: paddle.load on a crafted one runs whatever its author
put in it. Released weights are therefore also written as `<prefix>.safetensors`, which
resolve_weights prefers when both exist. Metadata (bit count, backbone) travels in its header.
Pickles this project reads anyway (.pdparams, .pdopt) first pass `check_pickle`, which
unpickles them with only numpy arrays, dtypes, numpy scalars and plain containers allowed.
Training and inference both read weights through here; the training state (.pdopt) is
utils.training.checkpoint's.
"""
import hashlib
import os
import pickle

import numpy as np

from utils.errors import WeightsError
from utils.storage.fileio import atomic_write_bytes
from utils.storage.run_folder import RELEASED_SUFFIX, resolve_weights, strip_suffix, weights_path  # noqa: F401

FORMAT = "hashnet-paddle-weights"


# --------------------------------------------------------------------------- reading


def load_state_file(path, what, trust_pickle=False):
    """A state dict (or training state) from a .safetensors or a paddle pickle file; WeightsError
    naming the file when it is missing, refused or unreadable."""
    if path.endswith(RELEASED_SUFFIX):
        return load_safetensors(path, what)[0]
    import paddle

    if not os.path.isfile(path):
        raise WeightsError(f"{what} not found: {path}")
    if not trust_pickle:
        check_pickle(path, what)  # paddle.load runs any code a crafted pickle names
    try:
        return paddle.load(path)
    except Exception as exc:  # paddle raises many kinds for a truncated/corrupt file
        raise WeightsError(f"{what} {path} cannot be read ({type(exc).__name__}); the file is corrupt or not a "
                           "Paddle file") from None


def _numpy_dtype(tensor):
    """The numpy dtype of a paddle tensor or array (None when numpy has no such dtype: bfloat16)."""
    try:
        return np.dtype(str(tensor.dtype).replace("paddle.", ""))
    except TypeError:
        return None


def _check_values(key, value, param, path):
    """WeightsError unless value is an array of param's dtype holding finite numbers."""
    if not hasattr(value, "shape") or not hasattr(value, "dtype"):
        raise WeightsError(f"{path}: tensor {key} is a {type(value).__name__}, not an array; the file is not "
                           "weights of this project")
    got, want = _numpy_dtype(value), _numpy_dtype(param)
    if want is not None and got != want:
        raise WeightsError(f"{path}: tensor {key} is {got or str(value.dtype).replace('paddle.', '')}, the model "
                           f"expects {want} (weights cast to another precision? use the float32 weights training wrote)")
    if isinstance(value, np.ndarray):
        finite = got is None or got.kind != "f" or bool(np.isfinite(value).all())
    else:  # a paddle tensor (paddle.load): checked where it is, without a copy to numpy
        import paddle

        finite = got is None or got.kind != "f" or bool(paddle.isfinite(value).all())
    if not finite:
        raise WeightsError(f"{path}: tensor {key} holds NaN or infinite values (the run that wrote it diverged?); "
                           "refusing weights that would give every image the same code")


def _check_shapes(model, state, path):
    expected = model.state_dict()
    hash_first = sorted(expected, key=lambda k: not k.startswith("hash_layer."))  # the bit count: the likeliest slip
    for key in hash_first:
        param = expected[key]
        if key in state and not hasattr(state[key], "shape"):
            _check_values(key, state[key], param, path)
        if key in state and list(state[key].shape) != list(param.shape):
            got_bit, want_bit = state[key].shape[-1], param.shape[-1]
            if key.startswith("hash_layer.") and got_bit != want_bit:
                raise WeightsError(f"{path} holds a {got_bit}-bit model but --bit is {want_bit}")
            raise WeightsError(f"{path}: tensor {key} has shape {list(state[key].shape)}, the model expects "
                               f"{list(param.shape)}; is it for another backbone or model.fc_dim?")
    missing = [k for k in expected if k not in state]
    if missing:
        raise WeightsError(f"{path} does not hold this model's weights (missing {len(missing)} tensors, "
                           f"e.g. {missing[0]}); is it for another backbone?")
    for key in hash_first:
        _check_values(key, state[key], expected[key], path)


def set_weights(model, state, path):
    """Put a state dict read from path into model, after checking it is this model's: every tensor
    there, of the model's shape and dtype, finite."""
    if not isinstance(state, dict):
        raise WeightsError(f"{path} is not a state dict")
    _check_shapes(model, state, path)
    model.set_state_dict({k: v for k, v in state.items() if k in model.state_dict()})


def read_weights(prefix):
    """(state dict, file used) of PREFIX as load_weights reads it, without building a model."""
    path = resolve_weights(prefix)
    state = load_state_file(path, "weights file")
    if not isinstance(state, dict):
        raise WeightsError(f"{path} is not a state dict")
    return state, path


def load_weights(model, prefix):
    """Load PREFIX (.safetensors preferred, see resolve_weights) into model; returns the file used."""
    path = resolve_weights(prefix)
    set_weights(model, load_state_file(path, "weights file"), path)
    return path


# --------------------------------------------------------------------------- writing and digests


def to_numpy(state_dict):
    return {key: (value.numpy() if hasattr(value, "numpy") else np.asarray(value)) for key, value in state_dict.items()}


def paddle_bytes(obj):
    """What paddle.save writes for obj (paddle.save takes a path or a BytesIO, not an open file)."""
    import io

    import paddle

    buffer = io.BytesIO()
    paddle.save(obj, buffer)
    return buffer.getvalue()


def atomic_paddle_save(obj, path):
    atomic_write_bytes(path, paddle_bytes(obj))


def weights_digest(state_dict):
    """sha256 of a model's tensors (names, dtypes, shapes, values), the same whatever file they were
    read from: a .pdparams, its .safetensors, or the model these were exported from."""
    digest = hashlib.sha256()
    for name, array in sorted(to_numpy(state_dict).items()):
        array = np.ascontiguousarray(array)
        digest.update(f"{name}\0{array.dtype.str}\0{array.shape}\0".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


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
    """(state dict of numpy arrays, metadata dict); WeightsError naming the file when it is not valid."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(path, framework="np") as f:
            metadata = dict(f.metadata() or {})
            state = {key: f.get_tensor(key) for key in f.keys()}
    except FileNotFoundError:
        raise WeightsError(f"{what} not found: {path}") from None
    except (SafetensorError, OSError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise WeightsError(f"{what} {path} cannot be read ({reason}); the file is corrupt or not safetensors") from None
    return state, metadata


# --------------------------------------------------------------------------- the pickle check

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
    """WeightsError unless the pickle at path holds only arrays, numbers, strings and containers:
    anything else (a function, a class) is what makes a pickle run code, and is refused unread."""
    try:
        with open(path, "rb") as f:
            _RestrictedUnpickler(f, encoding="latin1").load()
    except _Refused as exc:
        raise WeightsError(f"{what} {path} is refused: its pickle refers to {exc} (pickles can run code); "
                           "if you trust its origin, convert it with tools/convert_weights.py --trust") from None
    except Exception:  # truncated or not a pickle: paddle.load will say so
        return
