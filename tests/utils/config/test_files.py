"""dataset_lists: the lite data set is generated at its default place only (issue 27, item 2)."""
import os

import pytest

from utils.config import build_config, dataset_lists
from utils.errors import DataError


def test_lite_is_generated_at_its_default_place(tmp_path):
    # the test runs in its own empty folder (conftest), so ./datasets/lite/ is a fresh one
    lists = dataset_lists(build_config(None, {"bit": 16}))
    assert os.path.isfile(lists["database"])
    assert os.path.abspath(lists["database"]) == os.path.abspath("datasets/lite/database.txt")


@pytest.mark.parametrize("folder", ["COCO2014", "my photos"])
def test_no_lite_set_is_invented_at_another_path(tmp_path, folder):
    path = tmp_path / folder
    cfg = build_config(None, {"bit": 16, "data_path": str(path)})
    with pytest.raises(DataError) as err:
        dataset_lists(cfg)
    message = str(err.value)
    assert "\n" not in message and str(path) in message and "./datasets/lite/" in message
    assert not path.exists()  # nothing written there


def test_own_folder_with_photos_is_left_alone(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "holiday.jpg").write_bytes(b"not touched")
    with pytest.raises(DataError, match="no lite data set at"):
        dataset_lists(build_config(None, {"bit": 16, "data_path": str(tmp_path / "mine")}))
    assert sorted(os.listdir(tmp_path / "mine")) == ["holiday.jpg"]


def test_an_existing_lite_set_elsewhere_is_used(tiny_lite):
    lists = dataset_lists(build_config(None, {"bit": 16, "data_path": tiny_lite}))
    assert lists["database"] == os.path.join(tiny_lite, "database.txt")


def test_training_on_a_missing_path_is_one_line(tmp_path, capsys):
    import main_single_gpu

    with pytest.raises(SystemExit) as stop:
        main_single_gpu.main(["--data-path", str(tmp_path / "COCO2014"), "--bit", "16", "--epoch", "1",
                              "--output-dir", str(tmp_path / "out")])
    assert stop.value.code not in (0, None)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and str(tmp_path / "COCO2014") in err[0], err
    assert not (tmp_path / "COCO2014").exists()


@pytest.mark.slow  # builds a network
def test_predict_on_a_missing_path_is_one_line(tmp_path, capsys, tiny_lite):
    """The reproduction's own command: predict.py --data_path ./datasets/COCO2014/ (absent) with lite weights."""
    import paddle

    import predict
    from models import build_model

    cfg = build_config(None, {"bit": 16}, ["model.fc_dim=64"])
    paddle.save(build_model(cfg).state_dict(), str(tmp_path / "w.pdparams"))
    query = os.path.join(tiny_lite, "images", "test", "00000.jpg")
    with pytest.raises(SystemExit) as stop:
        predict.main(["--bit", "16", "--img", query, "--pretrained", str(tmp_path / "w"), "-o", "model.fc_dim=64",
                      "--data_path", "./datasets/COCO2014/", "--save_path", str(tmp_path / "out")])
    assert stop.value.code not in (0, None)
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(err) == 1 and "./datasets/COCO2014/" in err[0], err
    assert not os.path.exists("datasets/COCO2014")
