"""PP-ShiTu binary features: PaddleClas's CELoss (ppcls/loss/celoss.py), checked against references
written from that source's equations, row by row, and against the paddle calls it makes."""
import math

import numpy as np
import paddle
import pytest

from tests.utils.losses.common import make_batch
from utils.config import build_config
from utils.errors import UserError
from utils.losses import PPShiTuLoss

CLASSES, BIT = 6, 16


def log_softmax(row):
    top = max(row)
    norm = top + math.log(sum(math.exp(v - top) for v in row))
    return [v - norm for v in row]


def celoss_reference(logits, labels, epsilon=None):
    """CELoss.forward: label smoothing (1 - eps) t + eps / C of the one-hot (or C-wide) label and
    sum(-log_softmax(x) * t); without epsilon the integer label's cross-entropy (single-label
    images) or, for a C-wide label vector, cross_entropy(x, softmax(label), soft_label=True); mean."""
    total = 0.0
    for x, y in zip(logits.tolist(), labels.tolist()):
        logp = log_softmax(x)
        if epsilon is not None:
            target = [(1 - epsilon) * v + epsilon / len(y) for v in y]
        elif sum(y) == 1:
            target = [1.0 if c == y.index(1.0) else 0.0 for c in range(len(y))]
        else:
            e = [math.exp(v) for v in y]
            target = [v / sum(e) for v in e]
        total += -sum(t * lp for t, lp in zip(target, logp))
    return total / len(logits)


def run(loss, z, logits, labels):
    return float(loss((paddle.to_tensor(z, dtype="float32"), paddle.to_tensor(logits, dtype="float32")),
                      paddle.to_tensor(labels, dtype="float32"), paddle.arange(len(z))))


@pytest.mark.parametrize("multi_label", [False, True])
@pytest.mark.parametrize("epsilon", [None, 0.1])
def test_loss_follows_paddleclas_celoss(multi_label, epsilon):
    rng = np.random.default_rng(7)
    z, labels = make_batch(rng, 8, BIT, CLASSES, multi_label=multi_label)
    logits = rng.normal(0, 2, (8, CLASSES))
    loss = PPShiTuLoss(num_train=8, bit=BIT, num_classes=CLASSES, epsilon=epsilon)
    assert run(loss, z, logits, labels) == pytest.approx(celoss_reference(logits, labels, epsilon), rel=1e-5)


def test_single_label_is_paddles_hard_cross_entropy_and_multi_label_its_soft_label_branch():
    """The calls of CELoss itself: F.cross_entropy(x, label) on integer labels, and
    F.cross_entropy(x, softmax(label), soft_label=True) on C-wide labels."""
    rng = np.random.default_rng(3)
    F = paddle.nn.functional
    loss = PPShiTuLoss(num_train=8, bit=BIT, num_classes=CLASSES)
    z, one_hot = make_batch(rng, 8, BIT, CLASSES, multi_label=False)
    logits = rng.normal(0, 2, (8, CLASSES))
    x = paddle.to_tensor(logits, dtype="float32")
    hard = F.cross_entropy(x, paddle.to_tensor(one_hot.argmax(1)[:, None])).mean()
    assert run(loss, z, logits, one_hot) == pytest.approx(float(hard), rel=1e-5)
    multi = one_hot.copy()
    multi[:, 0] = 1
    multi[multi.sum(axis=1) < 2, 1] = 1  # every row has two or more labels
    soft = F.cross_entropy(x, F.softmax(paddle.to_tensor(multi, dtype="float32"), axis=-1), soft_label=True).mean()
    assert run(loss, z, logits, multi) == pytest.approx(float(soft), rel=1e-5)


@pytest.mark.parametrize("value", [0, 1, 1.5, "x", True])
def test_epsilon_outside_0_1_is_a_config_error(value):
    with pytest.raises(UserError, match="loss.epsilon: must be null"):
        build_config(None, {}, ["model.name=ppshitu", "loss.name=ppshitu", f"loss.epsilon={value}"])
