"""The layout holds: import contracts (import-linter), no import side effects, the numpy-only
packages load without paddle, modules stay small, and a new method is one file plus one registry
line (docs/architecture.md, "Add a method")."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

pytestmark = pytest.mark.slow

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIBRARY = ("utils", "models", "deploy")
MAX_MODULE_LINES = 400


def python_files(*folders):
    for folder in folders:
        for dirpath, dirnames, filenames in os.walk(os.path.join(ROOT, folder)):
            dirnames[:] = [d for d in dirnames if d != "__pycache__"]
            yield from (os.path.join(dirpath, n) for n in sorted(filenames) if n.endswith(".py"))


def test_import_contracts_hold():
    """.importlinter: the arrows run one way, retrieval and evaluation import no paddle, the library
    imports no entry point or benchmark. (CI runs the same command before the tests.)"""
    out = subprocess.run([sys.executable, "-c", "from importlinter.cli import lint_imports_command; "
                          "lint_imports_command()", "--no-cache", "--no-logo"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    assert "0 broken" in out.stdout and "4 kept" in out.stdout, out.stdout[-2000:]


PROBE = """
import importlib, json, os, pkgutil, sys, warnings
environ = dict(os.environ)
light = ["utils", "utils.errors", "utils.data", "utils.storage.fileio", "utils.runtime", "utils.runtime.cpuinfo",
         "utils.config", "utils.cli", "utils.cli.flags"]
light += [m.name for p in ("utils.retrieval", "utils.evaluation")
          for m in pkgutil.walk_packages(importlib.import_module(p).__path__, p + ".")]
for name in light:
    importlib.import_module(name)
paddle_free = "paddle" not in sys.modules
for package in ("utils", "models", "deploy"):
    for m in pkgutil.walk_packages(importlib.import_module(package).__path__, package + "."):
        if not m.name.startswith("deploy.serving.__main__"):
            importlib.import_module(m.name)
changed = sorted(k for k in set(environ) | set(os.environ) if environ.get(k) != os.environ.get(k))
ours = [f[1].pattern for f in warnings.filters if f[1] is not None and f[1].pattern.startswith(
    ("No ccache found", "When training, we now always track"))]
print(json.dumps({"paddle_free": paddle_free, "light": len(light), "env_changed": changed, "our_filters": ours}))
"""


def test_importing_the_library_changes_nothing_and_the_numpy_packages_need_no_paddle():
    env = {k: v for k, v in os.environ.items() if k not in ("MKL_DEBUG_CPU_TYPE", "GLOG_minloglevel")}
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["paddle_free"] and result["light"] > 20, result  # retrieval, evaluation, config, data's pure parts
    # paddle itself sets a few variables when imported (OMP_NUM_THREADS, ...); the library sets none of its own
    assert not any(k in ("MKL_DEBUG_CPU_TYPE", "GLOG_minloglevel") for k in result["env_changed"]), result
    assert result["our_filters"] == [], result  # configure() adds them, an import does not


def test_modules_stay_small():
    sizes = {os.path.relpath(p, ROOT): sum(1 for _ in open(p, encoding="utf-8")) for p in python_files(*LIBRARY)}
    large = {p: n for p, n in sizes.items() if n > MAX_MODULE_LINES}
    assert not large, f"split these before they grow further (one file = one idea): {large}"


def test_no_file_points_to_a_design_document_outside_the_repository():
    """The contract lives in docs/architecture.md (and the docstrings), not in a file users do not have."""
    skip = {".git", "output", "datasets", "__pycache__", ".hypothesis"}
    mentions = []
    for dirpath, dirnames, filenames in os.walk(ROOT):
        dirnames[:] = [d for d in dirnames if d not in skip and os.path.relpath(os.path.join(dirpath, d), ROOT)
                       not in ("test_tipc/data", "test_tipc/output")]
        for name in filenames:
            path = os.path.join(dirpath, name)
            if name.endswith((".py", ".md", ".sh", ".txt", ".yaml", ".yml", ".cfg", ".ini")) or name in ("run",):
                with open(path, encoding="utf-8", errors="replace") as f:
                    if "DESIGN" + ".md" in f.read():
                        mentions.append(os.path.relpath(path, ROOT))
    assert mentions == [], mentions


def test_a_new_method_is_its_file_and_one_registry_line(tiny_lite, tmp_path, monkeypatch):
    """docs/architecture.md, "Add a method": a HashLoss subclass (here written in the test, as it
    would be in utils/losses/<method>.py) and one line in LOSSES; the config schema, validation,
    the engine, evaluation and checkpoints pick it up with nothing else changed."""
    import paddle

    from utils.config import build_config
    from utils.errors import UserError
    from utils.losses import LOSSES
    from utils.losses.base import HashLoss, check_positive
    from utils.training.engine import Engine

    class ToyLoss(HashLoss):
        """Squared distance of tanh(z) to the batch's class-mean code (a throwaway method)."""
        NAME = "toy"
        DEFAULTS = {"scale": 1.0}

        def __init__(self, num_train, bit, num_classes, comm=None, scale=1.0):
            super().__init__(comm)
            self.scale = scale

        @classmethod
        def check_options(cls, options):
            check_positive(options, "scale")

        def forward(self, z, labels, indices):
            h = paddle.tanh(z)
            centers = paddle.matmul(labels, h, transpose_x=True) / paddle.clip(labels.sum(axis=0).unsqueeze(1), min=1.0)
            target = paddle.matmul(labels, centers) / paddle.clip(labels.sum(axis=1, keepdim=True), min=1.0)
            return self.share(self.scale * ((h - target.detach()) ** 2).mean())

    monkeypatch.setitem(LOSSES, "toy", ToyLoss)  # the one registry line
    overrides = ["loss.name=toy", "model.fc_dim=64", "dataset.num_workers=0", "train.log_every=100"]
    with pytest.raises(UserError, match="loss.scale"):
        build_config(None, {"data_path": tiny_lite, "bit": 16}, overrides + ["loss.scale=-1"])
    cfg = build_config(None, {"data_path": tiny_lite, "bit": 16, "epoch": 2, "batch_size": 8,
                              "output_dir": str(tmp_path)}, overrides + ["loss.scale=2"])
    assert cfg["loss"] == {"name": "toy", "scale": 2}
    result = Engine(cfg).train()
    assert np.isfinite(result["map"]) and 0 < result["map"] <= 1 and result["history"]["last"] > 0
    assert os.path.isfile(tmp_path / "model_last_16.pdparams") and os.path.isfile(tmp_path / "config_16.yaml")
