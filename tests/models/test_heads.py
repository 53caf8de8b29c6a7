"""Heads with a classifier (SSDH, DSHSD, GreedyHash): eval mode returns z like the linear head."""
import numpy as np
import paddle
import pytest

from models import MODELS, build_model
from models.classifier_head import HashClassifierNet
from utils.encoding import sign_codes
from utils.storage.weights import load_weights
from utils.config import build_config
from utils.errors import UserError

CLASSIFIER_HEADS = [name for name, cls in MODELS.items() if issubclass(cls, HashClassifierNet)]


def lite_cfg(name, bit=16, loss=None):
    # no BatchNorm / dropout: train and eval mode compute the same z
    return build_config(None, {"bit": bit}, [f"model.name={name}", f"loss.name={loss or name}", "model.fc_dim=32",
                                              "model.batch_norm=false", "model.dropout=0.0"])


@pytest.mark.parametrize("name", CLASSIFIER_HEADS)
def test_eval_returns_z_train_returns_z_and_class_logits(name):
    paddle.seed(0)
    model = build_model(lite_cfg(name), num_classes=5)
    x = paddle.randn([3, 3, 64, 64])
    model.eval()
    z = model(x)
    assert z.shape == [3, 16]
    np.testing.assert_array_equal(sign_codes(model(x).numpy()), np.where(z.numpy() >= 0, 1, -1))
    model.train()
    z_train, logits = model(x)
    assert logits.shape == [3, 5]
    np.testing.assert_allclose(z_train.numpy(), z.numpy(), rtol=1e-5, atol=1e-6)
    features = {"ssdh": 1 / (1 + np.exp(-z.numpy())), "dshsd": np.tanh(z.numpy()),
                "greedyhash": np.where(z.numpy() >= 0, 1.0, -1.0), "ppshitu": np.tanh(z.numpy())}[name]
    expected = features @ model.classifier.weight.numpy() + model.classifier.bias.numpy()
    np.testing.assert_allclose(logits.numpy(), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", CLASSIFIER_HEADS)
def test_built_without_classes_it_encodes_trained_weights_but_cannot_train(name, tmp_path):
    """export_model.py / predict.py build the model from the config alone."""
    paddle.seed(1)
    trained = build_model(lite_cfg(name), num_classes=7)
    paddle.save(trained.state_dict(), str(tmp_path / "w.pdparams"))
    encoder = build_model(lite_cfg(name))
    load_weights(encoder, str(tmp_path / "w"))
    x = paddle.randn([2, 3, 64, 64])
    trained.eval()
    encoder.eval()
    np.testing.assert_array_equal(sign_codes(encoder(x).numpy()), sign_codes(trained(x).numpy()))
    encoder.train()
    with pytest.raises(UserError, match="without num_classes"):
        encoder(x)


def test_linear_head_ignores_num_classes():
    model = build_model(lite_cfg("linear", loss="hashnet"), num_classes=5)
    model.train()
    assert model(paddle.randn([2, 3, 64, 64])).shape == [2, 16]
