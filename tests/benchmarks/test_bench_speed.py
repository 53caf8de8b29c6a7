"""benchmarks/bench_speed.py: one fresh process per variant with the same threads, bf16 only on a
bf16 CPU, ratios to Paddle Inference fp32 (the workers are faked here; their code is what
tests/test_quantize.py and the encoders' tests run for real)."""
import re

import pytest

from benchmarks import bench_speed

pytestmark = pytest.mark.benchmark


def _fake(calls):
    def run_worker(cmd, env):
        calls.append((cmd, env))
        if "--worker" in cmd and cmd[cmd.index("--worker") + 1] == "prepare":
            return {"onnx": "ok", "paddle": "3.3.1"}
        if "--worker" in cmd:
            precision = cmd[cmd.index("--precision") + 1]
            return {"1": 0.004, "16": {"fp32": 0.002, "bf16": 0.001, "int8": 0.0008}.get(precision, 0.01)}
        return {"wall": [0.32] * 3}  # torch_reference.py --infer: seconds per batch
    return run_worker


def _row(out, name):
    """The numbers of a table row: ms/image at batch 1 and 16, and the ratio."""
    line = next(line for line in out.splitlines() if line.startswith(name + "  "))
    return re.findall(r"\d+\.\d+", line[len(name):])


@pytest.mark.parametrize("flags", [["avx512f", "avx512_vnni", "avx512_bf16"], ["avx2"]])
def test_one_process_per_variant_and_bf16_only_with_the_flags(monkeypatch, capsys, flags):
    calls = []
    monkeypatch.setattr(bench_speed, "run_worker", _fake(calls))
    monkeypatch.setattr(bench_speed, "cpu_flags", lambda: flags)
    bench_speed.main(["--threads", "1", "--repeats", "3"])
    out = capsys.readouterr().out
    assert out.startswith("CPU: ")
    workers = [cmd[cmd.index("--worker") + 1] + ":" + cmd[cmd.index("--precision") + 1] if "--precision" in cmd
               else cmd[cmd.index("--worker") + 1] if "--worker" in cmd else "torch" for cmd, _ in calls]
    bf16 = "avx512_bf16" in flags
    assert workers == ["prepare", "paddle:fp32"] + (["paddle:bf16"] if bf16 else []) + [
        "paddle:int8", "paddle:fp32-plain", "dygraph:fp32", "onnx:fp32"] + ["torch"] * 4
    assert all(env["OMP_NUM_THREADS"] == env["MKL_NUM_THREADS"] == "1" for _, env in calls)
    torch_cmds = [cmd for cmd, _ in calls if cmd[1:3] == ["-m", "benchmarks.torch_reference"]]
    assert [c[c.index("--batch-size") + 1] for c in torch_cmds] == ["1", "16", "1", "16"]
    assert all("--infer" in c and c[c.index("--threads") + 1] == "1" for c in torch_cmds)
    assert ["--amp" in c for c in torch_cmds] == [False, False, True, True]
    assert _row(out, "Paddle Inference fp32 (oneDNN)") == ["4.00", "2.00", "1.00"]
    assert _row(out, "Paddle Inference int8 (oneDNN)") == ["4.00", "0.80", "2.50"]
    if bf16:
        assert _row(out, "Paddle Inference bf16 (oneDNN)") == ["4.00", "1.00", "2.00"]
    else:
        assert "Paddle Inference bf16 (oneDNN): not run, this CPU has neither avx512_bf16 nor amx_bf16" in out
    assert _row(out, "PyTorch eager fp32") == ["320.00", "20.00", "0.10"]  # 0.32 s per batch of 1 and of 16
