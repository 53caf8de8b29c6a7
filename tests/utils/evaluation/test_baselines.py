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


def test_pcah_is_the_sign_of_the_top_principal_projections():
    rng = np.random.default_rng(2)
    x, _ = clustered(rng, 60, dim=12)
    fitted = BASELINES["pcah"](x, 4)
    xc = x - x.mean(axis=0)
    eigenvalues, eigenvectors = np.linalg.eigh(xc.T @ xc)  # the covariance's eigenvectors, a route apart from the SVD
    top = eigenvectors[:, np.argsort(eigenvalues)[::-1][:4]]
    projections = xc @ top
    expected = np.where(projections * np.sign((top * fitted.projection).sum(axis=0)) >= 0, 1, -1)  # up to each sign
    np.testing.assert_array_equal(fitted.encode(x), expected)


def spectral_hashing_reference(train, test, bits, orient=None):
    """Weiss et al.'s trainSH / compressSH, written out: PCA; per dimension the frequencies 1 .. ceil((K + 1)
    R_d / max R) - 1 besides the constant mode; modes sorted by the eigenvalue sum of (k pi / R_d)^2 (stable);
    bit = prod over the dimensions of sin(pi/2 + k_d pi (v_d - min_d) / R_d) > 0 (0 -> +1 here)."""
    mean = train.mean(axis=0)
    eigenvalues, eigenvectors = np.linalg.eigh((train - mean).T @ (train - mean))
    pc = eigenvectors[:, np.argsort(eigenvalues)[::-1][:bits]]
    if orient is not None:  # a principal direction's sign is arbitrary: take the one of `orient`'s columns
        pc = pc * np.sign((pc * orient).sum(axis=0))
    v = (train - mean) @ pc
    low, high = v.min(axis=0) - 1e-7, v.max(axis=0) + 1e-7
    r = high - low
    top = [int(np.ceil((bits + 1) * r[d] / r.max())) for d in range(bits)]
    modes = [[0] * bits]
    for d in range(bits):
        for k in range(1, top[d]):
            mode = [0] * bits
            mode[d] = k
            modes.append(mode)
    eig = [sum((m[d] * np.pi / r[d]) ** 2 for d in range(bits)) for m in modes]
    order = sorted(range(len(modes)), key=lambda i: (eig[i], i))[1:bits + 1]
    vt = (test - mean) @ pc
    codes = np.zeros((len(test), bits), dtype=int)
    for j, i in enumerate(order):
        for n in range(len(test)):
            value = 1.0
            for d in range(bits):
                value *= np.sin(np.pi / 2 + modes[i][d] * np.pi * (vt[n, d] - low[d]) / r[d])
            codes[n, j] = 1 if value >= 0 else -1
    return codes, pc


def test_spectral_hashing_matches_the_papers_algorithm():
    rng = np.random.default_rng(3)
    x, _ = clustered(rng, 80, dim=10)
    fitted = BASELINES["sh"](x[:60], 6)
    codes, _ = spectral_hashing_reference(x[:60], x, 6, orient=BASELINES["pcah"](x[:60], 6).projection)
    np.testing.assert_array_equal(fitted.encode(x), codes)
    assert len(np.unique(codes, axis=0)) > 4


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_affine_form_gives_the_fits_codes(name):
    rng = np.random.default_rng(4)
    x, _ = clustered(rng, 50, dim=20)
    fitted = BASELINES[name](x, 8, seed=1)
    weight, bias = fitted.affine()
    z = x @ weight + bias
    z = np.cos(z) if name == "sh" else z
    np.testing.assert_array_equal(np.where(z >= 0, 1, -1), fitted.encode(x))


def test_quantisation_error_hand_computed():
    from utils.evaluation.code_health import quantisation_errors

    z = np.array([[2.0, -2.0, 2.0, 2.0], [3.0, 0.0, 0.0, 4.0], [0.0, 0.0, 0.0, 0.0]])
    # row 0: every |z| equal: 0; row 1: ||z||_1 = 7, ||z||_2 = 5, sqrt(4) = 2: 1 - 7/10; an all-zero row: 1
    np.testing.assert_allclose(quantisation_errors(z), [0.0, 0.3, 1.0], atol=1e-12)
