"""train.param_groups: the built optimizer applies each parameter's lr multiplier and weight decay
(SSDH's Caffe recipe: configs/methods/ssdh_googlenet_*.yaml), checked on the parameters themselves
and against one momentum step computed by hand; without rules the optimizer is built as before."""
import os

import numpy as np
import paddle
import pytest

from models import build_model
from utils.config import build_config
from utils.errors import UserError
from utils.training.optimizer import build_optimizer

CONFIGS = os.path.join(os.path.dirname(__file__), "..", "..", "..", "configs")
SSDH_GOOGLENET = os.path.join(CONFIGS, "methods", "ssdh_googlenet_cifar10.yaml")  # the recipe exactly

# The recipe, written out from KevinNet_CIFAR10_48_train.prototxt / _solver.prototxt (base_lr 0.001,
# weight_decay 0.0005; blobs_lr and weight_decay multipliers per blob), for the names of our model.
BASE_LR, DECAY = 0.001, 0.0005
RECIPE = {  # name -> (lr multiplier, weight decay)
    "hash_layer.weight": (1.0, DECAY),   # fc8_kevin: blobs_lr 1., weight_decay 1.
    "hash_layer.bias": (2.0, 0.0),       # fc8_kevin: blobs_lr 2., weight_decay 0.
    "classifier.weight": (10.0, DECAY),  # fc8_pascal: blobs_lr 10., weight_decay 1.
    "classifier.bias": (20.0, 0.0),      # fc8_pascal: blobs_lr 20., weight_decay 0.
}
BACKBONE = (1.0, DECAY)  # conv*: blobs_lr 1., weight_decay 1. (GoogLeNet's convs have no bias)


@pytest.fixture(scope="module")
def ssdh_googlenet():
    cfg = build_config(SSDH_GOOGLENET, {"bit": 16})
    paddle.seed(0)
    model = build_model(cfg, num_classes=5)
    optimizer, _ = build_optimizer(cfg, model.named_parameters())
    return model, optimizer


def expected(name):
    return RECIPE.get(name, BACKBONE if name.startswith("backbone.") else None)


def test_every_parameter_gets_the_recipes_multiplier_and_decay(ssdh_googlenet):
    model, optimizer = ssdh_googlenet
    names = [name for name, _ in model.named_parameters()]
    assert set(RECIPE) <= set(names) and all(expected(name) for name in names)
    # paddle's Momentum keeps a group's L2 decay in the group (fused into its update), not on the parameter
    group_of = {p.name: g for g in optimizer._param_groups for p in g["params"]}
    assert len(group_of) == len(names)
    for name, param in model.named_parameters():
        lr_mult, decay = expected(name)
        group = group_of[param.name]
        assert param.optimize_attr["learning_rate"] == group["learning_rate"] == lr_mult, name
        assert (group["regularization_method"], group["regularization_coeff"]) == ("l2_decay", decay), name
    groups = {(g["learning_rate"], g["regularization_coeff"]): {p.name for p in g["params"]}
              for g in optimizer._param_groups}
    assert set(groups) == {(1.0, DECAY), (2.0, 0.0), (10.0, DECAY), (20.0, 0.0)}
    assert groups[(20.0, 0.0)] == {model.classifier.bias.name}
    assert groups[(2.0, 0.0)] == {model.hash_layer.bias.name}
    assert groups[(10.0, DECAY)] == {model.classifier.weight.name}


def test_one_step_equals_the_hand_computed_momentum_update(ssdh_googlenet):
    """First step of SGD momentum from zero velocity: p1 = p0 - base_lr * lr_mult * (g + decay * p0)."""
    model, optimizer = ssdh_googlenet
    rng = np.random.default_rng(0)
    before, grads = {}, {}
    loss = 0.0
    for name, param in model.named_parameters():
        before[name] = param.numpy().astype(np.float64)
        grads[name] = rng.standard_normal(param.shape).astype(np.float32)
        loss = loss + (param * paddle.to_tensor(grads[name])).sum()  # d loss / d param = grads[name]
    optimizer.clear_grad()
    loss.backward()
    optimizer.step()
    for name, param in model.named_parameters():
        lr_mult, decay = expected(name)
        hand = before[name] - BASE_LR * lr_mult * (grads[name] + decay * before[name])
        np.testing.assert_allclose(param.numpy(), hand, rtol=1e-5, atol=1e-7, err_msg=name)
    # the multipliers matter: the classifier bias moved 20x as far as a backbone weight would per unit gradient
    step = np.abs(before["classifier.bias"] - model.classifier.bias.numpy()) / np.abs(grads["classifier.bias"])
    np.testing.assert_allclose(step, 20 * BASE_LR, rtol=1e-3)


@pytest.mark.slow
def test_without_rules_the_optimizer_is_built_as_before():
    """No train.param_groups (every existing config): one plain parameter list, the model's own
    multipliers (hash layer x10), the global decay; the lite main job's weights stay bit-identical."""
    cfg = build_config(os.path.join(CONFIGS, "hashnet_coco.yaml"), {"bit": 16})
    assert tuple(cfg["train"]["param_groups"]) == ()
    paddle.seed(0)
    model = build_model(cfg)
    optimizer, _ = build_optimizer(cfg, model.named_parameters())
    assert all(isinstance(p, paddle.base.framework.EagerParamBase) for p in optimizer._parameter_list)
    assert [p.name for p in optimizer._parameter_list] == [p.name for p in model.parameters()]
    assert all(p.regularizer is None for p in model.parameters())
    assert model.hash_layer.weight.optimize_attr["learning_rate"] == 10.0


@pytest.mark.slow
def test_first_rule_wins_and_unset_keys_keep_the_models_own():
    rules = '[{match: "hash_layer.*", weight_decay: 0}, {match: "*.bias", lr_mult: 3}]'
    cfg = build_config(os.path.join(CONFIGS, "hashnet_coco.yaml"), {"bit": 16}, [f"train.param_groups={rules}"])
    paddle.seed(0)
    model = build_model(cfg)
    optimizer, _ = build_optimizer(cfg, model.named_parameters())
    group_of = {p.name: g for g in optimizer._param_groups for p in g["params"]}

    def applied(param):
        return param.optimize_attr["learning_rate"], group_of[param.name]["regularization_coeff"]

    assert applied(model.hash_layer.weight) == (10.0, 0.0)  # first rule: decay only, the model's x10 stays
    assert applied(model.hash_layer.bias) == (10.0, 0.0)
    assert applied(model.backbone._fc7.bias) == (3.0, 0.0005)
    assert applied(model.backbone._fc7.weight) == (1.0, 0.0005)


@pytest.mark.parametrize("rules,message", [
    ("{match: x}", "train.param_groups: must be a list of rules"),
    ("[3]", r"train.param_groups\[0\]: must be a mapping"),
    ('[{match: "*", lr: 2}]', r"train.param_groups\[0\]: unknown key 'lr'"),
    ("[{lr_mult: 2}]", r"train.param_groups\[0\].match: must be a parameter-name pattern"),
    ('[{match: "*.bias"}]', r"train.param_groups\[0\]: sets neither lr_mult nor weight_decay"),
    ('[{match: "*", lr_mult: -1}]', r"train.param_groups\[0\].lr_mult: must be a number >= 0"),
    ('[{match: "*.bias", weight_decay: 0}, {match: "*", weight_decay: "no"}]',
     r"train.param_groups\[1\].weight_decay: must be a number >= 0"),
])
def test_bad_rules_are_one_line_config_errors(rules, message):
    with pytest.raises(UserError, match=message):
        build_config(None, {}, [f"train.param_groups={rules}"])


@pytest.mark.slow
def test_a_rule_that_matches_nothing_names_itself():
    cfg = build_config(os.path.join(CONFIGS, "hashnet_coco.yaml"), {"bit": 16},
                       ['train.param_groups=[{match: "*.bias", lr_mult: 2}, {match: "classifier.*", lr_mult: 10}]'])
    model = build_model(cfg)
    with pytest.raises(UserError, match=r"train.param_groups\[1\].match: 'classifier.\*' matches no parameter"):
        build_optimizer(cfg, model.named_parameters())
