"""AlexNet's 6x6 pool before fc6: in inference, a map whose side divides 6 (1x1 at the lite data's
64 px crops, 6x6 at 224 px) goes through a repeat that ONNX can hold instead of the adaptive pool
(paddle2onnx writes a stride-0 AveragePool for 1x1 -> 6x6); the values are the pool's bit for bit,
and training still runs the pool itself (its gradients, so trained weights, are unchanged)."""
import numpy as np
import paddle
import pytest

from models.alexnet import AlexNetBackbone


def _reference_pool(x):
    """Adaptive average pooling to 6x6 written from its definition: cell (i, j) averages rows
    floor(i*h/6) .. ceil((i+1)*h/6)-1 and the same for columns."""
    n, c, h, w = x.shape
    out = np.zeros((n, c, 6, 6), np.float32)
    for i in range(6):
        r0, r1 = (i * h) // 6, -((-(i + 1) * h) // 6)
        for j in range(6):
            c0, c1 = (j * w) // 6, -((-(j + 1) * w) // 6)
            out[:, :, i, j] = x[:, :, r0:r1, c0:c1].mean(axis=(2, 3))
    return out


@pytest.mark.parametrize("side", [1, 2, 3, 4, 6, 7, 13])
def test_inference_pool_is_the_adaptive_pool_bit_for_bit(side):
    paddle.seed(side)
    net = AlexNetBackbone(fc_dim=16)
    net.eval()
    x = paddle.randn([2, 8, side, side])
    got = net._pool6(x).numpy()
    np.testing.assert_array_equal(got, net._avgpool(x).numpy())
    np.testing.assert_allclose(got, _reference_pool(x.numpy()), rtol=1e-6, atol=1e-6)
    if 6 % side == 0:  # one input cell per output cell: exactly the input values, repeated
        np.testing.assert_array_equal(got, _reference_pool(x.numpy()))


def test_training_runs_the_adaptive_pool(monkeypatch):
    net = AlexNetBackbone(fc_dim=16)
    calls = []
    pool = net._avgpool.forward
    monkeypatch.setattr(net._avgpool, "forward", lambda x: calls.append(x.shape) or pool(x))
    net.train()
    features = net(paddle.randn([2, 3, 64, 64]))
    assert calls == [[2, 256, 1, 1]] and features.shape == [2, 16]
    net.eval()
    net(paddle.randn([2, 3, 64, 64]))
    assert len(calls) == 1  # inference: the repeat, not the pool
