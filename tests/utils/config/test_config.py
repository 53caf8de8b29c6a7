import os

import pytest
import yaml

from utils.cli.flags import config_from_args, train_parser
from utils.config import DEFAULTS, build_config, save_config, thaw
from utils.errors import UserError


def parse(argv):
    return config_from_args(train_parser("t").parse_args(argv))


def test_defaults_come_from_the_lite_config():
    cfg = parse([])
    assert cfg["dataset"]["name"] == "lite"
    assert cfg["config_file"].endswith(os.path.join("configs", "hashnet_lite.yaml"))
    with open(cfg["config_file"]) as f:
        lite = yaml.safe_load(f)
    assert cfg["dataset"]["data_path"] == lite["dataset"]["data_path"]
    with open(os.path.join(os.path.dirname(cfg["config_file"]), lite["_base_"])) as f:
        scratch = yaml.safe_load(f)  # the lite config is the scratch recipe plus the lite data
    assert cfg["dataset"]["crop_size"] == scratch["dataset"]["crop_size"] == 64
    assert cfg["train"]["momentum"] == DEFAULTS["train"]["momentum"]  # not in the file: built-in default


def test_flags_override_file_and_o_overrides_flags():
    cfg = parse(["--bit", "32", "--epoch", "3", "--batch-size", "16", "--seed", "7", "--data-path", "/x",
                 "--output-dir", "/out", "-o", "train.lr=0.5", "-o", "model.bit=48", "-o", "loss.alpha=0.2",
                 "-o", "dataset.topk=null"])
    assert cfg["train"]["epochs"] == 3 and cfg["train"]["batch_size"] == 16 and cfg["train"]["seed"] == 7
    assert cfg["dataset"]["data_path"] == "/x" and cfg["output_dir"] == "/out"
    assert cfg["train"]["lr"] == 0.5 and cfg["loss"]["alpha"] == 0.2 and cfg["dataset"]["topk"] is None
    assert cfg["model"]["bit"] == 48  # -o comes last


def test_underscore_aliases_and_eval_flag():
    cfg = parse(["--data_path", "/d", "--batch_size", "8", "--output_dir", "/o", "--eval", "--pretrained", "p"])
    assert cfg["dataset"]["data_path"] == "/d" and cfg["train"]["batch_size"] == 8 and cfg["eval_only"] is True


@pytest.mark.parametrize("override,fragment", [
    ("train.lrr=1", "unknown config key 'train.lrr'"),
    ("nosuch=1", "unknown config key 'nosuch'"),
    ("train=1", "is a section"),
    ("novalue", "expected key=value"),
])
def test_bad_overrides(override, fragment):
    with pytest.raises(UserError, match=fragment):
        parse(["-o", override])


def test_unknown_key_in_yaml_names_the_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("train:\n  epochs: 2\n  learning_rate: 0.1\n")
    with pytest.raises(UserError) as err:
        build_config(str(path))
    assert str(path) in str(err.value) and "train.learning_rate" in str(err.value)


def test_base_inheritance_and_invalid_yaml(tmp_path):
    (tmp_path / "base.yaml").write_text("train:\n  epochs: 5\n  lr: 0.1\n")
    (tmp_path / "child.yaml").write_text("_base_: base.yaml\ntrain:\n  lr: 0.2\n")
    cfg = build_config(str(tmp_path / "child.yaml"))
    assert cfg["train"]["epochs"] == 5 and cfg["train"]["lr"] == 0.2
    (tmp_path / "broken.yaml").write_text("train:\n  lr: [1\n")
    with pytest.raises(UserError, match="broken.yaml:"):
        build_config(str(tmp_path / "broken.yaml"))
    with pytest.raises(UserError, match="config file not found"):
        build_config(str(tmp_path / "missing.yaml"))


@pytest.mark.parametrize("argv,fragment", [
    (["--bit", "20"], "--bit"),
    (["--batch-size", "1"], "--batch-size"),
    (["--epoch", "-1"], "--epoch"),
    (["-o", "dataset.crop_size=300"], "crop_size"),
    (["-o", "dataset.topk=0"], "topk"),
    (["--threads", "-2"], "--threads"),
])
def test_invalid_values(argv, fragment):
    with pytest.raises(UserError, match=fragment):
        parse(argv)


def test_saved_config_loads_back(tmp_path):
    cfg = parse(["--bit", "16", "-o", "train.lr=0.003"])
    path = tmp_path / "config_16.yaml"
    save_config(cfg, str(path))
    again = build_config(str(path))
    assert again["model"]["bit"] == 16 and again["train"]["lr"] == 0.003
    assert [p for p in os.listdir(tmp_path) if p.endswith(".tmp")] == []


def test_every_shipped_config_resolves():
    import glob

    root = os.path.join(os.path.dirname(__file__), "..", "..", "..", "configs")
    paths = sorted(glob.glob(os.path.join(root, "*.yaml")))
    assert len(paths) >= 3
    for path in paths:
        cfg = build_config(path)
        assert cfg["model"]["bit"] in (16, 32, 48, 64), path


def test_caffe_recipe_config():
    root = os.path.join(os.path.dirname(__file__), "..", "..", "..", "configs")
    cfg = build_config(os.path.join(root, "hashnet_coco_caffe.yaml"))
    assert cfg["loss"]["alpha"] is None and cfg["loss"]["continuation"] == "iteration"
    assert cfg["loss"]["pair_weighting"] == "constant" and cfg["model"]["hash_bias_lr_mult"] == 20.0
    assert cfg["train"]["lr"] == 0.001  # the rest comes from hashnet_coco.yaml


@pytest.mark.parametrize("text,expected", [("1e-5", 1e-5), ("2E+3", 2000.0), ("1.5e-3", 1.5e-3), (".5", 0.5),
                                           ("5", 5), ("1e5x", "1e5x"), ("v1e5", "v1e5")])
def test_exponent_numbers_are_floats_in_overrides_and_files(tmp_path, text, expected):
    """YAML 1.1 (PyYAML) reads 1e-5 as a string; the project's loader reads it as YAML 1.2 does."""
    from utils.config import load_yaml, parse_override

    assert parse_override(f"train.weight_decay={text}") == ("train.weight_decay", expected)
    assert load_yaml(f"a: {text}\n") == {"a": expected}
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  weight_decay: 1e-5\n")
    assert build_config(str(path))["train"]["weight_decay"] == 1e-5


@pytest.mark.parametrize("override,fragment", [
    ("train.weight_decay=abc", "train.weight_decay: must be a number, got 'abc' (a string)"),
    ("train.momentum=[1]", "train.momentum: must be a number, got [1] (a list)"),
    ("train.weight_decay=true", "train.weight_decay: must be a number, got True (a boolean)"),
    ("model.hash_lr_mult=null", "model.hash_lr_mult: must be a number, got None (null)"),
    ("train.eval_untrained=1", "train.eval_untrained: must be true or false, got 1 (int)"),
    ("model.hash_init_std=0", "model.hash_init_std: must be > 0, got 0"),
    ("model.hash_bias_init=x", "model.hash_bias_init: must be a number, got 'x' (a string)"),
    ("model.classifier_init_std=-1", "model.classifier_init_std: must be null or a number > 0, got -1"),
])
def test_a_value_of_the_wrong_type_is_one_line_naming_the_key(override, fragment):
    with pytest.raises(UserError) as err:
        build_config(None, {}, [override])
    assert str(err.value) == fragment


def test_eval_without_weights_is_refused_by_the_config_before_anything_is_built(tmp_path, capsys):
    """Flag pairs are config validation: nothing (data, lists, model) is built or read first."""
    import main_single_gpu
    from utils.errors import ConfigError

    with pytest.raises(ConfigError, match=r"^--eval needs --pretrained PREFIX \(the weights to evaluate\)$"):
        build_config(None, {"eval": True, "data_path": str(tmp_path / "nowhere")})
    with pytest.raises(SystemExit):
        main_single_gpu.main(["--eval", "--dataset", "custom", "--data-path", str(tmp_path / "nowhere"),
                              "--output-dir", str(tmp_path / "out")])
    assert capsys.readouterr().err.strip() == "error: --eval needs --pretrained PREFIX (the weights to evaluate)"


def test_the_generic_head_is_linear_and_configs_saved_with_its_old_name_still_load(tmp_path):
    from models import MODELS
    from utils.config import config_for_weights

    assert build_config(None, {})["model"]["name"] == "linear" and "hashnet" not in MODELS
    assert build_config(None, {}, ["model.name=hashnet"])["model"]["name"] == "linear"
    old = thaw(build_config(None, {"bit": 16}))  # a validated config is read-only: change its plain form
    old["model"]["name"] = "hashnet"  # what config_<K>.yaml said before the rename
    save_config(old, str(tmp_path / "config_16.yaml"))
    cfg = config_for_weights(str(tmp_path / "model_best_16"), 16)
    assert cfg["config_file"] == str(tmp_path / "config_16.yaml") and cfg["model"]["name"] == "linear"
