"""The training optimiser of the recipe, built in one place for the engine and the benchmarks."""
import fnmatch

import paddle

from utils.config.validate import check_param_group_rules
from utils.errors import ConfigError


def scaled_lr(base_lr, global_batch, base_batch=64):
    """Linear scaling: the recipe's lr is for a global batch of base_batch."""
    return base_lr * global_batch / base_batch


def step_decay(base_lr, global_batch, base_batch=64, step_size=50, gamma=0.5):
    """The recipe's schedule, paddle.optimizer.lr.StepDecay at the scaled lr:
    lr = base_lr * (global_batch / base_batch) * gamma ** (epoch // step_size), stepped once per epoch."""
    return paddle.optimizer.lr.StepDecay(scaled_lr(base_lr, global_batch, base_batch), step_size=step_size,
                                         gamma=gamma)


def build_scheduler(t, global_batch):
    """train.lr_schedule at the scaled lr, stepped once per epoch: step (step_decay, the recipe) or
    cosine (paddle's CosineAnnealingDecay to 0 over the epochs after the warm-up, PaddleClas's
    `Cosine`); train.warmup_epochs > 0 puts paddle's LinearWarmup from 0 in front (PaddleClas's
    warmup_epoch; it steps per iteration, this per epoch)."""
    lr = scaled_lr(t["lr"], global_batch, t["base_batch"])
    if t["lr_schedule"] == "cosine":
        scheduler = paddle.optimizer.lr.CosineAnnealingDecay(lr, T_max=max(1, t["epochs"] - t["warmup_epochs"]))
    else:
        scheduler = step_decay(t["lr"], global_batch=global_batch, base_batch=t["base_batch"],
                               step_size=t["lr_decay_every"], gamma=t["lr_decay_gamma"])
    if t["warmup_epochs"]:
        scheduler = paddle.optimizer.lr.LinearWarmup(scheduler, warmup_steps=t["warmup_epochs"], start_lr=0.0,
                                                     end_lr=lr)
    return scheduler


def resolve_param_groups(rules, named_parameters, weight_decay):
    """(lr multiplier, weight decay) of every parameter: the first rule whose `match` glob matches
    its structured name (model.named_parameters(): `hash_layer.bias`, `backbone._conv._conv.weight`)
    sets them; a key the rule leaves out, and every parameter no rule matches, keep the model's own
    multiplier (its ParamAttr learning_rate, e.g. model.hash_lr_mult) and the global train.weight_decay.
    Returns [(name, parameter, lr_mult, weight_decay)]; a rule that matches nothing is a ConfigError."""
    used = [0] * len(rules)
    resolved = []
    for name, param in named_parameters:
        lr_mult, decay = float(param.optimize_attr["learning_rate"]), float(weight_decay)
        for i, rule in enumerate(rules):
            if fnmatch.fnmatchcase(name, rule["match"]):
                used[i] += 1
                lr_mult = float(rule.get("lr_mult", lr_mult))
                decay = float(rule.get("weight_decay", decay))
                break
        resolved.append((name, param, lr_mult, decay))
    for i, count in enumerate(used):
        if not count:
            examples = ", ".join(name for name, *_ in resolved[:3])
            raise ConfigError(f"train.param_groups[{i}].match: {rules[i]['match']!r} matches no parameter that an "
                              f"earlier rule has not taken (names look like: {examples}, ...)")
    return resolved


def _parameter_groups(rules, named_parameters, weight_decay):
    """paddle parameter groups, one per distinct (lr_mult, weight_decay), in first-parameter order."""
    groups = {}
    for _, param, lr_mult, decay in resolve_param_groups(rules, named_parameters, weight_decay):
        groups.setdefault((lr_mult, decay), []).append(param)
    return [{"params": params, "learning_rate": lr_mult, "weight_decay": paddle.regularizer.L2Decay(decay)}
            for (lr_mult, decay), params in groups.items()]


def build_optimizer(cfg, parameters, world_size=1):
    """SGD momentum with L2 weight decay; the lr scales with the global batch and follows
    train.lr_schedule (build_scheduler; the HashNet recipe's step decay by default, docs/methods.md).
    parameters: model.named_parameters() (or a plain list of parameters when train.param_groups is
    empty). train.param_groups: per-parameter lr multipliers and weight decays (resolve_param_groups;
    Caffe's lr_mult / decay_mult); without rules the optimizer is built exactly as before them.
    train.clip_grad_norm: clip the global gradient norm (None: no clipping, the recipe's default).
    Returns (optimizer, scheduler)."""
    t = cfg["train"]
    scheduler = build_scheduler(t, t["batch_size"] * world_size)
    items = list(parameters)
    named = bool(items) and isinstance(items[0], tuple)
    rules = t["param_groups"]
    if rules:
        if not named:
            raise TypeError("build_optimizer: train.param_groups needs model.named_parameters()")
        check_param_group_rules(rules)
        items = _parameter_groups(rules, items, t["weight_decay"])
    elif named:
        items = [param for _, param in items]
    optimizer = paddle.optimizer.Momentum(
        learning_rate=scheduler, momentum=t["momentum"], parameters=items,
        weight_decay=paddle.regularizer.L2Decay(t["weight_decay"]),
        grad_clip=paddle.nn.ClipGradByGlobalNorm(t["clip_grad_norm"]) if t["clip_grad_norm"] else None)
    return optimizer, scheduler
