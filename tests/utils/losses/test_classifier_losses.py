"""SSDH, DSHSD, GreedyHash (heads with a classifier) and CSQ against per-sample reference loops."""
import math

import numpy as np
import paddle
import pytest

from models.greedyhash import sign_straight_through
from tests.utils.losses.common import (call, classification_reference, make_batch, mean_classification_reference,
                                      shares_label, sigmoid)
from utils.losses import CSQLoss, DSHSDLoss, GreedyHashLoss, SSDHLoss
from utils.losses.csq import hash_centers


def logits_for(rng, batch, classes):
    return rng.normal(0, 2.0, (batch, classes))


@pytest.mark.parametrize("multi_label,mode", [(True, "softmax"), (True, "sigmoid"), (False, "softmax")])
@pytest.mark.parametrize("w2,w3", [(1.0, 1.0), (0.0, 0.0), (0.3, 2.0)])
def test_ssdh_matches_reference(multi_label, mode, w2, w3):
    rng = np.random.default_rng(int(multi_label) + 10 * int(w3) + (mode == "sigmoid"))
    bit, classes, n = 12, 5, 6
    z, labels = make_batch(rng, n, bit, classes, 2.0, multi_label=multi_label)
    logits = logits_for(rng, n, classes)
    loss_fn = SSDHLoss(10, bit, classes, classification=mode, binarize_weight=w2, balance_weight=w3)
    total = 0.0
    for i in range(n):
        h = [sigmoid(v) for v in z[i]]
        e1 = classification_reference(logits[i], labels[i], mode == "sigmoid")
        e2 = -sum((v - 0.5) ** 2 for v in h) / bit
        e3 = (sum(h) / bit - 0.5) ** 2
        total += e1 + w2 * e2 + w3 * e3
    assert call(loss_fn, z, labels, logits) == pytest.approx(total / n, rel=1e-4)


@pytest.mark.parametrize("multi_label,mode", [(True, "softmax"), (True, "sigmoid"), (False, "softmax")])
def test_dshsd_matches_reference(multi_label, mode):
    rng = np.random.default_rng(3 + multi_label)
    bit, classes, n, alpha = 8, 4, 5, 0.05
    z, labels = make_batch(rng, n, bit, classes, 1.0, multi_label=multi_label)
    logits = logits_for(rng, n, classes)
    loss_fn = DSHSDLoss(10, bit, classes, classification=mode)
    cls = mean_classification_reference(logits, labels, mode)
    pair = 0.0
    for i in range(n):
        for j in range(n):
            if i != j:
                u, v = np.tanh(z[i]), np.tanh(z[j])
                d = sum((a - b) ** 2 for a, b in zip(u, v))
                s = shares_label(labels[i], labels[j])
                pair += 0.5 * d if s else 0.5 * max(2 * bit - d, 0.0)
    expected = cls + alpha * pair / (n * (n - 1))
    assert call(loss_fn, z, labels, logits) == pytest.approx(expected, rel=1e-4)


@pytest.mark.parametrize("multi_label,mode", [(True, "softmax"), (True, "sigmoid"), (False, "softmax")])
def test_greedyhash_matches_reference(multi_label, mode):
    rng = np.random.default_rng(5 + multi_label)
    bit, classes, n, alpha = 16, 6, 5, 0.1
    z, labels = make_batch(rng, n, bit, classes, 1.5, multi_label=multi_label)
    logits = logits_for(rng, n, classes)
    expected = mean_classification_reference(logits, labels, mode)
    expected += alpha * sum(abs(abs(v) - 1) ** 3 for row in z for v in row) / (n * bit)
    got = call(GreedyHashLoss(10, bit, classes, classification=mode), z, labels, logits)
    assert got == pytest.approx(expected, rel=1e-4)


def test_greedyhash_sign_is_straight_through():
    z = paddle.to_tensor([[0.3, -2.0, 0.0, 5.0]], stop_gradient=False)
    b = sign_straight_through(z)
    np.testing.assert_array_equal(b.numpy(), [[1, -1, 1, 1]])  # 0 -> +1, as the codes
    upstream = paddle.to_tensor([[0.5, -1.0, 2.0, 3.0]])
    (b * upstream).sum().backward()
    np.testing.assert_array_equal(z.grad.numpy(), upstream.numpy())  # gradient passed unchanged


def test_hash_centers_hadamard_and_bernoulli():
    centers = hash_centers(12, 16)  # power of two, 12 <= 2 * 16: Hadamard rows and their negations
    assert set(np.unique(centers)) == {-1.0, 1.0}
    distances = [(centers[i] != centers[j]).sum() for i in range(12) for j in range(i + 1, 12)]
    assert min(distances) >= 8  # at least K / 2 apart
    random = hash_centers(12, 48, seed=4)  # 48 is not a power of two: Bernoulli bits, seeded
    np.testing.assert_array_equal(random, hash_centers(12, 48, seed=4))
    assert abs(random.mean()) < 0.15 and not (random == hash_centers(12, 48, seed=5)).all()
    assert len(hash_centers(40, 16)) == 40  # more than 2K classes: Bernoulli


@pytest.mark.parametrize("bit", [16, 12])
def test_csq_matches_reference_with_multi_label_centers(bit):
    rng = np.random.default_rng(bit)
    n, classes, lam = 6, 4, 0.01
    z, labels = make_batch(rng, n, bit, classes, 1.5)
    labels[0] = [1, 1, 0, 0]  # two labels: centroid of two centers, ties broken by the tie bits
    loss_fn = CSQLoss(10, bit, classes, quant_weight=lam, center_seed=3)
    centers, ties = loss_fn.centers.numpy(), loss_fn.tie_bits.numpy()
    total_center = total_quant = 0.0
    for i in range(n):
        summed = sum(centers[c] for c in range(classes) if labels[i][c] > 0)
        target = [ties[k] if summed[k] == 0 else math.copysign(1, summed[k]) for k in range(bit)]
        for k in range(bit):
            p, t = (math.tanh(z[i][k]) + 1) / 2, (target[k] + 1) / 2
            total_center += -(t * math.log(p) + (1 - t) * math.log(1 - p))
            total_quant += (abs(math.tanh(z[i][k])) - 1) ** 2
    expected = total_center / (n * bit) + lam * total_quant / (n * bit)
    assert call(loss_fn, z, labels) == pytest.approx(expected, rel=1e-4)
    single = np.eye(classes)[[2]]
    np.testing.assert_array_equal(loss_fn.targets(paddle.to_tensor(single, dtype="float32")).numpy()[0], centers[2])
