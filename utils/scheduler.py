"""Learning-rate schedule of the Paddle HashNet reproduction."""
from paddle.optimizer.lr import LRScheduler


def scaled_lr(base_lr, global_batch, base_batch=64):
    """Linear scaling: the recipe's lr is for a global batch of base_batch."""
    return base_lr * global_batch / base_batch


class ScaledStepDecay(LRScheduler):
    """lr = base_lr * (global_batch / base_batch) * gamma ** (epoch // step_size); stepped once per epoch."""

    def __init__(self, base_lr, global_batch, base_batch=64, step_size=50, gamma=0.5, last_epoch=-1):
        self.step_size = step_size
        self.gamma = gamma
        super().__init__(scaled_lr(base_lr, global_batch, base_batch), last_epoch)

    def get_lr(self):
        return self.base_lr * self.gamma ** (self.last_epoch // self.step_size)
