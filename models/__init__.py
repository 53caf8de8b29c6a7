"""Model registry: backbones and heads are picked by name from plain dicts."""
from models.alexnet import AlexNetBackbone
from models.hashnet import CodeHead, HashNet, codes_from_logits

BACKBONES = {
    "alexnet": AlexNetBackbone,
}

MODELS = {
    "hashnet": HashNet,
}


def build_model(cfg):
    """Build the network described by cfg['model'] (a resolved config dict)."""
    from utils.errors import UserError

    mcfg = cfg["model"]
    if mcfg["backbone"] not in BACKBONES:
        raise UserError(f"model.backbone: unknown backbone {mcfg['backbone']!r}; choose from {sorted(BACKBONES)}")
    if mcfg["name"] not in MODELS:
        raise UserError(f"model.name: unknown model {mcfg['name']!r}; choose from {sorted(MODELS)}")
    backbone = BACKBONES[mcfg["backbone"]](dropout=mcfg["dropout"], fc_dim=mcfg["fc_dim"],
                                         batch_norm=mcfg["batch_norm"])
    return MODELS[mcfg["name"]](backbone, bit=mcfg["bit"], hash_lr_mult=mcfg["hash_lr_mult"],
                                hash_bias_lr_mult=mcfg["hash_bias_lr_mult"])


__all__ = ["BACKBONES", "MODELS", "build_model", "CodeHead", "codes_from_logits"]
