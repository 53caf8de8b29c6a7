"""PP-LCNet backbone (Cui et al., "PP-LCNet: A Lightweight CPU Convolutional Neural Network", 2021).

Written from the paper: a 3x3 stem, then depthwise-separable blocks (a depthwise conv and a 1x1
pointwise conv, each with BatchNorm and H-Swish); 5x5 depthwise kernels in the tail; SE modules
(ReLU, H-Sigmoid) in the last two blocks only; global average pooling, then a 1x1 conv to 1280
(H-Swish, dropout 0.2) before the classifier, which the hash head replaces. paddle.vision has no
PP-LCNet; the layer names follow PaddleClas's implementation (`conv1.conv`, `blocks5.3.dw_conv.bn`,
`blocks6.0.se.conv1`, `last_conv`, ...), so its ImageNet file loads through --pretrained-backbone
from a local path (PaddleClas publishes PPLCNet_x2_5_pretrained.pdparams at
https://paddle-imagenet-models-name.bj.bcebos.com/dygraph/legendary_models/PPLCNet_x2_5_pretrained.pdparams;
no md5 is published with it, so `imagenet` is not offered: download it and give the path). Its
`fc` (1000 classes) is not used.
"""
import paddle
from paddle import nn

# The paper's stages at scale 1: (depthwise kernel, output channels, stride, SE) per block.
STAGES = {
    "blocks2": [(3, 32, 1, False)],
    "blocks3": [(3, 64, 2, False), (3, 64, 1, False)],
    "blocks4": [(3, 128, 2, False), (3, 128, 1, False)],
    "blocks5": [(3, 256, 2, False)] + [(5, 256, 1, False)] * 5,
    "blocks6": [(5, 512, 2, True), (5, 512, 1, True)],
}
STEM_CHANNELS = 16
LAST_CONV_CHANNELS = 1280


def scaled_channels(channels, scale, divisor=8):
    """channels x scale rounded to a multiple of divisor, never more than 10% below (MobileNet's rule)."""
    value = max(divisor, int(channels * scale + divisor / 2) // divisor * divisor)
    return value + divisor if value < 0.9 * channels * scale else value


class ConvBNLayer(nn.Layer):
    """conv (no bias, He-normal init) -> BatchNorm -> H-Swish."""

    def __init__(self, cin, cout, kernel, stride=1, groups=1):
        super().__init__()
        self.conv = nn.Conv2D(cin, cout, kernel, stride=stride, padding=(kernel - 1) // 2, groups=groups,
                              weight_attr=paddle.ParamAttr(initializer=nn.initializer.KaimingNormal()),
                              bias_attr=False)
        self.bn = nn.BatchNorm2D(cout)
        self.act = nn.Hardswish()

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))


class SEModule(nn.Layer):
    """Squeeze-and-excitation: x * hsigmoid(conv2(relu(conv1(avgpool(x))))), reduction 4."""

    def __init__(self, channels, reduction=4):
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2D(1)
        self.conv1 = nn.Conv2D(channels, channels // reduction, 1)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2D(channels // reduction, channels, 1)
        self.hardsigmoid = nn.Hardsigmoid()

    def forward(self, x):
        return x * self.hardsigmoid(self.conv2(self.relu(self.conv1(self.avg_pool(x)))))


class DepthwiseSeparable(nn.Layer):
    """depthwise kxk (stride s) -> [SE] -> pointwise 1x1."""

    def __init__(self, cin, cout, kernel, stride, use_se):
        super().__init__()
        self.use_se = use_se
        self.dw_conv = ConvBNLayer(cin, cin, kernel, stride=stride, groups=cin)
        if use_se:
            self.se = SEModule(cin)
        self.pw_conv = ConvBNLayer(cin, cout, 1)

    def forward(self, x):
        x = self.dw_conv(x)
        if self.use_se:
            x = self.se(x)
        return self.pw_conv(x)


class PPLCNetBackbone(nn.Layer):
    """PP-LCNet up to the 1280-d 1x1 conv after global pooling: forward(x) -> [N, 1280].

    BatchNorm is built in and the dropout is the paper's 0.2, so the model options dropout / fc_dim /
    batch_norm do not apply and are ignored. Any input from 64x64 up (total stride 32).
    """

    scale = 1.0
    imagenet_weights = None  # PaddleClas's file has no published md5: give a local path (module docstring)

    def __init__(self, **_ignored):
        super().__init__()
        cin = scaled_channels(STEM_CHANNELS, self.scale)
        self.conv1 = ConvBNLayer(3, cin, 3, stride=2)
        for stage, blocks in STAGES.items():
            layers = []
            for kernel, channels, stride, use_se in blocks:
                cout = scaled_channels(channels, self.scale)
                layers.append(DepthwiseSeparable(cin, cout, kernel, stride, use_se))
                cin = cout
            setattr(self, stage, nn.Sequential(*layers))
        self.avg_pool = nn.AdaptiveAvgPool2D(1)
        self.last_conv = nn.Conv2D(cin, LAST_CONV_CHANNELS, 1, bias_attr=False)
        self.act = nn.Hardswish()
        self.dropout = nn.Dropout(p=0.2, mode="downscale_in_infer")
        self.feature_dim = LAST_CONV_CHANNELS

    def forward(self, x):
        x = self.blocks6(self.blocks5(self.blocks4(self.blocks3(self.blocks2(self.conv1(x))))))
        x = self.dropout(self.act(self.last_conv(self.avg_pool(x))))
        return paddle.flatten(x, 1)


class PPLCNetX25Backbone(PPLCNetBackbone):
    """PPLCNet_x2_5, the backbone of PaddleClas's PP-ShiTu general recognition models."""

    scale = 2.5
