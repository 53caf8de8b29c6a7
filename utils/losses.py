"""Hashing losses, picked by name from LOSSES."""
import math

import paddle
from paddle import nn


class HashNetLoss(nn.Layer):
    """HashNet (Cao et al., ICCV 2017): weighted pairwise log-likelihood with continuation.

    Pairs are (batch item, memory item), where the memory holds the latest tanh codes and
    labels of every training image seen so far (the batch is written into it first), so each
    step sees far more pairs than a batch alone. Similar and dissimilar pairs are weighted
    S/S1 and S/S0 so the rarer class (usually "similar") is not drowned out.
    The loss owns beta: h = tanh(beta * z), beta = sqrt(epoch // beta_step + 1).
    """

    def __init__(self, num_train, bit, num_classes, alpha=0.1, beta_step=20, comm=None):
        super().__init__()
        # Data-parallel runs: every rank writes every rank's batch into its memory, and the
        # pair counts S1/S0 are global, so the sum of the ranks' losses is the one-process loss.
        self.comm = comm
        self.alpha = alpha
        self.beta_step = beta_step
        self.beta = 1.0
        dtype = paddle.get_default_dtype()
        self.register_buffer("memory_codes", paddle.zeros([num_train, bit], dtype=dtype))
        self.register_buffer("memory_labels", paddle.zeros([num_train, num_classes], dtype=dtype))
        self.register_buffer("memory_filled", paddle.zeros([num_train], dtype=dtype))

    def on_epoch_start(self, epoch):
        self.beta = math.sqrt(epoch // self.beta_step + 1)

    def update_memory(self, codes, labels, indices):
        """Write detached codes/labels at their dataset indices (all ranks' items in multi-process runs)."""
        with paddle.no_grad():
            dtype = self.memory_codes.dtype
            self.memory_codes[indices] = codes.detach().astype(dtype)
            self.memory_labels[indices] = labels.astype(dtype)
            self.memory_filled[indices] = paddle.ones([indices.shape[0]], dtype=dtype)

    def forward(self, z, labels, indices):
        h = paddle.tanh(self.beta * z)
        if self.comm is not None and self.comm.active:
            self.update_memory(self.comm.gather(h.detach()), self.comm.gather(labels), self.comm.gather(indices))
        else:
            self.update_memory(h, labels, indices)
        similar = (paddle.matmul(labels, self.memory_labels, transpose_y=True) > 0).astype("float32")
        valid = self.memory_filled.unsqueeze(0).expand_as(similar)
        theta = self.alpha * paddle.matmul(h, self.memory_codes, transpose_y=True)
        # log(1 + exp(theta)) - s * theta, stable for any theta.
        nll = paddle.log1p(paddle.exp(-paddle.abs(theta))) + paddle.clip(theta, min=0) - similar * theta
        s1 = (similar * valid).sum()
        s0 = ((1 - similar) * valid).sum()
        if self.comm is not None and self.comm.active:
            s1, s0 = self.comm.sum(s1), self.comm.sum(s0)
        total = s0 + s1
        w_sim = paddle.where(s1 > 0, total / paddle.clip(s1, min=1.0), paddle.zeros_like(s1))
        w_dis = paddle.where(s0 > 0, total / paddle.clip(s0, min=1.0), paddle.zeros_like(s0))
        weights = (similar * w_sim + (1 - similar) * w_dis) * valid
        return (nll * weights).sum() / total


LOSSES = {
    "hashnet": HashNetLoss,
}


def build_loss(cfg, num_train, num_classes, comm=None):
    from utils.errors import UserError

    lcfg = cfg["loss"]
    if lcfg["name"] not in LOSSES:
        raise UserError(f"loss.name: unknown loss {lcfg['name']!r}; choose from {sorted(LOSSES)}")
    return LOSSES[lcfg["name"]](num_train=num_train, bit=cfg["model"]["bit"], num_classes=num_classes,
                                alpha=lcfg["alpha"], beta_step=lcfg["beta_step"], comm=comm)
