"""main_multi_gpu.py --nprocs N: the training processes of paddle.distributed.spawn, whose errors
are said once by the parent.

Each process used to print its own `error:` line (the same one N times, since they read the same
flags and files) and the parent then ended in a traceback (`Exception: Process 0 terminated with exit
code 2`). Here a process that meets a UserError writes its message to a folder the parent made and
exits with its code; the parent says each different message once (one line when they agree, as
they do for bad flags or data) and exits with that code. A crash that is not a user error keeps
paddle's report: it is a bug to see in full.
"""
import contextlib
import os
import sys
import tempfile
import warnings

from utils.errors import UserError


class ProcessesFailed(UserError):
    """What the training processes said, once per distinct message."""

    def __init__(self, message, exit_code):
        super().__init__(message)
        self.exit_code = exit_code


def _run(worker, cfg, errors_dir):
    rank = int(os.environ.get("PADDLE_TRAINER_ID") or 0)
    try:
        worker(cfg)
    except UserError as exc:
        with open(os.path.join(errors_dir, f"{rank}.txt"), "w", encoding="utf-8") as f:
            f.write(f"{exc.exit_code}\n{exc}")
        sys.exit(exc.exit_code)  # SystemExit: spawn's wrapper neither prints nor queues it


def said(errors_dir):
    """[(rank, exit code, message)] of the processes that stopped on a UserError, by rank."""
    found = []
    for name in os.listdir(errors_dir):
        with open(os.path.join(errors_dir, name), encoding="utf-8") as f:
            code, message = f.read().split("\n", 1)
        found.append((int(name.split(".")[0]), int(code), message))
    return sorted(found)


def one_error(found):
    """The ProcessesFailed of [(rank, exit code, message)]: one line for one message."""
    messages = list(dict.fromkeys(message for _, _, message in found))
    if len(messages) == 1:
        return ProcessesFailed(messages[0], found[0][1])
    return ProcessesFailed("; ".join(f"process {rank}: {message}" for rank, _, message in found), found[0][1])


@contextlib.contextmanager
def _environment(**values):
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def spawn_training(worker, cfg, nprocs, backend):
    """paddle.distributed.spawn(worker, (cfg,)) on nprocs processes; a UserError of any of them is
    raised here, once (utils.cli.exit_on_user_error prints it)."""
    import paddle.distributed as dist

    from utils.runtime.log import quiet_library_logging

    quiet_library_logging()  # paddle's spawn logs the ports it found at INFO
    # the processes import paddle before their configure() can filter its import-time warning
    children = ",".join(filter(None, [os.environ.get("PYTHONWARNINGS"), "ignore:No ccache found"]))
    with tempfile.TemporaryDirectory(prefix="hashnet-spawn-") as errors_dir, \
            _environment(PYTHONWARNINGS=children), warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Your model will be trained under CPUONLY mode")  # we asked for gloo on CPU
        try:
            dist.spawn(_run, args=(worker, cfg, errors_dir), nprocs=nprocs, backend=backend)
        except Exception:
            found = said(errors_dir)
            if not found:
                raise
            raise one_error(found) from None
