"""PP-ShiTu binary-feature head (PaddleClas GeneralRecognition_PPLCNet_x2_5_binary, utils/losses/ppshitu.py)."""
import paddle
from paddle import nn

from models.classifier_head import HashClassifierNet


class PPShiTuNet(HashClassifierNet):
    """backbone -> fc(K) -> tanh (PaddleClas's TanhSuffix on the backbone's fc: the embedding) -> FC
    classifier. PaddleClas's FC head initialises its weights XavierNormal (model.classifier_init_std
    null); the retrieval feature is sign(tanh(z)) = the code z >= 0."""

    def code_features(self, z):
        return paddle.tanh(z)

    def _build_classifier(self, bit, num_classes, lr_mult, weight_init, bias_init):
        weight_init = weight_init or nn.initializer.XavierNormal()
        return super()._build_classifier(bit, num_classes, lr_mult, weight_init, bias_init)
