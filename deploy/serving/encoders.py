"""A fixed pool of Paddle Inference predictors, created once at start-up.

A Paddle predictor must not run in two threads at once, so each request checks one out of the
pool and gives it back; with one predictor requests are serialized, with N they run N at a
time (each with its own math threads). Preprocessing (resize, crop, normalise) happens outside
the checkout so it overlaps with other requests' inference. benchmarks/bench_serving.py
measures 1 against 2 predictors.
"""
import contextlib
import queue

import numpy as np

from utils.data.transforms import build_transform
from utils.inference.encoders import InferenceEncoder


class EncoderPool:
    def __init__(self, model_dir, bit=None, size=1, threads=1, use_mkldnn=True):
        encoders = [InferenceEncoder(model_dir, bit, use_mkldnn=use_mkldnn, cpu_threads=threads) for _ in range(size)]
        first = encoders[0]
        self.size = size
        self.threads = threads
        self.bit = first.bit
        self.fingerprint = first.fingerprint   # the weights digest (utils.storage.weights; utils.inference.code_cache reads it)
        self.preprocess = first.preprocess
        self.info = first.info
        self.transform = build_transform(False, **first.preprocess)
        self._free = queue.Queue()
        for encoder in encoders:
            self._free.put(encoder)

    @contextlib.contextmanager
    def checkout(self):
        """One predictor for this thread alone; blocks while all are busy."""
        encoder = self._free.get()
        try:
            yield encoder
        finally:
            self._free.put(encoder)

    def encode_batch(self, images):
        """Codes of preprocessed images with one predictor (the Encoder protocol: the code cache uses it)."""
        with self.checkout() as encoder:
            return encoder.encode_batch(images)

    def encode(self, images):
        """+-1 int8 codes [n, K] of uint8 RGB images (test-time preprocessing of the training config)."""
        batch = np.stack([self.transform(image) for image in images])
        with self.checkout() as encoder:
            return encoder.encode_batch(batch)
