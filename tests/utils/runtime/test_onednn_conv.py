"""utils/runtime/onednn_conv.py: oneDNN conv2d gives paddle's conv2d results, forward and backward;
utils/runtime/dnnl.py: the binding loads only the oneDNN version its constants were copied from."""
import copy
import logging
import os

import numpy as np
import paddle
import paddle.nn.functional as F
import pytest

from utils.runtime import dnnl, onednn_conv


def test_the_pinned_paddle_wheel_ships_a_usable_onednn():
    """requirements.txt pins a paddlepaddle whose libs/libdnnl.so.3 is oneDNN 3.x: the tests below
    must exercise the oneDNN path, not the fallback."""
    assert dnnl.library() is not None

# (in, out, kernel, stride, padding, size): AlexNet's five convs at a small size, then a variety.
SHAPES = [(3, 8, 11, 4, 2, 35), (8, 12, 5, 1, 2, 9), (12, 16, 3, 1, 1, 5), (16, 8, 3, 1, 1, 5),
          (8, 8, 3, 1, 1, 5), (3, 5, 3, 2, 0, 8), (2, 3, 2, 3, 1, 9), (4, 6, 1, 1, 0, 6),
          (3, 4, (3, 1), (2, 1), (1, 0), 7), (3, 4, 3, [2, 2], [1, 1], 7)]


def _run(conv, xn, wn, bn, stride, padding, x_grad=True):
    x = paddle.to_tensor(xn, stop_gradient=not x_grad)
    w = paddle.to_tensor(wn, stop_gradient=False)
    b = None if bn is None else paddle.to_tensor(bn, stop_gradient=False)
    y = conv(x, w, b, stride=stride, padding=padding)
    seed = np.random.RandomState(1).standard_normal(y.shape).astype("float32")
    (y * paddle.to_tensor(seed)).sum().backward()
    out = {"y": y.numpy(), "dw": w.grad.numpy()}
    if x_grad:
        out["dx"] = x.grad.numpy()
    if b is not None:
        out["db"] = b.grad.numpy()
    return out


@pytest.fixture(params=[False, True], ids=["blocked", "plain"])
def layout(request, monkeypatch):
    monkeypatch.setattr(onednn_conv, "PLAIN_LAYOUT", request.param)
    return request.param


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("bias", [True, False])
def test_matches_paddle_conv(shape, bias, layout):
    ci, co, k, s, p, size = shape
    kh, kw = (k, k) if isinstance(k, int) else k
    rng = np.random.RandomState(0)
    xn = rng.standard_normal((2, ci, size, size)).astype("float32")
    wn = rng.standard_normal((co, ci, kh, kw)).astype("float32")
    bn = rng.standard_normal(co).astype("float32") if bias else None
    want = _run(F.conv2d, xn, wn, bn, s, p)
    got = _run(onednn_conv.conv2d, xn, wn, bn, s, p)
    assert set(got) == set(want)
    for name in want:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-4, atol=1e-4, err_msg=name)


def test_matches_loop_reference():
    """Forward and all three gradients against a per-output-pixel loop (stride 2, padding 1)."""
    rng = np.random.RandomState(2)
    xn = rng.standard_normal((2, 3, 6, 6)).astype("float32")
    wn = rng.standard_normal((4, 3, 3, 3)).astype("float32")
    bn = rng.standard_normal(4).astype("float32")
    got = _run(onednn_conv.conv2d, xn, wn, bn, 2, 1)
    g = np.random.RandomState(1).standard_normal(got["y"].shape).astype("float32")
    xp = np.pad(xn.astype("float64"), ((0, 0), (0, 0), (1, 1), (1, 1)))
    y = np.zeros(got["y"].shape)
    dxp, dw, db = np.zeros_like(xp), np.zeros(wn.shape), np.zeros(4)
    for n in range(2):
        for o in range(4):
            for i in range(y.shape[2]):
                for j in range(y.shape[3]):
                    patch = xp[n, :, 2 * i:2 * i + 3, 2 * j:2 * j + 3]
                    y[n, o, i, j] = (patch * wn[o]).sum() + bn[o]
                    dw[o] += g[n, o, i, j] * patch
                    db[o] += g[n, o, i, j]
                    dxp[n, :, 2 * i:2 * i + 3, 2 * j:2 * j + 3] += g[n, o, i, j] * wn[o]
    for name, want in (("y", y), ("dx", dxp[:, :, 1:-1, 1:-1]), ("dw", dw), ("db", db)):
        np.testing.assert_allclose(got[name], want, rtol=1e-4, atol=1e-4, err_msg=name)


def test_input_without_grad_skips_backward_data():
    rng = np.random.RandomState(3)
    xn = rng.standard_normal((2, 3, 20, 20)).astype("float32")
    wn = rng.standard_normal((8, 3, 5, 5)).astype("float32")
    got = _run(onednn_conv.conv2d, xn, wn, None, 4, 2, x_grad=False)
    want = _run(F.conv2d, xn, wn, None, 4, 2, x_grad=False)
    np.testing.assert_allclose(got["dw"], want["dw"], rtol=1e-4, atol=1e-4)
    plans = [plan for key, plan in onednn_conv._PLANS.items() if key[0] == (2, 3, 20, 20)]
    assert plans and all(plan.bwd_d is None for plan in plans)


@pytest.mark.parametrize("kwargs, dtype", [({"groups": 2}, "float32"), ({"dilation": 2}, "float32"),
                                           ({"padding": "SAME"}, "float32"), ({}, "float64")])
def test_unsupported_cases_fall_back(kwargs, dtype):
    x = paddle.randn([2, 4, 9, 9]).astype(dtype)
    w = paddle.randn([6, 4 // kwargs.get("groups", 1), 3, 3]).astype(dtype)
    assert not onednn_conv.usable(x, w, kwargs.get("groups", 1), kwargs.get("dilation", 1),
                                  kwargs.get("padding", 0))
    before = len(onednn_conv._PLANS)
    got = onednn_conv.conv2d(x, w, **kwargs)
    np.testing.assert_allclose(got.numpy(), F.conv2d(x, w, **kwargs).numpy(), rtol=1e-5, atol=1e-5)
    assert len(onednn_conv._PLANS) == before


def test_missing_library_falls_back(monkeypatch):
    def broken(self):
        raise OSError("libdnnl.so.3: cannot open shared object file")

    monkeypatch.setattr(dnnl, "_LIB", None)
    monkeypatch.setattr(dnnl, "_LIB_ERROR", None)
    monkeypatch.setattr(dnnl._Lib, "__init__", broken)
    assert dnnl.library() is None
    layer = paddle.nn.Conv2D(3, 4, 3, padding=1)
    assert onednn_conv.enable_onednn_conv(layer) == 0
    x = paddle.randn([1, 3, 5, 5])
    np.testing.assert_allclose(onednn_conv.conv2d(x, layer.weight, layer.bias, padding=1).numpy(),
                               F.conv2d(x, layer.weight, layer.bias, padding=1).numpy(), rtol=1e-6)


def test_another_onednn_version_falls_back_with_one_log_line(monkeypatch, caplog):
    """The hand-copied enums hold for the oneDNN release line they were copied from only."""
    loaded = dnnl.library()
    assert loaded.version[:2] == dnnl.WRITTEN_FOR
    monkeypatch.setattr(dnnl, "_LIB", None)
    monkeypatch.setattr(dnnl, "_LIB_ERROR", None)
    monkeypatch.setattr(dnnl, "WRITTEN_FOR", (loaded.version[0], loaded.version[1] + 1))
    with caplog.at_level(logging.WARNING, logger=dnnl.__name__):
        assert dnnl.library() is None
        assert dnnl.library() is None  # said once
    lines = [r.getMessage() for r in caplog.records if r.name == dnnl.__name__]
    assert len(lines) == 1 and "oneDNN conv disabled" in lines[0] and "copied from oneDNN" in lines[0], lines
    layer = paddle.nn.Conv2D(3, 4, 3)
    assert onednn_conv.enable_onednn_conv(layer) == 0 and type(layer) is paddle.nn.Conv2D


def test_a_conv_layer_without_the_expected_private_attributes_is_left_alone():
    layer = paddle.nn.Conv2D(3, 4, 3)
    del layer._updated_padding  # as if another paddle version had renamed it
    assert onednn_conv.enable_onednn_conv(layer) == 0 and type(layer) is paddle.nn.Conv2D


def _tiny_training(enable, steps=5):
    from models import build_model
    from utils.config import build_config
    from utils.training.engine import train_step
    from utils.losses import build_loss
    from utils.training.optimizer import build_optimizer

    root = os.path.dirname(os.path.dirname(os.path.dirname(onednn_conv.__file__)))
    cfg = build_config(os.path.join(root, "configs", "hashnet_lite.yaml"), {"bit": 16, "batch_size": 4},
                       ["dataset.crop_size=64", "dataset.resize_size=64", "model.fc_dim=64"])
    paddle.seed(0)
    model = build_model(cfg, num_classes=12)
    switched = onednn_conv.enable_onednn_conv(model) if enable else 0
    model.train()
    criterion = build_loss(cfg, num_train=8, num_classes=12)
    criterion.on_epoch_start(0)
    optimizer, _ = build_optimizer(cfg, model.parameters())
    rng = np.random.default_rng(0)
    losses = []
    for step in range(steps):
        images = paddle.to_tensor(rng.standard_normal((4, 3, 64, 64)).astype("float32"))
        labels = paddle.to_tensor(np.eye(12, dtype="float32")[rng.integers(0, 12, 4)])
        indices = paddle.to_tensor(np.arange(4 * (step % 2), 4 * (step % 2) + 4, dtype="int64"))
        losses.append(float(train_step(model, criterion, optimizer, images, labels, indices)))
    return losses, switched, model


@pytest.mark.slow
def test_training_steps_match(monkeypatch):
    want, _, _ = _tiny_training(False)
    monkeypatch.setattr(onednn_conv, "_PLANS", onednn_conv.collections.OrderedDict())
    got, switched, model = _tiny_training(True)
    assert switched == 5
    assert len(onednn_conv._PLANS) == 5  # the oneDNN path really ran, once per conv shape
    assert len(set(round(v, 6) for v in want)) > 1  # the loss moves, so a wrong gradient would show
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    # Parameter names are untouched (checkpoints and ImageNet weights still load).
    assert "backbone._conv1._conv.weight" in model.state_dict()
    # A deep copy (e.g. a kept best model) computes with its own weights.
    twin = copy.deepcopy(model)
    twin.eval()
    model.eval()
    x = paddle.randn([2, 3, 64, 64])
    np.testing.assert_allclose(twin(x).numpy(), model(x).numpy(), rtol=1e-5, atol=1e-5)
    conv = twin.backbone._conv1._conv
    conv.weight.set_value(paddle.zeros_like(conv.weight))
    assert not np.allclose(twin(x).numpy(), model(x).numpy())


def test_to_static_export_uses_plain_conv2d():
    layer = paddle.nn.Conv2D(3, 4, 3, padding=1)
    assert onednn_conv.enable_onednn_conv(layer) == 1
    static = paddle.jit.to_static(layer, input_spec=[paddle.static.InputSpec([None, 3, 8, 8], "float32")],
                                  full_graph=True)
    program = static.forward.concrete_program.main_program
    ops = [op.name() if callable(getattr(op, "name", None)) else op.type
           for op in program.global_block().ops]
    assert any("conv2d" in name for name in ops), ops
    assert not any("py_layer" in name for name in ops), ops
    x = paddle.randn([2, 3, 8, 8])
    np.testing.assert_allclose(static(x).numpy(), F.conv2d(x, layer.weight, layer.bias, padding=1).numpy(),
                               rtol=1e-5, atol=1e-5)


def test_plan_cache_is_bounded_and_frees_plans(monkeypatch):
    monkeypatch.setattr(onednn_conv, "_PLANS", onednn_conv.collections.OrderedDict())
    monkeypatch.setattr(onednn_conv, "_MAX_PLANS", 3)
    w = paddle.randn([4, 3, 3, 3])
    for size in (5, 6, 7, 8, 9):
        x = paddle.randn([1, 3, size, size])
        np.testing.assert_allclose(onednn_conv.conv2d(x, w).numpy(), F.conv2d(x, w).numpy(),
                                   rtol=1e-4, atol=1e-4)
    assert [key[0][2] for key in onednn_conv._PLANS] == [7, 8, 9]
    plan = next(iter(onednn_conv._PLANS.values()))
    assert plan.handles
    plan.__del__()
    assert plan.handles == []


@pytest.mark.parametrize("frozen", [("w",), ("b",), ("w", "b")])
def test_frozen_parameters(frozen):
    """Parameters with stop_gradient get no gradient (paddle requires None for them)."""
    rng = np.random.RandomState(4)
    arrays = {"x": rng.standard_normal((2, 3, 7, 7)), "w": rng.standard_normal((4, 3, 3, 3)),
              "b": rng.standard_normal(4)}
    grads = []
    for conv in (F.conv2d, onednn_conv.conv2d):
        t = {k: paddle.to_tensor(v.astype("float32"), stop_gradient=k in frozen) for k, v in arrays.items()}
        (conv(t["x"], t["w"], t["b"], padding=1) ** 2).sum().backward()
        grads.append({k: None if v.grad is None else v.grad.numpy() for k, v in t.items()})
    for k in arrays:
        assert (grads[1][k] is None) == (k in frozen)
        if k not in frozen:
            np.testing.assert_allclose(grads[1][k], grads[0][k], rtol=1e-4, atol=1e-4, err_msg=k)


def test_apply_setting():
    from utils.errors import ConfigError

    def fresh():
        return paddle.nn.Sequential(paddle.nn.Conv2D(3, 4, 3), paddle.nn.ReLU(), paddle.nn.Conv2D(4, 4, 1))

    assert onednn_conv.apply_setting(fresh(), False) == 0
    assert onednn_conv.apply_setting(fresh(), True) == 2
    assert onednn_conv.apply_setting(fresh(), "auto") == (2 if paddle.get_device() == "cpu" else 0)
    model = fresh()
    onednn_conv.apply_setting(model, False)
    assert all(type(layer) is not onednn_conv.Conv2D for layer in model.sublayers())
    with pytest.raises(ConfigError, match="train.onednn_conv"):
        onednn_conv.apply_setting(fresh(), "yes")


def _bf16(a):
    """float32 values rounded to bfloat16 (what oneDNN's reorders feed its bf16 primitives)."""
    return paddle.to_tensor(a).astype("bfloat16").astype("float32").numpy()


@pytest.mark.parametrize("shape", SHAPES[:5])
def test_bf16_matches_paddle_conv_of_bf16_rounded_inputs(shape):
    """train.amp bf16 on CPU: the products of bf16-rounded operands, accumulated in fp32; the output,
    input and bias gradients come out float32, the weight gradient rounded to bf16 (one bf16 step of
    relative error). Unreachable on CPUs without avx512_bf16/amx_bf16: train.amp refuses there."""
    from utils.errors import DeviceError
    from utils.runtime.cpuinfo import bf16_flags
    from utils.training.amp import check_amp_device

    if not bf16_flags():
        with pytest.raises(DeviceError):
            check_amp_device("bf16", "cpu")
        return
    ci, co, k, s, p, size = shape
    rng = np.random.RandomState(2)
    xn = rng.standard_normal((2, ci, size, size)).astype("float32")
    wn = rng.standard_normal((co, ci, k, k)).astype("float32")
    bn = rng.standard_normal(co).astype("float32")
    x, w, b = (paddle.to_tensor(a, stop_gradient=False) for a in (xn, wn, bn))
    y = onednn_conv.OneDNNConv2D.apply(x, w, b, (s, s), (p, p), True)
    seed = np.random.RandomState(1).standard_normal(y.shape).astype("float32")
    (y * paddle.to_tensor(seed)).sum().backward()
    # the reference: paddle's fp32 conv2d of the rounded operands (linear, so exact up to summation order)
    xr, wr, dy = _bf16(xn), _bf16(wn), _bf16(seed)
    want = _run(F.conv2d, xr, wr, bn, s, p)  # y and db of the rounded operands (db with the fp32 seed)
    X, W = paddle.to_tensor(xn, stop_gradient=False), paddle.to_tensor(wn, stop_gradient=False)
    (F.conv2d(X, paddle.to_tensor(wr), stride=s, padding=p) * paddle.to_tensor(dy)).sum().backward()
    (F.conv2d(paddle.to_tensor(xr), W, stride=s, padding=p) * paddle.to_tensor(dy)).sum().backward()
    scale = lambda a: 1e-4 * np.abs(a).max()  # noqa: E731
    np.testing.assert_allclose(y.numpy(), want["y"], rtol=1e-4, atol=scale(want["y"]))
    np.testing.assert_allclose(x.grad.numpy(), X.grad.numpy(), rtol=1e-4, atol=scale(X.grad.numpy()))
    np.testing.assert_allclose(w.grad.numpy(), W.grad.numpy(), rtol=2 ** -7, atol=scale(W.grad.numpy()))
    np.testing.assert_allclose(b.grad.numpy(), dy.sum(axis=(0, 2, 3)), rtol=1e-4, atol=scale(dy.sum(axis=(0, 2, 3))))
