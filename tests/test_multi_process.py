"""Data-parallel training with 2 CPU processes (gloo), against a 1-process run."""
import os
import re
import subprocess
import sys

import pytest

pytestmark = pytest.mark.multiprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# exact comparison needs no dropout and no BatchNorm (its batch statistics are per rank)
COMMON = ["--dataset", "lite", "--bit", "16", "--seed", "4", "--threads", "1", "--lr", "0.002",
          "-o", "model.fc_dim=256", "-o", "model.batch_norm=false", "-o", "model.dropout=0",
          "-o", "dataset.resize_size=72", "-o", "dataset.crop_size=64", "-o", "dataset.num_workers=0",
          "-o", "train.log_every=1", "-o", "train.eval_untrained=false"]


def run(argv, log_dir=None):
    """`python argv...` from the test's own working folder; entry points by their absolute paths."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    argv = [os.path.join(ROOT, a) if a.endswith(".py") else a for a in argv]
    proc = subprocess.run([sys.executable, *argv], capture_output=True, text=True, timeout=600, env=env)
    output = proc.stdout + proc.stderr
    if log_dir is not None and os.path.isdir(log_dir):
        for name in sorted(os.listdir(log_dir)):
            if name.startswith("workerlog"):
                output += f"\n=== {name}\n" + open(os.path.join(log_dir, name)).read()
    assert proc.returncode == 0, output[-4000:]
    return output


def launch(tiny_lite, out, *extra):
    log_dir = str(out / "launch")
    return run(["-m", "paddle.distributed.launch", "--nproc_per_node", "2", "--log_dir", log_dir,
                "main_multi_gpu.py", "--data-path", tiny_lite, "--output-dir", str(out), *COMMON, *extra], log_dir)


def step_losses(text):
    return [(int(m.group(1)), int(m.group(2)), float(m.group(3)))
            for m in re.finditer(r"epoch 1 step (\d+)/(\d+) loss ([0-9.]+)", text)]


@pytest.fixture(scope="module")
def two_process_run(tiny_lite, tmp_path_factory):
    out = tmp_path_factory.mktemp("mp")
    return out, launch(tiny_lite, out, "--batch-size", "8", "--epoch", "1")


def test_two_processes_finish_agree_and_split_the_batches(two_process_run, tiny_lite, tmp_path):
    out, text = two_process_run
    rank0 = open(out / "launch" / "workerlog.0").read()
    assert "all 2 ranks hold identical weights and loss memory" in rank0
    assert re.search(r"^mAP@all: \d\.\d{4}$", rank0, re.M)
    assert os.path.isfile(out / "model_last_16.pdparams") and os.path.isfile(out / "model_best_16.pdopt")
    # 32 training images, batch 8 per process: 2 batches per rank against 4 for one process
    assert {total for _, total, _ in step_losses(rank0)} == {2}
    single = run(["main_single_gpu.py", "--data-path", tiny_lite, "--output-dir", str(tmp_path / "one"),
                  "--batch-size", "8", "--epoch", "1", *COMMON])
    assert {total for _, total, _ in step_losses(single)} == {4}
    # only rank 0 writes logs
    assert "mAP@all" not in open(out / "launch" / "workerlog.1").read()


def test_first_step_loss_equals_one_process_with_the_same_global_batch(two_process_run, tiny_lite, tmp_path):
    out, _ = two_process_run
    rank0 = open(out / "launch" / "workerlog.0").read()
    single = run(["main_single_gpu.py", "--data-path", tiny_lite, "--output-dir", str(tmp_path / "one"),
                  "--batch-size", "16", "--epoch", "1", *COMMON])
    two, one = step_losses(rank0), step_losses(single)
    assert two[0][0] == one[0][0] == 1
    assert two[0][2] == pytest.approx(one[0][2], rel=1e-5)  # the log prints 6 decimals


def test_resume_in_two_processes(two_process_run, tiny_lite):
    out, _ = two_process_run
    text = launch(tiny_lite, out, "--batch-size", "8", "--epoch", "2", "--resume", str(out / "model_last_16"))
    assert "resumed from" in text and "all 2 ranks hold identical weights" in text
    import paddle

    assert paddle.load(str(out / "model_last_16.pdopt"))["epoch"] == 1


def test_batchnorm_statistics_are_averaged_so_saved_weights_reproduce_the_reported_map(tiny_lite, tmp_path):
    out = tmp_path / "bn"
    log_dir = str(out / "launch")
    cmd = ["-m", "paddle.distributed.launch", "--nproc_per_node", "2", "--log_dir", log_dir, "main_multi_gpu.py",
           "--data-path", tiny_lite, "--output-dir", str(out), "--batch-size", "8", "--epoch", "1",
           *[("model.batch_norm=true" if a == "model.batch_norm=false" else a) for a in COMMON]]
    text = run(cmd, log_dir)
    reported = re.findall(r"^mAP@all: ([0-9.]+)$", text, re.M)[-1]
    single = run(["main_single_gpu.py", "--eval", "--pretrained", str(out / "model_best_16"), "--bit", "16",
                  "--data-path", tiny_lite, "--output-dir", str(out / "eval")])
    assert re.findall(r"^mAP@all: ([0-9.]+)$", single, re.M)[-1] == reported
