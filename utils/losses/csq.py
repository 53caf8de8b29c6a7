"""CSQ: Central Similarity Quantization (Yuan, Wang, Zhang, Tay, Xie, Feng, Yan, CVPR 2020)."""
import numpy as np
import paddle

from utils.losses.base import HashLoss, check_int, check_non_negative, log1p_exp


def hadamard(order):
    """Sylvester's Hadamard matrix of a power-of-two order (+-1 entries, orthogonal rows)."""
    matrix = np.ones((1, 1))
    while matrix.shape[0] < order:
        matrix = np.block([[matrix, matrix], [matrix, -matrix]])
    return matrix


def hash_centers(num_classes, bit, seed=0):
    """One +-1 center per class, as in the paper: rows of [H; -H] (H the K x K Hadamard matrix,
    pairwise Hamming distance >= K/2) when K is a power of two and there are at most 2K
    classes; otherwise independent Bernoulli(0.5) bits (distance about K/2), seeded."""
    if bit & (bit - 1) == 0 and num_classes <= 2 * bit:
        h = hadamard(bit)
        return np.concatenate([h, -h])[:num_classes].astype(np.float32)
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 2, (num_classes, bit)) * 2 - 1).astype(np.float32)


class CSQLoss(HashLoss):
    """Each image is pulled to the hash center of its class: binary cross-entropy between
    (h + 1) / 2 and (c + 1) / 2 per bit, h = tanh(z), plus lambda * mean (|h| - 1)^2.
    Multi-label (as in the paper): the center of an image is the centroid of its labels'
    centers, binarised (sign of their sum; a tie goes to a fixed seeded random bit).
    Defaults lambda = 1e-4 (the paper's value). Per-item loss: correct per rank.
    The centre term, the squared quantization term and the multi-label centroid with random tie
    bits are those of the authors' code (yuanli2333/Hadamard-Matrix-for-hashing, train.py:
    BCE(0.5 (h + 1), 0.5 (c + 1)) + lambda2 * mean((|h| - 1)^2)); that code also adds a pairwise
    term (lambda1 = 0.2) that the paper's CSQ objective does not have, left out here. Hand-computed
    cases: tests/utils/losses/test_hand_computed.py.
    """

    NAME = "csq"
    DEFAULTS = {
        "quant_weight": 0.0001,  # lambda, weight of the quantization term
        "center_seed": 0,        # Bernoulli centers and multi-label tie bits
    }

    def __init__(self, num_train, bit, num_classes, quant_weight=1e-4, center_seed=0, comm=None):
        super().__init__(comm)
        self.quant_weight = quant_weight
        self.register_buffer("centers", paddle.to_tensor(hash_centers(num_classes, bit, center_seed)))
        ties = np.random.default_rng(center_seed + 1).integers(0, 2, bit) * 2 - 1
        self.register_buffer("tie_bits", paddle.to_tensor(ties.astype(np.float32)))

    @classmethod
    def check_options(cls, options):
        check_non_negative(options, "quant_weight")
        check_int(options, "center_seed", 0)

    def targets(self, labels):
        """The +-1 center of every image of the batch."""
        total = paddle.matmul(labels.astype(self.centers.dtype), self.centers)
        return paddle.where(total == 0, self.tie_bits.unsqueeze(0).expand_as(total), paddle.sign(total))

    def forward(self, z, labels, indices):
        target = (self.targets(labels).astype(z.dtype) + 1) / 2
        # (tanh(z) + 1) / 2 = sigmoid(2z): the cross-entropy from logits 2z is stable for any z
        center = (log1p_exp(2 * z) - target * 2 * z).mean()
        quantization = ((paddle.abs(paddle.tanh(z)) - 1) ** 2).mean()
        return self.share(center + self.quant_weight * quantization)
