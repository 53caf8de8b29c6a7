"""Bad input ends with one `error: ...` line naming the culprit and a non-zero exit, no traceback."""
import os

import pytest

from tests.reliability.common import assert_one_line_error, run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def bad_data(tiny_lite, tmp_path_factory):
    """A copy of the tiny lite lists with broken lines and images."""
    root = tmp_path_factory.mktemp("bad")
    images = os.path.join(tiny_lite, "images")
    os.symlink(images, root / "images")
    lines = open(os.path.join(tiny_lite, "database.txt")).read().splitlines()
    for split in ("train", "test", "database"):
        (root / f"{split}.txt").write_text(open(os.path.join(tiny_lite, f"{split}.txt")).read())
    wrong_count = lines[:3] + [lines[3].rsplit(" ", 1)[0]] + lines[4:]
    (root / "wrong_count").mkdir()
    for split in ("train", "test"):
        (root / "wrong_count" / f"{split}.txt").write_text(open(os.path.join(tiny_lite, f"{split}.txt")).read())
    (root / "wrong_count" / "database.txt").write_text("\n".join(wrong_count) + "\n")
    (root / "empty.jpg").write_bytes(b"")
    (root / "corrupt.jpg").write_bytes(b"\xff\xd8 this is not a jpeg")
    return root


def test_list_line_with_wrong_label_count(bad_data):
    code, _, err = run("main_single_gpu.py", "--dataset", "custom", "--data-path", str(bad_data),
                       "--list-dir", str(bad_data / "wrong_count"), "--epoch", "1", "--output-dir", str(bad_data / "o"))
    assert_one_line_error(code, err, "database.txt:4", "labels")


@pytest.mark.parametrize("name", ["missing.jpg", "empty.jpg", "corrupt.jpg"])
def test_bad_query_image(bad_data, tiny_lite, name, tmp_path):
    code, _, err = run("predict.py", "--bit", "16", "--img", str(bad_data / name), "--model-dir", str(tmp_path),
                       "--data-path", tiny_lite)
    assert_one_line_error(code, err, name)  # checked before the model is loaded


def test_bad_images_through_infer(bad_data, tmp_path):
    code, _, err = run("-m", "deploy.inference_python.infer", "--bit", "16", "--model-dir", str(tmp_path / "none"),
                       "--img-path", str(bad_data / "empty.jpg"))
    assert_one_line_error(code, err, "--model-dir", "none")


def test_missing_weights_and_model_dir(tmp_path, tiny_lite):
    code, _, err = run("export_model.py", "--bit", "16", "--pretrained", str(tmp_path / "nope"),
                       "--save-inference-dir", str(tmp_path / "inf"))
    assert_one_line_error(code, err, "nope.pdparams", "not found")
    code, _, err = run("main_single_gpu.py", "--eval", "--pretrained", str(tmp_path / "nope"), "--data-path",
                       tiny_lite, "--bit", "16", "--output-dir", str(tmp_path / "o"))
    assert_one_line_error(code, err, "nope.pdparams")


def test_weights_with_another_bit_count(tmp_path):
    import paddle

    from models import build_model
    from utils.config import build_config

    paddle.save(build_model(build_config(None, {"bit": 16})).state_dict(), str(tmp_path / "w.pdparams"))
    code, _, err = run("export_model.py", "--bit", "32", "--pretrained", str(tmp_path / "w"),
                       "--save-inference-dir", str(tmp_path / "inf"))
    assert_one_line_error(code, err, "16-bit model but --bit is 32")


def test_bad_flag_values():
    code, _, err = run("main_single_gpu.py", "--bit", "7")
    assert_one_line_error(code, err, "--bit")
    code, _, err = run("main_single_gpu.py", "-o", "train.nonsense=1")
    assert_one_line_error(code, err, "train.nonsense")
    code, _, err = run("main_single_gpu.py", "-c", "configs/does_not_exist.yaml")
    assert_one_line_error(code, err, "configs/does_not_exist.yaml")
