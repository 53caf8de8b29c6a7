"""utils.training.folder_guard: a run does not replace a model of another kind without --overwrite, and
finished_<K>.txt tells a finished run from one that stopped. The end-to-end runs: tests/reliability/test_overwrite.py."""
import os

import pytest
import yaml

from utils.config import CONFIG_DIR, build_config, config_yaml
from utils.errors import ConfigError
from utils.storage.run_folder import RunFolder
from utils.training.folder_guard import check_replaceable, mark_finished, mark_unfinished


def config(folder, *overrides, config_file=None, bit=16, **flags):
    path = os.path.join(CONFIG_DIR, config_file) if config_file else None
    return build_config(path, {"bit": bit, "output_dir": str(folder), **flags}, list(overrides))


def holding(folder, cfg, files=("model_best_16.pdparams",)):
    """A folder as a finished run of cfg leaves it: weights (empty here: only names count) and its config."""
    os.makedirs(folder, exist_ok=True)
    for name in files:
        open(os.path.join(folder, name), "wb").close()
    with open(RunFolder(str(folder)).config(cfg["model"]["bit"]), "w", encoding="utf-8") as f:
        f.write(config_yaml(cfg))
    return RunFolder(str(folder))


def test_another_method_is_refused_in_one_line_naming_both_and_the_ways_out(tmp_path):
    folder = holding(tmp_path / "out", config(tmp_path / "out"))
    with pytest.raises(ConfigError) as error:
        check_replaceable(folder, config(tmp_path / "out", config_file="methods/dsh_lite.yaml"))
    assert str(error.value) == (
        f"--output-dir {folder.path}: it holds the 16-bit model of another run (method (loss.name) hashnet; "
        f"{folder.config(16)}), this run is method (loss.name) dsh: give this run its own --output-dir DIR (e.g. "
        f"--output-dir {os.path.join(folder.path, 'dsh')}), or add --overwrite to replace that model")
    # --overwrite lets it replace the model
    check_replaceable(folder, config(tmp_path / "out", config_file="methods/dsh_lite.yaml", overwrite=True))


@pytest.mark.parametrize("overrides, flags, named", [
    (["model.backbone=resnet18"], {}, "backbone alexnet"),
    ([], {"dataset": "digits", "list_dir": "lists"}, "data set lite"),
])
def test_another_backbone_or_data_set_is_another_kind(overrides, flags, named, tmp_path):
    folder = holding(tmp_path / "out", config(tmp_path / "out"), files=("model_last_16.pdparams",))
    with pytest.raises(ConfigError, match=named):
        check_replaceable(folder, config(tmp_path / "out", *overrides, **flags))


def test_the_same_kind_with_another_schedule_seed_or_bit_length_goes_ahead(tmp_path):
    folder = holding(tmp_path / "out", config(tmp_path / "out"))
    check_replaceable(folder, config(tmp_path / "out", "train.lr=0.01", epoch=3, seed=7))  # the main job, re-run
    check_replaceable(folder, config(tmp_path / "out", config_file="methods/dsh_lite.yaml", bit=32))  # no 32-bit model


def test_nothing_to_replace_or_nothing_known_of_it_goes_ahead(tmp_path):
    dsh = config(tmp_path / "out", config_file="methods/dsh_lite.yaml")
    check_replaceable(RunFolder(str(tmp_path / "absent")), dsh)
    folder = holding(tmp_path / "out", config(tmp_path / "out"), files=())  # a config, no weights
    check_replaceable(folder, dsh)
    open(os.path.join(folder.path, "model_best_16.safetensors"), "wb").close()
    with pytest.raises(ConfigError):  # released weights alone are a model too
        check_replaceable(folder, dsh)
    with open(folder.config(16), "w") as f:
        f.write("{not yaml: [")  # a damaged config says nothing of the model's kind
    check_replaceable(folder, dsh)
    with open(folder.config(16), "w") as f:
        f.write("a: &a [1]\nb: *a\n")  # read with the project's YAML rules: an alias is refused, not expanded
    check_replaceable(folder, dsh)
    os.unlink(folder.config(16))
    check_replaceable(folder, dsh)


def test_overwrite_is_not_saved_with_the_run(tmp_path):
    cfg = config(tmp_path, overwrite=True)
    assert cfg["overwrite"] is True and "overwrite" not in yaml.safe_load(config_yaml(cfg))


def test_the_finished_mark_says_what_finished_and_goes_when_weights_change(tmp_path):
    folder = RunFolder(str(tmp_path))
    mark_unfinished(folder, 16)  # nothing to remove: fine
    cfg = config(tmp_path, epoch=3)
    mark_finished(folder, cfg, {"map": 0.51234, "best_epoch": 2})
    assert open(folder.finished(16)).read() == (
        f"finished: 3 epochs of hashnet, 16 bits, best weights {folder.best(16)} (epoch 2), mAP@all 0.5123\n")
    mark_finished(folder, config(tmp_path, config_file="methods/itq_lite.yaml"), {"map": None, "best_epoch": 1})
    assert open(folder.finished(16)).read().startswith("finished: fitted itq, 16 bits, ")
    assert open(folder.finished(16)).read().endswith("(epoch 1), no labels\n")
    mark_unfinished(folder, 16)
    assert not os.path.exists(folder.finished(16))
