"""OrthoHash head (Hoe et al., NeurIPS 2021, Sec. 3.2 and Figure 2): the hash layer's outputs pass a
BatchNorm layer, so every bit is zero-mean over a batch and fires about half the time (the paper's
code balance, with no balance loss); z is the normalised output and the code is sign(z) as for
every head (eval mode: the running statistics). The authors' layer has no bias (BN removes it);
ours keeps the hash layer's bias, which BN's mean subtraction cancels, so --init-from and the
weight checks see the same hash layer as every other head.
"""
from paddle import nn

from models.hash_model import HashModel


class OrthoHashNet(HashModel):
    def __init__(self, backbone, bit, hash_lr_mult=10.0, hash_bias_lr_mult=None, num_classes=None,
                 hash_init_std=0.01, hash_bias_init=0.0, classifier_init_std=None):
        super().__init__(backbone, bit, hash_lr_mult, hash_bias_lr_mult, hash_init_std=hash_init_std,
                         hash_bias_init=hash_bias_init)
        self.code_norm = nn.BatchNorm1D(bit)

    def forward(self, x):
        return self.code_norm(self.hash_layer(self.backbone(x)))
