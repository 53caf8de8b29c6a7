"""Heads with a classifier on top of the hash layer (SSDH, DSHSD, GreedyHash).

In eval mode they return z like the linear head, HashModel (codes = z >= 0), so evaluation, export and
inference never see the classifier; in train mode they return (z, class_logits) for the
method's loss. The classifier is a training device: built without num_classes (export,
predict: no data at hand), the head has no classifier and the classifier weights of a
checkpoint are simply not loaded (they do not change the codes).
"""
import paddle
from paddle import nn

from models.hash_model import HashModel
from utils.errors import ConfigError


class HashClassifierNet(HashModel):
    """backbone -> hash layer z -> code_features(z) -> linear classifier (train mode only)."""

    def __init__(self, backbone, bit, hash_lr_mult=10.0, hash_bias_lr_mult=None, num_classes=None,
                 hash_init_std=0.01, hash_bias_init=0.0, classifier_init_std=None):
        super().__init__(backbone, bit, hash_lr_mult, hash_bias_lr_mult, hash_init_std=hash_init_std,
                         hash_bias_init=hash_bias_init)
        self.classifier = None
        if num_classes is not None:
            weight_init = bias_init = None  # paddle's default
            if classifier_init_std is not None:  # Caffe's gaussian filler, constant 0 bias
                weight_init = nn.initializer.Normal(0.0, classifier_init_std)
                bias_init = nn.initializer.Constant(0.0)
            self.classifier = self._build_classifier(bit, num_classes, hash_lr_mult, weight_init, bias_init)

    def _build_classifier(self, bit, num_classes, lr_mult, weight_init, bias_init):
        return nn.Linear(bit, num_classes, weight_attr=paddle.ParamAttr(initializer=weight_init, learning_rate=lr_mult),
                         bias_attr=paddle.ParamAttr(initializer=bias_init, learning_rate=lr_mult))

    def code_features(self, z):
        """What the classifier sees (the method's relaxed or binary code)."""
        raise NotImplementedError

    def forward(self, x):
        z = self.hash_layer(self.backbone(x))  # HashModel's forward (super() does not survive paddle.jit)
        if not self.training:
            return z
        if self.classifier is None:
            raise ConfigError(f"{type(self).__name__} was built without num_classes: it can encode but not train")
        return z, self.classifier(self.code_features(z))
