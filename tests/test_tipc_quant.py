"""TIPC's low-precision chains, lite mode (PTQ + bf16 inference; bf16 training below): train -> export -> quantize.py --method ptq -> infer.py
--precision fp32 / bf16 / int8 -> compare_results with the stored fp32 codes of test_tipc/results/hashnet_16/
(fp32 exact; bf16 at most 2 of 16 bits for any image, 0.5 on average; int8 at most 4, 1 on average).
bf16 runs where the CPU has avx512_bf16 or amx_bf16, else the chain says `Skipped`. About 20 s on 2
cores. The PACT (QAT) chain runs the same script with train_pact_infer_python.txt (below; its QAT step is
tested in tests/test_quantize.py)."""
import os
import subprocess
import sys

import pytest

from utils.inference.precision import bf16_flags

pytestmark = pytest.mark.tipc

CONFIG = "test_tipc/configs/hashnet_16/train_ptq_infer_python.txt"


def _run_chain(config, out, repo_copy):
    """Run test_ptq_inference_python.sh on `config` in lite mode with its logs in `out`: (the process, the
    tail of its output, the lines of results_python.log)."""
    env = dict(os.environ, TIPC_OUTPUT_DIR=out)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    proc = subprocess.run(["bash", "test_tipc/test_ptq_inference_python.sh", config, "lite_train_lite_infer"],
                          cwd=repo_copy, env=env, capture_output=True, text=True, timeout=600)
    output = proc.stdout[-4000:] + proc.stderr[-4000:]
    return proc, output, open(os.path.join(out, "results_python.log"), encoding="utf-8").read().splitlines()


def test_ptq_chain_lite(tmp_path, repo_copy):
    out = str(tmp_path)
    proc, output, lines = _run_chain(CONFIG, out, repo_copy)
    precisions = ["fp32", "bf16", "int8"] if bf16_flags() else ["fp32", "int8"]
    assert proc.returncode == 0, output
    if not bf16_flags():
        assert lines.pop(5) == ("Skipped - hashnet_16 - inference --precision bf16: this CPU has neither "
                                "avx512_bf16 nor amx_bf16")
    assert len(lines) == 3 + 2 * len(precisions), lines
    assert all(line.startswith("Run successfully with command - hashnet_16 - ") for line in lines), lines
    steps = [line.split(" - ")[2] for line in lines]
    assert steps[0].startswith("python main_single_gpu.py --bit 16 --device=cpu --epoch=1")
    assert steps[2].startswith("python quantize.py --bit 16 --method ptq --calib-images 64 --algo hist")
    budgets = {"fp32": "", "bf16": " --max-hamming=2 --max-mean-hamming=0.5", "int8": " --max-hamming=4 --max-mean-hamming=1"}
    for i, precision in enumerate(precisions):
        infer, compare = steps[3 + 2 * i], steps[4 + 2 * i]
        assert f"--precision={precision}" in infer
        assert ("inference_int8" in infer) == (precision == "int8")
        assert compare.startswith("python -m test_tipc.compare_results --gt-file=./test_tipc/results/hashnet_16/"
                                  "lite_train_lite_infer_gpus_-1_fp32.txt") and compare.endswith(budgets[precision])
        compared = open(os.path.join(out, f"python_infer_cpu_precision_{precision}_threads_2_batchsize_16_compare.log")).read()
        assert "compare_results: ok:" in compared and "100 images" in compared, compared
        if precision == "fp32" and "other-model budget" not in compared:  # the model the codes were made from
            assert "100 images, 0 differ" in compared
    quant = open(os.path.join(out, "quant.log")).read()
    assert "mAP@all: fp32 " in quant and " int8 " in quant


def test_bf16_training_chain_lite(tmp_path, repo_copy):
    """train_amp_infer_python.txt: auto_cast bf16 (-o train.amp=bf16) training, export, fp32 and bf16
    inference compared with the bf16-trained model's stored codes; on a CPU without bf16, one Skipped
    line and exit 1 (nothing can run)."""
    out = str(tmp_path)
    proc, output, lines = _run_chain("test_tipc/configs/hashnet_16/train_amp_infer_python.txt", out, repo_copy)
    if not bf16_flags():
        assert proc.returncode == 1 and lines == [
            "Skipped - hashnet_16 - training with auto_cast bf16: this CPU has neither avx512_bf16 nor amx_bf16"]
        return
    assert proc.returncode == 0 and len(lines) == 6, output
    assert all(line.startswith("Run successfully with command - hashnet_16 - ") for line in lines), lines
    assert "-o train.amp=bf16" in lines[0]
    gt = "--gt-file=./test_tipc/results/hashnet_16/lite_train_lite_infer_gpus_-1_amp_bf16_fp32.txt"
    for precision in ("fp32", "bf16"):
        compared = open(os.path.join(out, f"python_infer_cpu_precision_{precision}_threads_2_batchsize_16_compare.log")).read()
        assert "compare_results: ok:" in compared, compared
        if precision == "fp32" and "other-model budget" not in compared:  # the model the codes were made from
            assert "100 images, 0 differ" in compared
    assert all(gt in line for line in lines if "test_tipc.compare_results" in line)
    assert "CPU speed options: malloc_reuse, oneDNN convolution in bf16 (5 layers)" in open(os.path.join(out, "train.log")).read()


def test_pact_chain_lite(tmp_path, repo_copy):
    """train_pact_infer_python.txt (PaddleClas's pact_train slot): train, export, quantize.py --method qat
    (QAT fine-tuning, then the int8 conversion), infer.py --precision int8, compare_results with the fp32
    codes: the fine-tuned weights move, so the budget is on the mean (K/4 bits) only. About 15 s."""
    out = str(tmp_path)
    proc, output, lines = _run_chain("test_tipc/configs/hashnet_16/train_pact_infer_python.txt", out, repo_copy)
    assert proc.returncode == 0 and len(lines) == 5, output
    assert all(line.startswith("Run successfully with command - hashnet_16 - ") for line in lines), lines
    steps = [line.split(" - ")[2] for line in lines]
    assert steps[2].startswith("python quantize.py --bit 16 --method qat")
    assert "--precision=int8" in steps[3] and "inference_int8" in steps[3]
    assert steps[4].endswith("--max-hamming=16 --max-mean-hamming=4")
    compared = open(os.path.join(out, "python_infer_cpu_precision_int8_threads_2_batchsize_16_compare.log")).read()
    assert "compare_results: ok:" in compared and "100 images" in compared, compared
    quant = open(os.path.join(out, "quant.log")).read()
    assert "mAP@all: fp32 " in quant and " int8 " in quant and "mean Hamming distance fp32 vs int8" in quant
