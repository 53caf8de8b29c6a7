"""Batches of a data set: the epoch's order (EpochBatchSampler) and a loader whose workers are threads.

Call ``loader.batch_sampler.set_epoch(epoch)`` before iterating each epoch (it also sets the data
set's epoch, which seeds the augmentation); workers start per epoch, after that call.
"""
import collections
import itertools
import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import paddle

from utils.data.dataset import _SHUFFLE_STREAM, check_seed
from utils.data.transforms import positive_int
from utils.errors import ConfigError


class EpochBatchSampler(paddle.io.DistributedBatchSampler):
    """paddle.io.DistributedBatchSampler (its arguments, checks, length and set_epoch) with the
    epoch's order drawn from (seed, epoch).

    Paddle's own __iter__ shuffles with np.random.RandomState(epoch): the same order for every
    seed, and it advances the epoch by itself; a run's data order must follow its seed (and
    resume exactly), so __iter__ is ours: a permutation from numpy Generator (seed, epoch), and
    with num_replicas > 1 the share rank::num_replicas of it, padded by wrapping around (so a few
    samples repeat) to make the shares the same size. ``set_epoch(e)`` also calls
    ``dataset.set_epoch(e)`` when the data set has one.
    """

    def __init__(self, dataset, batch_size, shuffle=False, drop_last=False, seed=0, num_replicas=1, rank=0):
        batch_size = positive_int("batch size", batch_size)
        num_replicas = positive_int("num_replicas", num_replicas)
        if not 0 <= int(rank) < num_replicas:
            raise ConfigError(f"rank must be in [0, {num_replicas}), got {rank}")
        super().__init__(dataset, batch_size, num_replicas=num_replicas, rank=int(rank), shuffle=bool(shuffle),
                         drop_last=bool(drop_last))
        self.seed = check_seed(seed)

    def set_epoch(self, epoch):
        super().set_epoch(check_seed(epoch))
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(self.epoch)

    def indices(self):
        """This rank's sample indices for the current epoch, in order."""
        n = len(self.dataset)
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch, _SHUFFLE_STREAM]).permutation(n)
        else:
            order = np.arange(n)
        if self.nranks > 1:
            total = math.ceil(n / self.nranks) * self.nranks
            if total > n:
                order = np.concatenate([order, np.resize(order, total - n)])
            order = order[self.local_rank::self.nranks]
        return order

    def __iter__(self):
        order = self.indices().tolist()
        bs = self.batch_size
        for start in range(0, len(order), bs):
            batch = order[start:start + bs]
            if len(batch) < bs and self.drop_last:
                return
            yield batch


def _to_tensors(batch):
    if isinstance(batch, np.ndarray):
        return paddle.to_tensor(batch, place=paddle.CPUPlace())
    if isinstance(batch, (list, tuple)):
        return [_to_tensors(b) for b in batch]
    if isinstance(batch, dict):
        return {k: _to_tensors(v) for k, v in batch.items()}
    return batch


class ThreadedLoader:
    """The batches of batch_sampler, in its order, decoded by num_workers threads with bounded prefetch
    and collated by paddle's default_collate_fn into CPU tensors.

    Not paddle.io.DataLoader: decoding (cv2) and the numpy transforms release the GIL, so threads
    keep the cores busy without worker processes, and Paddle 3.3's loader hangs when the data set
    raises (num_workers=0) or when an epoch is left early (num_workers>0), and turns a worker's
    error into a generic SystemError (tests/utils/data/test_data.py). Here an error raised while
    loading (a DataError naming the file) reaches the caller as it is, and leaving an epoch early
    stops the pool. Items that are None (images skipped by --skip-bad-images) are dropped.
    """

    def __init__(self, dataset, batch_sampler, num_workers=0):
        self.dataset = dataset
        self.batch_sampler = batch_sampler
        self.num_workers = num_workers
        self.collate_fn = paddle.io.dataloader.collate.default_collate_fn

    def __len__(self):
        return len(self.batch_sampler)

    def _load(self, indices):
        items = [item for item in (self.dataset[i] for i in indices) if item is not None]  # None: skipped
        return self.collate_fn(items) if items else None

    def __iter__(self):
        if self.num_workers == 0:
            for indices in self.batch_sampler:
                batch = self._load(indices)
                if batch is not None:
                    yield _to_tensors(batch)
            return
        pool = ThreadPoolExecutor(self.num_workers, thread_name_prefix="data")
        pending = collections.deque()
        try:
            batches = iter(self.batch_sampler)
            for indices in itertools.islice(batches, 2 * self.num_workers):
                pending.append(pool.submit(self._load, indices))
            while pending:
                batch = pending.popleft().result()
                for indices in itertools.islice(batches, 1):
                    pending.append(pool.submit(self._load, indices))
                if batch is not None:
                    yield _to_tensors(batch)
        finally:
            for future in pending:
                future.cancel()
            pool.shutdown(wait=True, cancel_futures=True)


def build_dataloader(dataset, batch_size, shuffle, drop_last, num_workers=0, seed=0, num_replicas=1, rank=0):
    """A ThreadedLoader over dataset with an EpochBatchSampler.

    Batches are [images float32 [B,3,H,W], labels float32 [B,C], indices int64 [B]] (CPU tensors).
    Call ``loader.batch_sampler.set_epoch(epoch)`` before each epoch.
    """
    if isinstance(num_workers, bool) or not isinstance(num_workers, (int, np.integer)) or num_workers < 0:
        raise ConfigError(f"num_workers must be an integer >= 0, got {num_workers!r}")
    sampler = EpochBatchSampler(dataset, batch_size, shuffle=shuffle, drop_last=drop_last, seed=seed,
                                num_replicas=num_replicas, rank=rank)
    if len(sampler) == 0:
        where = getattr(dataset, "list_path", "the data set")
        raise ConfigError(
            f"{where}: {sampler.num_samples} images per process are fewer than one batch of "
            f"{sampler.batch_size} (drop_last): lower the batch size"
        )
    return ThreadedLoader(dataset, sampler, num_workers=int(num_workers))
