"""Every registered loss: finite gradients, autograd = finite differences, the engine interface."""
import numpy as np
import paddle
import pytest

from models import MODELS
from models.classifier_head import HashClassifierNet
from tests.utils.losses.common import make_batch
from utils.errors import UserError
from utils.losses import LOSSES, HashLoss, build_loss, is_multi_label
from utils.config import build_config

BATCH_ONLY = ["dsh", "dch", "lcdsh", "csq", "ssdh", "dshsd", "greedyhash", "ppshitu", "orthohash",
              "dpn"]  # no memory across steps
CLASSES = 4


def has_classifier(name):
    """The method's head returns (z, class_logits) in train mode (models/classifier_head.py)."""
    return issubclass(MODELS[LOSSES[name].MODEL], HashClassifierNet)


def two_outputs(name):
    """The head returns two outputs in train mode: (z, class_logits) with a classifier, (z, features) for the
    heads that learn without labels; linear and orthohash return z alone."""
    return LOSSES[name].MODEL not in ("linear", "orthohash")


def outputs_for(name, z, logits):
    return (z, logits) if two_outputs(name) else z


CLASSIFICATION_ONLY = {"ppshitu"}  # PaddleClas's CELoss: a loss on the classifier's logits alone


def make_loss(name, bit, num_train=8):
    return LOSSES[name](num_train=num_train, bit=bit, num_classes=CLASSES)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_extreme_inputs_give_finite_loss_and_gradients(name):
    rng = np.random.default_rng(0)
    z, labels = make_batch(rng, 8, 16, CLASSES, scale=100.0)
    zt = paddle.to_tensor(z.astype("float32"), stop_gradient=False)
    logits = paddle.to_tensor(rng.normal(0, 100.0, (8, CLASSES)).astype("float32"), stop_gradient=False)
    loss = make_loss(name, 16)(outputs_for(name, zt, logits), paddle.to_tensor(labels.astype("float32")),
                               paddle.arange(8))
    loss.backward()
    assert np.isfinite(float(loss))
    if name in CLASSIFICATION_ONLY:  # z reaches the loss through the logits only (the head's classifier)
        assert zt.grad is None and np.isfinite(logits.grad.numpy()).all() and np.abs(logits.grad.numpy()).sum() > 0
        return
    assert np.isfinite(zt.grad.numpy()).all()
    if name == "lcdsh":  # every |theta_ij| is past its clamp (50): clamped pairs push no more, by design
        assert np.abs(zt.grad.numpy()).sum() == 0
    else:
        assert np.abs(zt.grad.numpy()).sum() > 0
    if has_classifier(name) and LOSSES[name].SUPERVISED:  # the unsupervised heads' second output is the
        assert np.isfinite(logits.grad.numpy()).all()       # features, a fixed target (no gradient)


@pytest.mark.parametrize("name", BATCH_ONLY)
def test_gradient_matches_finite_differences(name):
    rng = np.random.default_rng(1)
    n, bit = 4, 6
    z, labels = make_batch(rng, n, bit, CLASSES, scale=0.8)
    logits = rng.normal(0, 1.0, (n, CLASSES))
    paddle.set_default_dtype("float64")
    try:
        fn = make_loss(name, bit)
        lab = paddle.to_tensor(labels)

        def value(zz, ll):
            return float(fn(outputs_for(name, paddle.to_tensor(zz), paddle.to_tensor(ll)), lab, paddle.arange(n)))

        zt = paddle.to_tensor(z, stop_gradient=False)
        lt = paddle.to_tensor(logits, stop_gradient=False)
        fn(outputs_for(name, zt, lt), lab, paddle.arange(n)).backward()
        eps = 1e-6
        for array, grad in ((z, zt.grad), (logits, lt.grad if two_outputs(name) else None)):
            if grad is None:
                continue
            numeric = np.zeros_like(array)
            for idx in np.ndindex(array.shape):
                plus, minus = array.copy(), array.copy()
                plus[idx] += eps
                minus[idx] -= eps
                args = (plus, logits) if array is z else (z, plus)
                args_m = (minus, logits) if array is z else (z, minus)
                numeric[idx] = (value(*args) - value(*args_m)) / (2 * eps)
            np.testing.assert_allclose(grad.numpy(), numeric, rtol=1e-4, atol=1e-7)
    finally:
        paddle.set_default_dtype("float32")


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_engine_interface(name):
    """What the engine relies on: the hooks, beta (None or a number), state_dict round trip, NAME,
    DEFAULTS as constructor options, and a registered head."""
    cls = LOSSES[name]
    assert cls.NAME == name and issubclass(cls, HashLoss) and cls.MODEL in MODELS
    fn = cls(num_train=6, bit=8, num_classes=3, comm=None, **cls.DEFAULTS)
    fn.on_epoch_start(0)
    fn.on_step(0)
    assert fn.beta is None or isinstance(fn.beta, float)
    other = cls(num_train=6, bit=8, num_classes=3, **cls.DEFAULTS)
    other.set_state_dict(fn.state_dict())
    assert set(other.state_dict()) == set(fn.state_dict())
    assert [b.shape for b in fn.buffers()] == [b.shape for b in other.buffers()]


def test_a_single_label_only_method_refuses_multi_label_data():
    class SingleLabelOnly(HashLoss):
        NAME = "single"
        MULTI_LABEL = False

    multi = np.array([[1, 1, 0], [0, 1, 0]])
    with pytest.raises(UserError, match="loss 'single' supports single-label data only, but data set 'coco'"):
        SingleLabelOnly.check_data({}, is_multi_label(multi), "coco")
    SingleLabelOnly.check_data({}, is_multi_label(np.eye(3)), "cifar10")  # one-hot: accepted


def test_every_registered_method_accepts_the_multi_label_lite_data():
    labels = np.array([[1, 0, 1], [0, 1, 0]], dtype="float32")
    for name in LOSSES:
        cfg = build_config(None, {"bit": 16}, [f"model.name={LOSSES[name].MODEL}", f"loss.name={name}"])
        loss = build_loss(cfg, num_train=2, num_classes=3, train_labels=labels)
        assert isinstance(loss, LOSSES[name])
