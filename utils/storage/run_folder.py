"""Every file name of a run's output folder and of an export folder, in one place, and which model a
command uses when none is named.

An output folder (`--output-dir`, predict.py's `--save-path`; ./output by default) holds:

    model_best_<K>.pdparams/.pdopt/.safetensors   the best checkpoint (.safetensors: released weights)
    model_last_<K>.pdparams/.pdopt                the latest checkpoint, model_last_<K>.prev.* the one before
    config_<K>.yaml                               the resolved config, written with the weights it describes
    finished_<K>.txt                              a training run that finished (gone once another run saves)
    train_<K>.log, eval_<K>.log, qat_<K>.log      the run's log; vdl_<K>/ its VisualDL curves
    database_code_<K>.npy/.json/.lock             predict.py's database code cache (utils.inference.code_cache)
    database_code_<K>_features.npy, _feature_scale.npy  its int8 features for rescoring
    database_folder_<K>_<key>.*                   the code cache of an image folder (--database-dir)
    retrieval_<image>_<K>.jpg                     predict.py --show's picture; milvus_<K>.db its milvus-lite file
    inference/, inference_int8/                   the exports (export_model.py, quantize.py): ExportFolder
    serving_<dataset>/, serving_folder_<key>/     images added to the search service

An export folder holds inference_<K>.json/.pdiparams (PIR; .pdmodel for int8), inference_<K>.onnx,
model_<K>.safetensors and infer_cfg.yml. Nothing else in the project spells these names (issue 22:
`grep model_best_` finds this module and the tests); the paths are plain strings, no file is touched
here except to ask whether one exists.
"""
from __future__ import annotations

import hashlib
import os

from utils.errors import WeightsError

DEFAULT_OUTPUT = "./output"
WEIGHTS_SUFFIX = ".pdparams"       # paddle's pickle of the model's tensors
STATE_SUFFIX = ".pdopt"            # the rest of a checkpoint (optimizer, scheduler, loss memory, epoch)
RELEASED_SUFFIX = ".safetensors"   # the weights without pickle (no code runs on load)
WEIGHT_SUFFIXES = (WEIGHTS_SUFFIX, RELEASED_SUFFIX)
PREVIOUS = ".prev"                 # <prefix>.prev.pdparams/.pdopt: the checkpoint generation before <prefix>
INFER_CFG = "infer_cfg.yml"
EXPORT_DIR = "inference"
INT8_DIR = "inference_int8"


# --------------------------------------------------------------------------- a weights prefix


def weights_path(prefix: str) -> str:
    """Accept `output/model_best_64` or `output/model_best_64.pdparams`."""
    return prefix if prefix.endswith(WEIGHTS_SUFFIX) else prefix + WEIGHTS_SUFFIX


def state_path(prefix: str) -> str:
    """The .pdopt beside a checkpoint's weights."""
    return weights_path(prefix)[: -len(WEIGHTS_SUFFIX)] + STATE_SUFFIX


def released_path(prefix: str) -> str:
    return prefix + RELEASED_SUFFIX


def previous_prefix(prefix: str) -> str:
    return prefix + PREVIOUS


def strip_suffix(prefix: str) -> str:
    for suffix in WEIGHT_SUFFIXES:
        if prefix.endswith(suffix):
            return prefix[: -len(suffix)]
    return prefix


def resolve_weights(prefix: str) -> str:
    """The weights file for PREFIX: as given when it names a file, else PREFIX.safetensors when it
    exists (no code runs on load), else PREFIX.pdparams."""
    if prefix.endswith(WEIGHT_SUFFIXES):
        return prefix
    if os.path.isfile(released_path(prefix)):
        return released_path(prefix)
    return weights_path(prefix)


# --------------------------------------------------------------------------- an export folder


class ExportFolder:
    """The files of a folder written by export_model.py (or quantize.py: int8)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __repr__(self) -> str:
        return f"ExportFolder({self.path!r})"

    @staticmethod
    def graph_name(bit: int) -> str:
        return f"inference_{bit}"

    def graph_prefix(self, bit: int) -> str:
        return os.path.join(self.path, self.graph_name(bit))

    def graph_files(self, bit: int, precision: str = "fp32") -> tuple[str, str]:
        """(graph, params): inference_<K>.json (PIR) for fp32, inference_<K>.pdmodel (the classic
        program, which Paddle Inference's oneDNN int8 passes need) for an int8 model."""
        prefix = self.graph_prefix(bit)
        return prefix + (".pdmodel" if precision == "int8" else ".json"), prefix + ".pdiparams"

    def onnx(self, bit: int) -> str:
        return self.graph_prefix(bit) + ".onnx"

    def released(self, bit: int) -> str:
        return os.path.join(self.path, f"model_{bit}{RELEASED_SUFFIX}")

    @property
    def infer_cfg(self) -> str:
        return os.path.join(self.path, INFER_CFG)

    def holds(self, bit: int) -> bool:
        """True when the folder has the fp32 graph of a bit-bit export."""
        return os.path.isfile(self.graph_files(bit)[0])


# --------------------------------------------------------------------------- an output folder


class RunFolder:
    """The files of one output folder; see the module docstring for the list."""

    def __init__(self, path: str | None = None) -> None:
        self.path = DEFAULT_OUTPUT if path is None else path

    def __repr__(self) -> str:
        return f"RunFolder({self.path!r})"

    def _file(self, name: str) -> str:
        return os.path.join(self.path, name)

    def checkpoint(self, kind: str, bit: int) -> str:
        """The prefix of checkpoint `kind` (best | last): <folder>/model_<kind>_<K>."""
        return self._file(f"model_{kind}_{bit}")

    def best(self, bit: int) -> str:
        return self.checkpoint("best", bit)

    def last(self, bit: int) -> str:
        return self.checkpoint("last", bit)

    def config(self, bit: int) -> str:
        return self._file(f"config_{bit}.yaml")

    def finished(self, bit: int) -> str:
        """The mark of a training run that finished (utils.training.folder_guard): its one-line summary."""
        return self._file(f"finished_{bit}.txt")

    def holds_model(self, bit: int) -> bool:
        """Whether the folder has trained bit-bit weights (model_best_<K> or model_last_<K>)."""
        return any(os.path.isfile(resolve_weights(self.checkpoint(kind, bit))) for kind in ("best", "last"))

    @staticmethod
    def log_name(mode: str, bit: int) -> str:
        """The log file's name (train, eval, qat) inside the folder."""
        return f"{mode}_{bit}.log"

    def curves(self, bit: int) -> str:
        return self._file(f"vdl_{bit}")

    def plots(self, bit: int) -> tuple[str, str]:
        """(precision-recall curve, precision@N) pictures of --plots."""
        return self._file(f"pr_curve_{bit}.png"), self._file(f"precision_at_n_{bit}.png")

    def code_cache(self, bit: int) -> str:
        """The prefix of the database code cache: .npy (codes), .json (fingerprint), .lock."""
        return self._file(f"database_code_{bit}")

    def folder_cache(self, bit: int, root: str) -> str:
        """The prefix of the code cache of an image folder searched without lists (--database-dir):
        database_folder_<K>_<16 hex digits of the sha256 of the folder's real path>, then .npy (codes),
        .json (fingerprint and the files' sizes and times), _features.npy, _feature_scale.npy, .lock,
        _skipped.txt (the files left out). Kept here, not in the folder: a photo folder is not written to."""
        return self._file(f"database_folder_{bit}_{self.folder_key(root)}")

    @staticmethod
    def folder_key(root: str) -> str:
        """16 hex digits naming an image folder by its real path (one cache however it is spelled)."""
        return hashlib.sha256(os.fsencode(os.path.realpath(root))).hexdigest()[:16]

    def picture(self, image: str, bit: int) -> str:
        """predict.py --show's picture of the query `image` beside its matches."""
        stem = os.path.splitext(os.path.basename(image))[0]
        return self._file(f"retrieval_{stem}_{bit}.jpg")

    def milvus(self, bit: int) -> str:
        return os.path.join(os.path.abspath(self.path), f"milvus_{bit}.db")

    def serving_store(self, dataset: str) -> str:
        return self._file(f"serving_{dataset}")

    @property
    def export(self) -> ExportFolder:
        return ExportFolder(self._file(EXPORT_DIR))

    @property
    def int8_export(self) -> ExportFolder:
        return ExportFolder(self._file(INT8_DIR))

    def export_command(self, bit: int, prefix: str | None = None, export_dir: str | None = None) -> str:
        """The export_model.py command that exports this folder's best weights (or `prefix`)."""
        return (f"python export_model.py --bit {bit} --pretrained {prefix or self.best(bit)} "
                f"--save-inference-dir {export_dir or self.export.path}")

    def train_command(self, bit: int) -> str:
        return f"python main_single_gpu.py --bit {bit} --output-dir {self.path}"

    # ----------------------------------------------------------------------- default model

    def default_model(self, bit: int) -> tuple[str, str, str]:
        """The main job's model in this folder when no model was named: ("pretrained", PREFIX, what)
        for trained weights model_best_<K>, else ("model_dir", DIR, what) for an export in inference/;
        a WeightsError naming both and the commands that make them when neither is there."""
        prefix, exported = self.best(bit), self.export
        weights = resolve_weights(prefix)
        if os.path.isfile(weights):
            return "pretrained", prefix, f"model: {weights} (trained weights; no --pretrained or --model-dir given)"
        graph = exported.graph_files(bit)[0]
        if exported.holds(bit):
            return "model_dir", exported.path, (f"model: {graph} (exported; no {prefix} weights, "
                                                "no --pretrained or --model-dir given)")
        raise WeightsError(f"no {bit}-bit model: neither trained weights {weights_path(prefix)} nor an exported model "
                           f"{graph}; make them with: {self.train_command(bit)}, then {self.export_command(bit)} "
                           "(or give --pretrained PREFIX / --model-dir DIR)")

    def default_export(self, bit: int) -> str:
        """inference/ when it holds an exported bit-bit model, else a WeightsError with the commands."""
        exported = self.export
        if exported.holds(bit):
            return exported.path
        graph, prefix = exported.graph_files(bit)[0], self.best(bit)
        if os.path.isfile(resolve_weights(prefix)):
            raise WeightsError(f"no exported model {graph}: export the trained weights with: "
                               f"{self.export_command(bit)} (or give --model-dir DIR)")
        raise WeightsError(f"no exported model {graph} and no trained weights {weights_path(prefix)}: "
                           f"{self.train_command(bit)}, then {self.export_command(bit)} (or give --model-dir DIR)")
