"""DCH: Deep Cauchy Hashing for Hamming space retrieval (Cao, Long, Liu, Wang, CVPR 2018)."""
import paddle

from utils.losses.base import HashLoss, balanced_weights, check_non_negative, check_positive, similarity


def cauchy_distance(a, b, bit, eps=1e-6):
    """The paper's Hamming-distance surrogate, Eq. (6): d(h_i, h_j) = K/2 (1 - cos(h_i, h_j)),
    which equals the Hamming distance for +-1 codes (cos = 1 - 2 d_H / K)."""
    an = a / paddle.clip(paddle.linalg.norm(a, axis=1, keepdim=True), min=eps)
    bn = b / paddle.clip(paddle.linalg.norm(b, axis=1, keepdim=True), min=eps)
    return bit / 2.0 * (1.0 - paddle.matmul(an, bn, transpose_y=True))


class DCHLoss(HashLoss):
    """Cauchy cross-entropy on the pairs (i != j) of the batch, h = tanh(z), objective Eq. (7)
    = L + lambda Q: sigma(d) = gamma / (gamma + d) (Eq. 5) is the probability that a pair is
    similar, d = K/2 (1 - cos) the Hamming-distance surrogate (Eq. 6); loss per pair, Eq. (8),
    w_ij (s_ij log(d / gamma) + log(1 + gamma / d)), i.e. log(1 + d/gamma) for similar and
    log(1 + gamma/d) for dissimilar pairs, class-balanced weights w (S/S1 and S/S0, Eq. 2,
    normalised by S); plus the Cauchy quantization loss, Eq. (9), lambda * mean_i
    log(1 + d(|h_i|, 1) / gamma). Defaults gamma = 20, lambda = 0.1 (the values common
    re-implementations use; the paper picks them by cross-validation). gamma is in Hamming
    units: two saturated codes at Hamming distance gamma have sigma = 1/2.
    Multi-label: yes (s_ij = shared label). Batch-only: correct per rank.
    """

    NAME = "dch"
    DEFAULTS = {
        "gamma": 20.0,        # Cauchy scale
        "quant_weight": 0.1,  # lambda, weight of the Cauchy quantization loss
    }

    def __init__(self, num_train, bit, num_classes, gamma=20.0, quant_weight=0.1, comm=None):
        super().__init__(comm)
        self.bit, self.gamma, self.quant_weight = bit, gamma, quant_weight

    @classmethod
    def check_options(cls, options):
        check_positive(options, "gamma")
        check_non_negative(options, "quant_weight")

    def forward(self, z, labels, indices):
        h = paddle.tanh(z)
        n = h.shape[0]
        similar = similarity(labels.astype(h.dtype), labels.astype(h.dtype))
        off = 1.0 - paddle.eye(n, dtype=h.dtype)
        d = cauchy_distance(h, h, self.bit)
        pair = similar * paddle.log1p(d / self.gamma) + (1 - similar) * (
            paddle.log(self.gamma + d) - paddle.log(paddle.clip(d, min=1e-6)))
        s1 = (similar * off).sum()
        s0 = ((1 - similar) * off).sum()
        weights, total = balanced_weights(similar, off, s1, s0)
        pair_loss = (pair * weights).sum() / total
        ones = paddle.ones([1, self.bit], dtype=h.dtype)
        quant = paddle.log1p(cauchy_distance(paddle.abs(h), ones, self.bit) / self.gamma).mean()
        return self.share(pair_loss + self.quant_weight * quant)
