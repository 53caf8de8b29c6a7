"""DSHSD: deep supervised hashing with a similarity term and a discriminative classifier (Yang et al., 2019)."""
import paddle

from utils.losses.base import (ClassifierLossMixin, HashLoss, check_choice, check_non_negative, check_positive,
                               off_diagonal_mean, similarity, squared_distances)


class DSHSDLoss(ClassifierLossMixin, HashLoss):
    """Head (models/dshsd.py): backbone -> hash layer z -> u = tanh(z) -> linear classifier.
    Loss = classification of u + alpha * mean_{i != j} of the margin-based pair term
    1/2 s_ij ||u_i - u_j||^2 + 1/2 (1 - s_ij) max(m - ||u_i - u_j||^2, 0), margin m = 2K,
    alpha = 0.05 (the setting common re-implementations use). Multi-label: yes (s_ij = shared
    label; softmax cross-entropy against the normalised multi-hot vector, or classification:
    sigmoid). Pairs inside the batch: correct per rank.
    """

    NAME = "dshsd"
    MODEL = "dshsd"
    DEFAULTS = {
        "classification": "softmax",  # softmax | sigmoid (see ClassifierLossMixin)
        "alpha": 0.05,             # weight of the pair term
        "margin": None,            # None: 2 * bits
    }

    def __init__(self, num_train, bit, num_classes, classification="softmax", alpha=0.05, margin=None, comm=None):
        super().__init__(comm)
        self.classification = classification
        self.alpha = alpha
        self.margin = 2.0 * bit if margin is None else float(margin)

    @classmethod
    def check_options(cls, options):
        check_choice(options, "classification", cls.CLASSIFICATION)
        check_non_negative(options, "alpha")
        check_positive(options, "margin", allow_none=True)

    def forward(self, outputs, labels, indices):
        z, logits = outputs
        u = paddle.tanh(z)
        similar = similarity(labels.astype(u.dtype), labels.astype(u.dtype))
        dist = squared_distances(u)
        pair = 0.5 * similar * dist + 0.5 * (1 - similar) * paddle.clip(self.margin - dist, min=0.0)
        loss = self.classify(logits, labels.astype(logits.dtype)) + self.alpha * off_diagonal_mean(pair)
        return self.share(loss)
