"""A user's own folders get the right advice (issue 27 item 9): never "remove" a folder that is not
ours; predict.py after training on one's own data set uses that data set without --dataset; the
service given an explicit --model-dir does not compare it with the unrelated ./output weights."""
import os
import shutil

import paddle
import pytest
import yaml

from utils.errors import DataError
from utils.storage.run_folder import ExportFolder, RunFolder


def test_an_occupied_folder_is_never_to_be_removed(tmp_path):
    from utils.data.lite import ensure_lite_dataset

    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "holiday.jpg").write_bytes(b"mine")
    with pytest.raises(DataError) as err:
        ensure_lite_dataset(str(photos))
    message = str(err.value)
    assert "remove" not in message.lower() and "delete" not in message.lower()
    assert str(photos) in message and "--dataset NAME" in message
    assert os.listdir(photos) == ["holiday.jpg"]


@pytest.mark.slow  # builds a network and encodes a database
def test_predict_uses_the_data_set_the_weights_were_trained_on(tiny_lite, tmp_path, capsys):
    """Trained with --dataset mine --data-path photos (lists in data/mine/); predict.py --data-path photos
    without --dataset searched 'lite' and told the user to remove their photo folder."""
    import predict
    from models import build_model
    from utils.config import build_config, save_config

    photos, lists = tmp_path / "photos", os.path.join("data", "mine")  # data/<dataset>/: the default list dir
    photos.mkdir()
    os.symlink(os.path.join(tiny_lite, "images"), photos / "images")
    shutil.copytree(tiny_lite, lists, ignore=shutil.ignore_patterns("images"))
    cfg = build_config(None, {"bit": 16, "dataset": "mine", "data_path": str(photos)}, ["model.fc_dim=64"])
    run = tmp_path / "run"
    run.mkdir()
    paddle.save(build_model(cfg).state_dict(), str(run / "model_best_16.pdparams"))
    save_config(cfg, RunFolder(str(run)).config(16))
    query = os.path.join(tiny_lite, "images", "test", "00000.jpg")
    predict.main(["--bit", "16", "--img", query, "--pretrained", str(run / "model_best_16"), "--data-path",
                  str(photos), "--save-path", str(tmp_path / "out"), "--num-workers", "0"])
    out = capsys.readouterr().out
    assert "top 10 of 48 database images:" in out, out
    assert sorted(os.listdir(photos)) == ["images"]


def fake_export(folder, digest):
    os.makedirs(folder)
    info = {"bit": 16, "resize_size": 72, "crop_size": 64, "mean": [0.5] * 3, "std": [0.2] * 3,
            "weights_digest": digest}
    with open(ExportFolder(str(folder)).infer_cfg, "w") as f:
        yaml.safe_dump(info, f)


def test_the_service_compares_only_the_main_jobs_export_with_the_main_jobs_weights(tmp_path, monkeypatch):
    from deploy.serving import cli

    monkeypatch.chdir(tmp_path)
    os.makedirs("output")
    paddle.save({"w": paddle.zeros([2])}, RunFolder().best(16) + ".pdparams")  # the main job's (other) weights
    notes = []
    mine = tmp_path / "my_model"
    fake_export(mine, "not-these-weights")
    cli._note_other_weights(str(mine), None, None, notes.append)
    assert notes == []  # an explicit --model-dir of the user's: ./output has nothing to do with it
    fake_export(RunFolder().export.path, "not-these-weights")
    cli._note_other_weights(RunFolder().export.path, None, None, notes.append)
    assert len(notes) == 1 and "exported from other weights" in notes[0]  # the main job's export: still checked


def test_the_service_exports_16_bit_weights_as_16_bits(tmp_path):
    """--pretrained of a 16-bit model and no --bit: the export command is for 16 bits (it assumed 64)."""
    from deploy.serving import cli
    from models import build_model
    from utils.config import build_config
    from utils.errors import WeightsError

    paddle.save(build_model(build_config(None, {"bit": 16}, ["model.fc_dim=64"])).state_dict(),
                str(tmp_path / "w16.pdparams"))
    with pytest.raises(WeightsError) as err:
        cli.ensure_model(str(tmp_path / "export"), None, str(tmp_path / "w16"), auto_export=False)
    assert "--bit 16" in str(err.value) and "--bit 64" not in str(err.value), str(err.value)
