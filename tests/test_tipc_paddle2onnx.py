"""TIPC paddle2onnx chain, lite mode, as CI runs it: `bash test_tipc/test_paddle2onnx.sh
test_tipc/configs/hashnet_64/paddle2onnx_infer_python.txt lite_train_lite_infer` in a copy of the
repository (logs in a temporary folder): train (the one-process form of train_infer_python.txt),
export with --format onnx, Paddle Inference as the reference, then onnxruntime for every
--cpu_threads x --batch_size, each compared with Paddle Inference's codes and with the stored
expected codes (test_tipc/results/hashnet_64/). 64 bits: the lite model's 100 query codes are
mostly distinct there (84 of 100), so equal codes say more than at 16 bits. About 20 s on 2 cores.
"""
import os
import re
import subprocess
import sys

import pytest

pytestmark = pytest.mark.tipc

CONFIG = "test_tipc/configs/hashnet_64/paddle2onnx_infer_python.txt"
SCRIPT = "test_tipc/test_paddle2onnx.sh"
COMBOS = [(t, b) for t in ("1", "2") for b in ("1", "16")]


def test_paddle2onnx_lite_train_lite_infer(tmp_path, repo_copy):
    out = str(tmp_path)
    env = dict(os.environ, TIPC_OUTPUT_DIR=out)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")  # `python` = this interpreter
    proc = subprocess.run(["bash", SCRIPT, CONFIG, "lite_train_lite_infer"], cwd=repo_copy, env=env,
                          capture_output=True, text=True, timeout=600)
    output = proc.stdout[-4000:] + proc.stderr[-4000:]
    results = os.path.join(out, "results_paddle2onnx.log")
    assert os.path.isfile(results), output
    lines = open(results, encoding="utf-8").read().splitlines()
    assert proc.returncode == 0, output
    assert lines and all(line.startswith("Run successfully with command - hashnet_64 - ") for line in lines), lines
    logs = [line.rsplit(" - ", 1)[1] for line in lines]
    expected = ["train.log", "export.log", "paddle_inference_reference.log", "paddle_inference_codes.log"]
    for threads, batch in COMBOS:
        name = f"onnxruntime_infer_cpu_threads_{threads}_batchsize_{batch}"
        expected += [f"{name}.log", f"{name}_vs_paddle.log", f"{name}_compare.log"]
    assert logs == [os.path.join(out, name) for name in expected]
    assert "main_single_gpu.py --bit 64 --device=cpu" in lines[0] and "--seed=2000" in lines[0]
    assert "export_model.py --bit 64 --format onnx" in lines[1]
    assert os.path.isfile(os.path.join(out, "onnx_model", "inference_64.onnx"))

    paddle_codes = re.findall(r"\tcode: ([01]{64})\t", open(os.path.join(out, "paddle_inference_reference.log")).read())
    assert len(paddle_codes) == 100
    for threads, batch in COMBOS:
        name = os.path.join(out, f"onnxruntime_infer_cpu_threads_{threads}_batchsize_{batch}")
        text = open(name + ".log", encoding="utf-8").read()
        assert re.findall(r"\tcode: ([01]{64})\t", text) == paddle_codes  # the same codes, image by image
        assert f"batch_size: {batch}  device: cpu  cpu_threads: {threads}  onnxruntime: 1.31.1" in text
        for suffix, gt in (("_vs_paddle", "paddle_inference_codes.txt"),
                           ("_compare", "test_tipc/results/hashnet_64/lite_train_lite_infer_gpus_-1_fp32.txt")):
            compared = open(name + suffix + ".log", encoding="utf-8").read()
            assert "compare_results: ok:" in compared, compared
            exact = suffix == "_vs_paddle" or "other-model budget" not in compared  # same machine's model: exact
            assert "100 images, 0 differ" in compared or not exact, compared
            assert gt in compared
