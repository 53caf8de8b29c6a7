"""Spectral hashing's head (Weiss, Torralba, Fergus, NIPS 2008), fitted in closed form by utils/training/shallow.py.

Each bit is a one-dimensional eigenfunction of the PCA-aligned, uniformly-approximated data: bit j =
sign(sin(pi/2 + omega_j (v_d - min_d))) = sign(cos(omega_j (v_d - min_d))), v_d the projection on principal
direction d(j), omega_j = k_j pi / range_d (Sec. 3.1's analytical eigenfunctions). Every bit is then cos of an
affine function of the features: z = cos(fc(K)(backbone(x))), the fc holding omega_j times the direction and
its offset. Codes = z >= 0 like every head, so export, predict and the service use it unchanged.
"""
import paddle

from models.hash_model import HashModel


class SpectralHashNet(HashModel):
    def forward(self, x):
        return paddle.cos(self.hash_layer(self.backbone(x)))
