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

    alpha per code length: `alpha` fixes it for every K (0.1: the Paddle reproduction); `alpha: null`
    takes alpha = alpha_bits / K (alpha_bits 10: the authors' code, sigmoid_param = 10 / hash_bit).
    Why it matters: theta = alpha <h_i, h_j> spans +-alpha K, so at a fixed alpha 0.1 a 16-bit pair
    logit spans only +-1.6 (+-6.4 at 64 bits); the sigmoid stays almost linear, pairs of different
    classes already far apart push nearly as hard as colliding ones, and class codes collide. On real
    images (digits, from scratch; issue 23, Zen 4) 16-bit mAP followed alpha K at a fixed step size:
    0.546 at 1.6, 0.811 at 3.2, 0.889 at 6.4, 0.832 at 10; alpha K = 6.4 at every K took the 3-seed
    mean at 16 bits from 0.460 to 0.873 and left 64 bits as it was (alpha is 0.1 there). Measured
    here (AMD EPYC Zen 3): docs/methods.md, "HashNet's alpha per code length".
    `gradient_alpha` (null: off) multiplies the loss by gradient_alpha / alpha: d loss / d h_i is
    then sum_j w_ij (sigmoid(theta_ij) - s_ij) gradient_alpha h_j / S, the per-unit step of the
    recipe whose learning rate was tuned at alpha = gradient_alpha, while alpha K sets only the
    sigmoid's slope. Without it, alpha = 10/K from scratch took 16-bit runs to one code at once
    (alpha 0.625, a 6x larger step); with it, alpha_bits 6.4 and gradient_alpha 0.1 are exactly
    alpha 0.1 at 64 bits (scale 1) and scale the loss by K / 64 elsewhere. The scratch, lite and
    COCO recipes use alpha_bits 6.4 with gradient_alpha 0.1; configs/hashnet_coco_<K>.yaml keep the
    reproduction's fixed alpha 0.1 and hashnet_coco_caffe.yaml the original 10 / K, uncompensated.

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
        "alpha": 0.1,              # theta = alpha * <h_i, h_j> at every K; null: alpha_bits / K
        "alpha_bits": 10.0,        # alpha x K when alpha is null (10: the authors' 10 / K)
        "gradient_alpha": None,    # loss x gradient_alpha / alpha: the step of alpha = gradient_alpha
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
                 similar_weight=1.0, memory_max_age=None, memory_warmup_epochs=0, self_pairs=True,
                 alpha_bits=10.0, gradient_alpha=None):
        super().__init__(comm)
        self.alpha = alpha_bits / bit if alpha is None else alpha  # None: alpha_bits / K (Caffe: 10 / K)
        # 1.0 exactly when alpha == gradient_alpha (6.4 / 64 == 0.1 in floating point: a power-of-two ratio)
        self.loss_scale = 1.0 if gradient_alpha is None else gradient_alpha / self.alpha
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
        check_positive(options, "alpha_bits")
        check_positive(options, "gradient_alpha", allow_none=True)
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
        else:
            weights, total = balanced_weights(similar, valid, s1, s0)
        loss = (nll * weights).sum() / total
        return loss * self.loss_scale if self.loss_scale != 1.0 else loss
