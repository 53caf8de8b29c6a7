"""OrthoHash: One Loss for All (Hoe, Ng, Zhang, Chan, Song, Xiang, NeurIPS 2021)."""
import math

import numpy as np
import paddle
from paddle import nn

from utils.losses.base import (HashLoss, binary_codes, check_choice, check_int, check_non_negative,
                               classification_loss)


def bernoulli_codes(num_classes, bit, seed=0):
    """One +-1 target code a class, every bit an independent Bernoulli(0.5) draw, seeded: codes of
    different classes are orthogonal in expectation (cosine 0, Hamming distance K/2)."""
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 2, (num_classes, bit)) * 2 - 1).astype(np.float32)


class OrthoHashLoss(HashLoss):
    """The paper's single objective (Sec. 3.2, Figure 2): the head's batch-normalised output v (the
    `orthohash` head, models/orthohash.py) is scored against one fixed binary orthogonal target o_c a
    class (Bernoulli(0.5) bits, the authors' default codebook 'B') by cosine similarity, and a
    softmax cross-entropy over the classes is minimised on the margin-adjusted, scaled cosines:
      cos form (CosFace):  logit_c = s (cos(v, o_c) - m y_c)
      arc form (ArcFace):  logit_c = s cos(theta_c + m y_c),  theta_c = arccos(cos(v, o_c))
    For +-1 codes cos(b, o) = 1 - 2 d_H(b, o) / K, so maximising the cosine to the own class's
    target both separates the classes in Hamming distance and drives v towards a binary vector
    (the paper's argument that one loss also minimises the quantisation error).
    Multi-label (the paper's label smoothing): the target distribution is y / |y|, and the margin
    applies to every label of the image; on one-hot labels this is the single-label loss itself.
    Quantisation term (off by default, as the paper's single objective; the authors' `quan`,
    form 'cs'): quant_weight * mean over the batch of 1 - cos(v, sign(v)).
    Defaults s = 8, m = 0.2, cos (the authors' main.py; CIFAR-10 used m 0.3). Checked against the
    authors' code (kamwoh/orthohash functions/loss/orthohash.py, models/alexnet.py CosSim;
    CISiPLab/cisip-FIRe functions/loss/orthocos.py, orthoarc.py): same logits, margins, label
    smoothing and 'cs' quantisation; the arc form's cosine is clamped to +-0.99999 as theirs.
    Per-item loss: correct per rank. Hand-computed cases: tests/utils/losses/test_orthohash_dpn.py.
    """

    NAME = "orthohash"
    MODEL = "orthohash"
    DEFAULTS = {
        "scale": 8.0,            # s, the cosine logits' scale
        "margin": 0.2,           # m: cosine margin (cos form) or angular margin in radians (arc form)
        "margin_type": "cos",    # cos (OrthoCos) or arc (OrthoArc)
        "quant_weight": 0.0,     # weight of 1 - cos(v, sign(v)); 0: the paper's one loss
        "codebook_seed": 0,      # the Bernoulli target codes
    }
    ARC_CLAMP = 0.99999

    def __init__(self, num_train, bit, num_classes, scale=8.0, margin=0.2, margin_type="cos", quant_weight=0.0,
                 codebook_seed=0, comm=None):
        super().__init__(comm)
        self.scale, self.margin, self.margin_type, self.quant_weight = scale, margin, margin_type, quant_weight
        self.register_buffer("codebook", paddle.to_tensor(bernoulli_codes(num_classes, bit, codebook_seed)))

    @classmethod
    def check_options(cls, options):
        check_non_negative(options, "scale", "margin", "quant_weight")
        check_choice(options, "margin_type", ("cos", "arc"))
        check_int(options, "codebook_seed", 0)

    def margin_logits(self, v, labels):
        """The scaled, margin-adjusted cosine of every image to every class's target [n, C]."""
        cosine = paddle.matmul(nn.functional.normalize(v, axis=1), self.codebook.astype(v.dtype),
                               transpose_y=True) / math.sqrt(self.codebook.shape[1])
        if self.margin_type == "cos":
            return self.scale * (cosine - self.margin * labels)
        theta = paddle.acos(paddle.clip(cosine, -self.ARC_CLAMP, self.ARC_CLAMP))
        return self.scale * paddle.cos(theta + self.margin * labels)

    def forward(self, v, labels, indices):
        labels = labels.astype(v.dtype)
        # softmax cross-entropy against y / |y| (label smoothing on multi-label data)
        loss = classification_loss(self.margin_logits(v, labels), labels, sigmoid=False)
        if self.quant_weight > 0:
            b = binary_codes(v)
            quantization = 1 - (nn.functional.normalize(v, axis=1) * b).sum(axis=1) / math.sqrt(v.shape[1])
            loss = loss + self.quant_weight * quantization.mean()
        return self.share(loss)
