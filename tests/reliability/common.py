"""Helpers of the reliability tests: run an entry point as a real process, read weights."""
import os
import subprocess

from tests.commands import python_argv, root_on_path
from tests.reliability import faults

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# A run of a few seconds on 2 CPU cores: 32 training images, batch 8, 64x64 crops, narrow fc layers.
TINY = ["--bit", "16", "--batch-size", "8", "--seed", "1", "-o", "model.fc_dim=64", "-o", "dataset.resize_size=64",
        "-o", "dataset.crop_size=64", "-o", "dataset.num_workers=0", "-o", "train.eval_every=1",
        "-o", "train.eval_untrained=false"]


def in_repo(script):
    """An entry point of the repository (`predict.py`) by its absolute path."""
    return os.path.join(ROOT, script) if script.endswith(".py") and not os.path.isabs(script) else script


def file_size_limit(limit):
    """For preexec_fn: `ulimit -f` of `limit` bytes with SIGXFSZ ignored, so a write past it fails with
    EFBIG (errno 27, "File too large") as on a full disk or quota, instead of killing the process."""
    def apply():
        import resource
        import signal

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def run(*argv, env=None, timeout=300, preexec_fn=None, fault=None):
    """(exit code, stdout, stderr) of `python argv...` run from the test's own working folder; with
    fault (tests.reliability.faults), the child kills itself at that point."""
    full_env = root_on_path({**os.environ, "PYTHONWARNINGS": "ignore", **(env or {})})
    cmd = python_argv(*argv)
    if fault:
        cmd = faults.command(fault, *cmd[1:])
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=full_env, preexec_fn=preexec_fn)
    return proc.returncode, proc.stdout, proc.stderr


def train(data, out, epochs, *extra, env=None, preexec_fn=None, fault=None):
    return run("main_single_gpu.py", "--data-path", str(data), "--output-dir", str(out), "--epoch", str(epochs),
               *TINY, *extra, env=env, preexec_fn=preexec_fn, fault=fault)


def folder_bytes(folder):
    """{relative path: file bytes (None for a folder)} of everything under folder."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in dirnames:
            found[os.path.relpath(os.path.join(dirpath, name), folder)] = None
        for name in filenames:
            path = os.path.join(dirpath, name)
            with open(path, "rb") as f:
                found[os.path.relpath(path, folder)] = f.read()
    return found


def assert_same_folder(before, after):
    assert sorted(after) == sorted(before), (sorted(set(after) - set(before)), sorted(set(before) - set(after)))
    changed = [name for name in before if before[name] != after[name]]
    assert not changed, f"changed: {changed}"


def assert_one_line_error(code, stderr, *fragments):
    assert code not in (0, None), stderr
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error:") or ": error:" in line]
    assert len(errors) == 1, stderr
    for fragment in fragments:
        assert fragment in errors[0], (fragment, errors[0])
    return errors[0]


def load_pdparams(path):
    import paddle

    return {k: v.numpy() for k, v in paddle.load(str(path)).items()}


def assert_same_weights(path_a, path_b):
    import numpy as np

    a, b = load_pdparams(path_a), load_pdparams(path_b)
    assert sorted(a) == sorted(b)
    different = [k for k in a if not np.array_equal(a[k], b[k])]
    assert not different, f"{path_a} and {path_b} differ in {different}"


def one_line_exit(capsys, main, argv, *fragments, code=2, max_length=1200):
    """Call an entry point's main(argv) in this process: it must exit `code` with one `error:` line
    of at most max_length characters holding every fragment, and no traceback. Returns the line."""
    import pytest

    def serve(*args, **kwargs):  # the service's main got past its checks: it must not block the test
        raise AssertionError("the service started serving instead of refusing its input")

    with pytest.MonkeyPatch.context() as patch, pytest.raises(SystemExit) as exc:
        try:
            import uvicorn

            patch.setattr(uvicorn.Server, "run", serve)
        except ImportError:  # no serving extras: no service to start
            pass
        main(argv)
    err = capsys.readouterr().err
    assert exc.value.code == code, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    errors = [line for line in err.splitlines() if line.startswith("error:") or ": error:" in line]
    assert len(errors) == 1, err[-3000:]
    assert len(errors[0]) <= max_length, f"{len(errors[0])} characters: {errors[0][:300]}..."
    for fragment in fragments:
        assert fragment in errors[0], (fragment, errors[0])
    return errors[0]
