"""Every flag of the entry points is checked: a one-line `error: ...` naming the flag, exit 2,
no traceback; weights for another bit count or backbone say so."""
import os

import paddle
import pytest

import export_model
import main_multi_gpu
import main_single_gpu
import predict
from tests.reliability.common import TINY

from deploy.inference_python import infer


def one_line_error(capsys, main, argv, *fragments):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("error:") or ": error:" in line]
    assert len(errors) == 1, err
    for fragment in fragments:
        assert fragment in errors[0], (fragment, errors[0])


@pytest.fixture(scope="module")
def a_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("f") / "plain_file"
    path.write_text("x")
    return str(path)


TRAIN_CASES = [
    (["--bit", "7"], "--bit"), (["--bit", "abc"], "--bit"), (["--batch-size", "1"], "--batch-size"),
    (["--batch-size", "-3"], "--batch-size"), (["--epoch", "-1"], "--epoch"), (["--lr", "0"], "--lr"),
    (["--lr", "nan"], "--lr"), (["--seed", "-5"], "--seed"), (["--threads", "-1"], "--threads"),
    (["--num-workers", "-1"], "--num-workers"), (["--device", "tpu"], "--device"),
    (["--dataset", "../etc"], "--dataset"), (["-o", "dataset.mean=[1, 2]"], "dataset.mean"),
    (["-o", "dataset.max_image_pixels=0"], "dataset.max_image_pixels"),
    (["-o", "dataset.skip_bad_images=maybe"], "dataset.skip_bad_images"), (["-o", "oops"], "key=value"),
    (["--data-path", "[1]", "-o", "dataset.data_path=[1]"], "dataset.data_path"),
]


@pytest.mark.parametrize("argv,fragment", TRAIN_CASES, ids=lambda v: " ".join(v) if isinstance(v, list) else "")
@pytest.mark.parametrize("main", [main_single_gpu.main, main_multi_gpu.main], ids=["single", "multi"])
def test_training_flags(capsys, tmp_path, main, argv, fragment):
    one_line_error(capsys, main, ["--output-dir", str(tmp_path), *argv], fragment)


def test_training_paths(capsys, tmp_path, a_file, tiny_lite):
    one_line_error(capsys, main_single_gpu.main, ["--output-dir", a_file], "--output-dir", "not a folder")
    one_line_error(capsys, main_single_gpu.main, ["--dataset", "coco", "--data-path", str(tmp_path / "nope"),
                                                  "--output-dir", str(tmp_path)], "--data-path", "nope")
    one_line_error(capsys, main_multi_gpu.main, ["--nprocs", "0", "--output-dir", str(tmp_path)], "--nprocs")
    one_line_error(capsys, main_single_gpu.main, ["--data-path", tiny_lite, "--output-dir", str(tmp_path),
                                                  "--pretrained-backbone", str(tmp_path / "none.pdparams"), *TINY],
                   "backbone weights not found", "none.pdparams")


@pytest.fixture(scope="module")
def weights64(tmp_path_factory):
    from models import build_model
    from utils.config import build_config

    folder = tmp_path_factory.mktemp("w64")
    cfg = build_config(None, {"bit": 64}, ["model.fc_dim=64"])
    paddle.save(build_model(cfg).state_dict(), str(folder / "w.pdparams"))
    other = build_config(None, {"bit": 64}, ["model.fc_dim=64", "model.batch_norm=false"])
    paddle.save(build_model(other).state_dict(), str(folder / "other_backbone.pdparams"))
    return folder


def test_weights_for_another_bit_count_or_backbone(capsys, tmp_path, tiny_lite, weights64):
    base = ["--data-path", tiny_lite, "--output-dir", str(tmp_path), *TINY, "--epoch", "1"]
    one_line_error(capsys, main_single_gpu.main, [*base, "--pretrained", str(weights64 / "w")],
                   "w.pdparams holds a 64-bit model but --bit is 16")
    one_line_error(capsys, main_single_gpu.main, [*base, "--eval", "--pretrained", str(weights64 / "w")],
                   "64-bit model but --bit is 16")
    base64 = [a if a != "16" else "64" for a in base]
    one_line_error(capsys, main_single_gpu.main, [*base64, "--pretrained", str(weights64 / "other_backbone")],
                   "other_backbone.pdparams does not hold this model's weights", "another backbone")
    query = os.path.join(tiny_lite, "images", "test", "00000.jpg")
    one_line_error(capsys, predict.main, ["--bit", "32", "--img", query, "--pretrained", str(weights64 / "w"),
                                          "--data-path", tiny_lite, "--save-path", str(tmp_path)],
                   "64-bit model but --bit is 32")


def test_resume_from_a_checkpoint_of_another_bit_count(capsys, tmp_path, tiny_lite):
    from models import build_model
    from utils.training.checkpoint import save_checkpoint
    from utils.config import build_config

    model = build_model(build_config(None, {"bit": 16}, ["model.fc_dim=64"]))
    save_checkpoint(str(tmp_path / "model_last_16"), model, {"epoch": 0, "bit": 16})
    argv = ["--data-path", tiny_lite, "--output-dir", str(tmp_path / "o"), *TINY, "--epoch", "2",
            "--resume", str(tmp_path / "model_last_16")]
    one_line_error(capsys, main_single_gpu.main, [a if a != "16" else "32" for a in argv],
                   "model_last_16.pdparams holds a 16-bit model but --bit is 32")


@pytest.fixture
def query(tiny_lite):
    return os.path.join(tiny_lite, "images", "test", "00000.jpg")


def test_predict_flags(capsys, tmp_path, tiny_lite, a_file, query):
    base = ["--img", query, "--model-dir", str(tmp_path), "--data-path", tiny_lite, "--save-path", str(tmp_path)]
    for argv, fragment in [
        (["--bit", "7"], "--bit 7 is not a supported code length"), (["--bit", "16", "--topk", "0"], "--topk"),
        (["--bit", "16", "--radius", "-1"], "--radius"),
        (["--bit", "16", "--radius", "17"], "--radius must be an integer in [0, 16]"),
        (["--bit", "16", "--batch-size", "0"], "--batch-size"),
        (["--bit", "16", "--num-workers", "-2"], "--num-workers"),
        (["--bit", "16", "--threads", "-1"], "--threads"), (["--bit", "16", "--use-mkldnn", "maybe"], "--use-mkldnn"),
        (["--bit", "16", "--index-backend", "nope"], "--index-backend"),
    ]:
        one_line_error(capsys, predict.main, [*base, *argv], fragment)
    one_line_error(capsys, predict.main, ["--bit", "16", "--img", query, "--data-path", tiny_lite], "--pretrained")
    one_line_error(capsys, predict.main, ["--bit", "16", "--img", query, "--model-dir", str(tmp_path / "nope")],
                   "--model-dir", "nope")
    one_line_error(capsys, predict.main, [*base[:4], "--bit", "16", "--save-path", a_file], "--save-path")
    one_line_error(capsys, predict.main, ["--bit", "16", "--img", query, "--model-dir", str(tmp_path),
                                          "--dataset", "coco", "--data-path", str(tmp_path / "none")], "--data-path")


def test_export_and_infer_flags(capsys, tmp_path, a_file, weights64, query):
    one_line_error(capsys, export_model.main, ["--bit", "12x", "--pretrained", "w"], "--bit")
    one_line_error(capsys, export_model.main, ["--bit", "7", "--pretrained", "w"], "--bit 7")
    one_line_error(capsys, export_model.main, ["--bit", "16", "--pretrained", "w", "--save-inference-dir", a_file],
                   "--save-inference-dir", "not a folder")
    one_line_error(capsys, export_model.main, ["--bit", "16", "--pretrained", str(weights64 / "w"),
                                               "--save-inference-dir", str(tmp_path), "-o", "model.fc_dim=64"],
                   "64-bit model but --bit is 16")
    base = ["--model-dir", str(tmp_path), "--img-path", query]
    for argv, fragment in [(["--bit", "7"], "--bit 7"), (["--bit", "16", "--batch-size", "0"], "--batch-size"),
                           (["--bit", "16", "--cpu-threads", "0"], "--cpu-threads"),
                           (["--bit", "16", "--warmup", "-1"], "--warmup"),
                           (["--bit", "16", "--use-gpu", "maybe"], "--use-gpu")]:
        one_line_error(capsys, infer.main, [*base, *argv], fragment)
    one_line_error(capsys, infer.main, ["--bit", "16", "--model-dir", a_file, "--img-path", query], "--model-dir")
    one_line_error(capsys, infer.main, ["--bit", "16", "--model-dir", str(tmp_path),
                                        "--img-path", str(tmp_path / "x.jpg")], "--img-path", "x.jpg")
    one_line_error(capsys, infer.main, ["--bit", "16", "--model-dir", str(tmp_path), "--img-path", query],
                   "infer_cfg.yml not found")
