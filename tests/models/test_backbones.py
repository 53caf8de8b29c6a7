"""Backbones by name: every one feeds the hash head, exports to the same codes, and loads
paddle.vision's (PP-LCNet: PaddleClas's) ImageNet-named weights. Small inputs (64x64, batch 2) keep
VGG16/ResNet50 cheap."""
import os

import numpy as np
import paddle
import pytest
import yaml
from paddle.vision import models as vision
from paddle.vision.models.googlenet import model_urls as googlenet_urls

from models import BACKBONES, build_model
from utils.encoding import sign_codes
from utils.training.checkpoint import load_backbone_weights
from utils.config import build_config, save_config
from utils.errors import UserError

pytestmark = pytest.mark.slow  # builds full-size networks (AlexNet 4096, VGG16, ResNet50) or trains

LITE = os.path.join(os.path.dirname(__file__), "..", "..", "configs", "hashnet_lite.yaml")

# name -> (paddle.vision constructor with random weights, its model_urls key, its last (fc8) layer)
VISION = {
    "vgg16": (lambda: vision.vgg16(pretrained=False), vision.vgg.model_urls["vgg16"], ("classifier", 6)),
    "resnet18": (lambda: vision.resnet18(pretrained=False), vision.resnet.model_urls["resnet18"], ("fc", None)),
    "resnet50": (lambda: vision.resnet50(pretrained=False), vision.resnet.model_urls["resnet50"], ("fc", None)),
    "mobilenetv3_large": (lambda: vision.mobilenet_v3_large(pretrained=False),
                          vision.mobilenetv3.model_urls["mobilenet_v3_large_x1.0"], ("classifier", 3)),
    "mobilenetv3_small": (lambda: vision.mobilenet_v3_small(pretrained=False),
                          vision.mobilenetv3.model_urls["mobilenet_v3_small_x1.0"], ("classifier", 3)),
    "googlenet": (lambda: vision.googlenet(pretrained=False), googlenet_urls["googlenet"], ("_fc_out", None)),
}
# besides fc8, tensors of the ImageNet file that hashing does not use: GoogLeNet's auxiliary classifiers
AUXILIARY = {"googlenet": ("_conv_o1.", "_fc_o1.", "_out1.", "_conv_o2.", "_fc_o2.", "_out2.")}
# paddle.vision's GoogLeNet forward also runs the auxiliary heads, whose fixed 5x5 pools need 224x224
INPUT_SIZE = {"googlenet": 224}
NOT_PADDLE_VISION = {"alexnet", "pplcnet_x2_5"}


def test_every_paddle_vision_backbone_is_registered():
    assert set(VISION) | NOT_PADDLE_VISION == set(BACKBONES)


def _without_fc8(reference, where):
    """paddle.vision's network ending at the layer before its 1000-way classifier: the reference."""
    attr, index = where
    if index is None:
        setattr(reference, attr, paddle.nn.Identity())
    else:
        getattr(reference, attr)[index] = paddle.nn.Identity()
    return reference


@pytest.mark.parametrize("name", sorted(VISION))
def test_imagenet_named_weights_load_and_give_paddle_vision_features(name, tmp_path, monkeypatch):
    make_reference, (url, md5), fc8 = VISION[name]
    paddle.seed(10)
    reference = make_reference()
    path = str(tmp_path / os.path.basename(url))
    paddle.save(reference.state_dict(), path)
    paddle.seed(11)  # other random weights, so only loading can make them equal
    backbone = BACKBONES[name](dropout=0.5, fc_dim=4096, batch_norm=False)
    messages = []

    class Log:
        info = staticmethod(messages.append)

    assert load_backbone_weights(backbone, path, Log) == path
    assert f"differs from paddle.vision's {os.path.basename(url)}" in messages[0]  # random, not the official file
    own = backbone.state_dict()
    assert f"loaded {len(own)}," in messages[1] and "missing none" in messages[1] and "shape mismatch none" in messages[1]
    unused = [k for k in reference.state_dict() if k not in own]
    assert unused and all(k.startswith((fc8[0],) + AUXILIARY.get(name, ())) for k in unused)
    assert any(k.startswith(fc8[0]) for k in unused) and str(unused) in messages[1]

    # eval mode uses every loaded tensor (BatchNorm statistics included): equal features = all loaded
    reference = _without_fc8(reference, fc8)
    reference.eval()
    backbone.eval()
    size = INPUT_SIZE.get(name, 64)
    x = paddle.randn([2, 3, size, size])
    features = backbone(x)
    assert features.shape == [2, backbone.feature_dim]
    expected = reference(x)
    expected = expected[0] if isinstance(expected, (tuple, list)) else expected  # GoogLeNet: (main, aux1, aux2)
    np.testing.assert_allclose(features.numpy(), expected.numpy(), rtol=1e-5, atol=1e-5)

    # "imagenet" asks paddle.vision's downloader for this network's own file and md5 (no network here)
    asked = []

    class Asked(Exception):
        pass

    def fake_download(got_url, got_md5):
        asked.append((got_url, got_md5))
        raise Asked  # stop before loading the file a second time

    monkeypatch.setattr("paddle.utils.download.get_weights_path_from_url", fake_download)
    with pytest.raises(Asked):
        load_backbone_weights(backbone, "imagenet")
    assert asked == [(url, md5)]


def test_weights_of_another_network_are_a_user_error(tmp_path):
    paddle.seed(0)
    path = str(tmp_path / "resnet18.pdparams")
    paddle.save(vision.resnet18(pretrained=False).state_dict(), path)
    with pytest.raises(UserError, match="no tensor matches the backbone.*mobilenet_v3_small_x1.0.pdparams"):
        load_backbone_weights(BACKBONES["mobilenetv3_small"](), path)


def _export_and_encode(cfg, tmp_path):
    """Save weights + config as training does, run export_model.py, encode with Paddle Inference."""
    import export_model
    from utils.inference.encoders import DygraphEncoder, InferenceEncoder

    bit = cfg["model"]["bit"]
    prefix = str(tmp_path / f"model_best_{bit}")
    paddle.seed(5)
    model = build_model(cfg)
    paddle.save(model.state_dict(), prefix + ".pdparams")
    save_config(cfg, str(tmp_path / f"config_{bit}.yaml"))
    out = str(tmp_path / "inference")
    export_model.main(["--bit", str(bit), "--pretrained", prefix, "--save-inference-dir", out])
    rng = np.random.default_rng(0)
    images = rng.standard_normal((2, 3, 64, 64)).astype(np.float32)
    dygraph = DygraphEncoder(cfg, prefix)
    logits = dygraph.features(images)  # the network's pre-sign output z
    with open(os.path.join(out, "infer_cfg.yml"), encoding="utf-8") as f:
        info = yaml.safe_load(f)
    return logits, dygraph.encode_batch(images), InferenceEncoder(out, bit).encode_batch(images), info


@pytest.mark.parametrize("name", sorted(VISION) + ["pplcnet_x2_5"])  # AlexNet's export: tests/test_pipeline.py
def test_exported_model_gives_the_dygraph_codes(name, tmp_path):
    cfg = build_config(LITE, {"bit": 16}, [f"model.backbone={name}"])  # 64x64 crops, fc_dim 1024, BatchNorm
    logits, dygraph_codes, exported_codes, info = _export_and_encode(cfg, tmp_path)
    assert info["backbone"] == name and info["crop_size"] == 64
    assert dygraph_codes.shape == (2, 16) and set(np.unique(dygraph_codes)) == {-1, 1}
    np.testing.assert_array_equal(dygraph_codes, np.where(logits >= 0, 1, -1))
    # no logit so close to 0 (relative to the others: untrained MobileNets output ~1e-8) that
    # rounding differences between the two paths could flip its bit
    assert np.abs(logits).min() > 1e-4 * np.abs(logits).max()
    np.testing.assert_array_equal(exported_codes, dygraph_codes)


def test_lite_options_apply_to_vgg16_and_are_ignored_by_the_others():
    vgg = BACKBONES["vgg16"](dropout=0.0, fc_dim=64, batch_norm=True)
    assert vgg.feature_dim == 64 and any(isinstance(layer, paddle.nn.BatchNorm2D) for layer in vgg.features)
    plain = BACKBONES["vgg16"](dropout=0.5, fc_dim=64, batch_norm=False)
    assert not any(isinstance(layer, paddle.nn.BatchNorm2D) for layer in plain.features)
    assert BACKBONES["resnet18"](dropout=0.0, fc_dim=64, batch_norm=False).feature_dim == 512
    assert BACKBONES["mobilenetv3_small"](fc_dim=64).feature_dim == 1024


@pytest.mark.parametrize("name", ["googlenet", "pplcnet_x2_5"])
def test_new_backbones_give_codes_of_every_bit_length(name):
    for bit in (16, 32, 48, 64):
        cfg = build_config(LITE, {"bit": bit}, [f"model.backbone={name}"])
        paddle.seed(bit)
        model = build_model(cfg)
        model.eval()
        x = paddle.randn([2, 3, 64, 64])  # the lite crops; both networks take any input from 64x64 up
        z = model(x)
        assert z.shape == [2, bit]
        codes = sign_codes(model(x).numpy())
        np.testing.assert_array_equal(codes, np.where(z.numpy() >= 0, 1, -1))


def _paddleclas_pplcnet_x2_5_layout():
    """Tensor names and shapes of PaddleClas's PPLCNet_x2_5 (ppcls/arch/backbone/legendary_models/
    pp_lcnet.py: NET_CONFIG at scale 2.5, ConvBNLayer = conv (no bias) + bn, SE reduction 4,
    last_conv 1280 without bias, fc 1280 -> 1000), written out here from that file's structure."""
    layout = {}

    def conv_bn(prefix, cin, cout, k, groups=1):
        layout[prefix + ".conv.weight"] = [cout, cin // groups, k, k]
        for stat in ("weight", "bias", "_mean", "_variance"):
            layout[f"{prefix}.bn.{stat}"] = [cout]

    conv_bn("conv1", 3, 40, 3)
    blocks = {"blocks2": [(3, 40, 80, False)],
              "blocks3": [(3, 80, 160, False), (3, 160, 160, False)],
              "blocks4": [(3, 160, 320, False), (3, 320, 320, False)],
              "blocks5": [(3, 320, 640, False)] + [(5, 640, 640, False)] * 5,
              "blocks6": [(5, 640, 1280, True), (5, 1280, 1280, True)]}
    for stage, rows in blocks.items():
        for i, (k, cin, cout, se) in enumerate(rows):
            conv_bn(f"{stage}.{i}.dw_conv", cin, cin, k, groups=cin)
            if se:
                layout.update({f"{stage}.{i}.se.conv1.weight": [cin // 4, cin, 1, 1], f"{stage}.{i}.se.conv1.bias": [cin // 4],
                               f"{stage}.{i}.se.conv2.weight": [cin, cin // 4, 1, 1], f"{stage}.{i}.se.conv2.bias": [cin]})
            conv_bn(f"{stage}.{i}.pw_conv", cin, cout, 1)
    layout["last_conv.weight"] = [1280, 1280, 1, 1]
    return layout, {"fc.weight": [1280, 1000], "fc.bias": [1000]}


def _load_logged(backbone, path):
    """load_backbone_weights with a logger that keeps its messages; returns them."""
    messages = []

    class Log:
        info = staticmethod(messages.append)

    load_backbone_weights(backbone, path, Log)
    return messages


def test_pplcnet_x2_5_has_paddleclas_names_and_loads_its_imagenet_file(tmp_path):
    layout, classifier = _paddleclas_pplcnet_x2_5_layout()
    backbone = BACKBONES["pplcnet_x2_5"]()
    assert {k: list(v.shape) for k, v in backbone.state_dict().items()} == layout
    # 9.0M parameters with the 1000-way fc (the paper's PP-LCNet 2.5x)
    total = sum(int(np.prod(p.shape)) for p in backbone.parameters()) + 1280 * 1000 + 1000
    assert round(total / 1e6, 1) == 9.0
    rng = np.random.default_rng(0)
    state = {k: paddle.to_tensor(rng.standard_normal(shape).astype(np.float32))
             for k, shape in {**layout, **classifier}.items()}
    path = str(tmp_path / "PPLCNet_x2_5_pretrained.pdparams")
    paddle.save(state, path)
    messages = _load_logged(backbone, path)
    assert f"loaded {len(layout)}, missing none, shape mismatch none, unused ['fc.weight', 'fc.bias']" in messages[-1]
    for k, v in backbone.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), state[k].numpy(), err_msg=k)
    with pytest.raises(UserError, match="no paddle.vision ImageNet weights"):
        load_backbone_weights(backbone, "imagenet")  # no md5 published: a local path only


def test_googlenet_batch_norm_option_keeps_paddle_vision_names(tmp_path):
    """batch_norm=True (the lite configs, from scratch) adds `<conv>._bn` and leaves the conv names,
    so the ImageNet file still fills every conv (the BatchNorm layers are reported missing)."""
    plain = BACKBONES["googlenet"](batch_norm=False).state_dict()
    with_bn = BACKBONES["googlenet"](batch_norm=True)
    added = [k for k in with_bn.state_dict() if k not in plain]
    assert set(plain) <= set(with_bn.state_dict()) and added and all("._bn." in k for k in added)
    assert len(added) == 4 * len(plain)  # every conv (no bias) got weight, bias, _mean, _variance
    path = str(tmp_path / "GoogLeNet_pretrained.pdparams")
    paddle.save(plain, path)
    messages = _load_logged(with_bn, path)
    assert f"loaded {len(plain)}," in messages[-1] and "._bn.weight" in messages[-1]


def test_exported_plain_googlenet_gives_the_dygraph_codes(tmp_path):
    """The network ImageNet weights are for (batch_norm false: configs/methods/ssdh_googlenet_cifar10.yaml)."""
    cfg = build_config(LITE, {"bit": 16}, ["model.backbone=googlenet", "model.batch_norm=false"])
    logits, dygraph_codes, exported_codes, _ = _export_and_encode(cfg, tmp_path)
    assert np.abs(logits).min() > 1e-4 * np.abs(logits).max()
    np.testing.assert_array_equal(exported_codes, dygraph_codes)
