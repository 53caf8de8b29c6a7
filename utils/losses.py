"""Hashing losses, picked by name from LOSSES."""
import math

import paddle
from paddle import nn


def epoch_beta(epoch, beta_step=20):
    """Paddle/PyTorch re-implementations: beta = sqrt(epoch // beta_step + 1)."""
    return math.sqrt(epoch // beta_step + 1)


def caffe_beta(iteration, gamma=0.005, power=0.5, step=200):
    """Original Caffe HashNet: beta = (1 + gamma * iter) ** power, updated every `step` iterations."""
    return (1.0 + gamma * (iteration // step * step)) ** power


class HashNetLoss(nn.Layer):
    """HashNet (Cao et al., ICCV 2017): weighted pairwise log-likelihood with continuation.

    Pairs are (batch item, memory item), where the memory holds the latest tanh codes and
    labels of every training image seen so far (the batch is written into it first), so each
    step sees far more pairs than a batch alone. Pair weights: "balanced" (Paddle reproduction)
    weights similar and dissimilar pairs S/S1 and S/S0 so the rarer class (usually "similar")
    is not drowned out; "constant" (Caffe) weights similar pairs by similar_weight (its
    class_num) and normalises by S1 * similar_weight + S0.
    The loss owns beta, h = tanh(beta * z): per epoch (continuation="epoch") or per iteration
    (continuation="iteration", the Caffe schedule).
    """

    def __init__(self, num_train, bit, num_classes, alpha=0.1, beta_step=20, comm=None, continuation="epoch",
                 beta_gamma=0.005, beta_power=0.5, beta_step_iters=200, pair_weighting="balanced",
                 similar_weight=1.0):
        super().__init__()
        # Data-parallel runs: every rank writes every rank's batch into its memory, and the
        # pair counts S1/S0 are global, so the sum of the ranks' losses is the one-process loss.
        self.comm = comm
        self.alpha = 10.0 / bit if alpha is None else alpha  # None: Caffe's 10 / K
        self.beta_step = beta_step
        self.continuation = continuation
        self.caffe_schedule = {"gamma": beta_gamma, "power": beta_power, "step": beta_step_iters}
        self.pair_weighting = pair_weighting
        self.similar_weight = similar_weight
        self.beta = 1.0
        dtype = paddle.get_default_dtype()
        self.register_buffer("memory_codes", paddle.zeros([num_train, bit], dtype=dtype))
        self.register_buffer("memory_labels", paddle.zeros([num_train, num_classes], dtype=dtype))
        self.register_buffer("memory_filled", paddle.zeros([num_train], dtype=dtype))

    def on_epoch_start(self, epoch):
        if self.continuation == "epoch":
            self.beta = epoch_beta(epoch, self.beta_step)

    def on_step(self, iteration):
        """Called before every training step with the global iteration count (from 0)."""
        if self.continuation == "iteration":
            self.beta = caffe_beta(iteration, **self.caffe_schedule)

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
        if self.pair_weighting == "constant":
            total = s1 * self.similar_weight + s0
            weights = (similar * self.similar_weight + (1 - similar)) * valid
            return (nll * weights).sum() / total
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
    options = {k: v for k, v in lcfg.items() if k != "name"}
    return LOSSES[lcfg["name"]](num_train=num_train, bit=cfg["model"]["bit"], num_classes=num_classes, comm=comm,
                                **options)
