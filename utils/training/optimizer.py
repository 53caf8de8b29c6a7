"""The training optimiser of the recipe, built in one place for the engine and the benchmarks."""
import paddle


def scaled_lr(base_lr, global_batch, base_batch=64):
    """Linear scaling: the recipe's lr is for a global batch of base_batch."""
    return base_lr * global_batch / base_batch


def step_decay(base_lr, global_batch, base_batch=64, step_size=50, gamma=0.5):
    """The recipe's schedule, paddle.optimizer.lr.StepDecay at the scaled lr:
    lr = base_lr * (global_batch / base_batch) * gamma ** (epoch // step_size), stepped once per epoch."""
    return paddle.optimizer.lr.StepDecay(scaled_lr(base_lr, global_batch, base_batch), step_size=step_size,
                                         gamma=gamma)


def build_optimizer(cfg, parameters, world_size=1):
    """SGD momentum with L2 weight decay; the lr scales with the global batch (the HashNet recipe,
    docs/methods.md). train.clip_grad_norm: clip the global gradient norm (None: no clipping, the
    recipe's default). Returns (optimizer, scheduler)."""
    t = cfg["train"]
    scheduler = step_decay(t["lr"], global_batch=t["batch_size"] * world_size, base_batch=t["base_batch"],
                           step_size=t["lr_decay_every"], gamma=t["lr_decay_gamma"])
    optimizer = paddle.optimizer.Momentum(
        learning_rate=scheduler, momentum=t["momentum"], parameters=parameters,
        weight_decay=paddle.regularizer.L2Decay(t["weight_decay"]),
        grad_clip=paddle.nn.ClipGradByGlobalNorm(t["clip_grad_norm"]) if t["clip_grad_norm"] else None)
    return optimizer, scheduler
