"""What the engine needs from every loss, and small pieces several losses share.

The engine calls `loss(outputs, labels, indices)` with the head's training outputs (z, or a
tuple (z, extras...) for heads with a classifier), the multi-hot labels and the dataset
indices of the batch; `on_epoch_start(epoch)` / `on_step(iteration)` before each epoch / step;
logs `beta` when it is not None; checkpoints `state_dict()`; and, after data-parallel
training, compares `buffers()` across ranks. A loss declares its config keys and published
defaults in `DEFAULTS` (the `loss` section's schema for that method), the head it needs in
`MODEL` (a models.MODELS name), whether it works on multi-label data in `MULTI_LABEL`, whether it
learns from labels in `SUPERVISED` (False: it trains on lists without label columns, and the engine
never hands it labels) and how many augmented views of each training image it needs in `VIEWS`
(2: the batch holds two views per image, utils/data/views.py).
"""
from __future__ import annotations

from typing import Any, ClassVar, Mapping, Optional, Tuple, Union

import paddle
from paddle import nn

from utils.errors import ConfigError, DataError, quote

# what a head gives its loss in train mode: z, or (z, class_logits) for heads with a classifier
HeadOutputs = Union[paddle.Tensor, Tuple[paddle.Tensor, ...]]


class HashLoss(nn.Layer):
    """The interface every method's loss fills (docs/architecture.md, "Add a method")."""

    NAME: ClassVar[Optional[str]] = None        # the LOSSES key (loss.name)
    DEFAULTS: ClassVar[Mapping[str, Any]] = {}  # config keys of the `loss` section (besides name) and their defaults
    MODEL: ClassVar[str] = "linear"             # the head whose outputs this loss consumes
    MULTI_LABEL: ClassVar[bool] = True          # False: the engine refuses multi-label data sets for this method
    SUPERVISED: ClassVar[bool] = True           # False: learns without labels (lists of paths alone, train.use_labels: false)
    VIEWS: ClassVar[int] = 1                    # augmented views of each training image in a batch (2: utils/data/views.py)
    beta: Optional[float] = None                # a continuation parameter to log, when the method has one

    def __init__(self, comm: Any = None) -> None:  # comm: utils.runtime.distributed.Comm, or None (one process)
        super().__init__()
        self.comm = comm

    @property
    def distributed(self) -> bool:
        return self.comm is not None and self.comm.active

    def forward(self, outputs: HeadOutputs, labels: paddle.Tensor, indices: paddle.Tensor) -> paddle.Tensor:
        """The scalar loss of a batch: the head's outputs, multi-hot labels [n, C], dataset indices [n]."""
        raise NotImplementedError

    def on_epoch_start(self, epoch: int) -> None:
        """Called at the start of every training epoch (epochs count from 0)."""

    def on_step(self, iteration: int) -> None:
        """Called before every training step with the global iteration count (from 0)."""

    def share(self, loss: paddle.Tensor) -> paddle.Tensor:
        """A batch-only loss (pairs inside one rank's batch) is correct per rank; the engine sums
        the ranks' losses, so each rank contributes loss / world size (the mean over ranks)."""
        return loss / self.comm.world_size if self.distributed else loss

    @classmethod
    def check_options(cls, options: Mapping[str, Any]) -> None:
        """Raise UserError naming `loss.<key>` for a bad value; options hold every DEFAULTS key."""

    @classmethod
    def check_data(cls, options: Mapping[str, Any], multi_label: bool, dataset: str) -> None:
        """Refuse data this method cannot learn from (called by build_loss with the training labels)."""
        if multi_label and not cls.MULTI_LABEL:
            raise DataError(f"loss {cls.NAME!r} supports single-label data only, but data set {dataset!r} has "
                            f"images with several labels")


# -- option checks (each names the config key at fault) ----------------------------------------
def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_positive(options: Mapping[str, Any], *keys: str, allow_none: bool = False) -> None:
    for key in keys:
        value = options[key]
        if not ((allow_none and value is None) or (_is_number(value) and value > 0)):
            extra = " or null" if allow_none else ""
            raise ConfigError(f"loss.{key}: must be > 0{extra}, got {quote(value)}")


def check_non_negative(options: Mapping[str, Any], *keys: str) -> None:
    for key in keys:
        if not (_is_number(options[key]) and options[key] >= 0):
            raise ConfigError(f"loss.{key}: must be >= 0, got {quote(options[key])}")


def check_int(options: Mapping[str, Any], key: str, minimum: int) -> None:
    value = options[key]
    if not (isinstance(value, int) and not isinstance(value, bool) and value >= minimum):
        raise ConfigError(f"loss.{key}: must be an integer >= {minimum}, got {quote(value)}")


def check_choice(options: Mapping[str, Any], key: str, choices: Tuple[Any, ...]) -> None:
    if options[key] not in choices:
        raise ConfigError(f"loss.{key}: must be one of {', '.join(map(str, choices))}, got {quote(options[key])}")


# -- shared numerics --------------------------------------------------------------------------
def similarity(labels_a: paddle.Tensor, labels_b: paddle.Tensor) -> paddle.Tensor:
    """s_ij = 1 when items i and j share at least one label, else 0 (float32 [n, m])."""
    return (paddle.matmul(labels_a, labels_b, transpose_y=True) > 0).astype(labels_a.dtype)


def off_diagonal_mean(matrix: paddle.Tensor) -> paddle.Tensor:
    """Mean over the pairs i != j of a square [n, n] pair matrix."""
    n = matrix.shape[0]
    mask = 1.0 - paddle.eye(n, dtype=matrix.dtype)
    return (matrix * mask).sum() / (n * (n - 1))


def balanced_weights(similar: paddle.Tensor, valid: paddle.Tensor, s1: paddle.Tensor,
                     s0: paddle.Tensor) -> Tuple[paddle.Tensor, paddle.Tensor]:
    """Pair weights S/S1 for similar and S/S0 for dissimilar pairs (S = S1 + S0), so the rarer
    class is not drowned out, times valid (0 for pairs that do not count); returns (weights, S)."""
    total = s1 + s0
    w_sim = paddle.where(s1 > 0, total / paddle.clip(s1, min=1.0), paddle.zeros_like(s1))
    w_dis = paddle.where(s0 > 0, total / paddle.clip(s0, min=1.0), paddle.zeros_like(s0))
    return (similar * w_sim + (1 - similar) * w_dis) * valid, total


def squared_distances(x: paddle.Tensor) -> paddle.Tensor:
    """||x_i - x_j||^2 for every pair of rows (clipped at 0 against rounding)."""
    norms = (x * x).sum(axis=1, keepdim=True)
    return paddle.clip(norms + norms.t() - 2 * paddle.matmul(x, x, transpose_y=True), min=0.0)


def log1p_exp(x: paddle.Tensor) -> paddle.Tensor:
    """log(1 + exp(x)), stable for any x."""
    return paddle.log1p(paddle.exp(-paddle.abs(x))) + paddle.clip(x, min=0)


def pair_cosines(x: paddle.Tensor) -> paddle.Tensor:
    """cos(x_i, x_{i + n/2}) for i < n/2: the pairs of a batch split in halves (an odd last row is left out),
    the pairs BiHalf's and GreedyHash's unsupervised losses compare."""
    half = x.shape[0] // 2
    return nn.functional.cosine_similarity(x[:half], x[half:2 * half], axis=1)


def bit_scale(bit: int, reference_bits: Optional[int]) -> float:
    """K / reference_bits (1 when reference_bits is None). The losses that compare codes by their cosine
    cos(b_i, b_j) = b_i . b_j / K (or average a penalty over the K bits) give each unit of z a gradient of
    order 1 / K, so with the paper's scale one learning rate cannot serve every code length (BiHalf on the
    digits, hash layer alone: the best SGD lr was 0.005 at 16 bits and 0.02 at 64, 4x for 4x the bits). Times
    K / reference_bits the loss is the paper's at reference_bits and one lr serves every K (as DPSH's
    eta_reference_size makes one eta serve every training-set size)."""
    return 1.0 if reference_bits is None else bit / reference_bits


def binary_codes(x: paddle.Tensor) -> paddle.Tensor:
    """+-1 codes with 0 -> +1, the convention of models.codes_from_logits (no gradient)."""
    return ((x >= 0).astype(x.dtype) * 2 - 1).detach()


class CodeMemory:
    """Mixin for losses that pair the batch with a memory of every training item's latest code
    (HashNet, DPSH): buffers memory_codes / memory_labels / memory_filled / memory_step, written
    with the batches of all ranks in data-parallel runs so every rank holds the same memory.

    memory_max_age (steps) bounds how stale a memory code may be and still be paired: None pairs
    the whole memory (the DeepHash-pytorch / Paddle reproduction form); 0 pairs the batch with
    itself only (in-batch pairs, as the original HashNet code); N pairs codes written in the
    last N steps. memory_warmup_epochs: epochs at the start that use in-batch pairs only.
    A stale memory is what made HashNet collapse from scratch (docs/methods.md).
    """

    memory_max_age = None
    memory_warmup_epochs = 0

    def init_memory(self, num_train: int, bit: int, num_classes: int, max_age: Optional[int] = None,
                    warmup_epochs: int = 0) -> None:
        dtype = paddle.get_default_dtype()
        self.memory_max_age, self.memory_warmup_epochs = max_age, warmup_epochs
        self.iteration, self.epoch = 0, 0
        self.register_buffer("memory_codes", paddle.zeros([num_train, bit], dtype=dtype))
        self.register_buffer("memory_labels", paddle.zeros([num_train, num_classes], dtype=dtype))
        self.register_buffer("memory_filled", paddle.zeros([num_train], dtype=dtype))
        # the step that wrote each entry (float: exact up to 2^24 steps)
        self.register_buffer("memory_step", paddle.zeros([num_train], dtype=dtype))

    def on_epoch_start(self, epoch: int) -> None:
        self.epoch = epoch

    def on_step(self, iteration: int) -> None:
        self.iteration = iteration

    def update_memory(self, codes: paddle.Tensor, labels: paddle.Tensor, indices: paddle.Tensor) -> None:
        """Write detached codes/labels at their dataset indices."""
        with paddle.no_grad():
            dtype = self.memory_codes.dtype
            self.memory_codes[indices] = codes.detach().astype(dtype)
            self.memory_labels[indices] = labels.astype(dtype)
            self.memory_filled[indices] = paddle.ones([indices.shape[0]], dtype=dtype)
            self.memory_step[indices] = paddle.full([indices.shape[0]], float(self.iteration), dtype=dtype)

    def write_batch(self, codes: paddle.Tensor, labels: paddle.Tensor, indices: paddle.Tensor) -> None:
        """The batch (every rank's batch in data-parallel runs) goes into the memory first."""
        if self.distributed:
            self.update_memory(self.comm.gather(codes.detach()), self.comm.gather(labels), self.comm.gather(indices))
        else:
            self.update_memory(codes, labels, indices)

    def memory_valid(self) -> paddle.Tensor:
        """[1, num_train] weights: 1 for the memory entries this step pairs with, else 0."""
        age = self.memory_max_age
        if self.epoch < self.memory_warmup_epochs:
            age = 0
        valid = self.memory_filled
        if age is not None:
            fresh = (float(self.iteration) - self.memory_step) <= float(age)
            valid = valid * fresh.astype(valid.dtype)
        return valid.unsqueeze(0)

    def global_count(self, count: paddle.Tensor) -> paddle.Tensor:
        """A pair count summed over ranks, so the ranks' losses add up to the one-process loss."""
        return self.comm.sum(count) if self.distributed else count


def check_memory_options(options: Mapping[str, Any]) -> None:
    """The memory_max_age / memory_warmup_epochs keys of CodeMemory losses."""
    value = options["memory_max_age"]
    if value is not None and not (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
        raise ConfigError(f"loss.memory_max_age: must be null (the whole memory) or an integer >= 0 (steps), "
                        f"got {quote(value)}")
    check_int(options, "memory_warmup_epochs", 0)


def classification_loss(logits: paddle.Tensor, labels: paddle.Tensor, sigmoid: bool) -> paddle.Tensor:
    """Mean over the batch of: softmax cross-entropy against the label distribution (the one-hot
    label; a multi-hot label normalised to sum 1), or (sigmoid=True) per-class sigmoid
    cross-entropy summed over the classes."""
    if sigmoid:
        return (log1p_exp(logits) - labels * logits).sum(axis=1).mean()
    target = labels / paddle.clip(labels.sum(axis=1, keepdim=True), min=1.0)
    return -(nn.functional.log_softmax(logits, axis=1) * target).sum(axis=1).mean()


class ClassifierLossMixin:
    """The `classification` option of methods whose head has a classifier (SSDH, DSHSD,
    GreedyHash): softmax (default; the papers' cross-entropy, on multi-label data against the
    normalised multi-hot vector) or sigmoid (independent per-class cross-entropy)."""

    CLASSIFICATION = ("softmax", "sigmoid")

    def classify(self, logits: paddle.Tensor, labels: paddle.Tensor) -> paddle.Tensor:
        return classification_loss(logits, labels, self.classification == "sigmoid")
