"""train.amp fp16 (utils/training/amp.py): the step's plumbing (loss in fp32, scaled backward,
scaler step, cleared gradients) checked on CPU, where paddle's auto_cast and GradScaler are
switched off by paddle itself, so the step must make exactly the fp32 step's update; the fp16
kernels themselves run only on a GPU (tests/test_tipc_fleet_amp.py checks that chain's commands)."""
import warnings

import numpy as np
import paddle
import pytest

from utils.errors import ConfigError, DeviceError
from utils.training.amp import amp_step, Bf16Step, check_amp_device, Fp16Step, keep_code_layer_fp32
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
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # paddle: "AmpScaler can only be enabled on CUDAPlace ..."
        step = Fp16Step()
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


def test_bf16_on_cpu_needs_the_flags_and_the_onednn_convolution():
    no_bf16 = {"flags": "avx2 avx512f avx512_vnni"}
    check_amp_device("bf16", "gpu", fields=no_bf16)
    check_amp_device("bf16", "cpu", fields={"flags": "avx512f avx512_bf16"})  # allowed: bf16 convolutions
    check_amp_device("bf16", "cpu", fields={"flags": "amx_tile amx_bf16"})
    with pytest.raises(DeviceError) as err:
        check_amp_device("bf16", "cpu", fields=no_bf16)
    assert "\n" not in str(err.value) and "avx512_bf16 nor amx_bf16" in str(err.value)
    with pytest.raises(ConfigError, match="train.onednn_conv auto or true"):
        check_amp_device("bf16", "cpu", onednn_conv=False, fields={"flags": "avx512_bf16"})
    assert amp_step("bf16", "cpu") is None and isinstance(amp_step("bf16", "gpu"), Bf16Step)
    assert isinstance(amp_step("fp16", "gpu"), Fp16Step)


def test_paddle_has_no_cpu_bf16_training_kernels():
    """Why bf16 on CPU goes through the project's oneDNN convolution, checked: a bf16 convolution and
    matrix product have no CPU kernel in this PaddlePaddle (if a later version adds them, this fails
    and paddle.amp on CPU can be revisited)."""
    x = paddle.randn([1, 2, 4, 4]).astype("bfloat16")
    for run in (lambda: paddle.nn.functional.conv2d(x, paddle.randn([3, 2, 3, 3]).astype("bfloat16")),
                lambda: paddle.matmul(x.reshape([4, 8]), paddle.randn([8, 2]).astype("bfloat16"))):
        with pytest.raises(Exception, match="bfloat16"):
            run()


def test_bf16_step_makes_the_fp32_update_where_amp_is_off():
    x, y = paddle.randn([5, 6]), paddle.sign(paddle.randn([5, 4]))
    a, opt_a = _net(4)
    b, opt_b = _net(4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # paddle: "amp_guard can only be enabled on CUDAPlace ..."
        for _ in range(2):
            assert float(Bf16Step()(a, _loss, opt_a, x, y, None)) == float(train_step(b, _loss, opt_b, x, y, None))
    for pa, pb in zip(a.parameters(), b.parameters()):
        np.testing.assert_array_equal(pa.numpy(), pb.numpy())


def test_code_layer_kept_in_fp32_leaves_outputs_and_names_alone():
    from models import build_model
    from utils.config import build_config

    paddle.seed(0)
    model = build_model(build_config(None, {"bit": 16, "dataset": "lite"}, ["model.fc_dim=32"]))
    model.eval()
    x = paddle.randn([2, 3, 64, 64])
    before, names = model(x).numpy(), list(model.state_dict())
    assert keep_code_layer_fp32(model) is True
    after = model(x)
    assert after.dtype == paddle.float32 and list(model.state_dict()) == names
    np.testing.assert_array_equal(before, after.numpy())
    assert keep_code_layer_fp32(paddle.nn.Linear(2, 2)) is False  # no code layer: nothing to do
