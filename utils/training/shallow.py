"""Fitting a shallow method (ITQ, PCAH, LSH, spectral hashing: utils/losses/shallow.py) into a model.

The backbone is whatever the config gives: untrained (seeded), ImageNet weights (model.backbone_weights), or
the backbone of any trained model of this project (model.backbone_weights: its .pdparams / .safetensors).
Its features of the training images (the test transform: no augmentation) go to the numpy fit of
utils/evaluation/baselines.py, whose affine form (W, b) becomes the head's fc layer: the linear head then
gives sign(x W + b), the spectral head sign(cos(x W + b)). The engine evaluates and saves the model like a
trained one, so export_model.py, predict.py, infer.py and the service use it unchanged. Every rank fits on
all the training images, so data-parallel ranks hold the same model.
"""
import time

import numpy as np
import paddle

from utils.data.loader import build_dataloader
from utils.evaluation.baselines import BASELINES
from utils.losses import loss_class
from utils.runtime.log import open_log_files
from utils.training.checkpoint import save_checkpoint
from utils.training.folder_guard import mark_unfinished


@paddle.no_grad()
def training_features(model, dataset, batch_size=64, num_workers=0):
    """Backbone features (float64 [n, D]) of every image of the data set, in order, in eval mode."""
    was_training = model.training
    model.eval()
    loader = build_dataloader(dataset, min(batch_size, len(dataset)), shuffle=False, drop_last=False,
                              num_workers=num_workers)
    features = [model.backbone(images).numpy().astype(np.float64) for images, _, _ in loader]
    if was_training:
        model.train()
    return np.concatenate(features)


def fit_shallow(cfg, model, data, logger):
    """Fit loss.name on the training images' backbone features and write it into model's fc layer.
    Returns what was fitted: {method, images, feature_dim, seconds}."""
    start = time.time()
    name = cfg["loss"]["name"]
    method = loss_class(name)
    features = training_features(model, data.train_set, max(cfg["train"]["batch_size"], 32),
                                 cfg["dataset"]["num_workers"])
    options = {k: v for k, v in cfg["loss"].items() if k != "name"}
    fitted = BASELINES[method.FIT](features, cfg["model"]["bit"], seed=cfg["train"]["seed"], **options)
    weight, bias = fitted.affine()
    dtype = model.hash_layer.weight.dtype
    model.hash_layer.weight.set_value(paddle.to_tensor(weight, dtype=dtype))
    model.hash_layer.bias.set_value(paddle.to_tensor(bias, dtype=dtype))
    seconds = time.time() - start
    logger.info(f"fitted {name} on the backbone features of {len(features)} training images "
                f"({features.shape[1]} dimensions) in {seconds:.1f}s")
    return {"method": name, "images": len(features), "feature_dim": int(features.shape[1]), "seconds": seconds}


def fit_run(engine):
    """Engine.fit: fit, evaluate, and save the best and last checkpoints (the same model) with the config,
    as a trained run's; returns the result Engine.train() returns."""
    s, bit, name = engine.state, engine.bit, engine.cfg["loss"]["name"]
    s.history["fitted"] = fit_shallow(engine.cfg, engine.model, engine.data, engine.logger)
    result = engine.evaluate()
    engine._log_eval(f"fitted {name}", result)
    s.best = {"map": result["map"], "select": 0.0, "precision_r2": result["precision_r2"], "epoch": 1,
              "codes": result["codes"]}
    s.best_codes = s.last_codes
    state = {"epoch": 0, "best": s.best, "history": s.history, "bit": bit, "fitted": name,
             "backbone": engine.cfg["model"]["backbone"]}
    for kind in ("best", "last") if engine.rank == 0 and engine.save_checkpoints else ():
        save_checkpoint(engine.folder.checkpoint(kind, bit), engine.model, state, release=kind == "best",
                        files=engine._config_file())
        mark_unfinished(engine.folder, bit)  # the weights of this run now: not an earlier finished run's
    if engine.rank == 0:
        open_log_files(engine.logger)
    return {"map": result["map"], "best_epoch": 1, "history": s.history, "precision_r2": result["precision_r2"],
            "epoch_seconds": [], "warnings": engine.health.warnings}
