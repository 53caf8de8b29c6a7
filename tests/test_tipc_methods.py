"""TIPC lite mode of the OrthoHash and DPN chains (test_tipc/configs/{orthohash,dpn}_16/train_infer_python.txt):
train -> eval -> export -> Paddle Inference in one CPU process, every inference run compared with the stored
expected codes. One process only (the 2-process form is the same engine, tested on HashNet by tests/test_tipc.py),
to keep CI short: 8.3 min for both chains on a 2-core AMD EPYC at load average about 10 (tipc: slow)."""
import os
import re
import subprocess
import sys

import pytest

pytestmark = pytest.mark.tipc

SCRIPT = "test_tipc/test_train_inference_python.sh"


@pytest.mark.parametrize("model", ["orthohash_16", "dpn_16"])
def test_method_chain_lite_train_lite_infer(model, tmp_path, repo_copy):
    out = str(tmp_path)
    env = dict(os.environ, TIPC_OUTPUT_DIR=out, TIPC_GPU_LIST="-1")
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")  # `python` = this interpreter
    proc = subprocess.run(["bash", SCRIPT, f"test_tipc/configs/{model}/train_infer_python.txt", "lite_train_lite_infer"],
                          cwd=repo_copy, env=env, capture_output=True, text=True, timeout=900)
    output = proc.stdout[-4000:] + proc.stderr[-4000:]
    lines = open(os.path.join(out, "results_python.log"), encoding="utf-8").read().splitlines()
    assert proc.returncode == 0 and not [line for line in lines if line.startswith("Run failed")], output
    ok = [line for line in lines if line.startswith(f"Run successfully with command - {model} - ")]
    method = model.split("_")[0]
    train = next(line for line in ok if "train_gpus_-1.log" in line)
    assert f"-c configs/methods/{method}_lite.yaml" in train and "main_single_gpu.py --bit 16" in train
    assert any("eval_gpus_-1.log" in line for line in ok) and any("export_gpus_-1.log" in line for line in ok)
    infer_logs = sorted(name for name in os.listdir(out) if re.fullmatch(r"python_infer_cpu_gpus_-1_.*_batchsize_\d+\.log", name))
    assert len(infer_logs) == 8  # oneDNN on/off x 1/2 threads x batch 1/16
    codes = set()
    for name in infer_logs:
        found = re.findall(r"\tcode: ([01]{16})\t", open(os.path.join(out, name), encoding="utf-8").read())
        assert len(found) == 100
        codes.add(tuple(found))
        compared = open(os.path.join(out, name[:-len(".log")] + "_compare.log"), encoding="utf-8").read()
        assert "compare_results: ok: " in compared, compared
    assert len(codes) == 1  # every inference combination gives the same codes
    assert len(set(next(iter(codes)))) > 1  # and the 100 query images do not share one code
