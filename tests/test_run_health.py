"""The engine says when a run goes wrong: collapsed codes, a rising loss, a result below the
untrained network (whose weights model selection then keeps, under the best name), and a
fine-tuning recipe trained without ImageNet weights; a data set with no config of its own
trains with the scratch recipe and says so."""
import os
import shutil

import numpy as np
import paddle
import pytest

from utils.config import SCRATCH_CONFIG, build_config
from utils.training.engine import Engine
from utils.training.health import RunHealth
from utils.storage.fileio import display_path
from utils.evaluation.code_health import code_statistics, codes_collapsed

pytestmark = pytest.mark.slow

BIT = 16
SMALL = ["model.fc_dim=64", "dataset.resize_size=72", "dataset.crop_size=64", "dataset.num_workers=0",
         "train.eval_every=1", "train.log_every=100"]


def test_code_statistics_by_hand():
    codes = np.array([[1, 1, -1], [1, -1, -1], [1, 1, -1], [1, -1, -1]])
    stats = code_statistics(codes)
    # 2 distinct codes of 4; bits 0 and 2 never change; |means| = 1, 0, 1
    assert stats == {"distinct": 2, "distinct_share": 0.5, "constant_bits": 2, "bit_balance": pytest.approx(2 / 3)}
    assert code_statistics(np.array([[1, 0], [0, 1]]))["distinct"] == 2  # 0/1 codes too
    assert codes_collapsed(code_statistics(np.ones((100, 16))), 16, 10)              # one code for all
    assert not codes_collapsed(code_statistics(np.eye(10) * 2 - 1), 10, 10)         # one code a class
    five = np.tile(np.random.default_rng(0).choice([-1, 1], (5, 16)), (4, 1))        # 20 queries, 5 codes
    assert codes_collapsed(code_statistics(five), 16, 12) and not codes_collapsed(code_statistics(five), 16, 10)


def test_loss_rising_for_n_epochs_is_reported_once_per_streak():
    health = RunHealth(__import__("logging").getLogger("test"), loss_rise_epochs=3)  # no data, no network
    losses = []
    for epoch, value in enumerate([1.41, 1.45, 1.50, 1.55, 1.60, 1.2, 1.3, 1.4, 1.5]):
        losses.append(value)
        health.check_loss_trend(epoch, losses)
    assert health.warnings == ["[epoch 4] the loss rose 3 epochs in a row (1.4100 -> 1.5500): the run is diverging "
                               "or its codes are collapsing (lower --lr)",
                               "[epoch 9] the loss rose 3 epochs in a row (1.2000 -> 1.5000): the run is diverging "
                               "or its codes are collapsing (lower --lr)"]


@pytest.fixture(scope="module")
def new_dataset(tiny_lite, tmp_path_factory):
    """The tiny lite images under a data set name that has no config of its own."""
    root = tmp_path_factory.mktemp("mine")
    shutil.copytree(tiny_lite, root / "data")
    return str(root / "data")


def test_fine_tuning_recipe_without_weights_warns_and_keeps_the_untrained_weights(tiny_lite, tmp_path):
    """The COCO recipe from scratch with an lr so small that nothing changes: no epoch beats the
    untrained network, so model_best holds the untrained weights and the last lines say so."""
    cfg = build_config(os.path.join(os.path.dirname(SCRATCH_CONFIG), "hashnet_coco.yaml"),
                       {"dataset": "lite", "data_path": tiny_lite, "bit": BIT, "epoch": 2, "batch_size": 8,
                        "output_dir": str(tmp_path), "threads": 2, "lr": 1e-12}, SMALL + ["dataset.topk=-1"])
    engine = Engine(cfg)
    untrained = {k: v.numpy().copy() for k, v in engine.model.state_dict().items()}
    result = engine.train()
    log = (tmp_path / f"train_{BIT}.log").read_text().strip().splitlines()
    assert any("hashnet_coco.yaml is a fine-tuning recipe: it expects ImageNet weights (--pretrained-backbone PATH "
               f"or imagenet); to train from scratch use -c {display_path(SCRATCH_CONFIG)}" in line for line in log[:5])
    assert "no trained epoch beat the untrained network" in "\n".join(log[-6:])
    assert "the UNTRAINED weights" in "\n".join(log[-6:]) and log[-1].endswith("(the untrained network)")
    assert result["best_epoch"] == 0 and result["map"] == pytest.approx(result["history"]["untrained"])
    best = paddle.load(str(tmp_path / f"model_best_{BIT}.pdparams"))
    assert all(np.array_equal(best[k].numpy(), untrained[k]) for k in untrained)
    assert paddle.load(str(tmp_path / f"model_best_{BIT}.pdopt"))["epoch"] == -1  # --resume from it starts at epoch 1


def test_collapsed_codes_are_reported(tiny_lite, tmp_path):
    """A hash layer that outputs its bias only gives every image the same code."""
    cfg = build_config(None, {"dataset": "lite", "data_path": tiny_lite, "bit": BIT, "epoch": 1, "batch_size": 8,
                              "output_dir": str(tmp_path), "threads": 2, "lr": 1e-12}, SMALL)
    engine = Engine(cfg)
    with paddle.no_grad():
        engine.model.hash_layer.weight.set_value(paddle.zeros_like(engine.model.hash_layer.weight))
    result = engine.train()
    assert any("[epoch 1] the codes collapsed: 1 distinct codes for 12 queries, 16 of 16 bits constant" in w
               for w in result["warnings"])
    log = (tmp_path / f"train_{BIT}.log").read_text()
    assert "codes: 1/12 distinct, 16 constant bits, bit balance 1.00" in log
    assert "this run has 2 warning(s):" in log  # collapse + no better than untrained, repeated at the end


def test_a_data_set_without_config_trains_with_the_scratch_recipe(new_dataset, tmp_path):
    flags = {"dataset": "mine", "data_path": new_dataset, "list_dir": new_dataset, "bit": BIT, "epoch": 1,
             "batch_size": 8, "output_dir": str(tmp_path), "threads": 2}
    cfg = build_config(None, flags, SMALL)
    assert cfg["config_file"] == SCRATCH_CONFIG and cfg["model"]["batch_norm"] is True
    # with ImageNet weights (a flag or -o), the built-in defaults (the fine-tuning recipe) apply as before
    assert build_config(None, {**flags, "pretrained_backbone": "w.pdparams"}, SMALL)["config_file"] is None
    assert build_config(None, flags, SMALL + ["model.backbone_weights=w.pdparams"])["config_file"] is None
    Engine(cfg).train()
    log = (tmp_path / f"train_{BIT}.log").read_text()
    assert ("data set 'mine' has no config of its own and no --pretrained-backbone was given: training with the "
            f"from-scratch recipe {display_path(SCRATCH_CONFIG)} (pass -c to choose another)") in log
    assert "fine-tuning recipe" not in log


def test_paths_in_messages_are_what_a_user_can_type_from_the_current_folder(tmp_path, monkeypatch):
    (tmp_path / "configs").mkdir()
    inside = tmp_path / "configs" / "hashnet_scratch.yaml"
    monkeypatch.chdir(tmp_path)
    assert display_path(str(inside)) == os.path.join("configs", "hashnet_scratch.yaml")
    monkeypatch.chdir(tmp_path / "configs")
    assert display_path(str(tmp_path / "other.yaml")) == str(tmp_path / "other.yaml")  # not ../other.yaml


def test_without_checkpoints_a_run_writes_its_log_and_no_weights(tiny_lite, tmp_path):
    """Engine(save_checkpoints=False): what the benchmarks ask for instead of deleting files afterwards."""
    cfg = build_config(None, {"dataset": "lite", "data_path": tiny_lite, "bit": BIT, "epoch": 1, "batch_size": 8,
                              "output_dir": str(tmp_path), "threads": 2}, SMALL)
    result = Engine(cfg, save_checkpoints=False, show_progress=False).train()
    assert result["best_epoch"] in (0, 1) and np.isfinite(result["map"])
    assert sorted(os.listdir(tmp_path)) == [f"train_{BIT}.log", f"vdl_{BIT}"]
