"""Running the repository's commands from a test's own folder, the way README writes them.

Entry points at the top are scripts (`python predict.py`); everything in a sub-folder runs as a module
from the repository root (`python -m deploy.inference_python.infer`; docs/architecture.md, "Running
commands"). A test that runs one from another folder puts the root on PYTHONPATH, as a user who is
elsewhere would.
"""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def python_argv(*argv):
    """[python, ...] for `predict.py ...` (a top-level script, by its path in the repository) or
    `-m package.module ...` (run as a module)."""
    if argv[0] == "-m":
        return [sys.executable, *argv]
    script = os.path.join(ROOT, argv[0]) if argv[0].endswith(".py") and not os.path.isabs(argv[0]) else argv[0]
    return [sys.executable, script, *argv[1:]]


def root_on_path(env=None):
    """The environment with the repository root first on PYTHONPATH (for `python -m` from elsewhere)."""
    env = dict(os.environ if env is None else env)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (ROOT, env.get("PYTHONPATH")) if p)
    return env
