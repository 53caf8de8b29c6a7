"""BiHalf (Li and van Gemert, "Deep Unsupervised Image Hashing by Maximizing Bit Entropy", AAAI 2021).

The bi-half layer replaces sign() while training: per bit, over the batch, the top half of the continuous
outputs U becomes +1 and the rest -1 (the optimal coupling pi_0 of the paper's Eq. 7, which minimises the
Wasserstein distance between the outputs and the half-half distribution that maximises the bit's entropy).
Its backward pass is the straight-through gradient plus the pull of the penalty gamma/2 * ||U - B||^2 / (N K)
(the paper's optimisation of the penalised W1, Sec. "Optimization"; the 1 / (N K) scale and gamma = 6 are the
authors' code, ImageHashing/Cifar10_I.py): dL/dU = dL/dB + gamma (U - B) / (N K).

At test time the code is sign(U) (the head's z >= 0), never the bi-half layer: ranking a batch of queries
against each other is what made a peer score 0.223 instead of 0.59 (swuxyj/DeepHash-pytorch issues #18, #20).
The penalty is what keeps sign(U) close to the layer's codes.
"""
import paddle

from utils.losses.base import HashLoss, bit_scale, check_non_negative, check_positive, pair_cosines


class BiHalfLayer(paddle.autograd.PyLayer):
    """B = bi-half(U) per column over the rows; ties go to the earlier row (a stable order)."""

    @staticmethod
    def forward(ctx, u, gamma):
        n = u.shape[0]
        order = paddle.argsort(u, axis=0, descending=True, stable=True)
        rank = paddle.argsort(order, axis=0, stable=True)  # rank of each entry within its column, 0 = largest
        b = paddle.where(rank < n // 2, paddle.ones_like(u), -paddle.ones_like(u))
        ctx.gamma = float(gamma)
        ctx.save_for_backward(u, b)
        return b

    @staticmethod
    def backward(ctx, grad):
        u, b = ctx.saved_tensor()
        return grad + ctx.gamma * (u - b) / float(u.shape[0] * u.shape[1])


def bi_half(u, gamma=6.0):
    """The bi-half layer on [N, K] outputs: exactly N // 2 entries +1 per column (N - N // 2 are -1)."""
    return BiHalfLayer.apply(u, gamma)


class BiHalfLoss(HashLoss):
    """Head: models/unsupervised.py (train mode: z and the centred backbone features x).
    Loss (the authors' image-hashing objective, ImageHashing/Cifar10_I.py; DeepHash-pytorch and cisip-FIRe
    use the same): the batch split in halves gives pairs (i, i + N/2); with B = bi-half(z),
    L = mean over the pairs of (cos(b_i, b_j) - cos(x_i, x_j))^2, the features' similarity a fixed target
    (no gradient, as cisip-FIRe's functions/loss/bihalf.py). Learns without labels. Per-item pairs
    inside one rank's batch: correct per rank."""

    NAME = "bihalf"
    MODEL = "unsupervised"
    SUPERVISED = False
    DEFAULTS = {
        "gamma": 6.0,  # weight of the penalty's pull in the backward pass (the authors' 6)
        "reference_bits": 16,  # the loss is scaled by K / reference_bits (see bit_scale); null: the paper's scale
    }

    def __init__(self, num_train, bit, num_classes, gamma=6.0, reference_bits=16, comm=None):
        super().__init__(comm)
        self.gamma = gamma
        self.scale = bit_scale(bit, reference_bits)

    @classmethod
    def check_options(cls, options):
        check_non_negative(options, "gamma")
        check_positive(options, "reference_bits", allow_none=True)

    def forward(self, outputs, labels, indices):
        z, features = outputs
        n = z.shape[0] // 2 * 2  # an odd last item has no partner
        codes = bi_half(z[:n], self.gamma * self.scale)  # the penalty is part of the scaled objective
        target = pair_cosines(features[:n]).detach()
        return self.share(self.scale * ((pair_cosines(codes) - target) ** 2).mean())
