import os
import re
import subprocess

import pytest

from tests.commands import python_argv, root_on_path

pytestmark = pytest.mark.slow

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))



def tiny(tiny_lite):
    return ["--data-path", tiny_lite, "--epoch", "1", "--batch-size", "8", "-o", "model.fc_dim=256",
            "-o", "dataset.resize_size=72", "-o", "dataset.crop_size=64", "-o", "dataset.num_workers=0"]


def run_seeds(*argv):
    proc = subprocess.run(python_argv("-m", "scripts.run_seeds", *argv), env=root_on_path(), capture_output=True,
                          text=True, timeout=600)
    return proc.returncode, proc.stdout, proc.stderr


def test_seed_sweep_reports_mean_and_std(tiny_lite, tmp_path):
    code, out, err = run_seeds("--seeds", "1", "2", "--bit", "16", "--output-dir", str(tmp_path), "--", *tiny(tiny_lite))
    assert code == 0, err[-2000:]
    values = [float(v) for v in re.findall(r"^seed \d: mAP@all ([0-9.]+)$", out, re.M)]
    assert len(values) == 2 and values[0] != values[1]  # different seeds, different runs
    mean = re.search(r"over 2 seeds \(16 bits\): ([0-9.]+) \+- ([0-9.]+)", out)
    assert abs(float(mean.group(1)) - sum(values) / 2) < 1e-4
    assert abs(float(mean.group(2)) - abs(values[0] - values[1]) / 2 ** 0.5) < 1e-4
    assert os.path.isfile(tmp_path / "seeds_16.txt")


def test_flags_after_the_separator_keep_one_folder_per_seed_and_the_real_bit_count(tiny_lite, tmp_path):
    """The issue's command: --bit and --output-dir given to main_single_gpu.py, after `--`."""
    out_dir = tmp_path / "x"
    code, out, err = run_seeds("--seeds", "0", "1", "--", *tiny(tiny_lite), "--bit", "16", "--output-dir", str(out_dir))
    assert code == 0, err[-2000:]
    for seed in (0, 1):
        assert (out_dir / f"seed_{seed}" / "model_best_16.pdparams").is_file()
        assert f"--seed={seed}" not in out  # the seed is passed as its own flag, last
    assert not (out_dir / "model_best_16.pdparams").exists()
    assert sorted(p.name for p in out_dir.iterdir()) == ["seed_0", "seed_1", "seeds_16.txt"]
    assert "seeds_16.txt" in out and "(16 bits)" in (out_dir / "seeds_16.txt").read_text()


def test_conflicting_flags_are_one_line_errors(tmp_path):
    code, _, err = run_seeds("--seeds", "0", "--", "--seed", "3")
    assert code == 2 and err.strip() == "error: --seed after `--`: the seeds come from --seeds"
    code, _, err = run_seeds("--seeds", "0", "--output-dir", str(tmp_path / "a"), "--", "--output-dir",
                             str(tmp_path / "b"))
    assert code == 2 and "disagree" in err and len(err.strip().splitlines()) == 1
    code, _, err = run_seeds("--seeds", "0", "0")
    assert code == 2 and "each seed once" in err
    assert not os.listdir(tmp_path)  # nothing was started
