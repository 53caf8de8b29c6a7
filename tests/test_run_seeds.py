import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_seed_sweep_reports_mean_and_std(tiny_lite, tmp_path):
    cmd = [sys.executable, "scripts/run_seeds.py", "--seeds", "1", "2", "--bit", "16", "--output-dir", str(tmp_path),
           "--", "--data-path", tiny_lite, "--epoch", "1", "--batch-size", "8", "-o", "model.fc_dim=256",
           "-o", "dataset.resize_size=72", "-o", "dataset.crop_size=64", "-o", "dataset.num_workers=0"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    values = [float(v) for v in re.findall(r"^seed \d: mAP@all ([0-9.]+)$", proc.stdout, re.M)]
    assert len(values) == 2 and values[0] != values[1]  # different seeds, different runs
    mean = re.search(r"over 2 seeds: ([0-9.]+) \+- ([0-9.]+)", proc.stdout)
    assert abs(float(mean.group(1)) - sum(values) / 2) < 1e-4
    assert abs(float(mean.group(2)) - abs(values[0] - values[1]) / 2 ** 0.5) < 1e-4
    assert os.path.isfile(tmp_path / "seeds_16.txt")
