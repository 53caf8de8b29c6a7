"""benchmarks/train_speed.py is fair by construction: what each process imports, and who runs when."""
import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.benchmark

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY = ["--batch-size", "4", "--steps", "2", "--warmup", "1", "--num-train", "16", "--num-classes", "12",
        "--threads", "1"]
LITE = ["-c", "configs/hashnet_lite.yaml", "--crop", "64"]

IMPORTS_AFTER_RUN = """
import json, runpy, sys
sys.argv = [sys.argv[1]] + sys.argv[2:]
try:
    runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
except SystemExit as exc:
    code = exc.code
else:
    code = 0
frameworks = sorted({m.split(".")[0] for m in sys.modules if m.split(".")[0] in ("paddle", "torch")})
project = sorted(m for m in sys.modules if m.split(".")[0] in ("utils", "models"))
print(json.dumps({"code": code, "modules": frameworks, "project": project}))
"""


def imports_of(script, *argv):
    out = subprocess.run([sys.executable, "-c", IMPORTS_AFTER_RUN, script, *argv], cwd=ROOT, capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout, json.loads(out.stdout.strip().splitlines()[-1])


def test_the_torch_reference_imports_torch_and_nothing_of_the_project():
    pytest.importorskip("torch")  # requirements-dev.txt pins the CPU build; CI installs it
    printed, result = imports_of("benchmarks.torch_reference", "--json", "--crop", "64", "--fc-dim", "64",
                                 "--batch-norm", "--dropout", "0", *TINY)
    assert result == {"code": 0, "modules": ["torch"], "project": ["utils", "utils.runtime", "utils.runtime.cpuinfo"]}
    times = json.loads(printed.strip().splitlines()[-2])
    assert len(times["wall"]) == 2 and times["threads"] == 1 and all(t > 0 for t in times["wall"])


def test_the_harness_process_imports_neither_framework():
    printed, result = imports_of("benchmarks.train_speed", *LITE, *TINY, "--rounds", "1", "--no-torch")
    assert result == {"code": 0, "modules": [], "project": ["utils", "utils.runtime", "utils.runtime.cpuinfo"]}
    assert printed.splitlines()[0].startswith("CPU: ") and "train img/s: " in printed


def test_runs_one_process_at_a_time_alternating_with_the_same_threads(monkeypatch, capsys):
    from benchmarks import train_speed

    calls = []

    def fake_run(name, cmd, env):
        calls.append((name, cmd, env))
        wall = 0.1 if name.startswith("torch") else 0.2
        return {"wall": [wall] * 2, "cpu": [0.1] * 2, "loss": [1.0] * 2}

    monkeypatch.setattr(train_speed, "run_json", fake_run)
    monkeypatch.setenv("MKL_DEBUG_CPU_TYPE", "7")  # the user's own environment reaches both sides as it is
    status = train_speed.main([*LITE, *TINY, "--rounds", "3", "--check-baseline"])
    out = capsys.readouterr().out
    order = [name for name, _, _ in calls]
    assert order == ["paddle", "torch", "torch alone", "torch alone", "torch", "paddle",
                     "paddle", "torch", "torch alone"]
    envs = {name: env for name, _, env in calls}
    for name in ("paddle", "torch"):
        assert envs[name]["OMP_NUM_THREADS"] == envs[name]["MKL_NUM_THREADS"] == "1"
        assert envs[name]["MKL_DEBUG_CPU_TYPE"] == "7"
    assert envs["torch alone"] == dict(os.environ)  # the plain environment, as a user runs it
    torch_cmd = dict((name, cmd) for name, cmd, _ in calls)["torch"]
    assert torch_cmd[1:3] == ["-m", "benchmarks.torch_reference"]
    assert torch_cmd[torch_cmd.index("--threads") + 1] == "1" and "--batch-norm" in torch_cmd
    assert torch_cmd[torch_cmd.index("--crop") + 1] == "64" and torch_cmd[torch_cmd.index("--fc-dim") + 1] == "1024"
    assert "baseline check: torch reference alone 40.0 img/s, inside the harness 40.0 img/s, difference +0.0%" in out
    assert status == 0 and out.rstrip().endswith("train img/s: 20.0")


def test_check_baseline_fails_when_the_harness_slows_the_yardstick(monkeypatch, capsys):
    from benchmarks import train_speed

    def fake_run(name, cmd, env):
        wall = {"paddle": 0.2, "torch": 0.106, "torch alone": 0.1}[name]  # 5.7% slower inside
        return {"wall": [wall] * 2, "cpu": [0.1] * 2, "loss": [1.0] * 2}

    monkeypatch.setattr(train_speed, "run_json", fake_run)
    assert train_speed.main([*LITE, *TINY, "--rounds", "1", "--check-baseline"]) == 1
    assert "difference -5.7% (limit 5%): FAIL" in capsys.readouterr().out


def test_configs_the_torch_reference_cannot_mirror_are_refused():
    out = subprocess.run([sys.executable, "-m", "benchmarks.train_speed", "-c", "configs/methods/csq_lite.yaml", *TINY],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 2
    assert "the torch reference implements AlexNet + the HashNet loss only" in out.stderr.strip().splitlines()[-1]


def test_help_explains_the_flags():
    """--help printed nothing but a traceback while a help text held a bare '%'."""
    out = subprocess.run([sys.executable, "-m", "benchmarks.train_speed", "--help"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "--check-baseline" in out.stdout and "more than 5%" in out.stdout.replace("\n", " ").replace("  ", " ")


@pytest.mark.parametrize("status", ["allowed", "refused: train.amp bf16 on CPU needs bf16 instructions (...)"])
def test_amp_bf16_times_both_bf16_steps_or_says_why_not(monkeypatch, capsys, status):
    from benchmarks import train_speed

    calls = []

    def fake_run(name, cmd, env):
        calls.append((name, cmd))
        wall = {"paddle": 0.2, "torch": 0.4, "paddle bf16": 0.05}.get(name, 0.1)
        return {"wall": [wall] * 2, "cpu": [0.1] * 2, "loss": [1.0] * 2}

    monkeypatch.setattr(train_speed, "run_json", fake_run)
    monkeypatch.setattr(train_speed, "bf16_training_status", lambda: status)
    assert train_speed.main([*LITE, *TINY, "--rounds", "1", "--amp", "bf16"]) == 0
    out = capsys.readouterr().out
    commands = dict(calls)
    assert commands["torch bf16 autocast"] == commands["torch"] + ["--amp", "bf16"]
    assert "train.amp=bf16" not in commands["paddle"]
    if status == "allowed":
        assert commands["paddle bf16"] == commands["paddle"] + ["-o", "train.amp=bf16"]
        assert "paddle bf16 / torch bf16 autocast: 2.00" in out
    else:
        assert "paddle bf16" not in commands and f"paddle bf16 training: {status}" in out


def test_bf16_training_status_is_asked_of_the_project():
    from benchmarks import train_speed
    from utils.runtime.cpuinfo import bf16_flags

    status = train_speed.bf16_training_status()
    assert status == "allowed" if bf16_flags() else status.startswith("refused: train.amp bf16 on CPU needs")


def test_torch_reference_times_bf16_autocast_and_inference_with_torch_only():
    pytest.importorskip("torch")
    for extra in (["--amp", "bf16"], ["--infer", "--amp", "bf16"]):
        printed, result = imports_of("benchmarks.torch_reference", "--json", "--crop", "64", "--fc-dim", "64",
                                     *TINY, *extra)
        assert result["code"] == 0 and result["modules"] == ["torch"]
        assert len(json.loads(printed.strip().splitlines()[-2])["wall"]) == 2
