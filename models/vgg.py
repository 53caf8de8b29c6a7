"""VGG16 backbone (conv features + fc6 + fc7 -> fc_dim), built on paddle.vision's VGG.

It keeps paddle.vision's parameter names (`features.<i>.*`, `classifier.0/3.*`), so the official
ImageNet file (vgg16.pdparams) loads as it is; its `classifier.6` (the 1000-way fc8) is not used.
"""
import paddle
from paddle import nn
from paddle.vision.models import vgg as paddle_vgg


class VGG16Backbone(paddle_vgg.VGG):
    """VGG16 up to fc7 (ReLU + dropout), so a hash head can replace fc8.

    Takes the same options as the AlexNet backbone: dropout (fc6/fc7), fc_dim (their width;
    ImageNet weights need 4096) and batch_norm (VGG16-BN layout, for training from scratch;
    paddle.vision publishes no ImageNet weights for it). Other options are ignored.
    """

    imagenet_weights = paddle_vgg.model_urls["vgg16"]  # (url, md5) that paddle.vision downloads

    def __init__(self, dropout=0.5, fc_dim=4096, batch_norm=False, **_ignored):
        # num_classes=0: paddle.vision builds no classifier; fc6/fc7 are rebuilt below with its names
        super().__init__(paddle_vgg.make_layers(paddle_vgg.cfgs["D"], batch_norm=batch_norm),
                         num_classes=0, with_pool=True)
        self.feature_dim = fc_dim
        # Indices 0 and 3 are paddle.vision's fc6 and fc7 (classifier.0.weight, classifier.3.weight).
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, fc_dim), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(fc_dim, fc_dim), nn.ReLU(), nn.Dropout(dropout),
        )

    def forward(self, x):
        # The adaptive 7x7 pool also accepts small inputs (64x64 gives a 2x2 map, repeated to 7x7).
        x = self.avgpool(self.features(x))
        return self.classifier(paddle.flatten(x, 1))
