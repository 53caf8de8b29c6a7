"""Shared inputs and slow, obvious references for the loss tests."""
import math

import numpy as np
import paddle


def make_batch(rng, batch, bit, classes, scale=1.0, multi_label=True):
    """Outputs z and multi-hot labels (1-3 labels an image when multi_label, else one-hot)."""
    z = rng.normal(0, scale, (batch, bit))
    labels = np.zeros((batch, classes))
    labels[np.arange(batch), rng.integers(0, classes, batch)] = 1
    if multi_label:
        labels[rng.random((batch, classes)) < 0.2] = 1
    return z, labels


def shares_label(a, b):
    return any(x > 0 and y > 0 for x, y in zip(a, b))


def dot(a, b):
    return sum(x * y for x, y in zip(a, b))


def sign(x):
    return 1.0 if x >= 0 else -1.0


def sigmoid(x):
    return 1.0 / (1.0 + math.exp(-x))


def classification_reference(logits_row, label_row, sigmoid_ce):
    """Per-sample: softmax cross-entropy against the label distribution (labels / their count),
    or per-class sigmoid cross-entropy summed over the classes."""
    if sigmoid_ce:
        return sum(-(y * math.log(sigmoid(o)) + (1 - y) * math.log(1 - sigmoid(o))) for o, y in zip(logits_row, label_row))
    top = max(logits_row)
    log_norm = top + math.log(sum(math.exp(o - top) for o in logits_row))
    count = sum(label_row)
    return sum(-(y / count) * (o - log_norm) for o, y in zip(logits_row, label_row))


def mean_classification_reference(logits, labels, mode):
    """classification_reference averaged over the batch, one sample at a time."""
    return sum(classification_reference(row, label, mode == "sigmoid") for row, label in zip(logits, labels)) / len(labels)


def tensors(*arrays, dtype="float32"):
    return [paddle.to_tensor(np.asarray(a, dtype=dtype)) for a in arrays]


def call(loss_fn, z, labels, logits=None, indices=None, dtype="float32"):
    """Run a loss on numpy inputs (a tuple (z, logits) for heads with a classifier)."""
    zt, lt = tensors(z, labels, dtype=dtype)
    outputs = zt if logits is None else (zt, tensors(logits, dtype=dtype)[0])
    idx = paddle.to_tensor(np.arange(len(z)) if indices is None else np.asarray(indices), dtype="int64")
    return float(loss_fn(outputs, lt, idx))
