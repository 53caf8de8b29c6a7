"""The data sets a run reads: the images of a list file, a subset of them, the validation split.

Reproducibility: the augmentation randomness of item i comes from a numpy Generator seeded by
(seed, epoch, i), so results do not depend on the number of loader workers or their order.

Large images (a camera's photos) are decoded once: the transform's deterministic first step
(`prepare`: utils.data.transforms.shrink_large) shrinks them, and the shrunk image is kept in memory
(up to CACHE_BYTES a data set) for the next epochs; decoding a 12-megapixel JPEG costs more than the
rest of its training step at the scratch recipes' 64 pixels. Images the step leaves alone are read
from their files every time, as before.
"""
import os
import threading

import numpy as np
import paddle

from utils.data.images import DEFAULT_MAX_PIXELS, read_image
from utils.data.lists import read_list
from utils.errors import ConfigError, DataError

CACHE_BYTES = 2 << 30  # shrunk large images kept in memory, a data set (2 GiB: ~25,000 at 144 x 192)

# numpy Generator stream tags, so the shuffle and augmentation streams never coincide.
_AUG_STREAM = 1
_SHUFFLE_STREAM = 2


def check_seed(seed):
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"seed must be an integer >= 0, got {seed!r}")
    return int(seed)


def _outside_root(rel_path):
    """True when a list path is absolute or leads out of the data root with `..`."""
    if os.path.isabs(rel_path) or (os.name == "nt" and os.path.splitdrive(rel_path)[0]):
        return True
    return os.path.normpath(rel_path).split(os.sep)[0] == os.pardir


class ImageListDataset(paddle.io.Dataset):
    """Images of a list file: item i -> (image float32 [3,H,W], label float32 [C], index int64).

    ``.paths``: full paths (data_root joined), ready to open; ``.rel_paths``: as in the list;
    ``.labels``: float32 [n, C]; ``.num_classes``: C. Augmentation randomness for item i
    comes from a numpy Generator seeded by (seed, epoch, i): see ``set_epoch``.
    With check_files (default) every listed image must exist (DataError "<list>:<line>: ...").
    A bad image (missing, unreadable, over max_pixels) is a DataError "<list>:<line>: <why>", or
    with skip_bad the item is None (the loader drops it) and is recorded in ``.bad``
    {index: reason}. List paths that are absolute or climb out of data_root with ``..`` are
    refused unless allow_outside_root.
    """

    def __init__(self, list_path, data_root, transform, num_classes=None, seed=0, check_files=True,
                 skip_bad=False, allow_outside_root=False, max_pixels=DEFAULT_MAX_PIXELS):
        super().__init__()
        self.list_path = os.fspath(list_path)
        self.data_root = os.fspath(data_root)
        rel_paths, labels, linenos = read_list(self.list_path, num_classes)
        if not os.path.isdir(self.data_root):
            raise DataError(f"{self.data_root}: data folder not found")
        if not allow_outside_root:
            for rel, lineno in zip(rel_paths, linenos):
                if _outside_root(rel):
                    raise DataError(f"{self.list_path}:{lineno}: {rel} is outside the data root {self.data_root} "
                                    "(allow with --allow-outside-data-root / dataset.allow_outside_root)")
        self.rel_paths = rel_paths
        self.linenos = linenos
        self.paths = [os.path.join(self.data_root, p) for p in rel_paths]
        self.skip_bad = bool(skip_bad)
        self.max_pixels = int(max_pixels)
        self.bad = {}
        self._bad_lock = threading.Lock()
        if check_files:
            for i, path in enumerate(self.paths):
                if not os.path.isfile(path):
                    self._bad_item(i, f"image not found: {path}")
        self.labels = labels
        self.num_classes = labels.shape[1]
        self.transform = transform
        self.seed = check_seed(seed)
        self.epoch = 0
        self._shrunk = {}  # index -> the prepared (shrunk) image of a large one
        self._shrunk_bytes = 0

    def _bad_item(self, index, reason):
        where = f"{self.list_path}:{self.linenos[index]}"
        if not self.skip_bad:
            raise DataError(f"{where}: {reason} (or skip such images with --skip-bad-images)")
        with self._bad_lock:
            self.bad.setdefault(index, f"{where}: {reason}")

    def set_epoch(self, epoch):
        """Use the augmentation stream of this epoch (call before creating the epoch's iterator)."""
        self.epoch = check_seed(epoch)

    def sample_rng(self, index):
        return np.random.default_rng([self.seed, self.epoch, int(index), _AUG_STREAM])

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, index):
        i = int(index)
        if not 0 <= i < len(self.paths):
            raise IndexError(f"index {index} out of range for {len(self.paths)} images")
        if i in self.bad:
            return None
        image = self._shrunk.get(i)
        if image is None:
            try:
                image = read_image(self.paths[i], self.max_pixels)
            except DataError as exc:
                self._bad_item(i, str(exc))
                return None
            image = self._keep_if_shrunk(i, image)
        if self.transform is not None:
            image = self.transform(image, self.sample_rng(i))
        return image, self.labels[i].copy(), np.int64(i)

    def _keep_if_shrunk(self, index, image):
        prepare = getattr(self.transform, "prepare", None)
        if prepare is None:
            return image
        small = prepare(image)
        if small is not image and self._shrunk_bytes + small.nbytes <= CACHE_BYTES:
            with self._bad_lock:
                if index not in self._shrunk:
                    self._shrunk[index] = small
                    self._shrunk_bytes += small.nbytes
        return small


def bad_image_summary(*datasets):
    """One line counting the images skipped by --skip-bad-images (None when there were none)."""
    bad = {}
    for dataset in datasets:
        dataset = getattr(dataset, "dataset", dataset)  # a SubsetView
        bad.update({(dataset.list_path, i): reason for i, reason in getattr(dataset, "bad", {}).items()})
    if not bad:
        return None
    reasons = sorted(bad.values())
    more = f" (+{len(reasons) - 3} more)" if len(reasons) > 3 else ""
    return f"skipped {len(bad)} bad image(s) (--skip-bad-images): " + "; ".join(reasons[:3]) + more


class SubsetView(paddle.io.Dataset):
    """Some items of an ImageListDataset; items keep their index in the full list (the loss
    memory and the distributed gather key on it)."""

    def __init__(self, dataset, indices):
        super().__init__()
        self.dataset = dataset
        self.indices = np.asarray(indices, dtype=np.int64)
        self.labels = dataset.labels[self.indices]
        self.num_classes = dataset.num_classes
        self.list_path = dataset.list_path

    def set_epoch(self, epoch):
        self.dataset.set_epoch(epoch)

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, i):
        return self.dataset[int(self.indices[i])]


def split_validation(num_items, fraction, seed):
    """(train indices, validation indices): a fixed random fraction held out for model selection."""
    count = int(round(num_items * fraction))
    if not 0 < count < num_items:
        raise ConfigError(f"dataset.val_fraction {fraction} holds out {count} of {num_items} training images; "
                        "need at least 1 and fewer than all")
    order = np.random.default_rng([seed, 7919]).permutation(num_items)
    return np.sort(order[count:]), np.sort(order[:count])
