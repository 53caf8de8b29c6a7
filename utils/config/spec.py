"""One declaration per config key: its default, type, range or choices, command-line flag and help.

Everything else is derived from SPEC: the defaults (schema.DEFAULTS, in this order, which is the
order of a saved config_<K>.yaml), the training flags of main_*.py (utils.cli.flags.train_parser),
the flag -> key map (schema.FLAG_KEYS) and the check of each key's value (validate.check_key). The
few rules that relate two keys are validate.py's. The `loss` section is each method's
(utils/losses/<method>.py: DEFAULTS and check_options).
"""
from __future__ import annotations

import argparse
import dataclasses
from typing import Any, Iterable

from utils.storage.run_folder import DEFAULT_OUTPUT

SUPPORTED_BITS = (8, 12, 16, 24, 32, 48, 64, 128)


@dataclasses.dataclass(frozen=True)
class Key:
    """A config key. kind: int | number | bool | str | path | choice | bit | list3 | topk | rules | name |
    any (checked elsewhere: the model registry, a loss). low/high bound int and number keys (open:
    strictly); nullable: None is allowed too. flags: the command-line spellings (the first names it;
    underscore aliases are added); where: how errors name the key (default: "--flag/section.key")."""

    path: str
    default: Any
    kind: str = "any"
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple = ()
    nullable: bool = False
    flags: tuple[str, ...] = ()
    help: str = ""
    metavar: str | None = None
    where_: str | None = None
    what_: str | None = None  # the "must be ..." text, when the derived one does not say enough

    @property
    def section(self) -> str | None:
        return self.path.split(".")[0] if "." in self.path else None

    @property
    def name(self) -> str:
        return self.path.split(".")[-1]

    @property
    def dest(self) -> str | None:
        """The flag's argparse name (and FLAG_KEYS key): --data-path -> data_path."""
        return self.flags[0][2:].replace("-", "_") if self.flags else None

    @property
    def where(self) -> str:
        if self.where_:
            return self.where_
        return f"{self.flags[0]}/{self.path}" if self.flags else self.path

    @property
    def what(self) -> str:
        """What a valid value is, as the error message says it."""
        if self.what_:
            return self.what_
        null = "null or " if self.nullable else ""
        if self.kind == "int":
            bound = f">= {self.low}" if self.high is None else f"in [{self.low}, {self.high}]"
            return f"{null}an integer {bound}"
        if self.kind == "number":
            if self.low is None and self.high is None:
                return f"{null}a number"
            return f"{null}a number {self._bound()}" if self.nullable else self._bound()
        if self.kind == "bool":
            return "true or false"
        if self.kind == "path":
            return "a path"
        if self.kind == "choice":
            names = [str(c).lower() if isinstance(c, bool) else str(c) for c in self.choices]
            return ", ".join(names[:-1]) + " or " + names[-1]
        return "valid"

    def _bound(self) -> str:
        if self.low is not None and self.high is not None:
            return f"in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}{')' if self.high_open else ']'}"
        return f"{'>' if self.low_open else '>='} {self.low:g}"


def _k(path: str, default: Any, kind: str = "any", **kw: Any) -> Key:
    return Key(path, default, kind, **kw)


SPEC: tuple[Key, ...] = (
    # -- dataset
    _k("dataset.name", "lite", "name", flags=("--dataset",), where_="--dataset",
       help="data set name: lite (built-in, generated when absent), coco, nuswide_21, ..."),
    _k("dataset.data_path", "./datasets/lite/", "path", flags=("--data-path",),
       help="image root; list paths are relative to it"),
    _k("dataset.list_dir", None, "path", nullable=True, flags=("--list-dir",),
       help="folder with train.txt/test.txt/database.txt (default: data/<dataset>/; lite: --data-path)"),  # lite: in data_path
    _k("dataset.num_classes", None, "int", low=1, nullable=True),  # None: read from the list files
    _k("dataset.topk", -1, "topk", what_="-1 (all), None or a positive integer"),  # mAP@topK; -1/None: all
    _k("dataset.resize_size", 256),  # with crop_size: validate.py's rule
    _k("dataset.crop_size", 224),
    _k("dataset.mean", [0.485, 0.456, 0.406], "list3", what_="a list of 3 numbers"),
    _k("dataset.std", [0.229, 0.224, 0.225], "list3", what_="a list of 3 numbers"),
    _k("dataset.num_workers", 2, "int", low=0, flags=("--num-workers",), help="DataLoader worker processes"),
    _k("dataset.lite_seed", 0, "int", low=0),
    _k("dataset.val_fraction", 0.0, "number", low=0, high=1, high_open=True),  # > 0: a held-out split picks the best epoch
    _k("dataset.skip_bad_images", False, "bool", flags=("--skip-bad-images",),
       help="skip missing/unreadable images (counted and reported at the end) instead of stopping at the first"),
    _k("dataset.allow_outside_root", False, "bool", flags=("--allow-outside-data-root",),
       help="accept list paths that are absolute or lead out of --data-path with ../ (refused by default)"),
    _k("dataset.max_image_pixels", 100_000_000, "int", low=1),  # decompression-bomb guard, from the image header
    # -- model
    _k("model.name", "linear"),          # the head (models.MODELS): linear, ssdh, dshsd, greedyhash, ppshitu, orthohash
    _k("model.backbone", "alexnet"),     # models.BACKBONES
    _k("model.bit", 64, "bit", flags=("--bit",), help="code length K (16, 32, 48, 64, ...)"),
    _k("model.dropout", 0.5, "number"),
    _k("model.fc_dim", 4096, "int", low=8),  # width of fc6/fc7; ImageNet weights need 4096
    _k("model.batch_norm", False, "bool"),  # BatchNorm after each conv: for training from scratch
    _k("model.hash_lr_mult", 10.0, "number"),
    _k("model.hash_bias_lr_mult", None, "number", nullable=True),  # None: same as hash_lr_mult (Caffe used 20)
    _k("model.hash_init_std", 0.01, "number", low=0, low_open=True),  # hash (latent) layer weights ~ N(0, std)
    _k("model.hash_bias_init", 0.0, "number"),  # hash (latent) layer bias, a constant
    _k("model.classifier_init_std", None, "number", low=0, low_open=True, nullable=True),  # null: paddle's default
    _k("model.backbone_weights", None, "path", nullable=True, flags=("--pretrained-backbone",),
       where_="model.backbone_weights", metavar="PATH",
       help="ImageNet AlexNet weights: a local .pdparams, or 'imagenet' to download paddle.vision's (online only)"),
    _k("model.needs_backbone_weights", False, "bool"),  # a fine-tuning recipe: warn when trained without them
    _k("model.freeze_backbone", False, "bool"),  # train the head alone on the backbone's fixed features (eval mode)
    # -- train
    _k("train.epochs", 150, "int", low=0, flags=("--epoch", "--epochs"), help="number of training epochs"),
    _k("train.batch_size", 64, "int", low=2, flags=("--batch-size",), help="batch size per device/process",
       what_="an integer >= 2 (pairs need two images)"),
    _k("train.lr", 0.001, "number", low=0, low_open=True, flags=("--lr",),
       help="learning rate at a global batch of train.base_batch (64)"),
    _k("train.base_batch", 64, "int", low=1),
    _k("train.momentum", 0.9, "number"),
    _k("train.weight_decay", 0.0005, "number"),
    _k("train.clip_grad_norm", None, "number", low=0, low_open=True, nullable=True),  # clip the global gradient norm
    # per-parameter lr multipliers / weight decays, first matching rule wins (utils/training/optimizer.py):
    # [{match: "*.bias", lr_mult: 2, weight_decay: 0}, ...]; empty: the model's own multipliers, one decay
    _k("train.param_groups", [], "rules"),
    _k("train.lr_schedule", "step", "choice", choices=("step", "cosine")),  # step: x gamma every N epochs | cosine
    _k("train.warmup_epochs", 0, "int", low=0, what_="an integer >= 0 and below train.epochs"),  # linear warm-up
    _k("train.lr_decay_every", 50, "int", low=1),
    _k("train.lr_decay_gamma", 0.5, "number", low=0, high=1, low_open=True, high_open=True,
       what_="in (0, 1) (no decay: train.lr_decay_every above the epochs)"),
    _k("train.seed", 0, "int", low=0, flags=("--seed",),
       help="random seed (weights, data order, augmentation, dropout)"),
    _k("train.eval_every", 10, "int", low=1),
    _k("train.log_every", 10, "int", low=1),
    _k("train.eval_untrained", True, "bool"),
    _k("train.loss_rise_epochs", 3, "int", low=0),  # warn when the epoch loss rises this many epochs in a row
    _k("train.cpu_malloc_reuse", True, "bool"),  # CPU: keep freed large buffers for the next step (runtime/cpu.py)
    _k("train.onednn_conv", "auto", "choice", choices=("auto", True, False)),  # convolutions through oneDNN on CPU
    _k("train.amp", None, "choice", choices=(None, "fp16", "bf16"),
       what_="null (fp32), fp16 or bf16 (mixed precision on GPU)"),  # utils/training/amp.py
    # false: train without the lists' labels (a method that learns without them, loss SUPERVISED = False);
    # evaluation still uses the query/database labels when the lists have them
    _k("train.use_labels", True, "bool"),
    # -- the run
    _k("device", "auto", "choice", choices=("auto", "cpu", "gpu"), flags=("--device",), where_="--device",
       help="auto: gpu when this build has CUDA and sees one, else cpu"),
    _k("threads", 0, "int", low=0, flags=("--threads",), where_="--threads",
       help="CPU threads per process (0: cores / processes)"),
    _k("output_dir", DEFAULT_OUTPUT, "path", flags=("--output-dir",),
       help="where weights, logs, VisualDL curves and the resolved config go"),
    _k("overwrite", False, "bool", flags=("--overwrite",), where_="--overwrite",
       help="replace a model of another kind (data set, method, head or backbone) that --output-dir holds at "
            "this bit length (refused without it; not saved with the run)"),
    _k("pretrained", None, "path", nullable=True, flags=("--pretrained",), where_="--pretrained", metavar="PREFIX",
       help="start from (or, with --eval, evaluate) these weights: PREFIX.pdparams"),
    _k("resume", None, "path", nullable=True, flags=("--resume",), where_="--resume", metavar="PREFIX",
       help="continue an interrupted run from PREFIX.pdparams + PREFIX.pdopt (e.g. output/model_last_64)"),
    _k("init_from", None, "path", nullable=True, flags=("--init-from",), where_="--init-from", metavar="PREFIX",
       help="start a K-bit model from a trained shorter-code model PREFIX (K1 <= K bits, same backbone): its "
            "backbone and first K1 hash units are copied, the rest initialised as usual (DSH's short-to-long "
            "code training; ignored with --resume and --eval)"),
    _k("eval_only", False, "bool", flags=("--eval",), where_="--eval/eval_only", help="only evaluate --pretrained weights"),
    _k("plots", False, "bool", flags=("--plots",),
       help="after evaluation, write the precision-recall and precision@N plots (matplotlib) to the output dir"),
)
STORE_TRUE = ("eval_only", "plots", "overwrite", "dataset.skip_bad_images", "dataset.allow_outside_root")  # flags without a value
SECTIONS = ("dataset", "model", "train")


def nested_defaults(keys: Iterable[Key] = SPEC) -> dict:
    """{section: {key: default}, top-level key: default} in SPEC order (lists copied)."""
    out: dict = {}
    for key in keys:
        default = list(key.default) if isinstance(key.default, list) else key.default
        if key.section:
            out.setdefault(key.section, {})[key.name] = default
        else:
            out[key.path] = default
    return out


def flag_keys(keys: Iterable[Key] = SPEC) -> dict[str, str]:
    """{flag dest: config key} of the training flags."""
    return {key.flags[0][2:].replace("-", "_"): key.path for key in keys if key.flags}


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def add_flags(parser: argparse.ArgumentParser, keys: Iterable[Key] = SPEC, shown: dict | None = None) -> None:
    """The training flags: hyphenated, with the reference's underscore spelling accepted as an alias.
    Every default is None, so a flag that is not given leaves the config's value. shown: the nested
    config whose values --help gives as each flag's default (a run's with no -c; else the built-in ones);
    a help text that says its own default, a None and an on/off flag get none added."""
    types = {"int": int, "bit": int, "number": float}
    values = shown if shown is not None else nested_defaults(keys)
    for key in keys:
        if not key.flags:
            continue
        aliases = ["--" + f[2:].replace("-", "_") for f in key.flags if "-" in f[2:]]
        value = values.get(key.section, {}).get(key.name) if key.section else values.get(key.path)
        text = key.help
        if value is not None and key.path not in STORE_TRUE and "default" not in text:
            text = f"{text} (default: {_shown(value)})"
        kw: dict[str, Any] = {"dest": key.dest, "default": None, "help": text}
        if key.path in STORE_TRUE:
            kw.update(action="store_const", const=True)
        else:
            if key.kind in types:
                kw["type"] = types[key.kind]
            if key.kind == "choice":
                kw["choices"] = list(key.choices)
            if key.metavar:
                kw["metavar"] = key.metavar
        parser.add_argument(*key.flags, *aliases, **kw)
