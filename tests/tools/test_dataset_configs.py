"""The data set configs load, agree with the split tools, and train for one epoch through the lists
each tool makes from synthetic files in that data set's layout (tiny sizes, CPU)."""
import os

import pytest

from tests.tools import (test_make_cifar10_split as cifar, test_make_coco_split as coco,
                         test_make_flickr25k_split as flickr, test_make_imagenet100_split as imagenet,
                         test_make_nuswide_split as nuswide)
from tests.tools.common import ROOT
from utils.config import build_config, default_config_path, list_dir

# name: (num_classes, topK, the tool's parser, the parser option whose default is the config's data_path)
DATASETS = {
    "coco": (None, 5000, "make_coco_split", "coco_root"),
    "nuswide_10": (10, 5000, "make_nuswide_split", "nuswide_root"),
    "nuswide_21": (21, 5000, "make_nuswide_split", "nuswide_root"),
    "nuswide_81": (81, 5000, "make_nuswide_split", "nuswide_root"),
    "imagenet100": (100, 1000, "make_imagenet100_split", "imagenet_root"),
    "cifar10": (10, -1, "make_cifar10_split", "image_out"),
    "flickr25k": (24, 5000, "make_flickr25k_split", "flickr_root"),
}


def config_path(name):
    return os.path.join(ROOT, "configs", f"hashnet_{name}.yaml")


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_config_loads_and_matches_the_tool_defaults(name):
    import importlib

    num_classes, topk, tool, root_option = DATASETS[name]
    cfg = build_config(config_path(name))
    d = cfg["dataset"]
    assert d["name"] == name and d["topk"] == topk and d["num_classes"] == num_classes
    base = build_config(config_path("coco"))  # the recipe is hashnet_coco.yaml's
    assert cfg["model"] == base["model"] and cfg["train"] == base["train"] and cfg["loss"] == base["loss"]
    assert os.path.samefile(default_config_path(name), config_path(name))  # --dataset NAME finds it
    parser = importlib.import_module(f"tools.{tool}").parser()
    defaults = vars(parser.parse_args(["--class-list", "x"] if tool == "make_imagenet100_split" else []))
    assert os.path.normpath(defaults[root_option]) == os.path.normpath(d["data_path"])
    assert list_dir(cfg) == os.path.join("data", name)  # where the tool writes by default
    by_flag = build_config(None, {"dataset": name, "bit": 32})
    assert by_flag["dataset"]["topk"] == topk and by_flag["model"]["bit"] == 32


def make_lists(name, tmp):
    """Synthetic raw files in the data set's layout -> the tool's lists. Returns (data path, list dir)."""
    root, lists = str(tmp / "raw"), tmp / "lists"
    if name == "coco":
        coco.write_coco(root, images=True)
        coco.make_split(root, num_query=8, num_train=16, out_dir=str(lists), quiet=True)
    elif name.startswith("nuswide"):
        nuswide.write_nuswide(root, images=True, num_images=100)
        nuswide.make_split(root, concepts=int(name.split("_")[1]), num_query=12, num_train=16, out_dir=str(lists),
                           quiet=True)
    elif name == "imagenet100":
        wnids = [f"n{10000000 + k:08d}" for k in range(100)]
        class_list = imagenet.write_imagenet(root, wnids=wnids, train=2, val=1)
        imagenet.make_split(root, class_list, train_per_class=1, out_dir=str(lists), quiet=True)
    elif name == "cifar10":
        cifar.write_cifar(os.path.join(root, "bin"))
        cifar.make_split(os.path.join(root, "bin"), image_out=os.path.join(root, "png"), query_per_class=1,
                         train_per_class=2, out_dir=str(lists), quiet=True)
        root = os.path.join(root, "png")
    elif name == "flickr25k":
        flickr.write_flickr(root, images=True)
        flickr.make_split(root, num_query=8, num_train=16, num_images=flickr.NUM_IMAGES, out_dir=str(lists), quiet=True)
    return root, lists


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(DATASETS))
def test_one_epoch_run_through_the_tool_lists(name, tmp_path, capsys):
    import main_single_gpu

    data_path, lists = make_lists(name, tmp_path)
    out = tmp_path / "run"
    main_single_gpu.main(["-c", config_path(name), "--data-path", data_path, "--list-dir", str(lists),
                          "--output-dir", str(out), "--bit", "16", "--epoch", "1", "--batch-size", "8", "--threads", "2",
                          "--device", "cpu", "-o", "model.fc_dim=256", "-o", "dataset.resize_size=72",
                          "-o", "dataset.crop_size=64", "-o", "dataset.num_workers=0", "-o", "train.eval_untrained=false"])
    topk = DATASETS[name][1]
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith(f"mAP@{'all' if topk == -1 else topk}: "), last
    assert os.path.isfile(out / "model_last_16.pdparams")
