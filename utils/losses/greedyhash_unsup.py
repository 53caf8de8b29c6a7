"""GreedyHash unsupervised (Su, Zhang, Yuan, Tian, "Greedy Hash: Towards Fast Optimization for Accurate Hash
Coding in CNN", NeurIPS 2018): the codes' cosine similarities fitted to the features', sign in the forward pass.

The greedy step (the paper's Sec. 3): b = sign(z) forward, the gradient passed straight through
(dL/dz := dL/db, models/greedyhash.py), plus the penalty alpha * ||z - sign(z)||_3^3 = alpha * || |z| - 1 ||_3^3
that keeps z near the codes (p = 3, alpha = 0.1: the paper's choice and the authors' code). Without labels the task loss is the similarity-preserving one of
the paper's unsupervised experiments (the authors' unsupervised_vgg.py): the batch split in halves gives the
pairs (i, i + N/2) and L = mean over the pairs of (cos(b_i, b_j) - cos(x_i, x_j))^2, x the backbone features.

On features of a network trained from scratch (configs/methods/greedyhash_unsup_{lite,scratch}.yaml) the
recipe is the authors' but for two things, measured on the digits (docs/methods.md, "Measured on real images
without labels"; with alpha 0.1 and random crops it ended below ITQ in all six runs): the training images get
the test transform as in unsupervised_vgg.py (train.augment: false), and alpha is 1, cisip-FIRe's
unsupervised weight: at 0.1 z stayed far from +-1 (mean | |z| - 1 | 0.44; 0.33 at 1), while the paper's Sec. 3
rests on z near sgn(z) for the straight-through step to follow the codes' gradient. Every pair of the batch
instead of (i, i + N/2) did not help with alpha 1 (16 bits, seeds 0 / 1: 0.576 / 0.666 against 0.617 / 0.701).
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
        "alpha": 0.1,  # weight of the cubic penalty (the paper's and the authors' 0.1; the from-scratch configs: 1)
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
