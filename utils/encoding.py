"""Images -> pre-sign features -> binary codes: the one encoding step (numpy only).

Every path that turns images into codes goes through `encode`: evaluation during training, the
inference encoders (trained weights, Paddle Inference, onnxruntime), the infer CLIs' image runner,
the search service and the export checks. An encoder gives the network's real-valued output before
the sign (`features`, [n, K] float32); the code is +1 where a feature is >= 0 and -1 elsewhere
(`sign_codes`: the one place the rule is written; a zero feature gives +1). Exports written by
earlier versions output the +-1 code itself, whose sign is itself: they give the same codes.
The features travel with the codes so that a search can re-rank by them later.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Iterable, Protocol

import numpy as np


class FeatureEncoder(Protocol):
    """Anything with a code length and a `features` method: the encoders of utils.inference, a
    network under evaluation (utils.training.evaluate)."""

    bit: int

    def features(self, images: Any) -> np.ndarray:
        """Pre-sign features [n, K] of a batch of preprocessed images."""
        ...


@dataclasses.dataclass(frozen=True)
class Encoded:
    """A batch (or a data set) encoded: the pre-sign features and their codes, row for row."""

    features: np.ndarray  # float32 [n, K]
    codes: np.ndarray     # int8 +-1 [n, K]

    def __len__(self) -> int:
        return len(self.codes)


def sign_codes(features: Any) -> np.ndarray:
    """+1 where a feature is >= 0, else -1, as int8 [n, K] (NaN gives -1)."""
    return np.where(np.asarray(features) >= 0, 1, -1).astype(np.int8)


def encode(encoder: FeatureEncoder, images: Any) -> Encoded:
    """Features and codes of one batch of preprocessed images."""
    features = np.asarray(encoder.features(images), dtype=np.float32)
    return Encoded(features, sign_codes(features))


def concatenate(parts: Iterable[Encoded], bit: int) -> Encoded:
    """One Encoded of several, in order (an empty [0, bit] one for none)."""
    parts = list(parts)
    if not parts:
        return Encoded(np.zeros((0, bit), np.float32), np.zeros((0, bit), np.int8))
    return Encoded(np.concatenate([p.features for p in parts]), np.concatenate([p.codes for p in parts]))
