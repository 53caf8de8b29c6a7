"""Checkpoints of a training run: `<prefix>.pdparams` (model) + `<prefix>.pdopt` (the rest).

The .pdopt holds the optimizer, the LR scheduler, the loss's memory of training codes, the
epoch and the best mAP, so a resumed run continues exactly. Crash safety:
- every file is written atomically (utils.storage.fileio: temp file + fsync + rename + folder fsync);
- the .pdopt records the sha256 of the .pdparams it belongs to, so a pair torn by a crash
  between the two writes is detected rather than silently mixed;
- before a checkpoint is overwritten, the previous complete pair is kept as `<prefix>.prev.*`
  (a hard link, no copy), and `load_checkpoint` falls back to it when `<prefix>` is corrupt;
- a checkpoint generation (.pdparams, .pdopt, .safetensors, and the run's config_<K>.yaml) is
  written to complete temp files first; only then do the current files become the previous
  generation and the new ones take their names. A write that fails (disk full, `ulimit -f`,
  quota, read-only folder) leaves every existing file as it was and ends as one WriteError line.
Released weights are also written as `<prefix>.safetensors` (no pickle; see utils.storage.weights),
which `load_weights` prefers. .pdparams/.pdopt are pickles: they are read only after an
allowlist check (utils.storage.weights.check_pickle); still, load only files you trust.
"""
import hashlib
import os

from utils.errors import ConfigError, WeightsError
from utils.storage.fileio import atomic_link_or_copy, stage_bytes, staged_generation
from utils.storage.run_folder import previous_prefix, released_path, state_path, strip_suffix, weights_path
from utils.storage.weights import load_state_file, paddle_bytes, safetensors_bytes, set_weights

_verified = set()  # checkpoint prefixes this process wrote or checked: safe to keep as the previous one
_swept = set()  # prefixes whose leftover temp files this process has removed (once, before its first save)


def load_backbone_weights(backbone, source, logger=None):
    """Weights for the backbone: a local .pdparams of the network (ImageNet weights), the weights of a model
    of this project (.pdparams / .safetensors: its `backbone.*` tensors), or "imagenet" (paddle.vision download)."""
    # paddle.vision's (url, md5) for this network, declared by the backbone class
    url, expected_md5 = getattr(backbone, "imagenet_weights", None) or (None, None)
    if source == "imagenet":
        if url is None:
            raise ConfigError(f"model.backbone_weights imagenet: {type(backbone).__name__} declares no "
                              "paddle.vision ImageNet weights (imagenet_weights); give a local .pdparams")
        from paddle.utils.download import get_weights_path_from_url

        try:
            path = get_weights_path_from_url(url, expected_md5)  # md5-checked by paddle
        except (RuntimeError, OSError) as exc:  # offline, a proxy, a failed md5 check after its retries
            raise WeightsError(
                f"--pretrained-backbone imagenet: the download of {url} failed ({str(exc).splitlines()[0][:160]}); "
                f"download the file where there is network and give its local path: --pretrained-backbone "
                f"PATH/{os.path.basename(url)}") from None
    else:
        path = source
        if logger and os.path.isfile(path):
            with open(path, "rb") as f:
                md5 = hashlib.md5(f.read()).hexdigest()
            if url is not None:
                known = "matches" if md5 == expected_md5 else "differs from"
                logger.info(f"backbone weights {path}: md5 {md5} {known} paddle.vision's {os.path.basename(url)}")
    state = load_state_file(path, "backbone weights", trust_pickle=source == "imagenet")  # md5-checked download
    own = backbone.state_dict()
    if not any(k in state for k in own) and any(k.startswith("backbone.") for k in state):
        # the weights of a model of this project: its backbone (the head is left out)
        state = {k[len("backbone."):]: v for k, v in state.items() if k.startswith("backbone.")}
    loaded = [k for k in own if k in state and list(state[k].shape) == list(own[k].shape)]
    wrong_shape = [k for k in own if k in state and k not in loaded]
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    if not loaded:
        name = os.path.basename(url) if url else type(backbone).__name__
        raise WeightsError(f"{path}: no tensor matches the backbone (is it a .pdparams of paddle.vision's "
                           f"{name}?)")
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

    for path in (weights_path(prefix), state_path(prefix), released_path(prefix), *others):
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
    prefix = os.path.abspath(prefix)
    previous = previous_prefix(prefix)
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
        new.append((released_path(prefix), safetensors_bytes(state_dict, metadata)))
    new += list(files.items())  # the config last: never newer than the weights it describes
    with staged_generation(os.path.dirname(prefix)) as staged:
        for path, data in new:  # the whole generation on disk before anything is replaced
            staged.append(stage_bytes(path, data))
        if prefix in _verified:  # the current pair is complete: it becomes the fallback
            atomic_link_or_copy(weights_path(prefix), weights_path(previous))
            atomic_link_or_copy(state_path(prefix), state_path(previous))
            _verified.add(previous)
        elif previous not in _verified:  # a pair from some other run: never fall back to it
            _remove_pair(previous)
        if release and os.path.isfile(released_path(prefix)):
            os.unlink(released_path(prefix))  # never leave released weights older than the .pdparams
    _verified.add(prefix)


def _load_pair(model, prefix):
    """Training state of a complete pair, its weights put into model; WeightsError naming the bad file."""
    path = weights_path(prefix)
    if not os.path.isfile(path):
        raise WeightsError(f"checkpoint not found: {path}")
    with open(path, "rb") as f:
        data = f.read()
    state = load_state_file(state_path(prefix), "training state")
    if not isinstance(state, dict) or "epoch" not in state:
        raise WeightsError(f"training state {state_path(prefix)} is not a checkpoint of this project")
    recorded = state.get("weights_sha256")
    if recorded is not None and recorded != _sha256(data):
        raise WeightsError(f"{path} does not belong to {state_path(prefix)} (a write was interrupted between them)")
    set_weights(model, load_state_file(path, "checkpoint weights"), path)
    return state


def load_checkpoint(model, prefix, logger=None):
    """(training state, prefix used) of PREFIX, or of PREFIX.prev when PREFIX is corrupt or torn;
    the weights are put into model. Says which file was bad and that the fallback was used."""
    prefix = strip_suffix(prefix)
    try:
        state = _load_pair(model, prefix)
        used = prefix
    except WeightsError as exc:
        previous = previous_prefix(prefix)
        if not os.path.isfile(weights_path(previous)):
            raise WeightsError(f"{exc}; no previous checkpoint {weights_path(previous)} to fall back to") from None
        try:
            state = _load_pair(model, previous)
        except WeightsError as exc2:
            raise WeightsError(f"{exc}; the previous checkpoint is unusable too: {exc2}") from None
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
