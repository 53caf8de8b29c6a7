"""ResNet18/ResNet50 backbones (global-average-pooled features), built on paddle.vision's ResNet.

They keep paddle.vision's parameter names (`conv1`, `bn1`, `layer1.0.conv1`, ...), so the official
ImageNet files (resnet18.pdparams, resnet50.pdparams) load as they are; their `fc` is not used.
"""
import paddle
from paddle.vision.models import resnet as paddle_resnet


class _ResNetBackbone(paddle_resnet.ResNet):
    """ResNet without its classifier: forward(x) -> [N, feature_dim] pooled features.

    BatchNorm is built in and there are no fc layers before the head, so the model options
    dropout / fc_dim / batch_norm do not apply and are ignored.
    """

    depth = None
    block = None
    imagenet_weights = None

    def __init__(self, **_ignored):
        super().__init__(self.block, self.depth, num_classes=0, with_pool=True)
        self.feature_dim = 512 * self.block.expansion

    def forward(self, x):
        # paddle.vision's forward without fc (spelled out: dy2static exports it directly).
        # Adaptive 1x1 pooling: any input from 64x64 up gives the same feature size.
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return paddle.flatten(self.avgpool(x), 1)


class ResNet18Backbone(_ResNetBackbone):
    depth, block = 18, paddle_resnet.BasicBlock
    imagenet_weights = paddle_resnet.model_urls["resnet18"]  # (url, md5) that paddle.vision downloads


class ResNet50Backbone(_ResNetBackbone):
    depth, block = 50, paddle_resnet.BottleneckBlock
    imagenet_weights = paddle_resnet.model_urls["resnet50"]
