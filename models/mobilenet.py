"""MobileNetV3 Large/Small backbones, built on paddle.vision's MobileNetV3.

They keep paddle.vision's parameter names (`conv`, `blocks.<i>`, `lastconv`, `classifier.0`), so
the official ImageNet files (mobilenet_v3_{large,small}_x1.0.pdparams) load as they are; the
1000-way `classifier.3` is not used.
"""
import paddle
from paddle import nn
from paddle.vision.models import mobilenetv3 as paddle_mobilenet


def _penultimate(in_dim, out_dim):
    """paddle.vision's classifier without its last Linear: Linear, Hardswish, Dropout(0.2)."""
    return nn.Sequential(nn.Linear(in_dim, out_dim), nn.Hardswish(), nn.Dropout(p=0.2))


class _MobileNetV3Features:
    """Mixin: pooled features through the penultimate fc -> [N, feature_dim] (1280 Large, 1024 Small).

    BatchNorm is built in and dropout is paddle.vision's 0.2, so the model options dropout /
    fc_dim / batch_norm do not apply and are ignored.
    """

    def _add_penultimate(self):
        self.feature_dim = self.last_channel
        self.classifier = _penultimate(self.lastconv_out_channels, self.last_channel)

    def forward(self, x):
        # paddle.vision's forward, spelled out: dy2static cannot export a mixin's super().forward.
        # The adaptive 1x1 pool accepts any input from 64x64 up.
        x = self.avgpool(self.lastconv(self.blocks(self.conv(x))))
        return self.classifier(paddle.flatten(x, 1))


class MobileNetV3LargeBackbone(_MobileNetV3Features, paddle_mobilenet.MobileNetV3Large):
    imagenet_weights = paddle_mobilenet.model_urls["mobilenet_v3_large_x1.0"]  # (url, md5) of paddle.vision

    def __init__(self, **_ignored):
        super().__init__(scale=1.0, num_classes=0, with_pool=True)
        self._add_penultimate()


class MobileNetV3SmallBackbone(_MobileNetV3Features, paddle_mobilenet.MobileNetV3Small):
    imagenet_weights = paddle_mobilenet.model_urls["mobilenet_v3_small_x1.0"]

    def __init__(self, **_ignored):
        super().__init__(scale=1.0, num_classes=0, with_pool=True)
        self._add_penultimate()
