"""HashNet loss: weighted pairwise log-likelihood with continuation (the project's default method)."""
import math

import paddle

from utils.losses.base import (CodeMemory, HashLoss, balanced_weights, check_choice, check_int, check_memory_options,
                               check_positive, log1p_exp, similarity)


def epoch_beta(epoch, beta_step=20):
    """Paddle/PyTorch re-implementations: beta = sqrt(epoch // beta_step + 1)."""
    return math.sqrt(epoch // beta_step + 1)


def caffe_beta(iteration, gamma=0.005, power=0.5, step=200):
    """Original Caffe HashNet: beta = (1 + gamma * iter) ** power, updated every `step` iterations."""
    return (1.0 + gamma * (iteration // step * step)) ** power


class HashNetLoss(CodeMemory, HashLoss):
    """HashNet (Cao et al., ICCV 2017): weighted pairwise log-likelihood with continuation.

    The paper's weighted maximum likelihood over pairs (i, j): per pair
    w_ij (log(1 + exp(theta_ij)) - s_ij theta_ij), theta_ij = alpha <h_i, h_j>, h = tanh(beta z),
    with w_ij re-weighting similar and dissimilar pairs (the paper's weighted maximum likelihood
    with w_ij = |S|/|S1| for similar and |S|/|S0| for dissimilar pairs), beta raised by continuation.
    alpha multiplies both terms, as in the paper's formula; the authors' PyTorch code
    (thuml/HashNet pytorch/src/loss.py) scales only the log(1 + exp) term and weights similar pairs
    by class_num instead (our pair_weighting: constant covers the weighting, not that omission).

    Which pairs: (batch item, memory item), where the memory holds the latest tanh codes and
    labels of every training image seen so far (the batch is written into it first).
    memory_max_age (steps; null = the whole memory, the Paddle/DeepHash-pytorch reproductions;
    0 = in-batch pairs only, as the original HashNet code) and memory_warmup_epochs (in-batch
    pairs first) bound how stale a paired code may be; self_pairs: false leaves out (i, i).
    From scratch, the stale memory drove the codes towards one saturated code (docs/methods.md
    has the measurements of each option); the lite and scratch recipes pair inside the batch,
    the COCO recipe keeps the reproductions' memory.
    Pair weights: "balanced" (Paddle reproduction) S/S1 and S/S0, normalised by S; "constant"
    (Caffe) weights similar pairs by similar_weight (its class_num) and normalises by
    S1 * similar_weight + S0. The loss owns beta: per epoch (continuation="epoch") or per
    iteration (continuation="iteration", the Caffe schedule). Multi-label: yes (s_ij = shared
    label). Data-parallel: every rank writes every rank's batch into its memory and the pair
    counts S1/S0 are global, so the sum of the ranks' losses is the one-process loss.
    """

    NAME = "hashnet"
    # HashNet is the default method (utils.config.schema.DEFAULT_METHOD): the built-in `loss` section.
    DEFAULTS = {
        "alpha": 0.1,              # theta = alpha * <h_i, h_j>; None: 10 / bit (Caffe)
        "continuation": "epoch",   # epoch: beta = sqrt(epoch // beta_step + 1); iteration: Caffe's schedule
        "beta_step": 20,
        "beta_gamma": 0.005,       # iteration: beta = (1 + beta_gamma * iter) ** beta_power,
        "beta_power": 0.5,         #   updated every beta_step_iters iterations
        "beta_step_iters": 200,
        "pair_weighting": "balanced",  # balanced: S/S1 and S/S0; constant: similar pairs x similar_weight
        "similar_weight": 1.0,     # Caffe's class_num
        "memory_max_age": None,    # pair with memory codes written in the last N steps; null: all; 0: in-batch
        "memory_warmup_epochs": 0,  # first epochs: in-batch pairs only
        "self_pairs": True,        # pair each image with its own code too (i = j), as the reproductions do
    }

    def __init__(self, num_train, bit, num_classes, alpha=0.1, beta_step=20, comm=None, continuation="epoch",
                 beta_gamma=0.005, beta_power=0.5, beta_step_iters=200, pair_weighting="balanced",
                 similar_weight=1.0, memory_max_age=None, memory_warmup_epochs=0, self_pairs=True):
        super().__init__(comm)
        self.alpha = 10.0 / bit if alpha is None else alpha  # None: Caffe's 10 / K
        self.beta_step = beta_step
        self.continuation = continuation
        self.caffe_schedule = {"gamma": beta_gamma, "power": beta_power, "step": beta_step_iters}
        self.pair_weighting = pair_weighting
        self.similar_weight = similar_weight
        self.self_pairs = self_pairs
        self.beta = 1.0
        self.init_memory(num_train, bit, num_classes, memory_max_age, memory_warmup_epochs)

    @classmethod
    def check_options(cls, options):
        check_positive(options, "alpha", allow_none=True)
        check_choice(options, "continuation", ("epoch", "iteration"))
        check_choice(options, "pair_weighting", ("balanced", "constant"))
        check_positive(options, "beta_gamma", "beta_power", "similar_weight")
        check_int(options, "beta_step_iters", 1)
        check_int(options, "beta_step", 1)
        check_memory_options(options)

    def on_epoch_start(self, epoch):
        super().on_epoch_start(epoch)
        if self.continuation == "epoch":
            self.beta = epoch_beta(epoch, self.beta_step)

    def on_step(self, iteration):
        super().on_step(iteration)
        if self.continuation == "iteration":
            self.beta = caffe_beta(iteration, **self.caffe_schedule)

    def forward(self, z, labels, indices):
        h = paddle.tanh(self.beta * z)
        self.write_batch(h, labels, indices)
        similar = similarity(labels.astype(self.memory_labels.dtype), self.memory_labels)
        valid = self.memory_valid().expand_as(similar)
        if not self.self_pairs:  # (i, i): the image against its own (memory) code
            valid = valid * (1 - paddle.nn.functional.one_hot(indices.astype("int64"), similar.shape[1]).astype(valid.dtype))
        theta = self.alpha * paddle.matmul(h, self.memory_codes, transpose_y=True)
        nll = log1p_exp(theta) - similar * theta  # log(1 + exp(theta)) - s * theta
        s1 = self.global_count((similar * valid).sum())
        s0 = self.global_count(((1 - similar) * valid).sum())
        if self.pair_weighting == "constant":
            total = s1 * self.similar_weight + s0
            weights = (similar * self.similar_weight + (1 - similar)) * valid
            return (nll * weights).sum() / total
        weights, total = balanced_weights(similar, valid, s1, s0)
        return (nll * weights).sum() / total
