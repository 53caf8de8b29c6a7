"""BiHalf, GreedyHash unsupervised and CIBHash against slow references written from the papers' formulas,
with hand-computed cases; the bi-half layer's forward (half +1, half -1 per bit) and its gradient."""
import math

import numpy as np
import paddle
import pytest

from tests.utils.losses.common import sign
from utils.losses import LOSSES
from utils.losses.bihalf import bi_half
from utils.losses.cibhash import bernoulli_kl, nt_xent


def cos(a, b):
    return sum(x * y for x, y in zip(a, b)) / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


def sigmoid(x):
    return 1.0 / (1.0 + math.exp(-x))


def numeric_gradient(f, array, eps=1e-6):
    grad = np.zeros_like(array)
    for idx in np.ndindex(array.shape):
        plus, minus = array.copy(), array.copy()
        plus[idx] += eps
        minus[idx] -= eps
        grad[idx] = (f(plus) - f(minus)) / (2 * eps)
    return grad


# -- the bi-half layer ---------------------------------------------------------------------------
def bihalf_reference(u):
    """Per column: the N // 2 largest entries -> +1, the others -1 (ties: the earlier row first)."""
    n, k = u.shape
    b = -np.ones_like(u)
    for j in range(k):
        order = sorted(range(n), key=lambda i: (-u[i, j], i))
        for i in order[:n // 2]:
            b[i, j] = 1.0
    return b


@pytest.mark.parametrize("n", [2, 8, 9, 32])
def test_bihalf_forward_gives_half_plus_one_half_minus_one_per_bit(n):
    rng = np.random.default_rng(n)
    u = rng.normal(0, 1, (n, 16))
    u[:, 3] = 0.5  # a column of ties
    u[: n // 2, 4] += 100.0  # a column whose sign is all +1
    b = bi_half(paddle.to_tensor(u, dtype="float32")).numpy()
    assert set(np.unique(b)) == {-1.0, 1.0}
    np.testing.assert_array_equal((b > 0).sum(axis=0), np.full(16, n // 2))
    np.testing.assert_array_equal(b, bihalf_reference(u.astype(np.float32)))


def test_bihalf_hand_computed_forward_and_gradient():
    u = np.array([[0.3, -1.0], [0.1, 2.0], [-0.2, 0.5], [0.4, 0.0]])
    # column 0 ranks rows 3, 0, 1, 2; column 1 ranks rows 1, 2, 3, 0: the top two of each are +1
    expected = np.array([[1, -1], [-1, 1], [-1, 1], [1, -1]], dtype=float)
    ut = paddle.to_tensor(u, dtype="float32", stop_gradient=False)
    b = bi_half(ut, 6.0)
    np.testing.assert_array_equal(b.numpy(), expected)
    upstream = np.array([[1.0, 2.0], [-1.0, 0.5], [0.0, 3.0], [2.0, -2.0]])
    (b * paddle.to_tensor(upstream, dtype="float32")).sum().backward()
    # dL/dU = dL/dB + gamma (U - B) / (N K), N K = 8: e.g. row 0 column 0: 1 + 6 (0.3 - 1) / 8 = 0.475
    hand = np.array([[0.475, 2.0], [-0.175, 1.25], [0.6, 2.625], [1.55, -1.25]])
    np.testing.assert_allclose(ut.grad.numpy(), hand, rtol=1e-6)
    np.testing.assert_allclose(ut.grad.numpy(), upstream + 6.0 * (u - expected) / 8, rtol=1e-6)


# -- BiHalf and GreedyHash unsupervised: cos(b_i, b_j) fitted to cos(x_i, x_j), pairs (i, i + N/2) -----
def similarity_loss_reference(codes, features):
    half = len(codes) // 2
    return sum((cos(codes[i], codes[half + i]) - cos(features[i], features[half + i])) ** 2
               for i in range(half)) / half


def run(name, outputs, **options):
    """The loss and dL/dz of method name; at the paper's scale (reference_bits None) unless options say."""
    defaults = {**LOSSES[name].DEFAULTS, **({"reference_bits": None} if "reference_bits" in LOSSES[name].DEFAULTS else {})}
    loss = LOSSES[name](num_train=4, bit=outputs[0].shape[1], num_classes=0, **{**defaults, **options})
    tensors = [paddle.to_tensor(o, dtype="float64", stop_gradient=False) for o in outputs]
    value = loss(tuple(tensors) if len(tensors) > 1 else tensors[0], paddle.zeros([len(outputs[0]), 0]),
                 paddle.arange(len(outputs[0])))
    value.backward()
    return float(value), tensors[0].grad.numpy()


def test_bihalf_loss_hand_computed():
    z = np.array([[1.0, -1.0], [0.5, 2.0]])  # bi-half per column: b_0 = (+1, -1), b_1 = (-1, +1): cos -1
    x = np.array([[1.0, 0.0], [1.0, 1.0]])   # cos 1 / sqrt(2)
    value, _ = run("bihalf", (z, x))
    assert value == pytest.approx((-1 - 1 / math.sqrt(2)) ** 2, rel=1e-9)  # 2.914213...


def test_bihalf_loss_and_gradient_match_the_reference():
    rng = np.random.default_rng(0)
    z, x = rng.normal(0, 1, (8, 6)), np.abs(rng.normal(0, 1, (8, 10)))
    gamma = 6.0
    value, grad = run("bihalf", (z, x), gamma=gamma)
    b = bihalf_reference(z)
    assert value == pytest.approx(similarity_loss_reference(b, x), rel=1e-9)
    # the paper's backward: dL/dB (B taken as continuous) + gamma (U - B) / (N K)
    d_b = numeric_gradient(lambda bb: similarity_loss_reference(bb, x), b)
    np.testing.assert_allclose(grad, d_b + gamma * (z - b) / z.size, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("name", ["bihalf", "greedyhash_unsup"])
def test_reference_bits_scales_loss_and_gradient_by_k_over_reference(name):
    rng = np.random.default_rng(5)
    z, x = rng.normal(0, 1, (8, 32)), np.abs(rng.normal(0, 1, (8, 10)))
    value, grad = run(name, (z, x))
    scaled_value, scaled_grad = run(name, (z, x), reference_bits=16)
    assert scaled_value == pytest.approx(2 * value, rel=1e-12)  # 32 bits / 16
    np.testing.assert_allclose(scaled_grad, 2 * grad, rtol=1e-9)  # BiHalf: the penalty's pull included


@pytest.mark.parametrize("alpha, expected", [(0.1, 0.54405), (1.0, 0.9405)])  # the paper's and the lite configs' weight
def test_greedyhash_unsup_hand_computed(alpha, expected):
    z = np.array([[0.5, -2.0], [1.5, 0.2]])  # sign: b_0 = (1, -1), b_1 = (1, 1): cos 0
    x = np.array([[1.0, 0.0], [1.0, 1.0]])
    value, _ = run("greedyhash_unsup", (z, x), alpha=alpha)
    penalty = (0.5 ** 3 + 1.0 ** 3 + 0.5 ** 3 + 0.8 ** 3) / 4  # mean | |z| - 1 |^3 = 1.762 / 4 = 0.4405
    assert value == pytest.approx((0 - 1 / math.sqrt(2)) ** 2 + alpha * penalty, rel=1e-9)  # 0.5 + alpha 0.4405
    assert value == pytest.approx(expected, abs=5e-5)


def test_greedyhash_unsup_loss_and_straight_through_gradient_match_the_reference():
    rng = np.random.default_rng(1)
    z, x = rng.normal(0, 1.5, (6, 5)), np.abs(rng.normal(0, 1, (6, 7)))
    alpha = 0.1
    value, grad = run("greedyhash_unsup", (z, x), alpha=alpha)
    b = np.vectorize(sign)(z)

    def penalty(zz):
        return sum(abs(abs(v) - 1) ** 3 for v in zz.ravel()) / zz.size

    assert value == pytest.approx(similarity_loss_reference(b, x) + alpha * penalty(z), rel=1e-9)
    # straight through: dL/dz = dL/db at b = sign(z), plus the penalty's own gradient
    expected = numeric_gradient(lambda bb: similarity_loss_reference(bb, x), b) + alpha * numeric_gradient(penalty, z)
    np.testing.assert_allclose(grad, expected, rtol=1e-5, atol=1e-8)


# -- CIBHash: NT-Xent on the two views' codes + beta/2 (KL(p1 || p2) + KL(p2 || p1)) ------------------
def nt_xent_reference(first, second, tau):
    """SimCLR's NT-Xent: anchors a = 0..2N-1, positive = the other view, the other 2N - 2 codes negatives."""
    codes = list(first) + list(second)
    n = len(first)
    total = 0.0
    for a in range(2 * n):
        positive = a + n if a < n else a - n
        numerator = math.exp(cos(codes[a], codes[positive]) / tau)
        denominator = sum(math.exp(cos(codes[a], codes[c]) / tau) for c in range(2 * n) if c != a)
        total += -math.log(numerator / denominator)
    return total / (2 * n)


def kl_reference(z_p, z_q):
    """Mean over the items of sum over the bits of KL(Bernoulli(sigmoid(z_p)) || Bernoulli(sigmoid(z_q)))."""
    total = 0.0
    for row_p, row_q in zip(z_p, z_q):
        for a, b in zip(row_p, row_q):
            p, q = sigmoid(a), sigmoid(b)
            total += p * math.log(p / q) + (1 - p) * math.log((1 - p) / (1 - q))
    return total / len(z_p)


def cibhash_reference(z, tau, beta):
    n = len(z) // 2
    codes = np.vectorize(sign)(z)
    return (nt_xent_reference(codes[:n], codes[n:], tau)
            + beta * (kl_reference(z[:n], z[n:]) + kl_reference(z[n:], z[:n])) / 2)


def test_cibhash_hand_computed():
    # first views' codes (1, 1), (1, -1); second views' (1, 1), (-1, 1): cos(a, a+) = 1 for image 0, -1 for image 1,
    # 0 for every other pair; tau 0.5: anchors of image 0 lose log(1 + 2 e^-2), those of image 1 log(1 + 2 e^2)
    z = np.array([[2.0, 1.0], [1.0, -3.0], [0.5, 0.5], [-1.0, 2.0]])
    value, _ = run("cibhash", (z, np.zeros((4, 3))), temperature=0.5, beta=0.0)
    assert value == pytest.approx((math.log(1 + 2 * math.exp(-2)) + math.log(1 + 2 * math.exp(2))) / 2, rel=1e-9)
    # one Bernoulli KL by hand: p = sigmoid(2) = 0.880797, q = sigmoid(0.5) = 0.622459
    p, q = 0.8807970779778823, 0.6224593312018546
    kl = bernoulli_kl(paddle.to_tensor([[2.0]], dtype="float64"), paddle.to_tensor([[0.5]], dtype="float64")).numpy()[0]
    assert float(kl) == pytest.approx(p * math.log(p / q) + (1 - p) * math.log((1 - p) / (1 - q)), rel=1e-9)
    assert float(kl) == pytest.approx(0.168345, abs=1e-6)


def test_cibhash_loss_and_gradient_match_the_reference():
    rng = np.random.default_rng(2)
    z = rng.normal(0, 1.5, (10, 6))  # 5 images, 2 views
    tau, beta = 0.3, 0.05
    value, grad = run("cibhash", (z, np.zeros((10, 4))), temperature=tau, beta=beta)
    assert value == pytest.approx(cibhash_reference(z, tau, beta), rel=1e-9)
    # the gradient: straight through sign to sigmoid(z) for the contrastive part; the KL terms with the other view
    # fixed (no gradient through it)
    n, codes = 5, np.vectorize(sign)(z)
    s = 1 / (1 + np.exp(-z))
    d_codes = numeric_gradient(lambda c: nt_xent_reference(c[:n], c[n:], tau), codes)
    fixed = z.copy()
    d_kl = numeric_gradient(lambda zz: (kl_reference(zz[:n], fixed[n:]) + kl_reference(zz[n:], fixed[:n])) / 2, z)
    np.testing.assert_allclose(grad, d_codes * s * (1 - s) + beta * d_kl, rtol=1e-5, atol=1e-8)


def test_nt_xent_matches_the_reference_on_real_valued_inputs():
    rng = np.random.default_rng(3)
    a, b = rng.normal(0, 1, (4, 5)), rng.normal(0, 1, (4, 5))
    value = float(nt_xent(paddle.to_tensor(a), paddle.to_tensor(b), 0.3))
    assert value == pytest.approx(nt_xent_reference(a, b, 0.3), rel=1e-9)


def test_unsupervised_methods_are_registered_as_learning_without_labels():
    for name in ("bihalf", "greedyhash_unsup", "cibhash"):
        assert not LOSSES[name].SUPERVISED and LOSSES[name].MODEL in ("unsupervised", "cibhash")
    assert LOSSES["cibhash"].VIEWS == 2 and LOSSES["bihalf"].VIEWS == 1
    assert all(cls.SUPERVISED for name, cls in LOSSES.items() if name not in ("bihalf", "greedyhash_unsup", "cibhash"))


def test_the_default_method_for_unlabelled_data_learns_without_labels_and_has_its_configs():
    import os

    from utils.losses import DEFAULT_UNSUPERVISED_METHOD, loss_class

    assert not loss_class(DEFAULT_UNSUPERVISED_METHOD).SUPERVISED
    root = os.path.join(os.path.dirname(__file__), "..", "..", "..", "configs", "methods")
    for kind in ("lite", "scratch", "coco"):
        assert os.path.isfile(os.path.join(root, f"{DEFAULT_UNSUPERVISED_METHOD}_{kind}.yaml"))
