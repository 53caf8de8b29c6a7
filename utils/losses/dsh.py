"""DSH: Deep Supervised Hashing (Liu, Wang, Shan, Chen, CVPR 2016)."""
import paddle

from utils.losses.base import HashLoss, check_positive, check_non_negative, similarity, squared_distances


class DSHLoss(HashLoss):
    """Contrastive loss on the real-valued outputs b = z of pairs formed online inside the batch:
    L(b1, b2, y) = 1/2 (1 - y) ||b1 - b2||^2 + 1/2 y max(m - ||b1 - b2||^2, 0)
                   + alpha (|| |b1| - 1 ||_1 + || |b2| - 1 ||_1),
    y = 0 for similar pairs (at least one shared label: multi-label works), 1 for dissimilar;
    margin m = 2 * bits and alpha = 0.01 as in the paper. Averaged over the n(n-1)/2 pairs.
    Batch-only: correct per rank in data-parallel runs (pairs never span ranks).
    """

    NAME = "dsh"
    DEFAULTS = {
        "margin": None,   # None: 2 * bits (the paper)
        "alpha": 0.01,    # weight of the |abs(b) - 1| regulariser
    }

    def __init__(self, num_train, bit, num_classes, margin=None, alpha=0.01, comm=None):
        super().__init__(comm)
        self.margin = 2.0 * bit if margin is None else float(margin)
        self.alpha = alpha

    @classmethod
    def check_options(cls, options):
        check_positive(options, "margin", allow_none=True)
        check_non_negative(options, "alpha")

    def forward(self, z, labels, indices):
        n = z.shape[0]
        dissimilar = 1.0 - similarity(labels.astype(z.dtype), labels.astype(z.dtype))
        dist = squared_distances(z)
        pair = 0.5 * (1 - dissimilar) * dist + 0.5 * dissimilar * paddle.clip(self.margin - dist, min=0.0)
        pair_mean = (pair.sum() - paddle.diagonal(pair).sum()) / (n * (n - 1))  # symmetric: i<j mean
        # each item is in n-1 of the n(n-1)/2 pairs: the mean regulariser per pair is 2 x the mean per item
        regulariser = 2.0 * (paddle.abs(paddle.abs(z) - 1.0)).sum(axis=1).mean()
        return self.share(pair_mean + self.alpha * regulariser)
