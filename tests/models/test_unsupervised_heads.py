"""The heads of the methods without labels (models/unsupervised.py, models/cibhash.py) and spectral hashing's:
eval mode returns z (codes = z >= 0, what export and predict use); train mode returns z and the centred
features; a two-view batch is flattened view-major; the centring's running mean; a frozen backbone."""
import numpy as np
import paddle
import pytest

from models import build_model
from models.unsupervised import FeatureCentering, flatten_views
from utils.config import build_config


def cfg(head, loss, bit=16):
    return build_config(None, {"bit": bit}, [f"model.name={head}", f"loss.name={loss}", "model.fc_dim=32",
                                             "model.batch_norm=false", "model.dropout=0.0"])


@pytest.mark.parametrize("head,loss", [("unsupervised", "bihalf"), ("cibhash", "cibhash")])
def test_train_mode_gives_z_and_centred_features_eval_mode_z(head, loss):
    paddle.seed(0)
    model = build_model(cfg(head, loss))
    x = paddle.randn([6, 3, 64, 64])
    model.train()
    z_train, features = model(x)
    raw = model.backbone(x).numpy()
    np.testing.assert_allclose(features.numpy(), raw - raw.mean(axis=0), rtol=1e-5, atol=1e-5)
    assert z_train.shape == [6, 16]
    model.eval()  # the running mean is the one batch's mean now (the first batch is averaged exactly)
    z = model(x)
    np.testing.assert_allclose(z.numpy(), z_train.numpy(), rtol=1e-4, atol=1e-5)
    if head == "cibhash":  # the paper's encoder: fc(1024) -> ReLU -> fc(K)
        hidden = np.maximum(features.numpy() @ model.encoder.weight.numpy() + model.encoder.bias.numpy(), 0)
        np.testing.assert_allclose(z.numpy(), hidden @ model.hash_layer.weight.numpy() + model.hash_layer.bias.numpy(),
                                   rtol=1e-4, atol=1e-5)


def test_two_views_are_flattened_view_major():
    x = paddle.to_tensor(np.arange(2 * 2 * 3 * 1 * 1, dtype="float32").reshape([2, 2, 3, 1, 1]))
    flat = flatten_views(x).numpy()
    np.testing.assert_array_equal(flat[0], x.numpy()[0, 0])  # image 0, view 1
    np.testing.assert_array_equal(flat[1], x.numpy()[1, 0])  # image 1, view 1
    np.testing.assert_array_equal(flat[2], x.numpy()[0, 1])  # image 0, view 2
    assert flatten_views(paddle.zeros([4, 3, 2, 2])).shape == [4, 3, 2, 2]


def test_running_mean_averages_the_first_batches_then_decays():
    layer = FeatureCentering(2, momentum=0.9)
    layer.train()
    batches = [np.full((4, 2), float(v), dtype="float32") for v in range(1, 14)]
    expected = 0.0
    for count, batch in enumerate(batches, 1):
        layer(paddle.to_tensor(batch))
        expected += max(1 / count, 0.1) * (batch[0, 0] - expected)
    assert count > 10  # past the exact average: the exponential one
    np.testing.assert_allclose(layer._mean.numpy(), [expected, expected], rtol=1e-6)
    layer.eval()
    np.testing.assert_allclose(layer(paddle.ones([1, 2])).numpy(), [[1 - expected, 1 - expected]], rtol=1e-6)


def test_spectral_head_is_cos_of_its_fc():
    paddle.seed(2)
    model = build_model(cfg("spectral", "sh"))
    model.eval()
    x = paddle.randn([3, 3, 64, 64])
    u = model.hash_layer(model.backbone(x)).numpy()
    np.testing.assert_allclose(model(x).numpy(), np.cos(u), rtol=1e-5, atol=1e-6)


def test_a_frozen_backbone_gets_no_gradient_and_stays_in_eval_mode():
    model = build_model(build_config(None, {"bit": 16}, ["model.name=unsupervised", "loss.name=bihalf",
                                                         "model.fc_dim=32", "model.freeze_backbone=true"]))
    model.train()
    assert model.training and not model.backbone.training
    assert all(p.stop_gradient for p in model.backbone.parameters())
    assert not any(p.stop_gradient for p in model.hash_layer.parameters())


def test_a_bihalf_model_is_evaluated_by_the_sign_never_the_bi_half_layer():
    """DeepHash-pytorch issues #18/#20: BiHalf scored 0.223 with the bi-half layer at test time. With every z > 0
    the evaluation's codes must be all +1 (sign); the bi-half layer would make half of every bit -1."""
    from utils.losses.bihalf import bi_half
    from utils.training.evaluate import encode

    paddle.seed(3)
    model = build_model(cfg("unsupervised", "bihalf"))
    model.hash_layer.bias.set_value(paddle.full([16], 1e4))  # z > 0 for any image
    images = paddle.randn([8, 3, 64, 64])
    codes, _, _ = encode(model, [(images, paddle.zeros([8, 0]), paddle.arange(8))], show_progress=False)
    np.testing.assert_array_equal(codes, np.ones((8, 16), dtype=np.int8))
    model.eval()
    z = model(images)
    assert (z.numpy() > 0).all() and (bi_half(z).numpy() < 0).sum() == 8 * 16 // 2  # what the peer bug gives
