"""Weights and training-state files: `<prefix>.pdparams` (model) + `<prefix>.pdopt` (the rest).

The .pdopt holds the optimizer, the LR scheduler, the loss's memory of training codes, the
epoch and the best mAP, so a resumed run continues exactly. Crash safety:
- every file is written atomically (utils.fileio: temp file + fsync + rename + folder fsync);
- the .pdopt records the sha256 of the .pdparams it belongs to, so a pair torn by a crash
  between the two writes is detected rather than silently mixed;
- before a checkpoint is overwritten, the previous complete pair is kept as `<prefix>.prev.*`
  (a hard link, no copy), and `load_checkpoint` falls back to it when `<prefix>` is corrupt;
- a checkpoint generation (.pdparams, .pdopt, .safetensors, and the run's config_<K>.yaml) is
  written to complete temp files first; only then do the current files become the previous
  generation and the new ones take their names. A write that fails (disk full, `ulimit -f`,
  quota, read-only folder) leaves every existing file as it was and ends as one WriteError line.
Released weights are also written as `<prefix>.safetensors` (no pickle; see utils.weights),
which `load_weights` prefers. .pdparams/.pdopt are pickles: they are read only after an
allowlist check (utils.weights.check_pickle); still, load only files you trust.
"""
import hashlib
import os

from utils.errors import UserError
from utils.fileio import atomic_link_or_copy, commit_staged, fsync_folder, paddle_bytes, stage_bytes

WEIGHT_SUFFIXES = (".pdparams", ".safetensors")
PREVIOUS = ".prev"  # <prefix>.prev.pdparams/.pdopt: the generation before <prefix>

_verified = set()  # checkpoint prefixes this process wrote or checked: safe to keep as the previous one
_swept = set()  # prefixes whose leftover temp files this process has removed (once, before its first save)


def weights_path(prefix):
    """Accept `output/model_best_64` or `output/model_best_64.pdparams`."""
    return prefix if prefix.endswith(".pdparams") else prefix + ".pdparams"


def state_path(prefix):
    return weights_path(prefix)[: -len(".pdparams")] + ".pdopt"


def strip_suffix(prefix):
    for suffix in WEIGHT_SUFFIXES:
        if prefix.endswith(suffix):
            return prefix[: -len(suffix)]
    return prefix


def resolve_weights(prefix):
    """The weights file for PREFIX: as given when it names a file, else PREFIX.safetensors when it
    exists (no code runs on load), else PREFIX.pdparams."""
    if prefix.endswith(WEIGHT_SUFFIXES):
        return prefix
    if os.path.isfile(prefix + ".safetensors"):
        return prefix + ".safetensors"
    return prefix + ".pdparams"


def _load(path, what, trust_pickle=False):
    if path.endswith(".safetensors"):
        from utils.weights import load_safetensors

        return load_safetensors(path, what)[0]
    import paddle

    if not os.path.isfile(path):
        raise UserError(f"{what} not found: {path}")
    if not trust_pickle:
        from utils.weights import check_pickle

        check_pickle(path, what)  # paddle.load runs any code a crafted pickle names
    try:
        return paddle.load(path)
    except Exception as exc:  # paddle raises many kinds for a truncated/corrupt file
        raise UserError(f"{what} {path} cannot be read ({type(exc).__name__}); the file is corrupt or not a Paddle file") from None


def _check_shapes(model, state, path):
    expected = model.state_dict()
    hash_first = sorted(expected, key=lambda k: not k.startswith("hash_layer."))  # the bit count: the likeliest slip
    for key in hash_first:
        param = expected[key]
        if key in state and list(state[key].shape) != list(param.shape):
            got_bit, want_bit = state[key].shape[-1], param.shape[-1]
            if key.startswith("hash_layer.") and got_bit != want_bit:
                raise UserError(f"{path} holds a {got_bit}-bit model but --bit is {want_bit}")
            raise UserError(f"{path}: tensor {key} has shape {list(state[key].shape)}, the model expects "
                            f"{list(param.shape)}; is it for another backbone or model.fc_dim?")
    missing = [k for k in expected if k not in state]
    if missing:
        raise UserError(f"{path} does not hold this model's weights (missing {len(missing)} tensors, "
                        f"e.g. {missing[0]}); is it for another backbone?")


def _set_weights(model, state, path):
    if not isinstance(state, dict):
        raise UserError(f"{path} is not a state dict")
    _check_shapes(model, state, path)
    model.set_state_dict({k: v for k, v in state.items() if k in model.state_dict()})


def read_weights(prefix):
    """(state dict, file used) of PREFIX as load_weights reads it, without building a model."""
    path = resolve_weights(prefix)
    state = _load(path, "weights file")
    if not isinstance(state, dict):
        raise UserError(f"{path} is not a state dict")
    return state, path


def load_weights(model, prefix):
    """Load PREFIX (.safetensors preferred, see resolve_weights) into model; returns the file used."""
    path = resolve_weights(prefix)
    _set_weights(model, _load(path, "weights file"), path)
    return path


def load_backbone_weights(backbone, source, logger=None):
    """ImageNet weights for the backbone: a local .pdparams, or "imagenet" (paddle.vision download)."""
    from models.alexnet import IMAGENET_WEIGHTS_MD5, IMAGENET_WEIGHTS_URL

    # paddle.vision's (url, md5) for this network; the AlexNet backbone does not declare its own
    url, expected_md5 = getattr(backbone, "imagenet_weights", (IMAGENET_WEIGHTS_URL, IMAGENET_WEIGHTS_MD5))
    if source == "imagenet":
        from paddle.utils.download import get_weights_path_from_url

        path = get_weights_path_from_url(url, expected_md5)  # md5-checked by paddle
    else:
        path = source
        if logger and os.path.isfile(path):
            import hashlib

            with open(path, "rb") as f:
                md5 = hashlib.md5(f.read()).hexdigest()
            known = "matches" if md5 == expected_md5 else "differs from"
            logger.info(f"backbone weights {path}: md5 {md5} {known} paddle.vision's {os.path.basename(url)}")
    state = _load(path, "backbone weights", trust_pickle=source == "imagenet")  # md5-checked download
    own = backbone.state_dict()
    loaded = [k for k in own if k in state and list(state[k].shape) == list(own[k].shape)]
    wrong_shape = [k for k in own if k in state and k not in loaded]
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    if not loaded:
        raise UserError(f"{path}: no tensor matches the backbone (is it a .pdparams of paddle.vision's "
                        f"{os.path.basename(url)}?)")
    backbone.set_state_dict({k: state[k] for k in loaded})
    if logger:
        logger.info(f"backbone weights {path}: loaded {len(loaded)}, missing {missing or 'none'}, "
                    f"shape mismatch {wrong_shape or 'none'}, unused {unexpected or 'none'}")
    return path


def _rename_accumulators(state, mapping):
    """Re-key optimizer accumulators (`<param name>_velocity_0`) through mapping (old -> new prefix).

    Paddle keys them by generated parameter names (conv2d_10.w_0), which depend on how many
    layers the process built before; checkpoints use the model's structured names instead.
    """
    names = sorted(mapping, key=len, reverse=True)
    renamed = {}
    for key, value in state.items():
        for name in names:
            if key.startswith(name + "_"):
                key = mapping[name] + key[len(name):]
                break
        renamed[key] = value
    return renamed


def optimizer_state(model, optimizer):
    mapping = {p.name: "@" + structured for structured, p in model.named_parameters()}
    return _rename_accumulators(optimizer.state_dict(), mapping)


def set_optimizer_state(model, optimizer, state):
    mapping = {"@" + structured: p.name for structured, p in model.named_parameters()}
    optimizer.set_state_dict(_rename_accumulators(state, mapping))


def _sha256(data):
    return hashlib.sha256(data).hexdigest()


def _remove_leftover_temp_files(prefix, others=()):
    """Temp files of writes a crash interrupted (hidden `.<name>.*.tmp` / `.link`); never read."""
    import glob

    for path in (weights_path(prefix), state_path(prefix), prefix + ".safetensors", *others):
        folder, name = os.path.split(path)
        for leftover in glob.glob(os.path.join(glob.escape(folder), "." + glob.escape(name) + ".*")):
            if leftover.endswith((".tmp", ".link")):
                os.unlink(leftover)


def _remove_pair(prefix):
    for path in (weights_path(prefix), state_path(prefix)):
        if os.path.isfile(path):
            os.unlink(path)


def save_checkpoint(prefix, model, extra_state, release=False, files=None):
    """Write PREFIX.pdparams + .pdopt (and with release, PREFIX.safetensors), keeping the previous
    complete pair as PREFIX.prev.*; `files` ({path: bytes}, e.g. the run's config_<K>.yaml) belong
    to the same generation. At every instant a complete, verifiable pair exists on disk.

    Every new file is first written to a complete temp file; a failure there (WriteError: disk
    full, file size limit, read-only folder) changes nothing on disk. Only then does the current
    pair become PREFIX.prev and do the new files take their names (one rename each)."""
    from utils.weights import safetensors_bytes

    prefix = os.path.abspath(prefix)
    previous = prefix + PREVIOUS
    files = {os.path.abspath(path): data for path, data in (files or {}).items()}
    if prefix not in _swept:  # the first save of this process: clear what a crash may have left
        _remove_leftover_temp_files(prefix, files)
        _remove_leftover_temp_files(previous)
        _swept.add(prefix)
    state_dict = model.state_dict()
    weights = paddle_bytes(state_dict)
    new = [(weights_path(prefix), weights),
           (state_path(prefix), paddle_bytes({**extra_state, "weights_sha256": _sha256(weights)}))]
    if release:
        metadata = {k: extra_state[k] for k in ("bit", "backbone") if k in extra_state}
        new.append((prefix + ".safetensors", safetensors_bytes(state_dict, metadata)))
    new += list(files.items())  # the config last: never newer than the weights it describes
    staged = []
    try:
        for path, data in new:  # the whole generation on disk before anything is replaced
            staged.append(stage_bytes(path, data))
        if prefix in _verified:  # the current pair is complete: it becomes the fallback
            atomic_link_or_copy(weights_path(prefix), weights_path(previous))
            atomic_link_or_copy(state_path(prefix), state_path(previous))
            _verified.add(previous)
        elif previous not in _verified:  # a pair from some other run: never fall back to it
            _remove_pair(previous)
        if release and os.path.isfile(prefix + ".safetensors"):
            os.unlink(prefix + ".safetensors")  # never leave released weights older than the .pdparams
        for item in staged:
            commit_staged(item)
        fsync_folder(os.path.dirname(prefix))
    finally:
        for item in staged:
            item.discard()  # what was not committed (after a failure)
    _verified.add(prefix)


def load_training_state(prefix):
    return _load(state_path(prefix), "training state")


def _load_pair(model, prefix):
    """Training state of a complete pair, its weights put into model; UserError naming the bad file."""
    path = weights_path(prefix)
    if not os.path.isfile(path):
        raise UserError(f"checkpoint not found: {path}")
    with open(path, "rb") as f:
        data = f.read()
    state = _load(state_path(prefix), "training state")
    if not isinstance(state, dict) or "epoch" not in state:
        raise UserError(f"training state {state_path(prefix)} is not a checkpoint of this project")
    recorded = state.get("weights_sha256")
    if recorded is not None and recorded != _sha256(data):
        raise UserError(f"{path} does not belong to {state_path(prefix)} (a write was interrupted between them)")
    _set_weights(model, _load(path, "checkpoint weights"), path)
    return state


def load_checkpoint(model, prefix, logger=None):
    """(training state, prefix used) of PREFIX, or of PREFIX.prev when PREFIX is corrupt or torn;
    the weights are put into model. Says which file was bad and that the fallback was used."""
    prefix = strip_suffix(prefix)
    try:
        state = _load_pair(model, prefix)
        used = prefix
    except UserError as exc:
        previous = prefix + PREVIOUS
        if not os.path.isfile(weights_path(previous)):
            raise UserError(f"{exc}; no previous checkpoint {weights_path(previous)} to fall back to") from None
        try:
            state = _load_pair(model, previous)
        except UserError as exc2:
            raise UserError(f"{exc}; the previous checkpoint is unusable too: {exc2}") from None
        used = previous
        message = (f"{exc}; falling back to the previous checkpoint {weights_path(previous)} "
                   f"(epoch {state['epoch'] + 1})")
        if logger:
            logger.warning(message)
        else:
            import sys

            print(f"warning: {message}", file=sys.stderr)
    _verified.add(os.path.abspath(used))
    return state, used
