"""AlexNet backbone (features + fc6 + fc7 -> 4096-d) with paddle.vision's parameter names.

Keeping paddle.vision's names (`_conv1._conv.weight`, `_fc6.weight`, ...) means the official
ImageNet weights (AlexNet_pretrained.pdparams) load as they are; `_fc8` is simply not used.
"""
import math

import paddle
from paddle import nn

IMAGENET_WEIGHTS_URL = "https://paddle-imagenet-models-name.bj.bcebos.com/dygraph/AlexNet_pretrained.pdparams"
IMAGENET_WEIGHTS_MD5 = "7f0f9f737132e02732d75a1459d98a43"


def _he_attr(fan_in):
    """He-normal weights: paddle.vision's Uniform(+-1/sqrt(fan_in)) shrinks activations ~2.4x per
    layer, so from scratch (the lite data, no ImageNet weights) fc7 outputs ~0.004 and the
    bilinear pairwise loss has no gradient; ImageNet weights replace this init anyway."""
    return paddle.ParamAttr(initializer=nn.initializer.Normal(0.0, math.sqrt(2.0 / fan_in)))


def _zero_attr():
    return paddle.ParamAttr(initializer=nn.initializer.Constant(0.0))


def _bn(channels, batch_norm):
    return nn.BatchNorm2D(channels) if batch_norm else None


def _conv_relu(conv, bn, x):
    x = conv(x)
    return nn.functional.relu(bn(x) if bn is not None else x)


class ConvPool(nn.Layer):
    def __init__(self, cin, cout, kernel, stride, padding, batch_norm=False):
        super().__init__()
        fan_in = cin * kernel * kernel
        self._conv = nn.Conv2D(cin, cout, kernel, stride=stride, padding=padding,
                               weight_attr=_he_attr(fan_in), bias_attr=_zero_attr())
        self._bn = _bn(cout, batch_norm)
        self._pool = nn.MaxPool2D(kernel_size=3, stride=2, padding=0)

    def forward(self, x):
        return self._pool(_conv_relu(self._conv, self._bn, x))


class AlexNetBackbone(nn.Layer):
    """AlexNet up to fc7 (ReLU), so a hash head can replace fc8.

    batch_norm adds BatchNorm after each conv: an option for training from scratch (the lite
    data), where plain AlexNet learns too slowly; ImageNet weights are for the plain network.
    """

    imagenet_weights = (IMAGENET_WEIGHTS_URL, IMAGENET_WEIGHTS_MD5)  # (url, md5) that paddle.vision downloads

    def __init__(self, dropout=0.5, fc_dim=4096, batch_norm=False):
        super().__init__()
        self.feature_dim = fc_dim  # 4096 in AlexNet (and for ImageNet weights)
        self._conv1 = ConvPool(3, 64, 11, 4, 2, batch_norm)
        self._conv2 = ConvPool(64, 192, 5, 1, 2, batch_norm)
        self._conv3 = nn.Conv2D(192, 384, 3, padding=1, weight_attr=_he_attr(192 * 9),
                                bias_attr=_zero_attr())
        self._bn3 = _bn(384, batch_norm)
        self._conv4 = nn.Conv2D(384, 256, 3, padding=1, weight_attr=_he_attr(384 * 9),
                                bias_attr=_zero_attr())
        self._bn4 = _bn(256, batch_norm)
        self._conv5 = ConvPool(256, 256, 3, 1, 1, batch_norm)
        # Dropout as paddle.vision's AlexNet (scale at inference), so its ImageNet weights see
        # the activations they were trained with.
        # Identity at 224x224 input; lets smaller inputs (the lite data) reach fc6 unchanged.
        self._avgpool = nn.AdaptiveAvgPool2D((6, 6))
        fc_fan_in = 256 * 6 * 6
        self._drop1 = nn.Dropout(p=dropout, mode="downscale_in_infer")
        self._fc6 = nn.Linear(256 * 6 * 6, fc_dim, weight_attr=_he_attr(fc_fan_in),
                              bias_attr=_zero_attr())
        self._drop2 = nn.Dropout(p=dropout, mode="downscale_in_infer")
        self._fc7 = nn.Linear(fc_dim, fc_dim, weight_attr=_he_attr(fc_dim),
                              bias_attr=_zero_attr())

    def _pool6(self, x):
        """AdaptiveAvgPool2D((6, 6)). Where the map's side divides 6 (the lite data's 64 px crops give
        1x1, 224 px gives 6x6) every output cell averages one input cell, so in inference the pool
        is written as that repeat (identity at 6x6): the same values bit for bit, and a graph ONNX
        can hold (paddle2onnx turns a 1x1 -> 6x6 adaptive pool into an AveragePool of stride 0,
        which onnxruntime refuses). Training keeps the pool, so its gradients (and trained weights)
        are exactly what they were. The side is static in an export (InputSpec [None, 3, crop, crop])."""
        h, w = x.shape[2], x.shape[3]
        if self.training or h not in (1, 2, 3, 6) or w not in (1, 2, 3, 6):
            return self._avgpool(x)
        if (h, w) == (6, 6):
            return x
        channels = x.shape[1]
        x = paddle.reshape(x, [-1, channels, h, 1, w, 1])
        x = paddle.expand(x, [-1, channels, h, 6 // h, w, 6 // w])
        return paddle.reshape(x, [-1, channels, 6, 6])

    def forward(self, x):
        x = self._conv1(x)
        x = self._conv2(x)
        x = _conv_relu(self._conv3, self._bn3, x)
        x = _conv_relu(self._conv4, self._bn4, x)
        x = self._conv5(x)
        x = paddle.flatten(self._pool6(x), start_axis=1)
        x = nn.functional.relu(self._fc6(self._drop1(x)))
        x = nn.functional.relu(self._fc7(self._drop2(x)))
        return x
