"""GoogLeNet (Inception v1) backbone, built on paddle.vision's GoogLeNet.

It keeps paddle.vision's parameter names (`_conv._conv.weight`, `_ince3a._conv1._conv.weight`, ...),
so the official ImageNet file (GoogLeNet_pretrained.pdparams) loads as it is. Hashing uses the main
branch only: the two auxiliary classifiers (`_conv_o1`, `_fc_o1`, `_out1`, `_conv_o2`, ...) are not
built (their tensors in the ImageNet file are reported as unused), and the 1000-way `_fc_out` is
replaced by the hash head.
"""
import paddle
from paddle import nn
from paddle.vision.models.googlenet import ConvLayer, GoogLeNet, model_urls  # (the package's `googlenet` is the function)


class _ConvBN(nn.Layer):
    """paddle.vision's ConvLayer (`_conv`, no bias) followed by BatchNorm (`_bn`)."""

    def __init__(self, conv):
        super().__init__()
        self._conv = conv
        self._bn = nn.BatchNorm2D(conv._out_channels)

    def forward(self, x):
        return self._bn(self._conv(x))


class GoogLeNetBackbone(GoogLeNet):
    """Inception 5b, global average pool and paddle.vision's dropout 0.4 (where Caffe's GoogLeNet has
    pool5/drop_7x7_s1 before its classifier) -> [N, 1024].

    batch_norm=True adds BatchNorm after every convolution (`<conv layer>._bn`, the conv names
    unchanged): an option for training from scratch (the lite data), where paddle.vision's plain
    network (no BatchNorm, no ReLU between its stem convolutions) did not learn in short runs; ImageNet
    weights are for the plain network (batch_norm=False, the fine-tuning configs). dropout / fc_dim do
    not apply and are ignored. Inputs from 64x64 up (the lite crops) reach the adaptive pool; at
    64x64 Inception 5b works on 1x1 maps.
    """

    imagenet_weights = model_urls["googlenet"]  # (url, md5) that paddle.vision downloads

    def __init__(self, batch_norm=False, **_ignored):
        super().__init__(num_classes=-1, with_pool=True)  # num_classes <= 0: no classifier, no auxiliary heads
        self._drop = nn.Dropout(p=0.4, mode="downscale_in_infer")  # paddle.vision's, before its _fc_out
        self.feature_dim = 1024
        if batch_norm:
            for name, layer in list(self.named_sublayers()):
                if isinstance(layer, ConvLayer):
                    parent = self
                    for part in name.split(".")[:-1]:
                        parent = getattr(parent, part)
                    setattr(parent, name.split(".")[-1], _ConvBN(layer._conv))

    def forward(self, x):
        # paddle.vision's main branch, spelled out (its forward also pools the auxiliary branches,
        # whose fixed 5x5 pools need 224x224 inputs, and dy2static exports this one directly)
        x = self._pool(self._conv_2(self._conv_1(self._pool(self._conv(x)))))
        x = self._pool(self._ince3b(self._ince3a(x)))
        x = self._ince4e(self._ince4d(self._ince4c(self._ince4b(self._ince4a(x)))))
        x = self._ince5b(self._ince5a(self._pool(x)))
        return paddle.flatten(self._drop(self._pool_5(x)), 1)
