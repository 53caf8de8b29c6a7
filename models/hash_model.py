"""The hash model every method builds on: a backbone and a new fc layer (feature -> K bits), the
`linear` head (model.name; HashNet, DSH, DPSH, DCH, LCDSH and CSQ train it as it is, the heads
with a classifier extend it: models/classifier_head.py).

The network returns the pre-activation z; a loss owns what it does with z (HashNet: tanh(beta * z),
beta being the continuation schedule, a training concern), and the binary code is sign(z) either way.
"""
import paddle
from paddle import nn


class HashModel(nn.Layer):
    """backbone + fc(K) -> z. Every head keeps this contract in eval mode (codes = z >= 0);
    num_classes is for heads with a classifier (models/classifier_head.py) and unused here."""

    def __init__(self, backbone, bit, hash_lr_mult=10.0, hash_bias_lr_mult=None, num_classes=None,
                 hash_init_std=0.01, hash_bias_init=0.0, classifier_init_std=None):
        super().__init__()
        self.backbone = backbone
        self.bit = bit
        # Paper/Caffe: new layer initialised N(0, 0.01), learning rate x10 (bias x20 in Caffe);
        # SSDH's Caffe latent layer: N(0, 0.005), bias 1 (configs/methods/ssdh_googlenet_*.yaml).
        bias_mult = hash_lr_mult if hash_bias_lr_mult is None else hash_bias_lr_mult
        self.hash_layer = nn.Linear(
            backbone.feature_dim, bit,
            weight_attr=paddle.ParamAttr(initializer=nn.initializer.Normal(0.0, hash_init_std),
                                         learning_rate=hash_lr_mult),
            bias_attr=paddle.ParamAttr(initializer=nn.initializer.Constant(hash_bias_init),
                                       learning_rate=bias_mult),
        )

    backbone_frozen = False

    def freeze_backbone(self):
        """Train the head alone on fixed features (model.freeze_backbone; the unsupervised papers' setting):
        the backbone's parameters get no gradient and it stays in eval mode (BatchNorm statistics, dropout)."""
        self.backbone_frozen = True
        for param in self.backbone.parameters():
            param.stop_gradient = True
        self.backbone.eval()

    def train(self):
        super().train()
        if self.backbone_frozen:
            self.backbone.eval()
        return self

    def forward(self, x):
        return self.hash_layer(self.backbone(x))


def codes_from_logits(z):
    """Binary codes in {-1, +1} as a paddle op, z == 0 -> +1: the codes a training step needs (the
    straight-through estimator of models/greedyhash.py). Codes for retrieval are computed from the
    network's z by utils.encoding.sign_codes, the same rule."""
    return (z >= 0).astype(z.dtype) * 2 - 1
