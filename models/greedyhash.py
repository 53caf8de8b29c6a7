"""GreedyHash head (Su et al., NeurIPS 2018): sign forward, straight-through backward."""
from models.classifier_head import HashClassifierNet
from models.hash_model import codes_from_logits


def sign_straight_through(z):
    """sign(z) (0 -> +1, as the codes) in the forward pass; gradient 1 in the backward pass."""
    return z + (codes_from_logits(z) - z).detach()


class GreedyHashNet(HashClassifierNet):
    """The classifier sees the binary code itself; its gradient reaches z unchanged."""

    def code_features(self, z):
        return sign_straight_through(z)
