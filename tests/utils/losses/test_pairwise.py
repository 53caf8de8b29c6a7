"""DSH, DCH, LCDSH, DPSH against pair-by-pair reference loops, on multi-label data."""
import math

import numpy as np
import paddle
import pytest

from tests.utils.losses.common import call, dot, make_batch, shares_label, sign, sigmoid
from utils.losses import DCHLoss, DPSHLoss, DSHLoss, LCDSHLoss


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
    cos = dot(a, b) / (math.sqrt(dot(a, a)) * math.sqrt(dot(b, b)))
    return bit / 4 * (1 - cos)


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


def lcdsh_reference(z, labels, lam):
    like = loc = 0.0
    n = len(z)
    for i in range(n):
        for j in range(n):
            if i == j:
                continue
            s = 1.0 if shares_label(labels[i], labels[j]) else -1.0
            theta = 0.5 * dot(z[i], z[j])
            phi = 0.5 * dot([sign(v) for v in z[i]], [sign(v) for v in z[j]])
            like += math.log(1 + math.exp(-s * theta))
            loc += (sigmoid(theta) - sigmoid(phi)) ** 2
    return (like + lam * loc) / (n * (n - 1))


@pytest.mark.parametrize("bit,lam,scale", [(16, 3.0, 0.3), (8, 0.5, 1.0)])
def test_lcdsh_matches_reference(bit, lam, scale):
    rng = np.random.default_rng(bit + 2)
    z, labels = make_batch(rng, 6, bit, 4, scale)
    got = call(LCDSHLoss(10, bit, 4, locality_weight=lam), z, labels)
    assert got == pytest.approx(lcdsh_reference(z, labels, lam), rel=1e-4)


def test_dpsh_matches_reference_over_steps():
    """The batch is paired with the latest outputs of every training image seen so far."""
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
        quant = sum((v - sign(v)) ** 2 for row in z for v in row)
        expected = (like + eta * quant) / (batch * len(memory))
        got = call(loss_fn, z, labels, indices=indices)
        assert got == pytest.approx(expected, rel=1e-4), f"step {step}"
    assert int(loss_fn.memory_filled.numpy().sum()) == len(memory)
    assert {"memory_codes", "memory_labels", "memory_filled"} <= set(loss_fn.state_dict())


def test_pairs_use_shared_labels_not_equal_labels():
    """Two images sharing one of their labels are similar (DSH pulls them together: zero margin term)."""
    z = np.array([[1.0, -1.0], [1.0, -1.0]])
    labels = np.array([[1.0, 1.0, 0.0], [0.0, 1.0, 1.0]])
    assert call(DSHLoss(2, 2, 3), z, labels) == pytest.approx(0.0, abs=1e-7)
    labels_disjoint = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    assert call(DSHLoss(2, 2, 3), z, labels_disjoint) == pytest.approx(0.5 * 4, rel=1e-6)  # margin 2K = 4, d = 0
