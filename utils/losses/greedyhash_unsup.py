"""GreedyHash unsupervised (Su, Zhang, Yuan, Tian, "Greedy Hash: Towards Fast Optimization for Accurate Hash
Coding in CNN", NeurIPS 2018): the codes' cosine similarities fitted to the features', sign in the forward pass.

The greedy step (the paper's Sec. 3): b = sign(z) forward, the gradient passed straight through
(dL/dz := dL/db, models/greedyhash.py), plus the penalty alpha * ||z - sign(z)||_3^3 = alpha * || |z| - 1 ||_3^3
that keeps z near the codes (p = 3, alpha = 0.1: the paper's choice and the authors' code). Without labels the task loss is the similarity-preserving one of
the paper's unsupervised experiments (the authors' unsupervised_vgg.py): the batch split in halves gives the
pairs (i, i + N/2) and L = mean over the pairs of (cos(b_i, b_j) - cos(x_i, x_j))^2, x the backbone features.
"""
import paddle

from models.greedyhash import sign_straight_through
from utils.losses.base import HashLoss, bit_scale, check_non_negative, check_positive, pair_cosines


class GreedyHashUnsupervisedLoss(HashLoss):
    """Head: models/unsupervised.py (train mode: z and the centred backbone features x). Learns without labels;
    per-item pairs inside one rank's batch: correct per rank."""

    NAME = "greedyhash_unsup"
    MODEL = "unsupervised"
    SUPERVISED = False
    DEFAULTS = {
        "alpha": 0.1,  # weight of the cubic penalty (the paper's and the authors' 0.1)
        "reference_bits": 16,  # the loss is scaled by K / reference_bits (see bit_scale); null: the paper's scale
    }

    def __init__(self, num_train, bit, num_classes, alpha=0.1, reference_bits=16, comm=None):
        super().__init__(comm)
        self.alpha = alpha
        self.scale = bit_scale(bit, reference_bits)

    @classmethod
    def check_options(cls, options):
        check_non_negative(options, "alpha")
        check_positive(options, "reference_bits", allow_none=True)

    def forward(self, outputs, labels, indices):
        z, features = outputs
        codes = sign_straight_through(z)
        similarity = ((pair_cosines(codes) - pair_cosines(features).detach()) ** 2).mean()
        penalty = (paddle.abs(paddle.abs(z) - 1.0) ** 3).mean()
        return self.share(self.scale * (similarity + self.alpha * penalty))
