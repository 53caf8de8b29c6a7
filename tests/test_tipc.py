"""TIPC, lite mode: train -> eval -> export -> Paddle Inference through test_tipc/ (docs/architecture.md, contracts).

Runs `bash test_tipc/test_train_inference_python.sh test_tipc/configs/hashnet_16/train_infer_python.txt
lite_train_lite_infer` for the one-process CPU form (-1) and, when main_multi_gpu.py exists, the
2-process CPU form (cpu2), in a copy of the repository (the lite data it generates lands there),
writing its logs into a temporary folder; every inference run is compared with the expected codes of
test_tipc/results/hashnet_16/ (test_tipc/compare_results.py, fp32: exact). About 35 s per form on 2 cores.
"""
import os
import re
import subprocess
import sys

import pytest

pytestmark = pytest.mark.tipc

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = "test_tipc/configs/hashnet_16/train_infer_python.txt"
SCRIPT = "test_tipc/test_train_inference_python.sh"
FORMS = ["-1"] + (["cpu2"] if os.path.isfile(os.path.join(ROOT, "main_multi_gpu.py")) else [])
INFER_COMBOS = [(m, t, b) for m in ("True", "False") for t in ("1", "2") for b in ("1", "16")]
NUM_QUERIES = 100  # images in test_tipc/data/lite/images/test/, the lite inference folder


def _last_map(path):
    values = re.findall(r"^mAP@all: ([0-9.]+)$", open(path, encoding="utf-8").read(), flags=re.M)
    assert values, f"no 'mAP@all: <value>' line in {path}"
    return values[-1]


def test_tipc_lite_train_lite_infer(tmp_path, repo_copy):
    out = str(tmp_path)
    env = dict(os.environ, TIPC_OUTPUT_DIR=out, TIPC_GPU_LIST="|".join(FORMS))
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")  # `python` = this interpreter
    env.pop("TIPC_SKIP_MULTI", None)
    proc = subprocess.run(["bash", SCRIPT, CONFIG, "lite_train_lite_infer"], cwd=repo_copy, env=env,
                          capture_output=True, text=True, timeout=900)
    output = proc.stdout[-4000:] + proc.stderr[-4000:]
    results = os.path.join(out, "results_python.log")
    assert os.path.isfile(results), output
    lines = open(results, encoding="utf-8").read().splitlines()

    assert not [line for line in lines if line.startswith("Run failed")], "\n".join(lines)
    assert proc.returncode == 0, output
    ok = {line.rsplit(" - ", 1)[1]: line for line in lines if line.startswith("Run successfully with command - hashnet_16 - ")}

    for form in FORMS:
        expected = {f"train_gpus_{form}.log": None, f"eval_gpus_{form}.log": "--eval",
                    f"export_gpus_{form}.log": "export_model.py --bit 16"}
        for mkldnn, threads, batch in INFER_COMBOS:
            infer = f"python_infer_cpu_gpus_{form}_usemkldnn_{mkldnn}_threads_{threads}_batchsize_{batch}"
            expected[infer + ".log"] = f"--use_mkldnn={mkldnn} --cpu_threads={threads} --batch_size={batch}"
            # every inference run is followed by compare_results against the stored expected codes
            expected[infer + "_compare.log"] = (f"-m test_tipc.compare_results --gt-file=./test_tipc/results/hashnet_16/"
                                                f"lite_train_lite_infer_gpus_{form}_fp32.txt --log-file={out}/{infer}.log")
        for name, needle in expected.items():
            path = os.path.join(out, name)
            assert path in ok, f"no successful step with log {name}:\n" + "\n".join(lines)
            if needle:
                assert needle in ok[path]

        train = ok[os.path.join(out, f"train_gpus_{form}.log")]
        if form == "-1":
            assert "python main_single_gpu.py --bit 16 --device=cpu" in train
        else:
            assert "-m paddle.distributed.launch --nproc_per_node 2" in train and "main_multi_gpu.py" in train
        assert "--seed=0" in train and "--dataset=lite" in train

        # every inference combination prints the same 16-bit code for each query image, and a timing report
        codes = set()
        for mkldnn, threads, batch in INFER_COMBOS:
            text = open(os.path.join(out, f"python_infer_cpu_gpus_{form}_usemkldnn_{mkldnn}_threads_{threads}"
                                          f"_batchsize_{batch}.log"), encoding="utf-8").read()
            found = re.findall(r"\tcode: ([01]{16})\t", text)
            assert len(found) == NUM_QUERIES, text[-2000:]
            codes.add(tuple(found))
            assert f"batch_size: {batch}  device: cpu  cpu_threads: {threads}  mkldnn: {mkldnn}" in text
            assert "inference_time(ms/img)" in text
            compared = open(os.path.join(out, f"python_infer_cpu_gpus_{form}_usemkldnn_{mkldnn}_threads_{threads}"
                                              f"_batchsize_{batch}_compare.log"), encoding="utf-8").read()
            assert f"compare_results: ok: {out}/" in compared, compared
            # exact for the model the codes were made from; a model trained on another CPU: its budget
            assert "100 images, 0 differ" in compared or "other-model budget" in compared, compared
        assert len(codes) == 1, f"form {form}: the inference combinations disagree on the codes"

    # one process: evaluating the saved best weights reproduces the mAP the training reported
    assert _last_map(os.path.join(out, "eval_gpus_-1.log")) == _last_map(os.path.join(out, "train_gpus_-1.log"))
    assert len(ok) == len(FORMS) * (3 + 2 * len(INFER_COMBOS))
