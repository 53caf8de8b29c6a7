"""With no -c and no configs/hashnet_<name>.yaml, the recipe follows the lists (issue 25 item 2): lists of
paths alone -> the default unsupervised method, labelled lists -> the scratch recipe; the reason is kept
for the run's first lines and never saved with the run's config."""
import os

import yaml

from utils.config import CONFIG_DIR, SCRATCH_CONFIG, build_config, config_yaml
from utils.data.lists import list_has_labels
from utils.losses import DEFAULT_UNSUPERVISED_METHOD


def write_lists(folder, lines):
    os.makedirs(folder, exist_ok=True)
    for split in ("train", "test", "database"):
        with open(os.path.join(folder, f"{split}.txt"), "w", encoding="utf-8") as f:
            f.write("".join(f"{line}\n" for line in lines))
    return str(folder)


def test_list_has_labels_reads_the_first_image_line(tmp_path):
    cases = {"a.txt": "a.jpg 0 1\n", "b.txt": "\n\n  b.jpg\nc.jpg\n", "c.txt": '"My Photos/a b.jpg"\n',
             "d.txt": '"My Photos/a b.jpg" 1 0\n', "e.txt": "\ufeffx.png\r\ny.png 1\r\n", "f.txt": "x.png\ry.png\r",
             "g.txt": "\n  \n"}
    for name, text in cases.items():
        (tmp_path / name).write_text(text, encoding="utf-8", newline="")
    got = {name: list_has_labels(str(tmp_path / name)) for name in cases}
    assert got == {"a.txt": True, "b.txt": False, "c.txt": False, "d.txt": True, "e.txt": False, "f.txt": False,
                   "g.txt": None}
    assert list_has_labels(str(tmp_path / "missing.txt")) is None
    (tmp_path / "bad.txt").write_text('"open quote.jpg 1\n')
    assert list_has_labels(str(tmp_path / "bad.txt")) is None  # training says what is wrong with it


def test_lists_without_labels_pick_the_default_unsupervised_method(tmp_path):
    unlabelled = write_lists(tmp_path / "plain", ["a.jpg", '"b c.jpg"'])
    flags = {"dataset": "mine", "data_path": str(tmp_path), "list_dir": unlabelled}
    cfg = build_config(None, flags)
    scratch = os.path.join(CONFIG_DIR, "methods", f"{DEFAULT_UNSUPERVISED_METHOD}_scratch.yaml")
    assert cfg["config_file"] == scratch and cfg["loss"]["name"] == DEFAULT_UNSUPERVISED_METHOD
    assert cfg["config_choice"].startswith("the lists of data set 'mine' have no labels (")
    assert cfg["config_choice"].endswith(f"holds image paths alone) and no -c was given: training the default "
                                         f"unsupervised method '{DEFAULT_UNSUPERVISED_METHOD}' with "
                                         f"{os.path.relpath(scratch)} (pass -c to choose another)") or \
        cfg["config_choice"].endswith(f"with {scratch} (pass -c to choose another)")
    with_weights = build_config(None, {**flags, "pretrained_backbone": "w.pdparams"})
    assert with_weights["config_file"].endswith(f"{DEFAULT_UNSUPERVISED_METHOD}_coco.yaml")
    assert with_weights["dataset"]["name"] == "mine"
    # the list folder given by -o, or the default data/<name>/ (the test runs in its own folder)
    by_override = build_config(None, {"dataset": "mine", "data_path": str(tmp_path)},
                               [f"dataset.list_dir={unlabelled}"])
    assert by_override["config_file"] == scratch
    write_lists(os.path.join("data", "other"), ["x.png"])
    assert build_config(None, {"dataset": "other", "data_path": str(tmp_path)})["config_file"] == scratch
    # the reason is the run's, not the recipe's: the saved config has no trace of it
    assert "config_choice" not in yaml.safe_load(config_yaml(cfg))


def test_labelled_lists_and_an_explicit_config_are_as_before(tmp_path):
    labelled = write_lists(tmp_path / "labelled", ["a.jpg 0 1", '"b c.jpg" 1 0'])
    flags = {"dataset": "mine", "data_path": str(tmp_path), "list_dir": labelled}
    cfg = build_config(None, flags)
    assert cfg["config_file"] == SCRATCH_CONFIG and "from-scratch recipe" in cfg["config_choice"]
    assert build_config(None, {**flags, "pretrained_backbone": "w.pdparams"})["config_choice"] is None
    nothing = build_config(None, {**flags, "list_dir": str(tmp_path / "nowhere")})  # training will say it lacks lists
    assert nothing["config_file"] == SCRATCH_CONFIG
    chosen = build_config(SCRATCH_CONFIG, {**flags, "list_dir": write_lists(tmp_path / "p", ["a.jpg"])})
    assert chosen["config_choice"] is None and chosen["loss"]["name"] == "hashnet"  # -c wins; training refuses
