"""Collectives for data-parallel training (gloo on CPU, NCCL on GPU); identities on one process."""
import numpy as np
import paddle


class Comm:
    """What the engine and the loss need from paddle.distributed, and nothing when world_size is 1."""

    def __init__(self, rank=0, world_size=1):
        self.rank, self.world_size = rank, world_size

    @property
    def active(self):
        return self.world_size > 1

    def gather(self, tensor):
        """All ranks' tensors concatenated along axis 0, in rank order (same shape on every rank)."""
        if not self.active:
            return tensor
        import paddle.distributed as dist

        parts = []
        dist.all_gather(parts, tensor)
        return paddle.concat(parts, axis=0)

    def sum(self, tensor):
        if not self.active:
            return tensor
        import paddle.distributed as dist

        tensor = tensor.clone()
        dist.all_reduce(tensor)
        return tensor

    def gather_numpy(self, array):
        if not self.active:
            return array
        return self.gather(paddle.to_tensor(array)).numpy()


def in_dataset_order(comm, indices, *arrays):
    """Gather per-rank shards (padded by wrap-around) and return arrays ordered by dataset index."""
    indices = comm.gather_numpy(np.asarray(indices, dtype=np.int64))
    gathered = [comm.gather_numpy(a) for a in arrays]
    _, first = np.unique(indices, return_index=True)  # sorted unique indices; drops the padding repeats
    return [g[first] for g in gathered]
