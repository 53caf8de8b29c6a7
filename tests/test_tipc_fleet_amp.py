"""The fleet (several machines) and AMP (fp16) GPU chains, by construction: TIPC_DRY_RUN=1 makes
test_train_inference_python.sh print every step of
test_tipc/configs/hashnet_<K>/train_linux_gpu_fleet_amp_infer_python_linux_gpu_cpu.txt as on a
machine with 8 GPUs, and each command is handed to the parser that would run it: paddle's
launcher (its own parse_args), main_multi_gpu.py's flags and config checks (its main(), with the
worker replaced), main_single_gpu.py's for --eval, export_model.py's and infer.py's."""
import importlib
import os
import shlex
import subprocess
import sys

import pytest

pytestmark = pytest.mark.tipc

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEEDS = {16: 0, 32: 2000, 48: 200, 64: 2000}
NAME = "train_linux_gpu_fleet_amp_infer_python_linux_gpu_cpu.txt"


def _dry_run(repo, config, out):
    env = dict(os.environ, TIPC_DRY_RUN="1", TIPC_OUTPUT_DIR=out)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    for key in ("TIPC_GPU_LIST", "TIPC_SKIP_MULTI"):
        env.pop(key, None)
    proc = subprocess.run(["bash", "test_tipc/test_train_inference_python.sh", config, "lite_train_lite_infer"],
                          cwd=repo, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    lines = open(os.path.join(out, "results_python.log"), encoding="utf-8").read().splitlines()
    assert lines and all(line.startswith("Dry run - ") for line in lines), lines  # nothing ran, nothing skipped
    return [shlex.split(line.split(" - ", 2)[2].rsplit(" - ", 1)[0]) for line in lines]


def _launch_args(argv, monkeypatch):
    """paddle.distributed.launch's own parsing of its command line (it reads sys.argv)."""
    from paddle.distributed.launch.context.args_envs import parse_args

    monkeypatch.setattr(sys, "argv", ["launch", *argv])
    known, unknown = parse_args()
    assert not unknown, unknown
    return known


@pytest.mark.parametrize("bit", sorted(SEEDS))
def test_fleet_amp_commands_are_accepted_by_what_runs_them(bit, repo_copy, tmp_path, monkeypatch):
    import main_multi_gpu
    from utils.cli.flags import config_from_args, train_parser

    config = f"test_tipc/configs/hashnet_{bit}/{NAME}"
    commands = _dry_run(repo_copy, config, str(tmp_path / "tipc"))
    monkeypatch.chdir(repo_copy)  # the commands' relative paths (configs/, ./test_tipc/data/) are the repository's
    trains = [c for c in commands if c[:3] == ["python", "-m", "paddle.distributed.launch"]]
    assert len(trains) == 2, commands  # gpu_list 0,1 and xx.xx.xx.xx,yy.yy.yy.yy;0,1

    started = []
    monkeypatch.setattr(main_multi_gpu, "worker", started.append)  # main() parses and checks, then starts this
    for train, ips in zip(trains, (None, "xx.xx.xx.xx,yy.yy.yy.yy")):
        launch = _launch_args(train[3:], monkeypatch)
        assert launch.devices == "0,1" and launch.ips == ips and launch.training_script == "main_multi_gpu.py"
        assert launch.log_dir.endswith("/launch_log")
        main_multi_gpu.main(launch.training_script_args)
        cfg = started.pop()
        assert cfg["train"]["amp"] == "fp16" and cfg["device"] == "gpu"
        assert cfg["model"]["bit"] == bit and cfg["train"]["seed"] == SEEDS[bit] and cfg["train"]["epochs"] == 1
        assert cfg["dataset"]["name"] == "lite" and cfg["model"]["fc_dim"] == 256

    evals = [c for c in commands if "main_single_gpu.py" in c]
    assert len(evals) == 2
    for command in evals:
        assert command[0].startswith("CUDA_VISIBLE_DEVICES=0") and command[1] == "python"
        cfg = config_from_args(train_parser("").parse_args(command[3:]))
        assert cfg["eval_only"] and cfg["device"] == "gpu" and cfg["pretrained"].endswith(f"/model_best_{bit}")

    export = importlib.import_module("export_model")
    infer = importlib.import_module("deploy.inference_python.infer")
    exports = [c for c in commands if "export_model.py" in c]
    infers = [c for c in commands if "deploy.inference_python.infer" in c]
    assert len(exports) == 2 and len(infers) == 2 * 10  # per entry: GPU batch 1/16, CPU 2 x 2 x 2
    for command in exports:
        args = export.parse_args(command[2:])
        os.makedirs(args.save_inference_dir, exist_ok=True)
    gpu = 0
    for command in infers:
        env = command[0] if command[0].startswith("CUDA_VISIBLE_DEVICES=") else None
        args = infer.parse_args(command[4:] if env else command[3:])
        assert args.bit == bit and os.path.basename(args.model_dir) == "inference"
        if args.use_gpu:
            gpu += 1
            assert env == "CUDA_VISIBLE_DEVICES=0"
    assert gpu == 4




def test_amp_is_refused_on_cpu_and_checked_as_a_config_key(tiny_lite, tmp_path, capsys):
    import main_single_gpu

    base = ["--bit", "16", "--dataset", "lite", "--data-path", tiny_lite, "--epoch", "1", "--batch-size", "8",
            "--device", "cpu", "--output-dir", str(tmp_path / "out"), "-o", "model.fc_dim=64",
            "-o", "dataset.num_workers=0", "-o", "train.eval_untrained=false"]
    from utils.runtime.cpuinfo import bf16_flags

    # on a CPU without bf16 instructions the missing flags are refused first (CI machines differ)
    bf16_refusal = ("train.amp bf16 on CPU computes the convolutions in bf16 through the oneDNN convolution"
                    if bf16_flags() else "avx512_bf16 nor amx_bf16")
    for extra, fragment in ((["-o", "train.amp=fp16"], "train.amp fp16 trains on a GPU (this run's device is cpu)"),
                            (["-o", "train.amp=bf16", "-o", "train.onednn_conv=false"], bf16_refusal),
                            (["-o", "train.amp=int8"], "train.amp: must be null (fp32), fp16 or bf16")):
        with pytest.raises(SystemExit) as exc:
            main_single_gpu.main(base + extra)
        assert exc.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and fragment in err[0], err
    assert not os.path.exists(tmp_path / "out" / "model_best_16.pdparams")
