"""The training optimiser of the recipe, built in one place for the engine and the benchmarks."""
import paddle

from utils.scheduler import ScaledStepDecay


def build_optimizer(cfg, parameters, world_size=1):
    """SGD momentum with L2 weight decay; the lr scales with the global batch (DESIGN.md section 4).
    train.clip_grad_norm: clip the global gradient norm (None: no clipping, the recipe's default)."""
    t = cfg["train"]
    scheduler = ScaledStepDecay(t["lr"], global_batch=t["batch_size"] * world_size, base_batch=t["base_batch"],
                                step_size=t["lr_decay_every"], gamma=t["lr_decay_gamma"])
    optimizer = paddle.optimizer.Momentum(
        learning_rate=scheduler, momentum=t["momentum"], parameters=parameters,
        weight_decay=paddle.regularizer.L2Decay(t["weight_decay"]),
        grad_clip=paddle.nn.ClipGradByGlobalNorm(t["clip_grad_norm"]) if t["clip_grad_norm"] else None)
    return optimizer, scheduler
