import math

import numpy as np
import paddle
import pytest

from utils.losses import HashNetLoss


def reference_loss(z, labels, indices, mem_codes, mem_labels, filled, alpha, beta, self_pairs=True):
    """Pair by pair, straight from the paper: l = log(1 + e^theta) - s * theta, class-balanced."""
    h = np.tanh(beta * z)
    mem_codes, mem_labels, filled = mem_codes.copy(), mem_labels.copy(), filled.copy()
    for row, idx in enumerate(indices):
        mem_codes[idx], mem_labels[idx], filled[idx] = h[row], labels[row], True
    pairs = []
    for i in range(len(z)):
        for j in range(len(mem_codes)):
            if not filled[j] or (not self_pairs and j == indices[i]):
                continue
            s = 1.0 if any(a > 0 and b > 0 for a, b in zip(labels[i], mem_labels[j])) else 0.0
            theta = alpha * sum(h[i][k] * mem_codes[j][k] for k in range(len(h[i])))
            pairs.append((s, math.log(1 + math.exp(theta)) - s * theta))
    s1 = sum(1 for s, _ in pairs if s == 1)
    s0 = len(pairs) - s1
    total = s1 + s0
    loss = 0.0
    for s, value in pairs:
        loss += value * (total / s1 if s == 1 else total / s0)
    return loss / total, mem_codes, filled


def make_batch(rng, batch, bit, classes, scale=1.0):
    z = rng.normal(0, scale, (batch, bit)).astype("float32")
    labels = (rng.random((batch, classes)) < 0.3).astype("float32")
    labels[np.arange(batch), rng.integers(0, classes, batch)] = 1
    return z, labels


@pytest.mark.parametrize("bit,alpha,epoch,self_pairs", [(16, 0.1, 0, True), (32, 0.1, 45, True), (64, 10 / 64, 100, True),
                                                        (12, 1.0, 20, True), (16, 0.1, 0, False), (32, 0.5, 25, False)])
def test_matches_pair_by_pair_reference_over_steps(bit, alpha, epoch, self_pairs):
    rng = np.random.default_rng(bit)
    num_train, classes, batch = 20, 5, 6
    loss_fn = HashNetLoss(num_train, bit, classes, alpha=alpha, beta_step=20, self_pairs=self_pairs)
    loss_fn.on_epoch_start(epoch)
    beta = math.sqrt(epoch // 20 + 1)
    assert loss_fn.beta == pytest.approx(beta)
    mem_codes = np.zeros((num_train, bit))
    mem_labels = np.zeros((num_train, classes))
    filled = np.zeros(num_train, bool)
    for step in range(4):  # the memory fills up over several steps
        z, labels = make_batch(rng, batch, bit, classes, scale=2.0)
        indices = rng.choice(num_train, batch, replace=False)
        expected, mem_codes_new, filled = reference_loss(z, labels, indices, mem_codes, mem_labels, filled,
                                                         alpha, beta, self_pairs)
        for row, idx in enumerate(indices):
            mem_labels[idx] = labels[row]
        mem_codes = mem_codes_new
        got = loss_fn(paddle.to_tensor(z), paddle.to_tensor(labels), paddle.to_tensor(indices))
        assert float(got) == pytest.approx(expected, rel=1e-4, abs=1e-5), f"step {step}"
    np.testing.assert_allclose(loss_fn.memory_codes.numpy(), mem_codes, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(loss_fn.memory_filled.numpy() > 0, filled)


@pytest.mark.parametrize("self_pairs", [True, False])
def test_hand_computed_pair_of_saturated_codes(self_pairs):
    """Two dissimilar saturated 16-bit codes at Hamming distance 4: <h1, h2> = 16 - 2*4 = 8,
    theta = 0.1 * 8 = 0.8, loss log(1 + e^0.8); with self-pairs each image also pairs with
    itself (similar, theta = 1.6, loss log(1 + e^1.6) - 1.6); the balanced weights S/S1, S/S0
    normalised by S make the loss the mean over similar pairs plus the mean over dissimilar ones."""
    z = np.full((2, 16), 20.0, dtype="float32")
    z[1, :4] = -20.0
    labels = np.array([[1.0, 0.0], [0.0, 1.0]], dtype="float32")
    got = float(HashNetLoss(2, 16, 2, alpha=0.1, self_pairs=self_pairs)(
        paddle.to_tensor(z), paddle.to_tensor(labels), paddle.to_tensor(np.array([0, 1]))))
    dissimilar, similar = math.log1p(math.exp(0.8)), math.log1p(math.exp(1.6)) - 1.6
    assert got == pytest.approx(dissimilar + similar if self_pairs else dissimilar, rel=1e-5)


def test_extreme_inputs_are_stable_and_gradients_finite():
    rng = np.random.default_rng(0)
    loss_fn = HashNetLoss(8, 64, 4, alpha=10.0)
    z, labels = make_batch(rng, 8, 64, 4, scale=100.0)  # theta up to 640: naive exp overflows
    zt = paddle.to_tensor(z, stop_gradient=False)
    loss = loss_fn(zt, paddle.to_tensor(labels), paddle.arange(8))
    loss.backward()
    assert np.isfinite(float(loss))
    assert np.isfinite(zt.grad.numpy()).all()


def test_gradient_matches_finite_differences():
    rng = np.random.default_rng(1)
    z, labels = make_batch(rng, 4, 8, 3)
    indices = np.array([0, 1, 2, 3])
    paddle.set_default_dtype("float64")
    try:
        def value(zz):
            fn = HashNetLoss(6, 8, 3, alpha=0.5)
            return float(fn(paddle.to_tensor(zz), paddle.to_tensor(labels.astype("float64")), paddle.to_tensor(indices)))

        fn = HashNetLoss(6, 8, 3, alpha=0.5)
        zt = paddle.to_tensor(z.astype("float64"), stop_gradient=False)
        fn(zt, paddle.to_tensor(labels.astype("float64")), paddle.to_tensor(indices)).backward()
        grad = zt.grad.numpy()
        # the memory side is detached, so only the batch side carries gradient: compare with
        # differences of a loss whose memory is frozen at the current codes
        eps = 1e-6
        base_mem = np.tanh(z.astype("float64"))
        numeric = np.zeros_like(grad)
        for i in range(z.shape[0]):
            for k in range(z.shape[1]):
                for sign in (1, -1):
                    zz = z.astype("float64").copy()
                    zz[i, k] += sign * eps
                    h = np.tanh(zz)
                    sim = (labels @ labels.T > 0).astype(float)
                    theta = 0.5 * h @ base_mem.T
                    nll = np.log1p(np.exp(theta)) - sim * theta
                    s1, s0 = sim.sum(), (1 - sim).sum()
                    w = np.where(sim > 0, (s1 + s0) / s1, (s1 + s0) / s0)
                    numeric[i, k] += sign * (nll * w).sum() / (s1 + s0) / (2 * eps)
        np.testing.assert_allclose(grad, numeric, rtol=1e-4, atol=1e-7)
        assert value(z.astype("float64")) > 0
    finally:
        paddle.set_default_dtype("float32")


def test_memory_is_part_of_state_dict():
    loss_fn = HashNetLoss(10, 16, 3)
    loss_fn(paddle.randn([4, 16]), paddle.ones([4, 3]), paddle.to_tensor([1, 3, 5, 7]))
    state = loss_fn.state_dict()
    assert {"memory_codes", "memory_labels", "memory_filled"} <= set(state)
    other = HashNetLoss(10, 16, 3)
    other.set_state_dict(state)
    np.testing.assert_array_equal(other.memory_codes.numpy(), loss_fn.memory_codes.numpy())
    assert other.memory_filled.numpy().sum() == 4


def test_epoch_continuation_schedule_values():
    loss_fn = HashNetLoss(4, 8, 2, beta_step=20)
    expected = {0: 1.0, 19: 1.0, 20: math.sqrt(2), 39: math.sqrt(2), 40: math.sqrt(3), 149: math.sqrt(8)}
    for epoch, beta in expected.items():
        loss_fn.on_epoch_start(epoch)
        loss_fn.on_step(epoch * 1000)  # ignored by the epoch schedule
        assert loss_fn.beta == pytest.approx(beta), epoch


def test_caffe_continuation_schedule_values():
    loss_fn = HashNetLoss(4, 64, 2, alpha=None, continuation="iteration")
    assert loss_fn.alpha == pytest.approx(10 / 64)
    for iteration in (0, 1, 199, 200, 201, 399, 400, 10000, 10199):
        loss_fn.on_epoch_start(iteration // 7)  # ignored by the iteration schedule
        loss_fn.on_step(iteration)
        stepped = iteration // 200 * 200  # updated every 200 iterations
        assert loss_fn.beta == pytest.approx((1 + 0.005 * stepped) ** 0.5), iteration
    loss_fn.on_step(400)
    assert loss_fn.beta == pytest.approx(math.sqrt(3.0))


def test_constant_pair_weighting_matches_reference():
    rng = np.random.default_rng(5)
    z, labels = make_batch(rng, 5, 16, 4, scale=1.5)
    loss_fn = HashNetLoss(5, 16, 4, alpha=0.3, pair_weighting="constant", similar_weight=3.0)
    got = float(loss_fn(paddle.to_tensor(z), paddle.to_tensor(labels), paddle.arange(5)))
    h = np.tanh(z)
    num = den = 0.0
    for i in range(5):
        for j in range(5):
            s = 1.0 if (labels[i] * labels[j]).sum() > 0 else 0.0
            theta = 0.3 * float(h[i] @ h[j])
            w = 3.0 if s else 1.0
            num += w * (math.log(1 + math.exp(theta)) - s * theta)
            den += w
    assert got == pytest.approx(num / den, rel=1e-5)


def _grad_per_unit(bit, z, labels, **options):
    """(loss, d loss / d z) for in-batch pairs."""
    loss_fn = HashNetLoss(len(z), bit, labels.shape[1], memory_max_age=0, **options)
    zt = paddle.to_tensor(z, stop_gradient=False)
    loss = loss_fn(zt, paddle.to_tensor(labels), paddle.arange(len(z)))
    loss.backward()
    return float(loss), zt.grad.numpy()


def test_alpha_bits_with_gradient_alpha_keeps_the_gradient_per_unit_across_code_lengths():
    """Matched inputs: each 64-bit code is its 16-bit code repeated 4 times, so with alpha = 6.4 / K every pair
    has the same logit theta at both lengths. Loss x gradient_alpha / alpha (= K / 64) then gives every code unit
    the same gradient, alpha 0.1's: the gradient norm per unit, ||d loss / d z|| / sqrt(K), is equal at 16 and 64
    bits to 1e-5 (relative; float32). The whole vector's norm grows as sqrt(K) (4x the units, each the same)."""
    rng = np.random.default_rng(0)
    z16, labels = make_batch(rng, 8, 16, 4, scale=1.5)
    z64 = np.tile(z16, (1, 4))
    options = {"alpha": None, "alpha_bits": 6.4, "gradient_alpha": 0.1}
    loss16, g16 = _grad_per_unit(16, z16, labels, **options)
    loss64, g64 = _grad_per_unit(64, z64, labels, **options)
    norm16, norm64 = np.linalg.norm(g16) / math.sqrt(16), np.linalg.norm(g64) / math.sqrt(64)
    assert norm64 == pytest.approx(norm16, rel=1e-5) and norm16 > 0
    np.testing.assert_allclose(g64, np.tile(g16, (1, 4)), rtol=1e-4, atol=1e-8)  # unit by unit, not only the norm
    assert loss64 == pytest.approx(4 * loss16, rel=1e-5)  # the same pair losses, scaled by 64/64 and 16/64
    # without the scaling, alpha = 6.4 / K alone gives each 16-bit unit a 4x larger step than a 64-bit one
    _, raw16 = _grad_per_unit(16, z16, labels, alpha=None, alpha_bits=6.4)
    _, raw64 = _grad_per_unit(64, z64, labels, alpha=None, alpha_bits=6.4)
    per_unit16, per_unit64 = np.linalg.norm(raw16) / math.sqrt(16), np.linalg.norm(raw64) / math.sqrt(64)
    assert per_unit16 == pytest.approx(4 * per_unit64, rel=1e-5)


def test_alpha_bits_at_64_bits_is_the_fixed_alpha_recipe_exactly():
    """6.4 / 64 == 0.1 in floating point and the scale is 1: the 64-bit loss and gradient are bit for bit those of
    alpha 0.1 (the lite main job and every 64-bit figure stay as they were)."""
    rng = np.random.default_rng(1)
    z, labels = make_batch(rng, 8, 64, 4, scale=1.5)
    new = _grad_per_unit(64, z, labels, alpha=None, alpha_bits=6.4, gradient_alpha=0.1)
    old = _grad_per_unit(64, z, labels, alpha=0.1)
    assert new[0] == old[0]
    np.testing.assert_array_equal(new[1], old[1])


@pytest.mark.parametrize("bit,expected_alpha,expected_scale", [(16, 0.4, 0.25), (32, 0.2, 0.5), (48, 6.4 / 48, 0.75)])
def test_alpha_from_alpha_bits_and_the_loss_scale(bit, expected_alpha, expected_scale):
    loss_fn = HashNetLoss(4, bit, 2, alpha=None, alpha_bits=6.4, gradient_alpha=0.1)
    assert loss_fn.alpha == pytest.approx(expected_alpha) and loss_fn.loss_scale == pytest.approx(expected_scale)
    assert HashNetLoss(4, bit, 2, alpha=None).alpha == pytest.approx(10 / bit)  # the authors' 10 / K
    assert HashNetLoss(4, bit, 2, alpha=0.1, alpha_bits=6.4).alpha == 0.1  # a fixed alpha wins
