"""LCDSH: Locality-Constrained Deep Supervised Hashing (Zhu, Gao, IJCAI 2017)."""
import paddle
from paddle import nn

from utils.losses.base import (HashLoss, binary_codes, check_non_negative, check_positive, log1p_exp, off_diagonal_mean,
                               similarity)


class LCDSHLoss(HashLoss):
    """Pairwise likelihood on the real-valued outputs u = z plus a locality constraint that
    ties the pair probabilities of u to those of the binary codes b = sign(u):
    L = mean_{i != j} log(1 + exp(-s_ij theta_ij)) + lambda mean_{i != j} (sigma(theta_ij) - sigma(phi_ij))^2,
    theta_ij = 1/2 u_i^T u_j, phi_ij = 1/2 b_i^T b_j, s_ij = +1 similar (shared label: multi-label
    works) / -1 dissimilar (the paper's likelihood of the pairwise labels and its locality
    constraint, summed into one objective, Zhu & Gao 2017, Sec. 3); lambda = 3 (the value common
    re-implementations use). theta_ij is clamped to [-clamp, clamp] (50, as the peers do): from
    scratch the unbounded u_i^T u_j otherwise grows until the loss diverges; a clamped pair no
    longer pushes (zero gradient), which is what bounds it.
    Pairs inside the batch: correct per rank in data-parallel runs.
    """

    NAME = "lcdsh"
    DEFAULTS = {
        "locality_weight": 3.0,   # lambda
        "clamp": 50.0,            # |theta_ij| bound (the peers' 50)
    }

    def __init__(self, num_train, bit, num_classes, locality_weight=3.0, clamp=50.0, comm=None):
        super().__init__(comm)
        self.locality_weight, self.clamp = locality_weight, clamp

    @classmethod
    def check_options(cls, options):
        check_non_negative(options, "locality_weight")
        check_positive(options, "clamp")

    def forward(self, z, labels, indices):
        signed = 2.0 * similarity(labels.astype(z.dtype), labels.astype(z.dtype)) - 1.0
        theta = paddle.clip(0.5 * paddle.matmul(z, z, transpose_y=True), min=-self.clamp, max=self.clamp)
        codes = binary_codes(z)
        phi = 0.5 * paddle.matmul(codes, codes, transpose_y=True)
        likelihood = off_diagonal_mean(log1p_exp(-signed * theta))
        locality = off_diagonal_mean((nn.functional.sigmoid(theta) - nn.functional.sigmoid(phi)) ** 2)
        return self.share(likelihood + self.locality_weight * locality)
