"""Unsupervised (shallow) hashing on a network's backbone features: the floor of a results table, and the
shallow methods a user can pick (utils/losses/shallow.py; utils/training/shallow.py writes a fit into a head).

- LSH (random-projection locality-sensitive hashing, Charikar 2002): codes = sign(W^T (x - mean))
  with W a seeded Gaussian matrix (features are centred on the training mean: ReLU features are
  all positive, so uncentred projections would give nearly constant bits).
- PCAH: codes = sign(V), V the projections on the top-K principal directions of the centred features.
- ITQ (Gong & Lazebnik, CVPR 2011): PCA to K dimensions, then a rotation R learned by
  alternating B = sign(V R) and the orthogonal Procrustes solution R = argmin ||B - V R||_F.
- Spectral hashing (Weiss, Torralba, Fergus, NIPS 2008): PCA, a box fitted around the projections, and
  the K one-dimensional analytical eigenfunctions sin(pi/2 + k pi (v_d - min_d) / range_d) of smallest
  eigenvalue (smallest (k pi / range_d)^2, the constant one left out), thresholded at 0.

All are fitted on the training images' features and run in numpy, so they cost seconds; the
features come from utils.inference.features (a network's backbone on a loader). Each fit has
`encode(features)` (+-1 int8 codes) and `affine()`: (W [D, K], b [K]) with codes = sign(x W + b)
(LSH, PCAH, ITQ) or sign(cos(x W + b)) (spectral hashing), the form a model's fc layer holds.
"""
import numpy as np

from utils.errors import ConfigError


class LinearHash:
    """codes = sign((x - mean) @ projection), 0 -> +1 (the project's code convention), int8 +-1."""

    def __init__(self, mean, projection):
        self.mean, self.projection = mean, projection

    def encode(self, features):
        return np.where((features - self.mean) @ self.projection >= 0, 1, -1).astype(np.int8)

    def affine(self):
        return self.projection, -self.mean @ self.projection


class SpectralHash:
    """codes = sign(cos(omega * ((x - mean) @ directions - lower))), 0 -> +1, int8 +-1: bit j is the
    eigenfunction of frequency omega_j along principal direction directions[:, j]."""

    def __init__(self, mean, directions, lower, omega):
        self.mean, self.directions, self.lower, self.omega = mean, directions, lower, omega

    def encode(self, features):
        phase = self.omega * ((features - self.mean) @ self.directions - self.lower)
        return np.where(np.cos(phase) >= 0, 1, -1).astype(np.int8)

    def affine(self):
        weight = self.directions * self.omega
        return weight, -self.omega * (self.mean @ self.directions + self.lower)


def fit_lsh(train_features, bit, seed=0):
    rng = np.random.default_rng(seed)
    mean = train_features.mean(axis=0)
    return LinearHash(mean, rng.standard_normal((train_features.shape[1], bit)))


def _pca(train_features, bit, method):
    """(mean, the top-`bit` principal directions [D, bit], the centred features) of the training features."""
    if bit > min(train_features.shape):
        raise ConfigError(f"{method} needs bit <= feature dimension and training images ({train_features.shape}); "
                          f"got {bit} bits")
    x = train_features.astype(np.float64)
    mean = x.mean(axis=0)
    x = x - mean
    _, _, vt = np.linalg.svd(x, full_matrices=False)  # PCA: the top-K right singular vectors of the centred data
    return mean, vt[:bit].T, x


def fit_pcah(train_features, bit, seed=0):
    mean, pca, _ = _pca(train_features, bit, "PCAH")
    return LinearHash(mean, pca)


def fit_itq(train_features, bit, seed=0, iterations=50):
    mean, pca, x = _pca(train_features, bit, "ITQ")
    v = x @ pca
    rng = np.random.default_rng(seed)
    rotation, _ = np.linalg.qr(rng.standard_normal((bit, bit)))
    for _ in range(iterations):
        codes = np.where(v @ rotation >= 0, 1.0, -1.0)
        # Procrustes: maximise tr(R^T V^T B); with V^T B = U S W^T the optimum is R = U W^T
        u, _, wt = np.linalg.svd(v.T @ codes)
        rotation = u @ wt
    return LinearHash(mean, pca @ rotation)


def fit_sh(train_features, bit, seed=0):
    """Spectral hashing as the authors' trainSH.m: PCA to K dimensions; per dimension d the range
    [min_d - eps, max_d + eps] of the projections and the frequencies k = 1 .. ceil((K + 1) range_d /
    max range) - 1; the K modes of smallest (k pi / range_d)^2 (stable order on ties)."""
    mean, pca, x = _pca(train_features, bit, "spectral hashing")
    v = x @ pca
    eps = 1e-7
    lower, upper = v.min(axis=0) - eps, v.max(axis=0) + eps
    ranges = upper - lower
    top = np.ceil((bit + 1) * ranges / ranges.max()).astype(int)
    modes = [(d, k) for d in range(bit) for k in range(1, top[d])]
    omegas = np.array([k * np.pi / ranges[d] for d, k in modes])
    chosen = [modes[i] for i in np.argsort(omegas ** 2, kind="stable")[:bit]]
    if len(chosen) < bit:  # cannot happen: the widest dimension alone has K modes
        raise ConfigError(f"spectral hashing found {len(chosen)} modes for {bit} bits")
    dims = np.array([d for d, _ in chosen])
    omega = np.array([k * np.pi / ranges[d] for d, k in chosen])
    return SpectralHash(mean, pca[:, dims], lower[dims], omega)


BASELINES = {
    "lsh": fit_lsh,
    "pcah": fit_pcah,
    "itq": fit_itq,
    "sh": fit_sh,
}
