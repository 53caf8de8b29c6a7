"""GoogLeNet (Inception v1) backbone, built on paddle.vision's GoogLeNet.

It keeps paddle.vision's parameter names (`_conv._conv.weight`, `_ince3a._conv1._conv.weight`, ...),
so the official ImageNet file (GoogLeNet_pretrained.pdparams) loads as it is. Hashing uses the main
branch only: the two auxiliary classifiers (`_conv_o1`, `_fc_o1`, `_out1`, `_conv_o2`, ...) are not
built (their tensors in the ImageNet file are reported as unused), and the 1000-way `_fc_out` is
replaced by the hash head.
"""
import paddle
from paddle import nn
from paddle.vision.models.googlenet import GoogLeNet, model_urls  # the module: the package's `googlenet` is the function


class GoogLeNetBackbone(GoogLeNet):
    """Inception 5b, global average pool and paddle.vision's dropout 0.4 (where Caffe's GoogLeNet has
    pool5/drop_7x7_s1 before its classifier) -> [N, 1024].

    The network is paddle.vision's as it is (no BatchNorm), so the model options dropout / fc_dim /
    batch_norm do not apply and are ignored. Inputs from 64x64 up (the lite crops) reach the
    adaptive pool; at 64x64 Inception 5b works on 1x1 maps.
    """

    imagenet_weights = model_urls["googlenet"]  # (url, md5) that paddle.vision downloads

    def __init__(self, **_ignored):
        super().__init__(num_classes=-1, with_pool=True)  # num_classes <= 0: no classifier, no auxiliary heads
        self._drop = nn.Dropout(p=0.4, mode="downscale_in_infer")  # paddle.vision's, before its _fc_out
        self.feature_dim = 1024

    def forward(self, x):
        # paddle.vision's main branch, spelled out (its forward also pools the auxiliary branches,
        # whose fixed 5x5 pools need 224x224 inputs, and dy2static exports this one directly)
        x = self._pool(self._conv_2(self._conv_1(self._pool(self._conv(x)))))
        x = self._pool(self._ince3b(self._ince3a(x)))
        x = self._ince4e(self._ince4d(self._ince4c(self._ince4b(self._ince4a(x)))))
        x = self._ince5b(self._ince5a(self._pool(x)))
        return paddle.flatten(self._drop(self._pool_5(x)), 1)
