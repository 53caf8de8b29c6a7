"""main_multi_gpu.py --nprocs N (paddle.distributed.spawn): a user error of the processes is one line
from the parent, not one line per process and a traceback (issue 27 item 7); a run prints no
library chatter (spawn's CPU warning and port log, the processes' import warning and FLAGS report)."""
import os
import subprocess
import sys

import pytest

from utils.cli.spawn import one_error

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
TINY = ["--epoch", "1", "--batch-size", "8", "-o", "model.fc_dim=64", "-o", "dataset.resize_size=72", "-o",
        "dataset.crop_size=64", "-o", "dataset.num_workers=0", "-o", "train.eval_untrained=false"]


def test_the_same_message_of_every_process_is_said_once_different_ones_each():
    same = one_error([(0, 2, "--data-path: not found"), (1, 2, "--data-path: not found")])
    assert (str(same), same.exit_code) == ("--data-path: not found", 2)
    both = one_error([(0, 143, "interrupted at epoch 2 step 1"), (1, 2, "disk full")])
    assert (str(both), both.exit_code) == ("process 0: interrupted at epoch 2 step 1; process 1: disk full", 143)


def spawn(tmp_path, *argv):
    return subprocess.run([sys.executable, os.path.join(ROOT, "main_multi_gpu.py"), "--nprocs", "2", *argv],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)


@pytest.mark.slow  # two training processes
@pytest.mark.multiprocess
def test_a_user_error_of_the_processes_is_one_line(tmp_path):
    proc = spawn(tmp_path, "--data-path", str(tmp_path / "missing"), "--output-dir", str(tmp_path / "out"))
    assert proc.returncode == 2 and proc.stdout == "", proc.stdout
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --data-path: no lite data set at "), proc.stderr


@pytest.mark.slow
@pytest.mark.multiprocess
def test_a_two_process_run_prints_its_log_and_nothing_else(tiny_lite, tmp_path):
    out = tmp_path / "out"
    proc = spawn(tmp_path, "--data-path", tiny_lite, "--output-dir", str(out), *TINY)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert os.path.isfile(out / "model_best_64.safetensors")
    assert "all 2 ranks hold identical weights" in proc.stdout
    chatter = [line for line in proc.stderr.splitlines() if not line.startswith("[")]  # ours: [HH:MM:SS] lines
    assert chatter == [], proc.stderr
