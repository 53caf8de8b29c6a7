"""Each loss on inputs small enough to work out by hand from the paper's formula.

The numbers below are computed on paper (closed forms: log 2, log 3/2, squared distances of +-1
codes at a known Hamming distance), not by running any code, so these tests pin the formulas
themselves rather than an implementation. tanh(20) and sigmoid(+-log 3) are exact enough in
float32 for the saturated and 3:1 cases.
"""
import math

import numpy as np
import pytest

from tests.utils.losses.common import call
from utils.losses import CSQLoss, DSHLoss, DSHSDLoss, GreedyHashLoss, SSDHLoss

SAT = 20.0  # tanh(20) == 1 in float32: a saturated code bit

A = [1, 1, 1, 1]
HAMMING_1 = [1, 1, 1, -1]       # one bit from A: ||a - b||^2 = 4 * 1 = 4
HAMMING_3 = [-1, -1, -1, 1]     # three bits from A: ||a - b||^2 = 12
SIMILAR, DISSIMILAR = [[1, 0], [1, 0]], [[1, 0], [0, 1]]


@pytest.mark.parametrize("other,labels,expected", [
    (HAMMING_1, SIMILAR, 2.0),      # 1/2 * 4
    (HAMMING_1, DISSIMILAR, 2.0),   # 1/2 * max(m - 4, 0), m = 2K = 8
    (HAMMING_3, SIMILAR, 6.0),      # 1/2 * 12
    (HAMMING_3, DISSIMILAR, 0.0),   # 12 > m: the pair no longer pushes
])
def test_dsh_pair_of_binary_outputs_at_a_known_hamming_distance(other, labels, expected):
    # DSH's b are the real outputs (no tanh); +-1 outputs make the regulariser | |b| - 1 | zero
    got = call(DSHLoss(10, 4, 2, alpha=0.01), [A, other], labels)
    assert got == pytest.approx(expected, abs=1e-6)


def test_dsh_regulariser_of_one_off_code_unit():
    # b1 = (0.5, 1, 1, 1), b2 = (1, 1, 1, 1), similar: 1/2 * 0.25 + alpha * (0.5 + 0) = 0.125 + 0.005
    got = call(DSHLoss(10, 4, 2, alpha=0.01), [[0.5, 1, 1, 1], A], SIMILAR)
    assert got == pytest.approx(0.13, abs=1e-6)


def test_csq_binary_cross_entropy_to_the_hash_center():
    # K = 4: centers are Hadamard rows; class 1's center is (+1, -1, +1, -1). h = tanh(z) = 0.6 on every
    # bit, so (h + 1) / 2 = 0.8: two bits pay -log 0.8, two pay -log 0.2; quantization (0.6 - 1)^2 = 0.16
    z = [[math.atanh(0.6)] * 4]
    loss = CSQLoss(10, 4, 2, quant_weight=0.5)
    np.testing.assert_array_equal(loss.centers.numpy()[1], [1, -1, 1, -1])
    expected = (-2 * math.log(0.8) - 2 * math.log(0.2)) / 4 + 0.5 * 0.16
    assert call(loss, z, [[0, 1]]) == pytest.approx(expected, rel=1e-5)
    # z = 0: every bit pays log 2 whatever its center; (|0| - 1)^2 = 1
    assert call(CSQLoss(10, 4, 2, quant_weight=0.5), [[0.0] * 4], [[1, 0]]) == pytest.approx(math.log(2) + 0.5, rel=1e-6)


def test_ssdh_classification_binarization_and_balance_terms():
    # h = sigmoid(+-log 3) = 3/4, 1/4: E2 = -mean (h - 1/2)^2 = -1/16; E3 = (mean h - 1/2)^2 = 0
    # logits (log 2, 0), label 0: softmax p0 = 2/3, E1 = log 3/2
    z = [[math.log(3), math.log(3), -math.log(3), -math.log(3)]]
    got = call(SSDHLoss(10, 4, 2), z, [[1, 0]], logits=[[math.log(2), 0.0]])
    assert got == pytest.approx(math.log(1.5) - 1 / 16, rel=1e-5)
    # all four units at 3/4: E2 = -1/16, E3 = (3/4 - 1/2)^2 = 1/16, with weights 1 and 2: +1/16
    got = call(SSDHLoss(10, 4, 2, balance_weight=2.0), [[math.log(3)] * 4], [[1, 0]], logits=[[math.log(2), 0.0]])
    assert got == pytest.approx(math.log(1.5) + 1 / 16, rel=1e-5)


@pytest.mark.parametrize("other,labels,pair", [
    (HAMMING_1, SIMILAR, 2.0),      # 1/2 * ||u_i - u_j||^2 = 1/2 * 4
    (HAMMING_1, DISSIMILAR, 2.0),   # 1/2 * max(2K - 4, 0)
    (HAMMING_3, SIMILAR, 6.0),
    (HAMMING_3, DISSIMILAR, 0.0),
])
def test_dshsd_saturated_pair_plus_classification(other, labels, pair):
    z = [[SAT * v for v in A], [SAT * v for v in other]]
    got = call(DSHSDLoss(10, 4, 2, alpha=0.05), z, labels, logits=[[0.0, 0.0], [0.0, 0.0]])
    assert got == pytest.approx(math.log(2) + 0.05 * pair, rel=1e-5)  # uniform logits: log 2 each


def test_greedyhash_cubic_penalty_plus_classification():
    # | |0.5| - 1 |^3 = 1/8, | |-2| - 1 |^3 = 1: mean 9/16, alpha 0.1; uniform logits over 3 classes: log 3
    got = call(GreedyHashLoss(10, 2, 3, alpha=0.1), [[0.5, -2.0]], [[0, 0, 1]], logits=[[0.0, 0.0, 0.0]])
    assert got == pytest.approx(math.log(3) + 0.1 * 9 / 16, rel=1e-6)
