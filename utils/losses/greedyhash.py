"""GreedyHash (Su, Zhang, Yuan, Tian, NeurIPS 2018): sign in the forward pass, straight-through backward."""
import paddle

from utils.losses.base import ClassifierLossMixin, HashLoss, check_choice, check_non_negative


class GreedyHashLoss(ClassifierLossMixin, HashLoss):
    """Head (models/greedyhash.py): backbone -> hash layer z -> b = sign(z) in the forward pass
    with the gradient passed straight through (d b / d z := 1) -> classifier on b.
    Loss = classification of b + alpha * mean | |z| - 1 |^3 (the cubic penalty ||z - sign(z)||_3^3
    that keeps z near the codes), alpha = 0.1 by default. Multi-label: yes (softmax cross-entropy
    against the normalised multi-hot vector, or classification: sigmoid).
    Per-item loss: correct per rank.
    """

    NAME = "greedyhash"
    MODEL = "greedyhash"
    DEFAULTS = {
        "classification": "softmax",  # softmax | sigmoid (see ClassifierLossMixin)
        "alpha": 0.1,              # weight of the cubic penalty
    }

    def __init__(self, num_train, bit, num_classes, classification="softmax", alpha=0.1, comm=None):
        super().__init__(comm)
        self.classification = classification
        self.alpha = alpha

    @classmethod
    def check_options(cls, options):
        check_choice(options, "classification", cls.CLASSIFICATION)
        check_non_negative(options, "alpha")

    def forward(self, outputs, labels, indices):
        z, logits = outputs
        penalty = (paddle.abs(paddle.abs(z) - 1.0) ** 3).mean()
        return self.share(self.classify(logits, labels.astype(logits.dtype)) + self.alpha * penalty)
