"""Where configs and list files are, and the resolved config as the file saved beside a run's weights."""
import glob
import os

import yaml

from utils.config.frozen import thaw
from utils.errors import DataError
from utils.storage.fileio import atomic_open
from utils.storage.run_folder import RunFolder, weights_path

CONFIG_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "configs")
# the recipe for a data set with no config of its own and no ImageNet weights
SCRATCH_CONFIG = os.path.join(CONFIG_DIR, "hashnet_scratch.yaml")


# keys of a resolved config that say where it came from or what this run may do, not how to train: not saved
# with the run (a config read back with -c never carries --overwrite along)
RUN_ONLY_KEYS = ("config_file", "config_choice", "overwrite")


def unsupervised_config(with_backbone_weights):
    """(method, recipe file) of the default unsupervised method (utils.losses.DEFAULT_UNSUPERVISED_METHOD):
    from scratch, or on ImageNet weights (its *_coco.yaml)."""
    from utils.losses import DEFAULT_UNSUPERVISED_METHOD  # paddle: imported when a recipe is picked only

    kind = "coco" if with_backbone_weights else "scratch"
    return DEFAULT_UNSUPERVISED_METHOD, os.path.join(CONFIG_DIR, "methods", f"{DEFAULT_UNSUPERVISED_METHOD}_{kind}.yaml")


def default_config_path(dataset):
    path = os.path.join(CONFIG_DIR, f"hashnet_{dataset}.yaml")
    return path if os.path.isfile(path) else None


def list_dir(cfg):
    d = cfg["dataset"]
    if d["list_dir"]:
        return d["list_dir"]
    if d["name"] == "lite":
        return d["data_path"]
    return os.path.join("data", d["name"])


def _is_default_lite_path(path):
    """Whether `path` is the lite data set's default place (./datasets/lite/, however it is spelled)."""
    from utils.config.schema import DEFAULTS

    return os.path.abspath(path) == os.path.abspath(DEFAULTS["dataset"]["data_path"])


def dataset_lists(cfg):
    """Make the built-in lite data when asked for and absent, at its default place only (a user's own
    folder never gets generated shapes written into it); return {split: list path}."""
    d = cfg["dataset"]
    lists_there = os.path.isfile(os.path.join(list_dir(cfg), "database.txt"))
    if d["name"] == "lite" and _is_default_lite_path(d["data_path"]):
        from utils.data.lite import ensure_lite_dataset

        ensure_lite_dataset(d["data_path"], seed=d["lite_seed"])
    elif d["name"] == "lite" and not lists_there:
        from utils.config.schema import DEFAULTS

        raise DataError(
            f"--data-path: no lite data set at {d['data_path']} (database.txt not found); the lite set is "
            f"generated only at its default place {DEFAULTS['dataset']['data_path']}; for your own data give "
            "--dataset NAME (and --list-dir)"
        )
    elif not os.path.isdir(d["data_path"]):
        raise DataError(f"--data-path: folder not found: {d['data_path']}")
    folder = list_dir(cfg)
    lists = {split: os.path.join(folder, f"{split}.txt") for split in ("train", "test", "database")}
    for split, path in lists.items():
        if not os.path.isfile(path):
            raise DataError(f"{split} list not found: {path} (set --list-dir or dataset.list_dir)")
    return lists


def config_yaml(cfg):
    """The resolved config as the YAML text saved beside a run's weights (config_<K>.yaml)."""
    return yaml.safe_dump({k: thaw(v) for k, v in cfg.items() if k not in RUN_ONLY_KEYS}, sort_keys=False)


def save_config(cfg, path):
    """Write the resolved config atomically, so a run's outputs say how they were made."""
    with atomic_open(path, "w", encoding="utf-8") as f:
        f.write(config_yaml(cfg))


def saved_config(pretrained, bit=None):
    """The config_<K>.yaml a training run saved beside its weights, if there is one."""
    folder = os.path.dirname(weights_path(pretrained)) or "."
    if bit is not None:
        path = RunFolder(folder).config(bit)
        return path if os.path.isfile(path) else None
    found = sorted(glob.glob(RunFolder(glob.escape(folder)).config("*")))
    return found[0] if len(found) == 1 else None
