"""Learning without labels on real images (scikit-learn's digits): BiHalf, GreedyHash and CIBHash, trained on the training
images listed without labels, end above their untrained network and above LSH and ITQ fitted on the same
frozen network's features of the same images. A short check (one seed, 64 bits, 10 epochs, the 500
training images); the multi-seed table of every unsupervised method at 16 and 64 bits, trained on the
1,597 database images, is benchmarks/quality_unsupervised.py (docs/methods.md, "No labels")."""
import os

import pytest

from tools.make_digits_split import make_split
from utils.config import CONFIG_DIR, build_config
from utils.data.loader import build_dataloader
from utils.evaluation.baselines import fit_itq, fit_lsh
from utils.evaluation.metrics import mean_average_precision
from utils.inference.features import backbone_features
from utils.training.builders import build_split
from utils.training.engine import Engine

BIT = 64
EPOCHS = 10


@pytest.fixture(scope="module")
def digits_without_training_labels(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("digits"))
    make_split(root, quiet=True)
    lists = os.path.join(root, "no_labels")
    os.makedirs(lists)
    for split in ("test", "database"):
        with open(os.path.join(root, f"{split}.txt")) as src, open(os.path.join(lists, f"{split}.txt"), "w") as dst:
            dst.write(src.read())
    with open(os.path.join(root, "train.txt")) as src, open(os.path.join(lists, "train.txt"), "w") as dst:
        dst.write("".join(line.split()[0] + "\n" for line in src if line.strip()))
    return root, lists


@pytest.mark.slow
@pytest.mark.parametrize("method", ["bihalf", "greedyhash_unsup", "cibhash"])
def test_learns_real_images_without_labels_above_the_floors(method, digits_without_training_labels, tmp_path):
    root, lists = digits_without_training_labels
    cfg = build_config(os.path.join(CONFIG_DIR, "methods", f"{method}_lite.yaml"),
                       {"dataset": "digits", "data_path": root, "list_dir": lists, "bit": BIT, "epoch": EPOCHS,
                        "seed": 0, "output_dir": str(tmp_path), "threads": 2, "num_workers": 0},
                       [f"train.eval_every={EPOCHS}"])
    engine = Engine(cfg, save_checkpoints=False, show_progress=False)
    assert engine.train_set.num_classes == 0  # no label reaches the training
    train_x, _ = backbone_features(engine.model, build_dataloader(build_split(cfg, os.path.join(lists, "train.txt"),
                                                                              train=False), 64, False, False))
    (q_x, q_y), (db_x, db_y) = (backbone_features(engine.model, loader)
                                for loader in (engine.query_loader, engine.db_loader))
    floors = {name: mean_average_precision(fit(train_x, BIT, seed=0).encode(q_x), fit(train_x, BIT, seed=0).encode(db_x),
                                           q_y, db_y) for name, fit in (("lsh", fit_lsh), ("itq", fit_itq))}
    result = engine.train()
    untrained = result["history"]["untrained"]
    print(f"{method}: mAP {result['map']:.4f} vs untrained {untrained:.4f}, LSH {floors['lsh']:.4f}, "
          f"ITQ {floors['itq']:.4f}")
    assert not [w for w in result["warnings"] if "collapsed" in w]
    assert result["map"] > max(untrained, *floors.values())
