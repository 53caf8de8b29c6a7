"""TIPC, lite mode, for each method that learns without labels: train -> eval -> export -> Paddle Inference
through test_tipc/ (test_tipc/configs/<method>_16/train_infer_python.txt), one CPU process, one epoch;
every inference run is compared with the expected codes of test_tipc/results/<method>_16/ (fp32: exact on
the CPU that wrote them, the other-model budget elsewhere). About 30 s per method on 2 cores."""
import os
import re
import subprocess
import sys

import pytest

pytestmark = pytest.mark.tipc

SCRIPT = "test_tipc/test_train_inference_python.sh"
METHODS = ["bihalf", "greedyhash_unsup", "cibhash"]


@pytest.mark.parametrize("method", METHODS)
def test_tipc_lite_train_lite_infer(method, tmp_path, repo_copy):
    model = f"{method}_16"
    env = dict(os.environ, TIPC_OUTPUT_DIR=str(tmp_path), TIPC_GPU_LIST="-1")
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")  # `python` = this interpreter
    proc = subprocess.run(["bash", SCRIPT, f"test_tipc/configs/{model}/train_infer_python.txt", "lite_train_lite_infer"],
                          cwd=repo_copy, env=env, capture_output=True, text=True, timeout=900)
    output = proc.stdout[-4000:] + proc.stderr[-4000:]
    results = tmp_path / "results_python.log"
    assert results.is_file(), output
    lines = results.read_text(encoding="utf-8").splitlines()
    assert not [line for line in lines if line.startswith("Run failed")], "\n".join(lines)
    assert proc.returncode == 0, output
    ok = {line.rsplit(" - ", 1)[1]: line for line in lines if line.startswith(f"Run successfully with command - {model} - ")}
    train = ok[str(tmp_path / "train_gpus_-1.log")]
    assert f"-c configs/methods/{method}_lite.yaml" in train and "--epoch=1" in train
    assert str(tmp_path / "eval_gpus_-1.log") in ok and str(tmp_path / "export_gpus_-1.log") in ok
    codes = set()
    for mkldnn in ("True", "False"):
        name = f"python_infer_cpu_gpus_-1_usemkldnn_{mkldnn}_threads_2_batchsize_16"
        assert str(tmp_path / f"{name}.log") in ok and str(tmp_path / f"{name}_compare.log") in ok, "\n".join(lines)
        found = re.findall(r"\tcode: ([01]{16})\t", (tmp_path / f"{name}.log").read_text(encoding="utf-8"))
        assert len(found) == 100
        codes.add(tuple(found))
        compared = (tmp_path / f"{name}_compare.log").read_text(encoding="utf-8")
        assert "100 images, 0 differ" in compared or "other-model budget" in compared, compared
    assert len(codes) == 1  # oneDNN on and off give the same codes
    trained = re.findall(r"^mAP@all: ([0-9.]+)$", (tmp_path / "train_gpus_-1.log").read_text(encoding="utf-8"), re.M)
    evaluated = re.findall(r"^mAP@all: ([0-9.]+)$", (tmp_path / "eval_gpus_-1.log").read_text(encoding="utf-8"), re.M)
    assert trained and trained[-1] == evaluated[-1]  # the saved model is the one that was evaluated
