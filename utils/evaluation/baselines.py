"""Unsupervised hashing baselines on a network's backbone features: the floor of a results table.

- LSH (random-projection locality-sensitive hashing, Charikar 2002): codes = sign(W^T (x - mean))
  with W a seeded Gaussian matrix (features are centred on the training mean: ReLU features are
  all positive, so uncentred projections would give nearly constant bits).
- ITQ (Gong & Lazebnik, CVPR 2011): PCA to K dimensions, then a rotation R learned by
  alternating B = sign(V R) and the orthogonal Procrustes solution R = argmin ||B - V R||_F.

Both are fitted on the training images' features and run in numpy, so they cost seconds; the
features come from utils.inference.features (a network's backbone on a loader).
"""
import numpy as np

from utils.errors import ConfigError


class LinearHash:
    """codes = sign((x - mean) @ projection), 0 -> +1 (the project's code convention), int8 +-1."""

    def __init__(self, mean, projection):
        self.mean, self.projection = mean, projection

    def encode(self, features):
        return np.where((features - self.mean) @ self.projection >= 0, 1, -1).astype(np.int8)


def fit_lsh(train_features, bit, seed=0):
    rng = np.random.default_rng(seed)
    mean = train_features.mean(axis=0)
    return LinearHash(mean, rng.standard_normal((train_features.shape[1], bit)))


def fit_itq(train_features, bit, seed=0, iterations=50):
    if bit > min(train_features.shape):
        raise ConfigError(f"ITQ needs bit <= feature dimension and training images ({train_features.shape}); "
                        f"got {bit} bits")
    x = train_features.astype(np.float64)
    mean = x.mean(axis=0)
    x = x - mean
    # PCA: the top-K right singular vectors of the centred data
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    pca = vt[:bit].T
    v = x @ pca
    rng = np.random.default_rng(seed)
    rotation, _ = np.linalg.qr(rng.standard_normal((bit, bit)))
    for _ in range(iterations):
        codes = np.where(v @ rotation >= 0, 1.0, -1.0)
        # Procrustes: maximise tr(R^T V^T B); with V^T B = U S W^T the optimum is R = U W^T
        u, _, wt = np.linalg.svd(v.T @ codes)
        rotation = u @ wt
    return LinearHash(mean, pca @ rotation)


BASELINES = {
    "lsh": fit_lsh,
    "itq": fit_itq,
}
