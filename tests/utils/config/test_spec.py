"""utils.config.spec: one declaration per key; the flags, the flag map, the defaults and the checks come
from it. A validated config is read-only; replace_config makes a changed, validated one."""
import copy
import pickle

import pytest
import yaml

from utils.cli.flags import config_from_args, train_parser
from utils.config import DEFAULTS, FLAG_KEYS, FrozenConfig, build_config, config_yaml, replace_config, thaw
from utils.config.spec import SPEC
from utils.errors import ConfigError


def _leaves(tree, prefix=""):
    for key, value in tree.items():
        if isinstance(value, dict):
            yield from _leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}"


def test_every_key_is_declared_once_and_every_flag_reaches_its_key():
    paths = [key.path for key in SPEC]
    assert len(paths) == len(set(paths)) and set(paths) == set(_leaves(DEFAULTS))
    parser = train_parser("")
    for key in (k for k in SPEC if k.flags):
        assert FLAG_KEYS[key.dest] == key.path
        for flag in key.flags:  # hyphenated, and the reference's underscore spelling
            assert flag in parser._option_string_actions
            assert flag.replace("-", "_").replace("__", "--") in parser._option_string_actions
    # a value given on the command line lands in its key; flags not given leave the config alone
    args = train_parser("").parse_args(["--lr", "0.01", "--epochs", "3", "--num_workers", "0", "--eval",
                                        "--pretrained", "w", "--output-dir", "o"])
    cfg = config_from_args(args)
    assert (cfg["train"]["lr"], cfg["train"]["epochs"], cfg["dataset"]["num_workers"], cfg["eval_only"]) == \
        (0.01, 3, 0, True)
    assert cfg["train"]["seed"] == build_config(None, {})["train"]["seed"]


@pytest.mark.parametrize("override, message", [
    ("train.batch_size=1", "--batch-size/train.batch_size: must be an integer >= 2 (pairs need two images), got 1"),
    ("train.lr=0", "--lr/train.lr: must be > 0, got 0"),
    ("train.lr=fast", "--lr/train.lr: must be a number, got 'fast' (a string)"),
    ("dataset.val_fraction=1", "dataset.val_fraction: must be in [0, 1), got 1"),
    ("train.lr_decay_gamma=1.5", "train.lr_decay_gamma: must be in (0, 1) (no decay: train.lr_decay_every above "
                                 "the epochs), got 1.5"),
    ("model.classifier_init_std=0", "model.classifier_init_std: must be null or a number > 0, got 0"),
    ("train.amp=fp8", "train.amp: must be null (fp32), fp16 or bf16 (mixed precision on GPU), got 'fp8'"),
    ("train.onednn_conv=maybe", "train.onednn_conv: must be auto, true or false, got 'maybe'"),
    ("device=tpu", "--device: must be auto, cpu or gpu, got 'tpu'"),
    ("model.bit=20", "--bit/model.bit: 20 is not a supported bit length (8, 12, 16, 24, 32, 48, 64, 128)"),
    ("dataset.mean=[1, 2]", "dataset.mean: must be a list of 3 numbers, got [1, 2]"),
    ("dataset.skip_bad_images=yes please", "--skip-bad-images/dataset.skip_bad_images: must be true or false, got 'yes please' "
                                           "(a string)"),
    ("dataset.topk=0", "dataset.topk: must be -1 (all), None or a positive integer, got 0"),
    ("train.warmup_epochs=200", "train.warmup_epochs: must be an integer >= 0 and below train.epochs, got 200"),
    ("dataset.crop_size=300", "dataset.crop_size: need 64 <= crop_size <= resize_size, got 300 / 72"),
])
def test_one_line_naming_the_key(override, message):
    with pytest.raises(ConfigError) as error:
        build_config(None, {}, [override])
    assert str(error.value) == message


def test_a_validated_config_is_read_only_and_a_changed_one_is_validated_again():
    cfg = build_config(None, {"bit": 16})
    assert isinstance(cfg, FrozenConfig) and isinstance(cfg["train"], FrozenConfig)
    for change in (lambda: cfg.__setitem__("device", "cpu"), lambda: cfg["train"].update(lr=1),
                   lambda: cfg["dataset"].pop("name"), lambda: cfg["dataset"]["mean"].append(0)):
        with pytest.raises((TypeError, AttributeError)):
            change()
    changed = replace_config(cfg, {"train.lr": 0.5, "dataset.list_dir": "lists"})
    assert changed["train"]["lr"] == 0.5 and changed["dataset"]["list_dir"] == "lists" and cfg["train"]["lr"] != 0.5
    with pytest.raises(ConfigError, match="--lr/train.lr: must be > 0"):
        replace_config(cfg, {"train.lr": -1})
    with pytest.raises(ConfigError, match="unknown config key 'train.nope'"):
        replace_config(cfg, {"train.nope": 1})
    # what goes to other processes and to disk is the same config
    assert pickle.loads(pickle.dumps(cfg)) == cfg and copy.deepcopy(cfg) is cfg
    assert yaml.safe_load(config_yaml(cfg)) == {k: v for k, v in thaw(cfg).items() if k not in ("config_file", "config_choice", "overwrite")}
