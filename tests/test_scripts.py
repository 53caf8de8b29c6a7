"""The shell scripts users start with `sh` (dash on Debian and Ubuntu), `bash` or `./`.

scripts/*.sh are POSIX sh; the test_tipc/ scripts re-run themselves under bash when started by
another shell. Each runs here under dash: the dry run (DRY_RUN=1) for the commands every script
would start, then for real on tiny lite data (one bit length, one epoch) in a copy of the repository.
"""
import os
import re
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SH_SCRIPTS = ["train_multi_gpu.sh", "test_multi_gpu.sh", "train_single_gpu.sh", "test_single_gpu.sh", "tipc.sh",
              "install_test_tools.sh", "launcher.sh"]
TIPC_SCRIPTS = ["test_train_inference_python.sh", "test_paddle2onnx.sh", "test_ptq_inference_python.sh", "prepare.sh",
                "common_func.sh"]
SEEDS = {16: 0, 32: 2000, 48: 200, 64: 2000}
TINY = ["--batch-size", "8", "-o", "model.fc_dim=64", "-o", "dataset.resize_size=72", "-o", "dataset.crop_size=64",
        "-o", "dataset.num_workers=0", "-o", "train.eval_untrained=false"]


def dash():
    path = shutil.which("dash")
    if path is None:
        pytest.fail("dash (Debian's /bin/sh) not found: install it (sh scripts/install_test_tools.sh)")
    return path


def run(shell, script, *args, env=None, cwd, timeout=600):
    full_env = {k: v for k, v in os.environ.items() if k not in ("DRY_RUN", "BITS", "OUTPUT_DIR", "NPROC", "IPS")}
    full_env.update({"PYTHON": sys.executable, "PYTHONWARNINGS": "ignore", **(env or {})})
    cmd = [script, *args] if shell is None else [shell, script, *args]
    proc = subprocess.run(cmd, cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout)
    return proc.returncode, proc.stdout, proc.stderr


def commands(stdout):
    return [line[2:].split() for line in stdout.splitlines() if line.startswith("+ ")]


def last_map(text):
    found = re.findall(r"^mAP@all: ([0-9.]+)$", text, re.M)
    assert found, text[-3000:]
    return found[-1]


def test_every_shell_script_is_checked_here():
    assert sorted(n for n in os.listdir(os.path.join(ROOT, "scripts")) if n.endswith(".sh")) == sorted(SH_SCRIPTS)
    assert sorted(n for n in os.listdir(os.path.join(ROOT, "test_tipc")) if n.endswith(".sh")) == sorted(TIPC_SCRIPTS)


@pytest.mark.parametrize("name", SH_SCRIPTS)
def test_scripts_are_posix_sh(name):
    path = os.path.join(ROOT, "scripts", name)
    assert open(path, encoding="utf-8").readline().strip() == "#!/bin/sh"
    assert os.access(path, os.X_OK), f"{path} is not executable (./scripts/{name} must work)"
    code, _, err = run(dash(), "-n", path, cwd=ROOT)
    assert code == 0, err
    for bashism in ("[[", "pipefail", "source ", "declare ", "${@:", "BASH_SOURCE", "<<<", "function "):
        assert bashism not in open(path, encoding="utf-8").read(), (name, bashism)


@pytest.mark.parametrize("name", TIPC_SCRIPTS)
def test_tipc_scripts_rerun_themselves_under_bash(name, tmp_path):
    path = os.path.join(ROOT, "test_tipc", name)
    first, guard = open(path, encoding="utf-8").read().splitlines()[:2]
    assert first == "#!/usr/bin/env bash" and guard.startswith('[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"')
    assert os.access(path, os.X_OK)
    code, out, err = run(dash(), path, cwd=tmp_path)
    if name == "common_func.sh":  # a library: defines functions and exits 0
        assert code == 0 and not err, err
    else:  # under bash it gets to its usage line (dash would stop at the first bash-only line)
        assert code == 2 and err.startswith(f"usage: bash {path} CONFIG MODE"), err


@pytest.mark.slow
@pytest.mark.parametrize("name", ["train_multi_gpu.sh", "test_multi_gpu.sh", "train_single_gpu.sh",
                                  "test_single_gpu.sh"])
def test_dry_run_prints_every_bit_length_with_the_reference_seeds(name, tmp_path):
    script = os.path.join(ROOT, "scripts", name)
    multi = "multi" in name
    positional = ["coco", "/data/coco"] + (["2"] if multi else [])
    code, out, err = run(dash(), script, *positional, "--epoch", "3", "-o", "train.lr=0.01", env={"DRY_RUN": "1"},
                         cwd=tmp_path)
    assert code == 0, err
    cmds = commands(out)
    assert [c[c.index("--bit") + 1] for c in cmds] == ["16", "32", "48", "64"]
    for cmd in cmds:
        bit = int(cmd[cmd.index("--bit") + 1])
        assert cmd[0] == sys.executable and cmd[-4:] == ["--epoch", "3", "-o", "train.lr=0.01"]
        assert cmd[cmd.index("--dataset") + 1] == "coco" and cmd[cmd.index("--data-path") + 1] == "/data/coco"
        own = "./output/coco_multi_gpu" if multi else "./output/coco_single_gpu"  # test_x.sh reads what train_x.sh wrote
        assert cmd[cmd.index("--output-dir") + 1] == own
        if name.startswith("train"):
            assert cmd[cmd.index("--seed") + 1] == str(SEEDS[bit])
        else:
            assert "--eval" in cmd and cmd[cmd.index("--pretrained") + 1] == f"{own}/model_best_{bit}"
        if multi:  # this is a CPU-only PaddlePaddle build: N CPU processes with gloo
            assert cmd[1:6] == ["-m", "paddle.distributed.launch", "--nproc_per_node", "2", "--log_dir"]
            assert cmd[cmd.index("--device") + 1] == "cpu"
        else:
            assert cmd[1] == "main_single_gpu.py"
    # the same under bash and started as ./script, and BITS / OUTPUT_DIR / IPS from the environment
    env = {"DRY_RUN": "1", "BITS": "32", "OUTPUT_DIR": str(tmp_path / "o"), "IPS": "10.0.0.1,10.0.0.2"}
    for shell in ("bash", None):
        code, out2, err = run(shell, script, *positional, env=env, cwd=tmp_path)
        assert code == 0, err
        (cmd,) = commands(out2)
        assert cmd[cmd.index("--bit") + 1] == "32" and cmd[cmd.index("--output-dir") + 1] == str(tmp_path / "o")
        if multi:
            assert cmd[3:7] == ["--ips", "10.0.0.1,10.0.0.2", "--nproc_per_node", "2"]


@pytest.mark.parametrize("kind", ["single_gpu", "multi_gpu"])
def test_the_test_scripts_evaluate_only_a_training_that_finished(kind, tmp_path):
    """One line and exit 1, before any evaluation, when a bit length has no model or its training did not end
    (no finished_<K>.txt, which the engine writes at the end of a run and removes when a later run saves)."""
    script, out = os.path.join(ROOT, "scripts", f"test_{kind}.sh"), tmp_path / "o"
    env = {"BITS": "16 32", "OUTPUT_DIR": str(out)}
    os.makedirs(out)
    code, stdout, err = run(dash(), script, env=env, cwd=tmp_path)
    assert (code, stdout) == (1, "") and err == (f"error: {out}: no 16-bit model; train it first with sh "
                                                 f"scripts/train_{kind}.sh (same DATASET, DATA_PATH and OUTPUT_DIR)\n")
    for name in ("model_best_16.pdparams", "model_last_16.pdparams", "finished_32.txt"):  # 16 stopped, 32 finished
        open(out / name, "wb").close()
    code, stdout, err = run(dash(), script, env=env, cwd=tmp_path)
    assert (code, stdout) == (1, "") and len(err.splitlines()) == 1, err
    assert err.startswith(f"error: {out}: the 16-bit training there did not finish (no finished_16.txt, which a run "
                          f"writes when it ends); go on with BITS=16 sh scripts/train_{kind}.sh <same arguments> "
                          f"--resume {out}/model_last_16, or evaluate those weights anyway: "), err


@pytest.mark.slow
def test_bad_settings_are_one_line_errors(tmp_path):
    script = os.path.join(ROOT, "scripts", "train_multi_gpu.sh")
    code, out, err = run(dash(), script, "lite", "./x", "two", env={"DRY_RUN": "1"}, cwd=tmp_path)
    assert code != 0 and err.strip() == "error: NPROC must be a positive number of processes, got 'two'"
    code, out, err = run(dash(), script, env={"DRY_RUN": "1", "BITS": "16 20"}, cwd=tmp_path)
    assert code != 0 and err.strip() == "error: BITS: no reference seed for 20 bits (use 16, 32, 48 or 64)"


@pytest.mark.multiprocess
def test_train_then_test_scripts_run_under_dash(repo_copy, tiny_lite, tmp_path):
    """sh scripts/train_multi_gpu.sh (2 CPU processes) and the others, for real, on tiny lite data."""
    for kind, nproc in (("multi_gpu", ["2"]), ("single_gpu", [])):
        out = str(tmp_path / kind)
        env = {"BITS": "16", "OUTPUT_DIR": out}
        code, stdout, err = run(dash(), f"scripts/train_{kind}.sh", "lite", tiny_lite, *nproc, "--epoch", "1",
                                *TINY, env=env, cwd=repo_copy)
        logs = f"{stdout[-2000:]}\n{err[-2000:]}"
        assert code == 0, logs
        assert os.path.isfile(os.path.join(out, "model_best_16.pdparams")), logs
        trained = open(os.path.join(out, "launch_log_train_16", "workerlog.0")).read() if nproc else stdout
        assert f"{os.sep}model_best_16.pdparams" in trained
        assert open(os.path.join(out, "finished_16.txt")).read().startswith("finished: 1 epoch of hashnet, 16 bits")
        code, stdout, err = run(dash(), f"scripts/test_{kind}.sh", "lite", tiny_lite, *nproc, env=env, cwd=repo_copy)
        assert code == 0, f"{stdout[-2000:]}\n{err[-2000:]}"
        evaluated = open(os.path.join(out, "launch_log_eval_16", "workerlog.0")).read() if nproc else stdout
        assert last_map(evaluated) == last_map(trained)  # the saved best weights give the reported mAP


@pytest.mark.tipc
def test_tipc_script_runs_under_dash(repo_copy, tmp_path):
    env = {"TIPC_GPU_LIST": "-1", "TIPC_OUTPUT_DIR": str(tmp_path / "tipc"),
           "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")}
    code, out, err = run(dash(), "scripts/tipc.sh", "lite_train_lite_infer", "16", env=env, cwd=repo_copy, timeout=900)
    assert code == 0, out[-3000:] + err[-3000:]
    lines = open(tmp_path / "tipc" / "results_python.log", encoding="utf-8").read().splitlines()
    # train, eval, export, 8 inference runs each followed by compare_results
    assert len([line for line in lines if line.startswith("Run successfully")]) == 19, lines
    assert not [line for line in lines if line.startswith("Run failed")]
