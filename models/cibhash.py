"""CIBHash's head (Qiu et al., IJCAI 2021): the paper's encoder on the backbone features, fc(1024) -> ReLU -> fc(K),
the code sign(sigmoid(z) - 1/2) = sign(z). The features are centred first, as every head of the methods that
learn without labels does (models/unsupervised.py). Measured on the digits (untrained lite network frozen, two
views a image, 20 epochs on the database, seed 0): the encoder's hidden layer gave mAP 0.632 / 0.696 at 16 / 64
bits against 0.581 / 0.654 for fc(K) alone, both at lr 0.1."""
import paddle
from paddle import nn

from models.unsupervised import UnsupervisedHashNet

HIDDEN = 1024  # the paper's (and its authors' code's) encoder width


class CIBHashNet(UnsupervisedHashNet):
    def __init__(self, backbone, bit, hash_lr_mult=10.0, hash_bias_lr_mult=None, num_classes=None,
                 hash_init_std=0.01, hash_bias_init=0.0, classifier_init_std=None):
        super().__init__(backbone, bit, hash_lr_mult, hash_bias_lr_mult, hash_init_std=hash_init_std,
                         hash_bias_init=hash_bias_init)
        lr = paddle.ParamAttr(learning_rate=hash_lr_mult)
        self.encoder = nn.Linear(backbone.feature_dim, HIDDEN, weight_attr=lr, bias_attr=paddle.ParamAttr(
            learning_rate=hash_lr_mult if hash_bias_lr_mult is None else hash_bias_lr_mult))
        self.hash_layer = nn.Linear(  # on the hidden layer now: the same initialisation and multipliers as HashModel's
            HIDDEN, bit,
            weight_attr=paddle.ParamAttr(initializer=nn.initializer.Normal(0.0, hash_init_std), learning_rate=hash_lr_mult),
            bias_attr=paddle.ParamAttr(initializer=nn.initializer.Constant(hash_bias_init),
                                       learning_rate=hash_lr_mult if hash_bias_lr_mult is None else hash_bias_lr_mult))

    def encode_features(self, features):
        return self.hash_layer(nn.functional.relu(self.encoder(features)))
