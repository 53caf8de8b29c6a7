"""A fixed pool of Paddle Inference predictors, created once: an Encoder several threads may share.

A Paddle predictor must not run in two threads at once, so each batch checks one out of the pool
and gives it back; with one predictor batches are serialized, with N they run N at a time (each
with its own math threads). Preprocessing (resize, crop, normalise) happens outside the checkout,
so it overlaps with other threads' inference. The search service encodes with it;
benchmarks/bench_serving.py measures 1 against 2 predictors.
"""
from __future__ import annotations

import contextlib
import queue
from typing import Any, Iterator

import numpy as np

from utils.inference.encoders import EncoderBase, InferenceEncoder


class EncoderPool(EncoderBase):
    def __init__(self, model_dir: str, bit: int | None = None, size: int = 1, threads: int = 1,
                 use_mkldnn: bool = True) -> None:
        encoders = [InferenceEncoder(model_dir, bit, use_mkldnn=use_mkldnn, cpu_threads=threads) for _ in range(size)]
        first = encoders[0]
        self.size = size
        self.threads = threads
        self.bit = first.bit
        self.fingerprint = first.fingerprint   # the weights digest (utils.inference.code_cache reads it)
        self.preprocess = first.preprocess
        self.info = first.info
        self._free: queue.Queue[InferenceEncoder] = queue.Queue()
        for encoder in encoders:
            self._free.put(encoder)

    @contextlib.contextmanager
    def checkout(self) -> Iterator[InferenceEncoder]:
        """One predictor for this thread alone; blocks while all are busy."""
        encoder = self._free.get()
        try:
            yield encoder
        finally:
            self._free.put(encoder)

    def features(self, images: Any) -> np.ndarray:
        """Pre-sign features of preprocessed images with one predictor (the Encoder protocol)."""
        with self.checkout() as encoder:
            return encoder.features(images)
