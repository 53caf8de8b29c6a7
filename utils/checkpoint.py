"""Weights and training-state files: `<prefix>.pdparams` (model) + `<prefix>.pdopt` (the rest).

Both are written atomically. The .pdopt holds the optimizer, the LR scheduler, the loss's
memory of training codes, the epoch and the best mAP, so a resumed run continues exactly.
"""
import os

from utils.errors import UserError
from utils.fileio import atomic_paddle_save


def weights_path(prefix):
    """Accept `output/model_best_64` or `output/model_best_64.pdparams`."""
    return prefix if prefix.endswith(".pdparams") else prefix + ".pdparams"


def state_path(prefix):
    return weights_path(prefix)[: -len(".pdparams")] + ".pdopt"


def _load(path, what):
    import paddle

    if not os.path.isfile(path):
        raise UserError(f"{what} not found: {path}")
    try:
        return paddle.load(path)
    except Exception as exc:  # paddle raises many kinds for a truncated/corrupt file
        raise UserError(f"{what} {path} cannot be read ({type(exc).__name__}); the file is corrupt or not a Paddle file") from None


def _check_shapes(model, state, path):
    expected = model.state_dict()
    for key, param in expected.items():
        if key in state and list(state[key].shape) != list(param.shape):
            if key.startswith("hash_layer."):
                got_bit, want_bit = state[key].shape[-1], param.shape[-1]
                raise UserError(f"{path} holds a {got_bit}-bit model but --bit is {want_bit}")
            raise UserError(f"{path}: tensor {key} has shape {list(state[key].shape)}, the model expects {list(param.shape)}")
    missing = [k for k in expected if k not in state]
    if missing:
        raise UserError(f"{path} does not hold this model's weights (missing {len(missing)} tensors, "
                        f"e.g. {missing[0]}); is it for another backbone?")


def load_weights(model, prefix):
    path = weights_path(prefix)
    state = _load(path, "weights file")
    if not isinstance(state, dict):
        raise UserError(f"{path} is not a state dict")
    _check_shapes(model, state, path)
    model.set_state_dict({k: v for k, v in state.items() if k in model.state_dict()})
    return path


def load_backbone_weights(backbone, source, logger=None):
    """ImageNet weights for the backbone: a local .pdparams, or "imagenet" (paddle.vision download)."""
    from models.alexnet import IMAGENET_WEIGHTS_MD5, IMAGENET_WEIGHTS_URL

    if source == "imagenet":
        from paddle.utils.download import get_weights_path_from_url

        path = get_weights_path_from_url(IMAGENET_WEIGHTS_URL, IMAGENET_WEIGHTS_MD5)  # md5-checked by paddle
    else:
        path = source
        if logger and os.path.isfile(path):
            import hashlib

            with open(path, "rb") as f:
                md5 = hashlib.md5(f.read()).hexdigest()
            known = "matches" if md5 == IMAGENET_WEIGHTS_MD5 else "differs from"
            logger.info(f"backbone weights {path}: md5 {md5} {known} paddle.vision's AlexNet_pretrained.pdparams")
    state = _load(path, "backbone weights")
    own = backbone.state_dict()
    loaded = [k for k in own if k in state and list(state[k].shape) == list(own[k].shape)]
    wrong_shape = [k for k in own if k in state and k not in loaded]
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    if not loaded:
        raise UserError(f"{path}: no tensor matches the backbone (is it an AlexNet .pdparams?)")
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


def save_checkpoint(prefix, model, extra_state):
    atomic_paddle_save(model.state_dict(), weights_path(prefix))
    atomic_paddle_save(extra_state, state_path(prefix))


def load_training_state(prefix):
    return _load(state_path(prefix), "training state")
