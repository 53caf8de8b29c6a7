"""SSDH / Deep Binary Codes: a latent sigmoid layer learned through classification.

Lin, Yang, Hsiao, Chen, "Deep learning of binary hash codes for fast image retrieval", CVPRW
2015; Yang, Lin, Chen, "Supervised learning of semantics-preserving hash via deep
convolutional neural networks" (SSDH), TPAMI 2018.
"""
import paddle

from utils.losses.base import ClassifierLossMixin, HashLoss, check_choice, check_non_negative


class SSDHLoss(ClassifierLossMixin, HashLoss):
    """Head (models/ssdh.py): backbone -> latent layer of K units h = sigmoid(z) -> classifier.
    Codes: h > 0.5, i.e. z >= 0 (the head returns z in eval mode). Loss per image, averaged:
    E1 classification + binarize_weight * E2 + balance_weight * E3, with
    E2 = -1/K ||h - 0.5||^2 (pushes every unit towards 0 or 1) and
    E3 = (mean_k h_k - 0.5)^2 (each code fires about half of its bits); weights 1 and 1 as in
    SSDH; set both to 0 for the CVPRW 2015 form (classification only).
    Multi-label: yes; classification: softmax (default) is the papers' cross-entropy, against
    the normalised multi-hot vector on multi-label data; sigmoid uses per-class cross-entropy
    (on the lite data it collapsed to constant codes in short runs). Per-item: correct per rank.
    """

    NAME = "ssdh"
    MODEL = "ssdh"
    DEFAULTS = {
        "classification": "softmax",  # softmax | sigmoid (see ClassifierLossMixin)
        "binarize_weight": 1.0,    # E2, push the latent units to 0/1
        "balance_weight": 1.0,     # E3, 50% fire
    }

    def __init__(self, num_train, bit, num_classes, classification="softmax", binarize_weight=1.0, balance_weight=1.0,
                 comm=None):
        super().__init__(comm)
        self.classification = classification
        self.binarize_weight, self.balance_weight = binarize_weight, balance_weight

    @classmethod
    def check_options(cls, options):
        check_choice(options, "classification", cls.CLASSIFICATION)
        check_non_negative(options, "binarize_weight", "balance_weight")

    def forward(self, outputs, labels, indices):
        z, logits = outputs
        h = paddle.nn.functional.sigmoid(z)
        binarize = -((h - 0.5) ** 2).mean(axis=1).mean()
        balance = ((h.mean(axis=1) - 0.5) ** 2).mean()
        loss = self.classify(logits, labels.astype(logits.dtype))
        return self.share(loss + self.binarize_weight * binarize + self.balance_weight * balance)
