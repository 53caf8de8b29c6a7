"""LSH and ITQ baselines: numerics against direct computations, and codes from a model's backbone."""
import numpy as np
import paddle
import pytest

from models import build_model
from utils.evaluation.baselines import BASELINES, fit_itq, fit_lsh
from utils.inference.features import baseline_codes
from utils.config import build_config
from utils.data.dataset import ImageListDataset
from utils.data.loader import build_dataloader
from utils.data.transforms import build_transform
from utils.errors import UserError
from utils.evaluation.metrics import mean_average_precision


def clustered(rng, n, dim=40, clusters=4):
    labels = rng.integers(0, clusters, n)
    centers = rng.normal(0, 3.0, (clusters, dim))
    return centers[labels] + rng.normal(0, 1.0, (n, dim)), np.eye(clusters)[labels]


def test_lsh_is_the_sign_of_seeded_random_projections_of_centred_features():
    rng = np.random.default_rng(0)
    x, _ = clustered(rng, 30)
    hasher = fit_lsh(x, 8, seed=5)
    w = np.random.default_rng(5).standard_normal((x.shape[1], 8))
    mean = [sum(x[i][k] for i in range(len(x))) / len(x) for k in range(x.shape[1])]
    for i in range(len(x)):
        for b in range(8):
            value = sum((x[i][k] - mean[k]) * w[k][b] for k in range(x.shape[1]))
            assert hasher.encode(x[i:i + 1])[0, b] == (1 if value >= 0 else -1)


def test_itq_rotation_is_orthogonal_and_lowers_the_quantization_error():
    rng = np.random.default_rng(1)
    x, labels = clustered(rng, 200)
    start, fitted = fit_itq(x, 16, seed=3, iterations=0), fit_itq(x, 16, seed=3, iterations=50)
    xc = x - x.mean(axis=0)
    _, _, vt = np.linalg.svd(xc, full_matrices=False)
    pca = vt[:16].T
    for hasher in (start, fitted):
        rotation = np.linalg.lstsq(pca, hasher.projection, rcond=None)[0]  # projection = PCA @ R
        np.testing.assert_allclose(rotation @ rotation.T, np.eye(16), atol=1e-6)

    def quantization_error(h):
        v = xc @ h.projection
        return ((np.where(v >= 0, 1, -1) - v) ** 2).sum()

    assert quantization_error(fitted) < quantization_error(start)
    np.testing.assert_array_equal(fitted.encode(x), fit_itq(x, 16, seed=3).encode(x))  # seeded
    codes = fitted.encode(x)
    assert mean_average_precision(codes, codes, labels, labels) > 0.9  # clusters are found
    with pytest.raises(UserError, match="ITQ needs bit"):
        fit_itq(x[:10], 16)


@pytest.mark.slow
def test_baseline_codes_from_a_models_backbone(tiny_lite):
    cfg = build_config(None, {"bit": 16}, ["model.fc_dim=64"])
    paddle.seed(0)
    model = build_model(cfg)
    transform = build_transform(False, resize_size=72, crop_size=64)
    loaders = [build_dataloader(ImageListDataset(f"{tiny_lite}/{split}.txt", tiny_lite, transform), 16, False, False)
               for split in ("train", "test", "database")]
    for name in BASELINES:
        q, db, ql, dbl = baseline_codes(name, model, *loaders, bit=16, seed=0)
        assert q.shape == (12, 16) and db.shape == (48, 16) and q.dtype == np.int8
        assert set(np.unique(db)) == {-1, 1} and len(np.unique(db, axis=0)) > 1
        assert ql.shape == (12, 12) and dbl.shape == (48, 12)
        if name == "itq":  # seeded: the same codes again
            np.testing.assert_array_equal(baseline_codes(name, model, *loaders, bit=16, seed=0)[1], db)
    with pytest.raises(UserError, match="unknown baseline"):
        baseline_codes("pq", model, *loaders, bit=16)
