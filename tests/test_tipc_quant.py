"""TIPC's PTQ chain, lite mode: train -> export -> quantize.py --method ptq -> infer.py --precision int8
-> compare_results with the stored fp32 codes of test_tipc/results/hashnet_16/ (int8 budget: at most
4 of 16 bits for any image, 1 on average). About 20 s on 2 cores. The PACT (QAT) chain runs the same
script with train_pact_infer_python.txt (its QAT step is tested in tests/test_quantize.py)."""
import os
import subprocess
import sys

CONFIG = "test_tipc/configs/hashnet_16/train_ptq_infer_python.txt"


def test_ptq_chain_lite(tmp_path, repo_copy):
    out = str(tmp_path)
    env = dict(os.environ, TIPC_OUTPUT_DIR=out)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    proc = subprocess.run(["bash", "test_tipc/test_ptq_inference_python.sh", CONFIG, "lite_train_lite_infer"],
                          cwd=repo_copy, env=env, capture_output=True, text=True, timeout=600)
    output = proc.stdout[-4000:] + proc.stderr[-4000:]
    lines = open(os.path.join(out, "results_python.log"), encoding="utf-8").read().splitlines()
    assert proc.returncode == 0 and len(lines) == 5, output
    assert all(line.startswith("Run successfully with command - hashnet_16 - ") for line in lines), lines
    steps = [line.split(" - ")[2] for line in lines]
    assert steps[0].startswith("python main_single_gpu.py --bit 16 --device=cpu --epoch=1")
    assert steps[2].startswith("python quantize.py --bit 16 --method ptq --calib-images 64 --algo hist")
    assert "--precision=int8" in steps[3] and "inference_int8" in steps[3]
    assert steps[4].startswith("python test_tipc/compare_results.py --gt-file=./test_tipc/results/hashnet_16/"
                               "lite_train_lite_infer_gpus_-1_fp32.txt") and "--max-hamming=4 --max-mean-hamming=1" in steps[4]
    compared = open(os.path.join(out, "python_infer_cpu_precision_int8_threads_2_batchsize_16_compare.log")).read()
    assert "compare_results: ok:" in compared and "100 images" in compared, compared
    quant = open(os.path.join(out, "quant.log")).read()
    assert "mAP@all: fp32 " in quant and " int8 " in quant
