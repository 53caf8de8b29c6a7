"""DSHSD head (Yang et al., 2019): a linear classifier on the tanh codes."""
import paddle

from models.classifier_head import HashClassifierNet


class DSHSDNet(HashClassifierNet):
    def code_features(self, z):
        return paddle.tanh(z)
