import os

import numpy as np
import paddle
import pytest

from models import BACKBONES, build_model
from utils.encoding import sign_codes
from utils.storage.weights import load_weights
from utils.training.checkpoint import load_backbone_weights
from utils.config import build_config, thaw
from utils.errors import UserError

pytestmark = pytest.mark.slow  # builds full-size networks (AlexNet 4096, VGG16, ResNet50) or trains

# The plain AlexNet of the paper (the lite config adds BatchNorm and narrows fc6/fc7).
COCO = os.path.join(os.path.dirname(__file__), "..", "..", "configs", "hashnet_coco.yaml")


@pytest.mark.parametrize("bit", [16, 32, 48, 64])
def test_output_shapes_for_every_bit_length(bit):
    cfg = build_config(COCO, {"bit": bit})
    paddle.seed(0)
    model = build_model(cfg)
    model.eval()
    x = paddle.randn([2, 3, 224, 224])
    z = model(x)
    assert z.shape == [2, bit]
    codes = sign_codes(model(x).numpy())
    assert set(np.unique(codes)) <= {-1.0, 1.0}
    np.testing.assert_array_equal(codes, np.where(z.numpy() >= 0, 1, -1))
    assert model(paddle.randn([1, 3, 112, 112])).shape == [1, bit]  # lite input size


def test_hash_layer_init_and_lr_multiplier():
    paddle.seed(1)
    model = build_model(build_config(COCO, {"bit": 64}))
    w = model.hash_layer.weight.numpy()
    assert w.shape == (4096, 64)
    assert abs(w.std() - 0.01) < 0.001 and abs(w.mean()) < 0.001
    assert model.hash_layer.weight.optimize_attr["learning_rate"] == 10.0
    assert model.backbone._fc7.weight.optimize_attr["learning_rate"] == 1.0


def test_unknown_backbone_is_a_user_error():
    cfg = build_config(COCO, {})
    cfg = thaw(cfg)
    cfg["model"]["backbone"] = "nope"
    with pytest.raises(UserError, match="model.backbone"):
        build_model(cfg)
    assert "alexnet" in BACKBONES


def test_weights_for_another_bit_count_are_refused(tmp_path):
    small = build_model(build_config(COCO, {"bit": 16}))
    paddle.save(small.state_dict(), str(tmp_path / "w16.pdparams"))
    big = build_model(build_config(COCO, {"bit": 64}))
    with pytest.raises(UserError, match="16-bit model but --bit is 64"):
        load_weights(big, str(tmp_path / "w16"))
    with pytest.raises(UserError, match="not found"):
        load_weights(big, str(tmp_path / "missing"))
    (tmp_path / "junk.pdparams").write_bytes(b"not a paddle file")
    with pytest.raises(UserError, match="corrupt"):
        load_weights(big, str(tmp_path / "junk"))


def test_backbone_loads_paddle_vision_alexnet_weights(tmp_path):
    from paddle.vision.models import AlexNet

    paddle.seed(2)
    reference = AlexNet(num_classes=1000)  # same tensor names as the official ImageNet file
    path = str(tmp_path / "AlexNet_pretrained.pdparams")
    paddle.save(reference.state_dict(), path)
    model = build_model(build_config(COCO, {"bit": 32}))
    messages = []

    class Log:
        info = staticmethod(messages.append)

    load_backbone_weights(model.backbone, path, Log)
    assert "md5" in messages[0] and "differs from" in messages[0]  # random weights, not the official file
    assert "loaded 14" in messages[1] and "missing none" in messages[1] and "_fc8.weight" in messages[1]
    for name, tensor in model.backbone.state_dict().items():
        np.testing.assert_array_equal(tensor.numpy(), reference.state_dict()[name].numpy())
    # identical features on a 224 input: the adaptive pool is the identity there
    reference._fc8 = paddle.nn.Identity()  # the reference's forward then ends at relu(fc7)
    reference.eval()
    model.eval()
    x = paddle.randn([1, 3, 224, 224])
    np.testing.assert_allclose(model.backbone(x).numpy(), reference(x).numpy(), rtol=1e-5, atol=1e-6)


def test_lite_variant_batch_norm_and_width():
    cfg = build_config(None, {"bit": 32})  # configs/hashnet_lite.yaml
    model = build_model(cfg)
    names = model.state_dict().keys()
    assert "backbone._conv1._bn.weight" in names and "backbone._bn3._mean" in names
    assert model.hash_layer.weight.shape == [cfg["model"]["fc_dim"], 32]
    model.eval()
    assert model(paddle.randn([2, 3, 64, 64])).shape == [2, 32]


def test_ssdh_caffe_recipe_initialises_latent_and_classifier_as_the_prototxt():
    """configs/methods/ssdh_googlenet_cifar10.yaml: latent fc8_kevin gaussian std 0.005, bias 1;
    classifier fc8_pascal gaussian std 0.01, bias 0 (the defaults keep N(0, 0.01), bias 0, paddle's classifier)."""
    path = os.path.join(os.path.dirname(COCO), "methods", "ssdh_googlenet_cifar10.yaml")
    paddle.seed(3)
    model = build_model(build_config(path), num_classes=10)
    assert model.bit == 48 and type(model.backbone).__name__ == "GoogLeNetBackbone"
    w, b = model.hash_layer.weight.numpy(), model.hash_layer.bias.numpy()
    assert w.shape == (1024, 48) and abs(w.std() - 0.005) < 0.0003 and abs(w.mean()) < 0.0003
    np.testing.assert_array_equal(b, np.ones(48, np.float32))
    cw, cb = model.classifier.weight.numpy(), model.classifier.bias.numpy()
    assert abs(cw.std() - 0.01) < 0.002 and not cb.any()
    plain = build_model(build_config(COCO, {"bit": 48}, ["model.name=ssdh", "loss.name=ssdh"]), num_classes=10)
    assert abs(plain.hash_layer.weight.numpy().std() - 0.01) < 0.001 and not plain.hash_layer.bias.numpy().any()
    assert plain.classifier.weight.numpy().std() > 0.1  # paddle's default (Xavier) for 48 -> 10
