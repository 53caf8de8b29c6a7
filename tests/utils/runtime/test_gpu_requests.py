"""A GPU request on this CPU-only PaddlePaddle build is refused in one line with the install hint
(issue 27 item 8); the GPU paths are dry-run with paddle.device.is_compiled_with_cuda mocked."""
import os
import subprocess
import sys

import numpy as np
import paddle
import pytest

from utils.errors import DeviceError
from utils.runtime.device import require_gpu_build, resolve_device

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


@pytest.fixture
def cuda_build(monkeypatch):
    """This process believes it is a CUDA build with two GPUs."""
    monkeypatch.setattr(paddle.device, "is_compiled_with_cuda", lambda: True)
    monkeypatch.setattr(paddle.device.cuda, "device_count", lambda: 2)


@pytest.fixture
def image(tmp_path):
    import cv2

    path = str(tmp_path / "q.jpg")
    cv2.imwrite(path, np.full((40, 40, 3), 128, np.uint8))
    return path


def test_this_build_is_cpu_only():
    assert not paddle.device.is_compiled_with_cuda()  # else the refusals below are not tested here


def test_gpu_requests_on_a_cpu_build_are_refused_with_the_install_hint():
    with pytest.raises(DeviceError, match="paddlepaddle-gpu") as err:
        require_gpu_build("--use-gpu True")
    assert "--use-gpu True" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(DeviceError, match="paddlepaddle-gpu"):
        resolve_device("gpu")
    assert resolve_device("auto") == "cpu"


def test_gpu_paths_on_a_cuda_build(cuda_build):
    require_gpu_build("--use-gpu True")  # no refusal
    assert resolve_device("auto") == "gpu" and resolve_device("gpu") == "gpu"


def test_infer_use_gpu_on_the_cpu_build_is_one_line(tmp_path, image, capsys):
    from deploy.inference_python import infer

    with pytest.raises(SystemExit) as stop:
        infer.main(["--bit", "16", "--img-path", image, "--model-dir", str(tmp_path), "--use-gpu", "True"])
    assert stop.value.code == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --use-gpu True") and "paddlepaddle-gpu" in lines[0], lines
    assert "device: gpu" not in captured.out


def test_infer_use_gpu_on_a_cuda_build_goes_on_to_the_model(tmp_path, image, capsys, cuda_build):
    from deploy.inference_python import infer

    with pytest.raises(SystemExit):
        infer.main(["--bit", "16", "--img-path", image, "--model-dir", str(tmp_path / "none"), "--use-gpu", "True"])
    err = capsys.readouterr().err
    assert "paddlepaddle-gpu" not in err and "none" in err, err  # past the GPU check, stopped at the model folder


def script(name, env, cwd):
    full = {k: v for k, v in os.environ.items() if k not in ("DRY_RUN", "BITS", "OUTPUT_DIR", "NPROC", "IPS", "GPUS")}
    proc = subprocess.run(["sh", os.path.join(ROOT, "scripts", name), "coco", "/data/coco"],
                          env={**full, "DRY_RUN": "1", "BITS": "16", **env}, cwd=cwd, capture_output=True, text=True,
                          timeout=120)
    return proc.returncode, proc.stdout, proc.stderr


@pytest.mark.slow  # starts a python subprocess (the script asks paddle what it sees)
@pytest.mark.parametrize("name", ["train_multi_gpu.sh", "test_multi_gpu.sh"])
def test_launcher_gpus_on_the_cpu_build_is_one_line(name, tmp_path):
    for env in ({"GPUS": "0,1"}, {"GPUS": "0,1", "IPS": "10.0.0.1,10.0.0.2"}):
        code, out, err = script(name, {"PYTHON": sys.executable, **env}, tmp_path)
        assert code == 2 and not out, out
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: GPUS=0,1") and "paddlepaddle-gpu" in lines[0], err


@pytest.mark.slow  # starts the script (a subprocess)
@pytest.mark.parametrize("name", ["train_multi_gpu.sh", "test_multi_gpu.sh"])
def test_launcher_gpu_form_on_a_cuda_build(name, tmp_path):
    fake = tmp_path / "python"  # answers the script's "how many GPUs" question like a CUDA build with 2
    fake.write_text("#!/bin/sh\necho 2\n")
    fake.chmod(0o755)
    code, out, err = script(name, {"PYTHON": str(fake), "IPS": "10.0.0.1,10.0.0.2"}, tmp_path)
    assert code == 0, err
    (cmd,) = [line[2:].split() for line in out.splitlines() if line.startswith("+ ")]
    assert cmd[1:7] == ["-m", "paddle.distributed.launch", "--ips", "10.0.0.1,10.0.0.2", "--gpus", "0,1"]
    assert cmd[cmd.index("--device") + 1] == "gpu"
