"""What a training run may do to an output folder that already holds a model, and how a finished run is told
from one that stopped (issue 27: runs overwrote each other without a word).

A run refuses, before it writes anything, to replace a K-bit model of another kind: one whose saved
config_<K>.yaml names another data set, method (loss), head or backbone. Another schedule, seed or learning
rate is the same kind (re-running the main job with other epochs replaces its model, as it always did);
`--overwrite` lets a run replace any model. A model with no readable config_<K>.yaml says nothing of its kind
and is not guarded.

finished_<K>.txt marks a training run that ended: written when it finishes, removed when a later run saves its
first checkpoint there, so scripts/test_*.sh evaluate only weights of a run that finished.
"""
from __future__ import annotations

import os
from typing import Any

import yaml

from utils.config.load import load_yaml
from utils.config.schema import DEFAULT_METHOD, DEFAULTS
from utils.errors import ConfigError
from utils.losses import is_shallow
from utils.storage.fileio import atomic_write_bytes
from utils.storage.run_folder import RunFolder

# the keys that make two models of one folder different things (not how long or how they were trained)
IDENTITY = (("dataset.name", "data set"), ("loss.name", "method (loss.name)"), ("model.name", "head (model.name)"),
            ("model.backbone", "backbone"))
_DEFAULT_IDENTITY = {"dataset.name": DEFAULTS["dataset"]["name"], "loss.name": DEFAULT_METHOD,
                     "model.name": DEFAULTS["model"]["name"], "model.backbone": DEFAULTS["model"]["backbone"]}


def identity(cfg: Any) -> dict[str, str]:
    """{key: value} of the IDENTITY keys of a config (a key a saved config lacks: its default)."""
    found = {}
    for path, _ in IDENTITY:
        section, name = path.split(".")
        part = cfg.get(section)
        value = part.get(name) if hasattr(part, "get") else None
        found[path] = str(_DEFAULT_IDENTITY[path] if value is None else value)
    return found


def _saved_identity(path: str) -> dict[str, str] | None:
    try:
        with open(path, encoding="utf-8") as f:
            saved = load_yaml(f)  # the project's rules: no aliases, bounded nesting
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    return identity(saved) if isinstance(saved, dict) else None


def check_replaceable(folder: RunFolder, cfg: Any) -> None:
    """ConfigError (one line, nothing written) when the folder holds a K-bit model of another kind and the
    run has no --overwrite."""
    bit = cfg["model"]["bit"]
    if cfg["overwrite"] or not folder.holds_model(bit):
        return
    held = _saved_identity(folder.config(bit))
    if held is None:
        return
    new = identity(cfg)
    differ = [(what, path) for path, what in IDENTITY if held[path] != new[path]]
    if not differ:
        return
    holds = ", ".join(f"{what} {held[path]}" for what, path in differ)
    this = ", ".join(f"{what} {new[path]}" for what, path in differ)
    own = os.path.join(folder.path, "_".join(new[path] for _, path in differ))
    raise ConfigError(f"--output-dir {folder.path}: it holds the {bit}-bit model of another run ({holds}; "
                      f"{folder.config(bit)}), this run is {this}: give this run its own --output-dir DIR (e.g. "
                      f"--output-dir {own}), or add --overwrite to replace that model")


def mark_unfinished(folder: RunFolder, bit: int) -> None:
    """A run has saved weights in the folder: the mark of an earlier finished run no longer describes them."""
    path = folder.finished(bit)
    if os.path.lexists(path):
        os.unlink(path)


def mark_finished(folder: RunFolder, cfg: Any, result: dict) -> None:
    """finished_<K>.txt: the run ended and its weights are complete; one line says what it was and what it gave."""
    bit, loss = cfg["model"]["bit"], cfg["loss"]["name"]
    epochs = cfg["train"]["epochs"]
    how = f"fitted {loss}" if is_shallow(loss) else f"{epochs} epoch{'' if epochs == 1 else 's'} of {loss}"
    topk = cfg["dataset"]["topk"]
    score = ("no labels" if result["map"] is None
             else f"mAP@{'all' if topk in (None, -1) else topk} {result['map']:.4f}")
    line = (f"finished: {how}, {bit} bits, best weights {folder.best(bit)} (epoch {result['best_epoch']}), "
            f"{score}\n")
    atomic_write_bytes(folder.finished(bit), line.encode("utf-8"))
