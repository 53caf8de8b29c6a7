"""train.amp fp16 (utils/training/amp.py): the step's plumbing (loss in fp32, scaled backward,
scaler step, cleared gradients) checked on CPU, where paddle's auto_cast and GradScaler are
switched off by paddle itself, so the step must make exactly the fp32 step's update; the fp16
kernels themselves run only on a GPU (tests/test_tipc_fleet_amp.py checks that chain's commands)."""
import warnings

import numpy as np
import paddle
import pytest

from utils.errors import DeviceError
from utils.training.amp import check_amp_device, Fp16Step
from utils.training.engine import train_step


def _net(seed):
    paddle.seed(seed)
    net = paddle.nn.Sequential(paddle.nn.Linear(6, 8), paddle.nn.ReLU(), paddle.nn.Linear(8, 4))
    return net, paddle.optimizer.Momentum(0.1, momentum=0.9, parameters=net.parameters())


def _loss(outputs, labels, indices):
    assert outputs.dtype == paddle.float32  # the loss sees fp32 outputs
    return ((paddle.tanh(outputs) - labels) ** 2).mean()


def test_fp16_step_makes_the_fp32_update_where_amp_is_off():
    x, y = paddle.randn([5, 6]), paddle.sign(paddle.randn([5, 4]))
    a, opt_a = _net(3)
    b, opt_b = _net(3)
    step = Fp16Step()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # paddle: "AmpScaler can only be enabled on CUDAPlace ..."
        for _ in range(3):
            la = step(a, _loss, opt_a, x, y, None, loss_scale=2)
            lb = train_step(b, _loss, opt_b, x, y, None, loss_scale=2)
            assert float(la) == float(lb)
    for pa, pb in zip(a.parameters(), b.parameters()):
        np.testing.assert_array_equal(pa.numpy(), pb.numpy())
        assert pa.grad is None or not np.any(pa.grad.numpy())  # gradients cleared after the step


def test_fp16_needs_a_gpu():
    check_amp_device(None, "cpu")
    check_amp_device("fp16", "gpu")
    with pytest.raises(DeviceError, match="train.amp fp16 trains on a GPU"):
        check_amp_device("fp16", "cpu")
