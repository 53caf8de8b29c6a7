"""SIGTERM after paddle's import: one line and exit 143, not paddle's C++ `FatalError: Termination
signal` block (issue 27 item 7); the clean-ups of `finally` blocks run on the way out."""
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow  # new processes

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
COMMAND = """
import os, signal, sys, time
from utils.cli import exit_on_user_error
from utils.runtime import configure
from utils.runtime.log import quiet_library_logging

@exit_on_user_error
def main():
    configure()
    import paddle
    if sys.argv[1] == "quiet":
        quiet_library_logging()  # what every entry point does once paddle is in
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(30)
    finally:
        open(sys.argv[2], "w").write("cleaned up")

main()
"""


def run(mode, tmp_path):
    marker = tmp_path / f"{mode}.txt"
    proc = subprocess.run([sys.executable, "-c", COMMAND, mode, str(marker)], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, env={**os.environ, "PYTHONPATH": ROOT, "PYTHONWARNINGS": "ignore"})
    return proc, marker.exists()


def test_sigterm_is_one_line_and_exit_143_and_the_finally_blocks_run(tmp_path):
    proc, cleaned = run("quiet", tmp_path)
    assert (proc.returncode, proc.stdout, proc.stderr, cleaned) == (143, "", "error: terminated (SIGTERM)\n", True), \
        proc.stdout + proc.stderr


def test_without_it_paddle_prints_its_crash_report(tmp_path):
    """The control: paddle's own handler, as users saw it."""
    proc, cleaned = run("paddle", tmp_path)
    assert proc.returncode != 0 and "Termination signal" in proc.stdout + proc.stderr and not cleaned, proc.stdout
