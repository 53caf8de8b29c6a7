"""The head of the methods that learn without labels (BiHalf, GreedyHash unsupervised, CIBHash).

backbone -> features x -> x - mean (the features centred, as ITQ, LSH, PCAH and spectral hashing centre them)
-> fc(K) -> z. In eval mode it returns z like every head (codes = z >= 0: sign at test time, never a training
layer such as BiHalf's); in train mode (z, centred features), since BiHalf and GreedyHash fit the codes'
cosine similarities to those of the features. A batch of two views per image ([B, 2, 3, H, W], CIBHash's
data) is flattened view-major: rows 0..B-1 are the first views, B..2B-1 the second.

Why centre: ReLU features (a randomly initialised network's above all) share a large common part; their
cosine similarities are then all near 1 (digits, untrained lite AlexNet: 0.96-0.99) and a hash layer on them
must learn a bias of the size of that part. Measured on those features (hash layer alone, 20 epochs): without
centring GreedyHash's codes collapsed to one code, BiHalf reached 0.56-0.60 mAP at 64 bits; centred 0.65-0.71.
"""
import paddle
from paddle import nn

from models.hash_model import HashModel


class FeatureCentering(nn.Layer):
    """x - mean over the items: the batch mean in train mode, which also updates a running mean (the exact
    average of the first 1 / (1 - momentum) batches, then an exponential average, like BatchNorm's); the
    running mean in eval mode. `_mean` ends like BatchNorm's statistics, so data-parallel runs average it."""

    def __init__(self, dim, momentum=0.9):
        super().__init__()
        self.momentum = momentum
        self.register_buffer("_mean", paddle.zeros([dim], dtype=paddle.get_default_dtype()))
        self.register_buffer("_batches", paddle.zeros([1], dtype=paddle.get_default_dtype()))

    def forward(self, x):
        if not self.training:
            return x - self._mean
        mean = x.mean(axis=0)
        with paddle.no_grad():
            self._batches.set_value(self._batches + 1)
            weight = paddle.maximum(self._batches.astype(x.dtype).reciprocal(),
                                    paddle.full([1], 1.0 - self.momentum, dtype=x.dtype))
            self._mean.set_value(self._mean + weight * (mean.detach() - self._mean))
        return x - mean


def flatten_views(x):
    """[B, V, 3, H, W] -> [V * B, 3, H, W], view-major; a 4-D batch as it is."""
    if len(x.shape) != 5:
        return x
    return x.transpose([1, 0, 2, 3, 4]).reshape([-1, *x.shape[2:]])


class UnsupervisedHashNet(HashModel):
    """backbone -> centring -> fc(K) = z; train mode: (z, centred features)."""

    def __init__(self, backbone, bit, hash_lr_mult=10.0, hash_bias_lr_mult=None, num_classes=None,
                 hash_init_std=0.01, hash_bias_init=0.0, classifier_init_std=None):
        super().__init__(backbone, bit, hash_lr_mult, hash_bias_lr_mult, hash_init_std=hash_init_std,
                         hash_bias_init=hash_bias_init)
        self.center = FeatureCentering(backbone.feature_dim)

    def encode_features(self, features):
        """z of the centred features (a head with an encoder of its own overrides this)."""
        return self.hash_layer(features)

    def forward(self, x):
        if not self.training:
            return self.encode_features(self.center(self.backbone(x)))
        features = self.center(self.backbone(flatten_views(x)))
        return self.encode_features(features), features
