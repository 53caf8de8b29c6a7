"""What a new user does first, exactly as README and the brief write it, in a fresh folder:
`python main_single_gpu.py`, then `python predict.py --bit 64 --img datasets/lite/images/test/00000.jpg --show`
with no other flag, then the exported model, `infer.py` and the service, which all use the main
job's ./output by default and share one database code cache."""
import os
import re
import shutil
import subprocess

import pytest

from tests.commands import python_argv, root_on_path

pytestmark = pytest.mark.slow

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QUERY = "datasets/lite/images/test/00000.jpg"
SHORT = ["--epoch", "1", "-o", "train.eval_untrained=false"]  # the main job, one epoch
ANSWER = [r"query datasets/lite/images/test/00000\.jpg  code [0-9a-f]{16}  \(64 bits: [01]{64}\)",
          r"top 10 of 600 database images:", r"query labels: \S+ \(relevant = shares a label\)",
          r"rank distance  image +labels  relevant"] + \
         [r" +\d+ +\d+  images/database/\d{5}\.jpg +\S+  (yes|no)"] * 10 + [r"picture: \./output/retrieval_00000_64\.jpg"]


def python(*argv, cwd):
    env = {**os.environ, "PYTHONWARNINGS": "default"}  # real warnings would show
    env.pop("DISPLAY", None)
    proc = subprocess.run(python_argv(*argv), cwd=cwd, env=root_on_path(env), capture_output=True, text=True,
                          timeout=600)
    return proc.returncode, proc.stdout, proc.stderr


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A folder where the main job ran (short): ./datasets/lite/ and ./output/ as README leaves them."""
    folder = str(tmp_path_factory.mktemp("project"))
    code, out, err = python("main_single_gpu.py", *SHORT, cwd=folder)
    assert code == 0, err[-3000:]
    assert os.path.isfile(os.path.join(folder, "output", "model_best_64.safetensors"))
    return folder


def test_predict_as_written_prints_its_answer_and_nothing_else(project):
    code, out, err = python("predict.py", "--bit", "64", "--img", QUERY, "--show", cwd=project)
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == len(ANSWER), out
    for pattern, line in zip(ANSWER, lines):
        assert re.fullmatch(pattern, line), (pattern, line)
    # which model and what happened to the cache, on stderr, one line each; no library noise
    assert err.splitlines() == [
        "model: ./output/model_best_64.safetensors (trained weights; no --pretrained or --model-dir given)",
        "encoding the database (no cache yet) -> ./output/database_code_64.npy"], err
    assert os.path.getsize(os.path.join(project, "output", "retrieval_00000_64.jpg")) > 1000


def test_export_infer_and_the_service_use_the_same_model_and_cache(project):
    code, out, err = python("predict.py", "--bit", "64", "--img", QUERY, cwd=project)
    assert code == 0, err
    query_code = out.splitlines()[0].split()[3]
    code, _, err = python("export_model.py", "--bit", "64", "--pretrained", "output/model_best_64",
                          "--save-inference-dir", "output/inference", cwd=project)
    assert code == 0, err
    # the exported model: same codes, and the cache built from the weights is valid for it
    code, out_m, err = python("predict.py", "--bit", "64", "--img", QUERY, "--model-dir", "output/inference", cwd=project)
    assert code == 0 and "cache up to date" in err, err
    assert out_m.splitlines()[0].split()[3] == query_code
    # infer.py runs the main job's export without --model-dir
    code, out_i, err = python("-m", "deploy.inference_python.infer", "--bit", "64", "--img-path", QUERY, cwd=project)
    assert code == 0, err
    assert out_i.split("hex: ")[1].strip() == query_code
    assert err.strip() == "model: ./output/inference/inference_64.json (no --model-dir given)"
    # the service finds the export current: nothing to say about other weights
    from deploy.serving import cli

    said = []
    cwd = os.getcwd()
    os.chdir(project)
    try:
        cli.ensure_model("./output/inference", None, None, True, log=said.append)
    finally:
        os.chdir(cwd)
    assert said == []
    # without trained weights, predict.py falls back to the export and says so
    hidden = os.path.join(project, "hidden")
    os.makedirs(hidden)
    for suffix in (".pdparams", ".pdopt", ".safetensors"):
        shutil.move(os.path.join(project, "output", "model_best_64" + suffix), hidden)
    try:
        code, out_d, err = python("predict.py", "--bit", "64", "--img", QUERY, cwd=project)
        assert code == 0, err
        assert err.splitlines()[0] == ("model: ./output/inference/inference_64.json (exported; no "
                                       "./output/model_best_64 weights, no --pretrained or --model-dir given)")
        assert "cache up to date" in err and out_d.splitlines()[0].split()[3] == query_code
    finally:
        for name in os.listdir(hidden):
            shutil.move(os.path.join(hidden, name), os.path.join(project, "output"))


def test_other_weights_than_the_export_are_named_by_the_service(project, tmp_path):
    import numpy as np

    from deploy.serving import cli
    from utils.storage.weights import read_weights
    from utils.storage.weights import save_safetensors

    state, _ = read_weights(os.path.join(project, "output", "model_best_64"))
    state = {k: np.asarray(v) for k, v in state.items()}
    state["hash_layer.bias"] = state["hash_layer.bias"] + 1
    save_safetensors(state, str(tmp_path / "other_64.safetensors"))
    said = []
    cli.ensure_model(os.path.join(project, "output", "inference"), None, str(tmp_path / "other_64"), True,
                     log=said.append)
    assert len(said) == 1 and "was exported from other weights than" in said[0] and "other_64.safetensors" in said[0]


def test_no_model_at_all_is_one_line_naming_both_paths_and_the_commands(tmp_path):
    code, out, err = python("predict.py", "--bit", "64", "--img", os.path.join(ROOT, "README.md"), cwd=tmp_path)
    assert code == 2 and not out
    assert err.strip() == (
        "error: no 64-bit model: neither trained weights ./output/model_best_64.pdparams nor an exported model "
        "./output/inference/inference_64.json; make them with: python main_single_gpu.py --bit 64 --output-dir "
        "./output, then python export_model.py --bit 64 --pretrained ./output/model_best_64 --save-inference-dir "
        "./output/inference (or give --pretrained PREFIX / --model-dir DIR)")
    code, out, err = python("-m", "deploy.inference_python.infer", "--bit", "64", "--img-path",
                            os.path.join(ROOT, "README.md"), cwd=tmp_path)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "./output/inference/inference_64.json" in err


def test_library_info_logs_are_quiet_and_warnings_stay(capsys):
    import logging

    from utils.runtime.log import quiet_library_logging

    quiet_library_logging()
    for name in ("faiss.loader", "visualdl", "some.other.library"):
        logger = logging.getLogger(name)
        assert not logger.isEnabledFor(logging.INFO) and logger.isEnabledFor(logging.WARNING), name
    from utils.runtime.log import setup_logger

    setup_logger().info("our own progress line")  # the project's logger keeps INFO
    logging.getLogger("faiss.loader").info("Loading faiss with AVX512 support.")
    out = capsys.readouterr()
    assert "our own progress line" in out.out and "faiss" not in out.out + out.err
