"""OrthoHash and DPN against references written from the papers, and cases worked out by hand.

OrthoHash (Hoe et al., NeurIPS 2021, Sec. 3.2): softmax cross-entropy over the classes of
s (cos(v, o_c) - m y_c) (cos form) or s cos(arccos cos(v, o_c) + m y_c) (arc form), against the target
y / |y| (label smoothing, the multi-label form), + lambda (1 - cos(v, sign v)).
DPN (Fan et al., IJCAI 2020, Sec. 3): sum over the image's labels c and the bits k of max(m - v_k t_ck, 0).
The hand cases use targets set by hand (orthogonal 4-bit codes) so every cosine is 0, 1/2 or 1.
"""
import math

import numpy as np
import paddle
import pytest

from tests.utils.losses.common import call, make_batch
from utils.losses import DPNLoss, OrthoHashLoss
from utils.losses.orthohash import bernoulli_codes

CODES = [[1, 1, 1, 1], [1, 1, -1, -1], [1, -1, 1, -1]]  # pairwise orthogonal 4-bit targets
V_HALF = [1.0, 1.0, 1.0, -1.0]  # cosine 1/2 to each of the three targets


def ortho_reference(v_rows, label_rows, codebook, s, m, form, quant_weight=0.0):
    """One image at a time, straight from the paper's formula."""
    total = 0.0
    for v, y in zip(v_rows, label_rows):
        norm_v = math.sqrt(sum(x * x for x in v))
        logits = []
        for c, code in enumerate(codebook):
            cos = sum(a * b for a, b in zip(v, code)) / (norm_v * math.sqrt(len(code)))
            if form == "cos":
                logits.append(s * (cos - m * y[c]))
            else:
                logits.append(s * math.cos(math.acos(max(-0.99999, min(0.99999, cos))) + m * y[c]))
        top = max(logits)
        log_norm = top + math.log(sum(math.exp(o - top) for o in logits))
        count = sum(y)
        total += sum(-(yc / count) * (o - log_norm) for o, yc in zip(logits, y))
        if quant_weight:
            signs = [1.0 if x >= 0 else -1.0 for x in v]
            total += quant_weight * (1 - sum(a * b for a, b in zip(v, signs)) / (norm_v * math.sqrt(len(v))))
    return total / len(v_rows)


def dpn_reference(v_rows, label_rows, targets, m, reg_weight=0.0):
    total = 0.0
    for v, y in zip(v_rows, label_rows):
        for c, code in enumerate(targets):
            if y[c] > 0:
                total += y[c] * sum(max(m - a * t, 0.0) for a, t in zip(v, code))
        total += reg_weight * sum(a * a for a in v) / len(v)
    return total / len(v_rows)


def with_codes(loss, codes, name):
    getattr(loss, name).set_value(paddle.to_tensor(np.asarray(codes, dtype="float32")))
    return loss


def ortho(codes=CODES, **options):
    return with_codes(OrthoHashLoss(8, 4, len(codes), **options), codes, "codebook")


def test_orthohash_cos_form_by_hand():
    # v along o_0: cosines (1, 0, 0); label 0: logits 8 (1 - 0.2) = 6.4, 0, 0 -> -log softmax_0 = log(1 + 2 e^-6.4)
    # (3.3e-3: float32 log-softmax near 0 is good to about 1e-7 absolute)
    assert call(ortho(), [[3.0, 3.0, 3.0, 3.0]], [[1, 0, 0]]) == pytest.approx(math.log(1 + 2 * math.exp(-6.4)), abs=1e-6)
    # cosines (1/2, 1/2, 1/2), label 0: logits 8 * 0.3 = 2.4, 4, 4 -> log(1 + 2 e^1.6)
    assert call(ortho(), [V_HALF], [[1, 0, 0]]) == pytest.approx(math.log(1 + 2 * math.exp(1.6)), rel=1e-5)


def test_orthohash_arc_form_by_hand():
    # cosine 1/2 is an angle of pi/3; with the angular margin pi/6 the labelled class's logit is 8 cos(pi/2) = 0,
    # the others 8 * 1/2 = 4: -log softmax_0 = log(1 + 2 e^4)
    loss = ortho(margin=math.pi / 6, margin_type="arc")
    assert call(loss, [V_HALF], [[1, 0, 0]]) == pytest.approx(math.log(1 + 2 * math.exp(4.0)), rel=1e-5)


def test_orthohash_multi_label_is_label_smoothing_by_hand():
    # labels {0, 1}: target (1/2, 1/2, 0), logits 2.4, 2.4, 4: each labelled class has
    # -log p = log(2 + e^1.6), so the loss is log(2 + e^1.6); with two classes only, log 2
    assert call(ortho(), [V_HALF], [[1, 1, 0]]) == pytest.approx(math.log(2 + math.exp(1.6)), rel=1e-5)
    assert call(ortho(CODES[:2]), [V_HALF], [[1, 1]]) == pytest.approx(math.log(2), rel=1e-5)


def test_orthohash_quantisation_term_by_hand():
    # v = (2, 1, -1, -2): cos(v, sign v) = 6 / (sqrt(10) * 2); v along o_0 would make the CE term equal for both
    v = [[2.0, 1.0, -1.0, -2.0]]
    without = call(ortho(), v, [[1, 0, 0]])
    assert call(ortho(quant_weight=0.5), v, [[1, 0, 0]]) - without == \
        pytest.approx(0.5 * (1 - 3 / math.sqrt(10)), rel=1e-5)


@pytest.mark.parametrize("form,multi_label", [("cos", False), ("cos", True), ("arc", False), ("arc", True)])
def test_orthohash_matches_the_reference_on_random_batches(form, multi_label):
    rng = np.random.default_rng(3)
    v, labels = make_batch(rng, 6, 16, 5, scale=1.5, multi_label=multi_label)
    loss = OrthoHashLoss(6, 16, 5, scale=8.0, margin=0.3, margin_type=form, quant_weight=0.2, codebook_seed=4)
    expected = ortho_reference(v, labels, loss.codebook.numpy(), 8.0, 0.3, form, quant_weight=0.2)
    assert call(loss, v, labels) == pytest.approx(expected, rel=1e-5)


def test_dpn_polarisation_by_hand():
    # targets t_0 = (1, 1, 1, 1), t_1 = (1, 1, -1, -1); v = (2, 0.5, -0.5, 0), m = 1
    # label 0: max(1 - 2, 0) + max(1 - 0.5, 0) + max(1 + 0.5, 0) + max(1 - 0, 0) = 0 + 0.5 + 1.5 + 1 = 3
    # label 1: v * t_1 = (2, 0.5, 0.5, 0): 0 + 0.5 + 0.5 + 1 = 2; both labels: 3 + 2 = 5 (the multi-label sum)
    v = [[2.0, 0.5, -0.5, 0.0]]

    def dpn(**options):
        return with_codes(DPNLoss(8, 4, 2, **options), CODES[:2], "targets")

    assert call(dpn(), v, [[1, 0]]) == pytest.approx(3.0)
    assert call(dpn(), v, [[0, 1]]) == pytest.approx(2.0)
    assert call(dpn(), v, [[1, 1]]) == pytest.approx(5.0)
    assert call(dpn(), [v[0], v[0]], [[1, 0], [0, 1]]) == pytest.approx(2.5)  # mean over the batch
    # m = 3: every hinge grows by 2 (none was at zero but the first bit: max(3 - 2, 0) = 1): 1 + 2.5 + 3.5 + 3 = 10
    assert call(dpn(margin=3.0), v, [[1, 0]]) == pytest.approx(10.0)
    # reg_weight 0.5 adds 0.5 * mean(v^2) = 0.5 * (4 + 0.25 + 0.25 + 0) / 4
    assert call(dpn(reg_weight=0.5), v, [[1, 0]]) == pytest.approx(3.0 + 0.5 * 4.5 / 4)


@pytest.mark.parametrize("multi_label", [False, True])
def test_dpn_matches_the_reference_on_random_batches(multi_label):
    rng = np.random.default_rng(5)
    v, labels = make_batch(rng, 6, 16, 5, scale=1.5, multi_label=multi_label)
    loss = DPNLoss(6, 16, 5, margin=1.0, reg_weight=0.1, target_seed=2)
    expected = dpn_reference(v, labels, loss.targets.numpy(), 1.0, reg_weight=0.1)
    assert call(loss, v, labels) == pytest.approx(expected, rel=1e-5)


def test_target_codes_are_seeded_bernoulli_bits():
    codes = bernoulli_codes(10, 64, seed=0)
    assert set(np.unique(codes)) == {-1.0, 1.0} and codes.shape == (10, 64)
    np.testing.assert_array_equal(codes, bernoulli_codes(10, 64, seed=0))
    assert not np.array_equal(codes, bernoulli_codes(10, 64, seed=1))
    assert abs(codes.mean()) < 0.1  # half the bits +1
    np.testing.assert_array_equal(OrthoHashLoss(4, 64, 10).codebook.numpy(), codes)
    np.testing.assert_array_equal(DPNLoss(4, 64, 10).targets.numpy(), codes)
