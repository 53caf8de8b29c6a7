"""CIBHash (Qiu, Su, Ou, Yu, Chen, "Unsupervised Hashing with Contrastive Information Bottleneck", IJCAI 2021).

Two augmented views of every image (utils/data/views.py) go through the same network; each view's code is
the probabilistic binary layer's b = sign(sigmoid(z) - 1/2) = sign(z), with the gradient passed straight
through to sigmoid(z) (the paper's Sec. 3.2; its authors' code uses this deterministic form at train and test
time). The objective (the paper's final IB objective, Sec. 3.3):

    L = L_contrastive(b^(1), b^(2)) + beta / 2 * [KL(p(b | x^(1)) || p(b | x^(2))) + KL(p(b | x^(2)) || p(b | x^(1)))]

L_contrastive: NT-Xent (SimCLR) on the codes: for each of the 2N codes, with cos similarities over tau,
-log(exp(cos(b_a, b_a+)/tau) / sum over the other 2N - 1 codes c of exp(cos(b_a, b_c)/tau)), averaged over
the 2N anchors. p(b | x) is the Bernoulli with probabilities sigmoid(z), the KL summed over the bits and
averaged over the batch, the other view's distribution taken as fixed in each term (no gradient), as the
authors' code (model/CIBHash.py) and cisip-FIRe do. tau 0.3 and beta 0.001: the authors' defaults.
"""
import paddle
import paddle.nn.functional as F

from utils.losses.base import HashLoss, check_non_negative, check_positive


def bernoulli_kl(logits_p, logits_q):
    """KL(Bernoulli(sigmoid(logits_p)) || Bernoulli(sigmoid(logits_q))) summed over the last axis, computed
    from log-sigmoids (stable for any logits)."""
    p = F.sigmoid(logits_p)
    return (p * (F.log_sigmoid(logits_p) - F.log_sigmoid(logits_q))
            + (1 - p) * (F.log_sigmoid(-logits_p) - F.log_sigmoid(-logits_q))).sum(axis=1)


def nt_xent(first, second, temperature):
    """The NT-Xent loss of views first[i] <-> second[i] ([N, K] each), averaged over the 2N anchors."""
    n = first.shape[0]
    both = F.normalize(paddle.concat([first, second]), axis=1)
    logits = paddle.matmul(both, both, transpose_y=True) / temperature
    logits = logits - paddle.eye(2 * n, dtype=logits.dtype) * 1e9  # an anchor is not its own negative
    positive = paddle.concat([paddle.arange(n, 2 * n), paddle.arange(0, n)])
    return F.cross_entropy(logits, positive.unsqueeze(1)).mean()


class CIBHashLoss(HashLoss):
    """Head: models/cibhash.py (the paper's encoder; models/unsupervised.py's centring) on a batch of two views per image (z rows 0..N-1: first views, N..2N-1:
    second views). Learns without labels; NT-Xent's negatives are the other images of one rank's batch, so in
    data-parallel runs each rank contrasts within its own batch (the mean over ranks)."""

    NAME = "cibhash"
    MODEL = "cibhash"
    SUPERVISED = False
    VIEWS = 2
    DEFAULTS = {
        "temperature": 0.3,  # tau of NT-Xent (the authors' default)
        "beta": 0.001,       # weight of the information-bottleneck KL term (the authors' default)
    }

    def __init__(self, num_train, bit, num_classes, temperature=0.3, beta=0.001, comm=None):
        super().__init__(comm)
        self.temperature, self.kl_weight = temperature, beta

    @classmethod
    def check_options(cls, options):
        check_positive(options, "temperature")
        check_non_negative(options, "beta")

    def forward(self, outputs, labels, indices):
        z = outputs[0] if isinstance(outputs, (tuple, list)) else outputs
        n = z.shape[0] // 2
        first, second = z[:n], z[n:2 * n]
        relaxed = F.sigmoid(z[:2 * n]) - 0.5
        codes = relaxed + (paddle.where(relaxed >= 0, paddle.ones_like(relaxed), -paddle.ones_like(relaxed))
                           - relaxed).detach()  # sign forward, straight through to sigmoid(z)
        contrastive = nt_xent(codes[:n], codes[n:], self.temperature)
        kl = (bernoulli_kl(first, second.detach()).mean() + bernoulli_kl(second, first.detach()).mean()) / 2
        return self.share(contrastive + self.kl_weight * kl)
