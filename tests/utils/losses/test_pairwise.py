"""DSH, DCH, LCDSH, DPSH against pair-by-pair reference loops, on multi-label data."""
import math

import numpy as np
import pytest

from tests.utils.losses.common import call, dot, make_batch, shares_label, sign, sigmoid
from utils.losses import DCHLoss, DPSHLoss, DSHLoss, HashNetLoss, LCDSHLoss


def dsh_reference(z, labels, margin, alpha):
    total, pairs = 0.0, 0
    for i in range(len(z)):
        for j in range(i + 1, len(z)):
            y = 0.0 if shares_label(labels[i], labels[j]) else 1.0
            d = sum((a - b) ** 2 for a, b in zip(z[i], z[j]))
            reg = sum(abs(abs(a) - 1) for a in z[i]) + sum(abs(abs(b) - 1) for b in z[j])
            total += 0.5 * (1 - y) * d + 0.5 * y * max(margin - d, 0.0) + alpha * reg
            pairs += 1
    return total / pairs


@pytest.mark.parametrize("bit,margin,alpha,scale", [(16, None, 0.01, 1.0), (12, 5.0, 0.5, 0.5), (32, None, 0.0, 3.0)])
def test_dsh_matches_reference(bit, margin, alpha, scale):
    rng = np.random.default_rng(bit)
    z, labels = make_batch(rng, 7, bit, 5, scale)
    got = call(DSHLoss(10, bit, 5, margin=margin, alpha=alpha), z, labels)
    assert got == pytest.approx(dsh_reference(z, labels, 2 * bit if margin is None else margin, alpha), rel=1e-4)


def cauchy_d(a, b, bit):
    """DCH Eq. (6): d = K/2 (1 - cos(h_i, h_j)), the Hamming distance for +-1 codes."""
    cos = dot(a, b) / (math.sqrt(dot(a, a)) * math.sqrt(dot(b, b)))
    return bit / 2 * (1 - cos)


def dch_reference(z, labels, gamma, lam):
    bit = len(z[0])
    h = [[math.tanh(v) for v in row] for row in z]
    pairs = []
    for i in range(len(h)):
        for j in range(len(h)):
            if i != j:
                s = shares_label(labels[i], labels[j])
                d = cauchy_d(h[i], h[j], bit)
                pairs.append((s, math.log(1 + d / gamma) if s else math.log(1 + gamma / d)))
    s1 = sum(1 for s, _ in pairs if s)
    total = len(pairs)
    s0 = total - s1
    pair = sum(v * (total / s1 if s else total / s0) for s, v in pairs) / total
    quant = sum(math.log(1 + cauchy_d([abs(v) for v in row], [1.0] * bit, bit) / gamma) for row in h) / len(h)
    return pair + lam * quant


@pytest.mark.parametrize("bit,gamma,lam", [(16, 20.0, 0.1), (32, 5.0, 1.0)])
def test_dch_matches_reference(bit, gamma, lam):
    rng = np.random.default_rng(bit + 1)
    z, labels = make_batch(rng, 6, bit, 4)
    got = call(DCHLoss(10, bit, 4, gamma=gamma, quant_weight=lam), z, labels)
    assert got == pytest.approx(dch_reference(z, labels, gamma, lam), rel=1e-4)


def saturated_pair(bit, hamming):
    """Two +-1 codes (as z = +-20, tanh(z) = +-1 in float32) that differ in `hamming` bits."""
    a = np.full(bit, 20.0)
    b = a.copy()
    b[:hamming] = -20.0
    return np.stack([a, b])


@pytest.mark.parametrize("similar", [False, True])
def test_dch_hand_computed_pair_at_hamming_distance_14(similar):
    """32-bit saturated codes at Hamming distance 14, gamma 20: d = 14 (Eq. 6), so a dissimilar
    pair costs log(1 + 20/14) and a similar one log(1 + 14/20) (Eq. 8); the quantization loss of
    saturated codes is 0 (Eq. 9), and with one kind of pair the balanced weights are 1."""
    labels = np.array([[1.0, 0.0], [1.0, 0.0]]) if similar else np.array([[1.0, 0.0], [0.0, 1.0]])
    got = call(DCHLoss(2, 32, 2, gamma=20.0, quant_weight=0.1), saturated_pair(32, 14), labels)
    expected = math.log(1 + 14 / 20) if similar else math.log(1 + 20 / 14)
    assert got == pytest.approx(expected, rel=1e-5)


def lcdsh_reference(z, labels, lam, clamp=50.0):
    like = loc = 0.0
    n = len(z)
    for i in range(n):
        for j in range(n):
            if i == j:
                continue
            s = 1.0 if shares_label(labels[i], labels[j]) else -1.0
            theta = min(max(0.5 * dot(z[i], z[j]), -clamp), clamp)
            phi = 0.5 * dot([sign(v) for v in z[i]], [sign(v) for v in z[j]])
            like += math.log(1 + math.exp(-s * theta))
            loc += (sigmoid(theta) - sigmoid(phi)) ** 2
    return (like + lam * loc) / (n * (n - 1))


@pytest.mark.parametrize("bit,lam,scale", [(16, 3.0, 0.3), (8, 0.5, 1.0), (16, 3.0, 4.0)])  # 4.0: |theta| > 50
def test_lcdsh_matches_reference(bit, lam, scale):
    rng = np.random.default_rng(bit + 2)
    z, labels = make_batch(rng, 6, bit, 4, scale)
    got = call(LCDSHLoss(10, bit, 4, locality_weight=lam), z, labels)
    assert got == pytest.approx(lcdsh_reference(z, labels, lam), rel=1e-4)


def test_lcdsh_hand_computed_clamp():
    """Two dissimilar 8-bit outputs u = (3, ..., 3): theta = 1/2 * 8 * 9 = 36 < 50, likelihood
    log(1 + e^36); at u = (4, ...) theta = 64 is clamped to 50: log(1 + e^50) = 50 (float32). The
    binary codes agree (phi = 4), so the locality term is (sigma(theta) - sigma(4))^2."""
    labels = np.array([[1.0, 0.0], [0.0, 1.0]])
    for value, theta in ((3.0, 36.0), (4.0, 50.0)):
        z = np.full((2, 8), value)
        expected = math.log1p(math.exp(theta)) + 3.0 * (sigmoid(theta) - sigmoid(4.0)) ** 2
        assert call(LCDSHLoss(2, 8, 2), z, labels) == pytest.approx(expected, rel=1e-5)


def test_dpsh_matches_reference_over_steps():
    """The batch is paired with the latest outputs of every training image seen so far; the
    paper's J (Eq. 3) divided by n^2 at n = 5,000: mean pair likelihood + eta/5000 * mean ||b - u||^2."""
    rng = np.random.default_rng(7)
    num_train, bit, classes, batch, eta = 15, 12, 4, 5, 10.0
    loss_fn = DPSHLoss(num_train, bit, classes, eta=eta)
    memory, mem_labels = {}, {}
    for step in range(4):
        z, labels = make_batch(rng, batch, bit, classes, scale=0.7)
        indices = rng.choice(num_train, batch, replace=False)
        for row, idx in enumerate(indices):
            memory[idx], mem_labels[idx] = z[row], labels[row]
        like = 0.0
        for i in range(batch):
            for j in memory:
                s = 1.0 if shares_label(labels[i], mem_labels[j]) else 0.0
                theta = 0.5 * dot(z[i], memory[j])
                like += math.log(1 + math.exp(theta)) - s * theta
        quant = sum((v - sign(v)) ** 2 for row in z for v in row) / batch
        expected = like / (batch * len(memory)) + eta / 5000 * quant
        got = call(loss_fn, z, labels, indices=indices)
        assert got == pytest.approx(expected, rel=1e-4), f"step {step}"
    assert int(loss_fn.memory_filled.numpy().sum()) == len(memory)
    assert {"memory_codes", "memory_labels", "memory_filled", "memory_step"} <= set(loss_fn.state_dict())


def test_dpsh_quantization_weight_does_not_depend_on_the_training_set_size():
    """Hand-computed: one image, u = (0.5, -0.5): its only pair is with itself, theta = 1/4,
    similar: likelihood log(1 + e^0.25) - 0.25; ||b - u||^2 = 0.5; the same loss whether the
    training set has 1 or 10,000 images."""
    z, labels = np.array([[0.5, -0.5]]), np.array([[1.0]])
    expected = math.log(1 + math.exp(0.25)) - 0.25 + 10.0 / 5000 * 0.5
    for num_train in (1, 64, 10000):
        assert call(DPSHLoss(num_train, 2, 1), z, labels) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("loss_cls", [DPSHLoss, HashNetLoss])
def test_memory_max_age_pairs_only_recent_codes(loss_cls):
    """memory_max_age N pairs the batch with memory codes written in the last N steps only:
    0 gives the in-batch loss (the batch against itself), None the whole memory."""
    rng = np.random.default_rng(11)
    bit, classes = 8, 3
    first, second = [make_batch(rng, 4, bit, classes) for _ in range(2)]
    results = {}
    for age in (None, 0, 1):
        loss_fn = loss_cls(8, bit, classes, memory_max_age=age)
        for step, (z, labels) in enumerate((first, second)):
            loss_fn.on_step(step)
            got = call(loss_fn, z, labels, indices=np.arange(4) + 4 * step)
        results[age] = got
    alone = loss_cls(4, bit, classes)
    assert results[0] == pytest.approx(call(alone, *second, indices=np.arange(4)), rel=1e-6)
    assert results[1] == pytest.approx(results[None], rel=1e-6)  # step 0's codes are 1 step old
    assert results[0] != pytest.approx(results[None], rel=1e-3)


def test_pairs_use_shared_labels_not_equal_labels():
    """Two images sharing one of their labels are similar (DSH pulls them together: zero margin term)."""
    z = np.array([[1.0, -1.0], [1.0, -1.0]])
    labels = np.array([[1.0, 1.0, 0.0], [0.0, 1.0, 1.0]])
    assert call(DSHLoss(2, 2, 3), z, labels) == pytest.approx(0.0, abs=1e-7)
    labels_disjoint = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    assert call(DSHLoss(2, 2, 3), z, labels_disjoint) == pytest.approx(0.5 * 4, rel=1e-6)  # margin 2K = 4, d = 0
