"""Short-to-long code training (`--init-from PREFIX`): a K-bit model started from a trained K1-bit one.

DSH (Liu, Wang, Shan, Chen, "Deep Supervised Hashing for Fast Image Retrieval", CVPR 2016) suggests
it against overfitting at long codes: train the short code first, then start the network of the
longer code from it instead of from scratch. Here the backbone (every tensor, BatchNorm statistics
included) and the first K1 output units of the hash layer are copied; hash units K1..K-1 and any
classifier keep the initialisation the network was just built with. paddle's Linear keeps its
weight as [in, K], so the first K1 output units are the first K1 *columns* of the weight and the
first K1 entries of the bias. In eval mode the first K1 bits of every code then equal the K1-bit
model's codes before the first training step.

The copy runs after the network is built (and its random draws made), so a run without the flag
draws exactly what it drew before.
"""
import os

import numpy as np

from utils.errors import WeightsError
from utils.storage.run_folder import RunFolder
from utils.storage.weights import read_weights, resolve_weights

HASH_WEIGHT, HASH_BIAS = "hash_layer.weight", "hash_layer.bias"


def _array(value):
    return value.numpy() if hasattr(value, "numpy") else np.asarray(value)


def _check_backbone(own, state, path, backbone_name):
    keys = [k for k in own if k.startswith("backbone.")]
    theirs = [k for k in state if k.startswith("backbone.")]
    missing = [k for k in keys if k not in state]
    extra = [k for k in theirs if k not in own]
    wrong = [k for k in keys if k in state and list(_array(state[k]).shape) != list(own[k].shape)]
    if missing or extra or wrong:
        what = (f"missing {len(missing)} of its tensors, e.g. {missing[0]}" if missing else
                f"{len(extra)} tensors it does not have, e.g. {extra[0]}" if extra else
                f"tensor {wrong[0]} is {list(_array(state[wrong[0]]).shape)}, here {list(own[wrong[0]].shape)}")
        raise WeightsError(f"--init-from {path}: a different backbone than model.backbone {backbone_name} "
                           f"({what}); start from a model of the same backbone and model.fc_dim")
    return keys


def init_from_shorter(model, prefix, backbone_name="?"):
    """Copy the backbone and the first K1 hash units of the K1-bit weights PREFIX into `model`
    (K bits, K1 <= K). Returns the one-line report; WeightsError (one line) for a missing file,
    K1 > K, a different backbone or weights without a hash layer."""
    if not os.path.isfile(resolve_weights(prefix)):
        raise WeightsError(f"--init-from: weights not found: {resolve_weights(prefix)} (give the prefix of a "
                           f"trained shorter-code model, e.g. {RunFolder('output16').best(16)})")
    state, path = read_weights(prefix)
    own = model.state_dict()
    if HASH_WEIGHT not in state or HASH_BIAS not in state:
        raise WeightsError(f"--init-from {path}: no {HASH_WEIGHT}/{HASH_BIAS}: not the weights of a hash model "
                           f"of this project")
    weight, bias = _array(state[HASH_WEIGHT]), _array(state[HASH_BIAS])
    own_weight, own_bias = _array(own[HASH_WEIGHT]), _array(own[HASH_BIAS])
    if weight.ndim != 2 or bias.shape != (weight.shape[1],):
        raise WeightsError(f"--init-from {path}: {HASH_WEIGHT} {list(weight.shape)} and {HASH_BIAS} "
                           f"{list(bias.shape)} do not make a hash layer")
    short, bit = weight.shape[1], own_weight.shape[1]
    if short > bit:
        raise WeightsError(f"--init-from {path}: a {short}-bit model cannot start a {bit}-bit one (its code is "
                           f"longer; --init-from takes a shorter code, K1 <= K)")
    backbone_keys = _check_backbone(own, state, path, backbone_name)
    if weight.shape[0] != own_weight.shape[0]:
        raise WeightsError(f"--init-from {path}: its hash layer takes {weight.shape[0]} features, this backbone "
                           f"gives {own_weight.shape[0]}; start from a model of the same backbone and model.fc_dim")
    new_weight, new_bias = own_weight.copy(), own_bias.copy()
    new_weight[:, :short] = weight
    new_bias[:short] = bias
    update = {k: _array(state[k]) for k in backbone_keys}
    update[HASH_WEIGHT], update[HASH_BIAS] = new_weight, new_bias
    model.set_state_dict(update)
    rest = f"; hash units {short}..{bit - 1}" if short < bit else ""
    others = [k for k in own if not k.startswith("backbone.") and k not in (HASH_WEIGHT, HASH_BIAS)]
    kept = (rest + (" and " if rest else "; ") + "the classifier") if others else rest
    return (f"init-from {path}: copied the backbone ({len(backbone_keys)} tensors) and hash units 0..{short - 1} "
            f"of the {short}-bit model into this {bit}-bit one{kept + ' initialised as usual' if kept else ''}")
