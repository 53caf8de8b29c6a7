"""The CPU speed options change speed only: the first training steps give the same losses."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from utils.runtime import configure, cpu, cpuinfo

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

FIVE_STEPS = """
import json, sys
sys.argv = ["train_speed", "-c", "configs/hashnet_lite.yaml", "--crop", "64", "--batch-size", "8",
            "--num-train", "64", "--num-classes", "12", "--threads", "1", "--no-torch"] + sys.argv[1:]
from benchmarks.train_speed import parse_args, project_config, paddle_step
import numpy as np
args = parse_args()
cfg = project_config(args)
step, to_tensor = paddle_step(args, cfg)
rng = np.random.default_rng(1)
losses = []
for i in range(5):
    images = to_tensor(rng.standard_normal((8, 3, 64, 64)).astype("float32"))
    labels = to_tensor((rng.random((8, 12)) < 0.3).astype("float32"))
    indices = to_tensor(np.arange(8 * i, 8 * i + 8, dtype="int64"))
    losses.append(step(images, labels, indices))
import os
print(json.dumps({"losses": losses, "mkl": os.environ.get("MKL_DEBUG_CPU_TYPE")}))
"""


def five_losses(env=None, overrides=()):
    argv = [arg for text in overrides for arg in ("-o", text)]
    environ = dict(os.environ, **(env or {}))
    if environ.get("HASHNET_MKL_AVX2") == "0":
        environ.pop("MKL_DEBUG_CPU_TYPE", None)  # inherited from this process's configure() (conftest)
    out = subprocess.run([sys.executable, "-c", FIVE_STEPS, *argv], cwd=ROOT, capture_output=True, text=True,
                         env=environ, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if environ.get("HASHNET_MKL_AVX2") == "0":
        assert result["mkl"] is None  # really the untuned MKL path
    return result["losses"]


@pytest.mark.slow
def test_speed_options_leave_the_first_five_losses_unchanged():
    tuned = five_losses()
    plain = five_losses({"HASHNET_MKL_AVX2": "0"},
                        ["train.cpu_malloc_reuse=false", "train.onednn_conv=false"])
    assert len(tuned) == 5 and len(set(np.round(tuned, 6))) > 1  # the network is learning, not stuck
    np.testing.assert_allclose(tuned, plain, rtol=1e-5, atol=1e-6)


def test_mkl_switch_only_on_amd_and_never_over_the_users_choice(monkeypatch):
    for vendor, expected in (("AuthenticAMD", "5"), ("GenuineIntel", None)):
        monkeypatch.delenv("MKL_DEBUG_CPU_TYPE", raising=False)
        monkeypatch.delenv("HASHNET_MKL_AVX2", raising=False)
        monkeypatch.setattr(cpuinfo, "cpu_vendor", lambda vendor=vendor: vendor)
        assert cpu.use_mkl_avx2_on_amd() == (expected is not None)
        assert os.environ.get("MKL_DEBUG_CPU_TYPE") == expected, vendor
    monkeypatch.setenv("MKL_DEBUG_CPU_TYPE", "2")  # the user's own setting stays
    monkeypatch.setattr(cpuinfo, "cpu_vendor", lambda: "AuthenticAMD")
    cpu.use_mkl_avx2_on_amd()
    assert os.environ["MKL_DEBUG_CPU_TYPE"] == "2"
    monkeypatch.delenv("MKL_DEBUG_CPU_TYPE")
    monkeypatch.setenv("HASHNET_MKL_AVX2", "0")  # the documented opt-out
    cpu.use_mkl_avx2_on_amd()
    assert "MKL_DEBUG_CPU_TYPE" not in os.environ


def test_training_options_apply_on_cpu_only():
    from paddle import nn

    model = nn.Sequential(nn.Conv2D(3, 4, 3), nn.ReLU(), nn.Conv2D(4, 4, 3))
    cfg = {"train": {"cpu_malloc_reuse": True, "onednn_conv": True}}
    assert cpu.apply_training_options(cfg, "gpu", model) == []
    assert cpu.apply_training_options(cfg, "cpu", model) == ["malloc_reuse", "oneDNN convolution (2 layers)"]
    off = {"train": {"cpu_malloc_reuse": False, "onednn_conv": False}}
    assert cpu.apply_training_options(off, "cpu", nn.Conv2D(3, 4, 3)) == []


@pytest.mark.benchmark
@pytest.mark.parametrize("flag", ["--batch-size=0", "--steps=0", "--threads=0", "--crop=16"])
def test_train_speed_rejects_bad_flags(flag):
    out = subprocess.run([sys.executable, "-m", "benchmarks.train_speed", flag, "--no-torch"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    word = flag.lstrip("-").split("-")[0].split("=")[0]  # --crop is checked as dataset.crop_size
    assert out.returncode == 2 and word in out.stderr.strip().splitlines()[-1]


@pytest.mark.benchmark
def test_train_speed_reports_images_per_second():
    out = subprocess.run([sys.executable, "-m", "benchmarks.train_speed", "-c", "configs/hashnet_lite.yaml", "--crop", "64",
                          "--batch-size", "4", "--steps", "2", "--rounds", "1", "--warmup", "1", "--num-train", "16",
                          "--threads", "1", "--no-torch"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    last = out.stdout.strip().splitlines()[-1]
    assert last.startswith("train img/s: ") and float(last.split(": ")[1]) > 0


def test_configure_sets_the_switch_and_importing_utils_does_not(monkeypatch):
    """The MKL switch (and paddle's log level) come from configure() alone, never from an import."""
    env = {k: v for k, v in os.environ.items() if k not in ("MKL_DEBUG_CPU_TYPE", "GLOG_minloglevel")}
    probe = ("import json, os, utils, utils.runtime, utils.runtime.cpu, utils.runtime.log; "
             "print(json.dumps([os.environ.get('MKL_DEBUG_CPU_TYPE'), os.environ.get('GLOG_minloglevel')]))")
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [None, None]
    monkeypatch.delenv("MKL_DEBUG_CPU_TYPE", raising=False)
    monkeypatch.delenv("HASHNET_MKL_AVX2", raising=False)
    monkeypatch.setattr(cpuinfo, "cpu_vendor", lambda: "AuthenticAMD")
    assert configure() == {"mkl_avx2": True} and os.environ["MKL_DEBUG_CPU_TYPE"] == "5"
    assert configure() == {"mkl_avx2": False} and os.environ["MKL_DEBUG_CPU_TYPE"] == "5"  # idempotent
