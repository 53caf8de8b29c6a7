"""The `loss` section's keys depend on loss.name; every method config loads."""
import glob
import os

import pytest

from utils.config import build_config, save_config
from utils.errors import UserError
from utils.losses import LOSSES, loss_class

ROOT = os.path.join(os.path.dirname(__file__), "..", "..", "..")
METHOD_CONFIGS = sorted(glob.glob(os.path.join(ROOT, "configs", "methods", "*.yaml")))


def test_every_method_has_a_lite_and_a_coco_config():
    names = {os.path.basename(p) for p in METHOD_CONFIGS}
    for name in LOSSES:
        if name != "hashnet":  # hashnet's are configs/hashnet_*.yaml
            assert {f"{name}_lite.yaml", f"{name}_coco.yaml"} <= names, name


@pytest.mark.parametrize("path", METHOD_CONFIGS, ids=os.path.basename)
def test_method_config_loads_with_the_methods_defaults(path, tmp_path):
    cfg = build_config(path)
    method = cfg["loss"]["name"]
    cls = loss_class(method)  # a trained method (LOSSES) or a shallow one (SHALLOW_METHODS)
    name = os.path.basename(path)
    assert name.startswith(method + "_") and cfg["model"]["name"] == cls.MODEL
    assert set(cfg["loss"]) == {"name", *cls.DEFAULTS}  # HashNet's keys of the base config are gone
    # <method>_<data set>.yaml, or a recipe on another backbone: <method>_<backbone>_<data set>.yaml
    dataset = name[:-len(".yaml")].rsplit("_", 1)[1]
    assert name in (f"{method}_{dataset}.yaml", f"{method}_{cfg['model']['backbone']}_{dataset}.yaml")
    assert cfg["dataset"] == build_config(os.path.join(ROOT, "configs", f"hashnet_{dataset}.yaml"))["dataset"]
    save_config(cfg, str(tmp_path / "saved.yaml"))  # what export_model.py / predict.py read back
    again = build_config(str(tmp_path / "saved.yaml"))
    assert again["loss"] == cfg["loss"] and again["model"] == cfg["model"]


def test_switching_method_resets_the_loss_section_and_later_keys_apply():
    cfg = build_config(None, {}, ["loss.name=dsh"])  # hashnet_lite.yaml sets loss.alpha 0.1 for HashNet
    assert cfg["loss"] == {"name": "dsh", **LOSSES["dsh"].DEFAULTS}
    cfg = build_config(None, {}, ["loss.name=dsh", "loss.margin=3", "loss.alpha=0.5"])
    assert cfg["loss"]["margin"] == 3 and cfg["loss"]["alpha"] == 0.5
    same = build_config(None, {}, ["loss.alpha=0.3", "loss.name=hashnet"])  # same method: nothing reset
    assert same["loss"]["alpha"] == 0.3


@pytest.mark.parametrize("overrides,fragment", [
    (["loss.margin=3"], "unknown config key 'loss.margin' for loss 'hashnet'"),
    (["loss.name=dsh", "loss.beta_step=3"], "unknown config key 'loss.beta_step' for loss 'dsh'"),
    (["loss.name=nope"], "unknown loss 'nope'"),
    (["loss.name=ssdh"], "loss.name 'ssdh' needs model.name 'ssdh'"),
    (["model.name=ssdh"], "loss.name 'hashnet' needs model.name 'linear'"),
    (["loss.name=dsh", "loss.alpha=-1"], "loss.alpha"),
    (["loss.name=csq", "loss.center_seed=0.5"], "loss.center_seed"),
    (["model.name=greedyhash", "loss.name=greedyhash", "loss.classification=soft"], "loss.classification"),
    (["loss.continuation=weekly"], "loss.continuation"),
])
def test_bad_loss_settings_name_the_key_and_method(overrides, fragment):
    with pytest.raises(UserError, match=fragment.replace("(", r"\(")):
        build_config(None, {}, overrides)


def test_unknown_loss_key_in_yaml_names_file_key_and_method(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text("_base_: " + os.path.abspath(os.path.join(ROOT, "configs", "methods", "dsh_lite.yaml"))
                    + "\nloss:\n  eta: 3\n")
    with pytest.raises(UserError) as err:
        build_config(str(path))
    assert str(path) in str(err.value) and "'loss.eta' for loss 'dsh'" in str(err.value)
