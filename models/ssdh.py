"""SSDH / Deep Binary Codes head (Lin et al. CVPRW 2015; Yang et al. TPAMI 2018)."""
from paddle import nn

from models.classifier_head import HashClassifierNet


class SSDHNet(HashClassifierNet):
    """A latent layer of K sigmoid units between the backbone and the classifier; codes are
    the units above 0.5, i.e. z >= 0."""

    def code_features(self, z):
        return nn.functional.sigmoid(z)
