"""Data loading shared by training, evaluation, predict and inference.

List files hold one image a line: ``<relative/path.jpg> <v1> ... <vC>`` (0/1
multi-hot, paths relative to the data root). Images are decoded with OpenCV to
8-bit RGB and preprocessed with cv2 + numpy (no paddle.vision):

    train: resize to resize_size x resize_size (bilinear), random crop crop_size, random
           horizontal flip, /255, (x - mean) / std, HWC -> CHW float32
    test:  the same with a center crop and no flip

Reproducibility: every random choice comes from a numpy Generator derived from
(seed, epoch, sample index) for augmentation and from (seed, epoch) for the
shuffle, so results do not depend on the number of DataLoader workers. Call
``loader.batch_sampler.set_epoch(epoch)`` before iterating each epoch (it also
sets the dataset's epoch; workers are started per epoch, after that call).
"""
import collections
import itertools
import math
import os
import struct
import threading
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import paddle

from utils.errors import UserError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# numpy Generator stream tags, so the shuffle and augmentation streams never coincide.
_AUG_STREAM = 1
_SHUFFLE_STREAM = 2

_DROP_01 = str.maketrans("", "", "01")

# Decompression-bomb guard (config dataset.max_image_pixels): 100 MP is ~300 MB as 8-bit RGB.
DEFAULT_MAX_PIXELS = 100_000_000


# --------------------------------------------------------------------------- lists


def _read_list(list_path, num_classes=None):
    """Parse a list file: (paths, labels float32 [n, C], line numbers)."""
    list_path = os.fspath(list_path)
    if num_classes is not None and (isinstance(num_classes, bool) or int(num_classes) < 1):
        raise UserError(f"{list_path}: num_classes must be >= 1, got {num_classes!r}")
    try:
        with open(list_path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise UserError(f"{list_path}: list file not found") from None
    except IsADirectoryError:
        raise UserError(f"{list_path}: is a folder, expected a list file") from None
    except OSError as exc:
        raise UserError(f"{list_path}: cannot read list file: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8-sig")  # utf-8-sig drops a BOM
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].replace(b"\r\n", b"\n").replace(b"\r", b"\n").count(b"\n") + 1
        raise UserError(f"{list_path}:{line}: not UTF-8 text (byte {exc.start}); list files must be UTF-8") from None
    text = text.replace("\r\n", "\n").replace("\r", "\n")  # CRLF and CR line ends read as LF

    expected = None if num_classes is None else int(num_classes)
    paths, bits, linenos = [], [], []
    for lineno, line in enumerate(text.split("\n"), 1):
        tokens = line.split()
        if not tokens:
            continue
        labels = tokens[1:]
        where = f"{list_path}:{lineno}"
        if not labels:
            raise UserError(f"{where}: no labels")
        if "\x00" in tokens[0]:
            raise UserError(f"{where}: the image path contains a NUL character")
        if expected is None:
            expected = len(labels)
        if len(labels) != expected:
            raise UserError(f"{where}: expected {expected} labels, got {len(labels)}")
        joined = "".join(labels)
        if len(joined) != expected or joined.translate(_DROP_01):
            # Slow path: some token is not a plain "0"/"1" (e.g. "1.0", or an error).
            chars = []
            for token in labels:
                try:
                    value = float(token)
                except ValueError:
                    value = None
                if value not in (0.0, 1.0):
                    raise UserError(f"{where}: label {token!r} is not 0 or 1")
                chars.append("1" if value == 1.0 else "0")
            joined = "".join(chars)
        paths.append(tokens[0])
        bits.append(joined)
        linenos.append(lineno)
    if not paths:
        raise UserError(f"{list_path}: no images listed (the list is empty)")
    flat = np.frombuffer("".join(bits).encode("ascii"), dtype=np.uint8)
    labels = (flat - ord("0")).reshape(len(paths), expected).astype(np.float32)
    return paths, labels, linenos


def parse_list(list_path, num_classes=None):
    """Read a list file. Returns (paths as written, labels float32 [n, C]).

    Blank lines are skipped, CRLF is fine. Every malformed line is a UserError
    ``"<file>:<line>: ..."``. When num_classes is None, C is taken from the first line.
    """
    paths, labels, _ = _read_list(list_path, num_classes)
    return paths, labels


# --------------------------------------------------------------------------- images


_IMREAD_FLAGS = cv2.IMREAD_COLOR_RGB | cv2.IMREAD_IGNORE_ORIENTATION

_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _jpeg_size(data):
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):  # standalone markers carry no length
            pos += 2
            continue
        if marker in _JPEG_SOF:
            if pos + 9 > len(data):
                return None
            height, width = struct.unpack(">HH", data[pos + 5:pos + 9])
            return width, height
        pos += 2 + struct.unpack(">H", data[pos + 2:pos + 4])[0]
    return None


def image_size(data):
    """(width, height) from the header of a JPEG/PNG/BMP/GIF/WebP file's bytes, None for other
    formats or a header too short to tell. Reads a few bytes; decodes nothing."""
    data = bytes(data[:1 << 16]) if not data[:2] == b"\xff\xd8" else bytes(data)
    try:
        if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR":
            return struct.unpack(">II", data[16:24])
        if data[:2] == b"\xff\xd8":
            return _jpeg_size(data)
        if data[:2] == b"BM":
            if struct.unpack("<I", data[14:18])[0] == 12:  # OS/2 BITMAPCOREHEADER
                return struct.unpack("<HH", data[18:22])
            width, height = struct.unpack("<ii", data[18:26])
            return abs(width), abs(height)
        if data[:4] in (b"GIF8",):
            return struct.unpack("<HH", data[6:10])
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            chunk = data[12:16]
            if chunk == b"VP8X":
                return (int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1)
            if chunk == b"VP8L":
                bits = int.from_bytes(data[21:25], "little")
                return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
            if chunk == b"VP8 ":
                width, height = struct.unpack("<HH", data[26:30])
                return width & 0x3FFF, height & 0x3FFF
    except struct.error:
        return None
    return None


def read_image(path, max_pixels=DEFAULT_MAX_PIXELS):
    """Decode an image file to uint8 HxWx3 RGB.

    Grayscale is expanded to 3 channels, alpha is dropped (as PIL's convert("RGB")),
    16-bit is reduced to 8-bit, CMYK JPEGs are converted; EXIF orientation is ignored (as
    PIL's Image.open). Missing, empty or undecodable files raise UserError naming the path, and
    so does an image whose header claims more than max_pixels pixels (a decompression bomb),
    before anything is decoded. Formats whose header is not parsed here (TIFF, ...) rely on
    OpenCV's own limit (2**30 pixels).
    """
    path = os.fspath(path)
    try:
        buf = np.fromfile(path, dtype=np.uint8)  # not cv2.imread: handles non-ASCII names everywhere
    except FileNotFoundError:
        raise UserError(f"{path}: image not found") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a folder, expected an image") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot read image: {exc.strerror or exc}") from None
    if buf.size == 0:
        raise UserError(f"{path}: image file is empty")
    size = image_size(buf.data)
    if size is not None and size[0] * size[1] > max_pixels:
        raise UserError(f"{path}: image of {size[0]}x{size[1]} pixels exceeds the limit of {max_pixels} "
                        "(dataset.max_image_pixels; a decompression bomb?)")
    try:
        image = cv2.imdecode(buf, _IMREAD_FLAGS)
    except cv2.error:
        image = None
    if image is None or image.size == 0:
        raise UserError(f"{path}: cannot decode image (truncated, corrupt or not an image)")
    # IMREAD_COLOR_RGB already gives uint8 HxWx3 (16-bit >> 8); these are only defensive.
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    elif image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_RGBA2RGB)
    return np.ascontiguousarray(image)


# --------------------------------------------------------------------------- transforms


def _positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise UserError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


class ImageTransform:
    """``(rgb uint8 HxWx3, rng) -> float32 CHW``; picklable (DataLoader workers)."""

    def __init__(self, train, resize_size=256, crop_size=224, mean=IMAGENET_MEAN, std=IMAGENET_STD):
        self.train = bool(train)
        self.resize_size = _positive_int("resize_size", resize_size)
        self.crop_size = _positive_int("crop_size", crop_size)
        if self.crop_size > self.resize_size:
            raise UserError(f"crop_size ({crop_size}) must not exceed resize_size ({resize_size})")
        mean = np.asarray(mean, dtype=np.float64).reshape(-1)
        std = np.asarray(std, dtype=np.float64).reshape(-1)
        if mean.shape != (3,) or std.shape != (3,):
            raise UserError(f"mean and std need 3 values each, got {mean.tolist()} and {std.tolist()}")
        if not np.all(std > 0):
            raise UserError(f"std values must be > 0, got {std.tolist()}")
        self.mean = tuple(mean.tolist())
        self.std = tuple(std.tolist())
        # (x / 255 - mean) / std == x * scale + offset
        self._scale = (1.0 / (255.0 * std)).astype(np.float32)
        self._offset = (-mean / std).astype(np.float32)

    def __call__(self, image, rng=None):
        if not (isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3):
            raise ValueError(f"expected a uint8 HxWx3 image, got {getattr(image, 'dtype', type(image))} "
                             f"{getattr(image, 'shape', '')}")
        size, crop = self.resize_size, self.crop_size
        image = cv2.resize(image, (size, size), interpolation=cv2.INTER_LINEAR)
        if self.train:
            if rng is None:
                rng = np.random.default_rng()
            top = int(rng.integers(0, size - crop + 1))
            left = int(rng.integers(0, size - crop + 1))
            flip = bool(rng.random() < 0.5)
            image = image[top:top + crop, left:left + crop]
            if flip:
                image = image[:, ::-1]
        else:
            top = left = (size - crop) // 2
            image = image[top:top + crop, left:left + crop]
        out = image.astype(np.float32)
        out *= self._scale
        out += self._offset
        return np.ascontiguousarray(out.transpose(2, 0, 1))

    def __repr__(self):
        return (f"ImageTransform(train={self.train}, resize_size={self.resize_size}, "
                f"crop_size={self.crop_size}, mean={self.mean}, std={self.std})")


def build_transform(train, resize_size=256, crop_size=224, mean=IMAGENET_MEAN, std=IMAGENET_STD):
    """Train (random crop + flip) or test (center crop) preprocessing; see ImageTransform."""
    return ImageTransform(train, resize_size, crop_size, mean, std)


def preprocess_image(path, resize_size=256, crop_size=224, mean=IMAGENET_MEAN, std=IMAGENET_STD):
    """Read one image file and apply the test transform: float32 [3, crop, crop]."""
    return build_transform(False, resize_size, crop_size, mean, std)(read_image(path))


# --------------------------------------------------------------------------- dataset


def _check_seed(seed):
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise UserError(f"seed must be an integer >= 0, got {seed!r}")
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
    With check_files (default) every listed image must exist (UserError "<list>:<line>: ...").
    A bad image (missing, unreadable, over max_pixels) is a UserError "<list>:<line>: <why>", or
    with skip_bad the item is None (the loader drops it) and is recorded in ``.bad``
    {index: reason}. List paths that are absolute or climb out of data_root with ``..`` are
    refused unless allow_outside_root.
    """

    def __init__(self, list_path, data_root, transform, num_classes=None, seed=0, check_files=True,
                 skip_bad=False, allow_outside_root=False, max_pixels=DEFAULT_MAX_PIXELS):
        super().__init__()
        self.list_path = os.fspath(list_path)
        self.data_root = os.fspath(data_root)
        rel_paths, labels, linenos = _read_list(self.list_path, num_classes)
        if not os.path.isdir(self.data_root):
            raise UserError(f"{self.data_root}: data folder not found")
        if not allow_outside_root:
            for rel, lineno in zip(rel_paths, linenos):
                if _outside_root(rel):
                    raise UserError(f"{self.list_path}:{lineno}: {rel} is outside the data root {self.data_root} "
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
        self.seed = _check_seed(seed)
        self.epoch = 0

    def _bad_item(self, index, reason):
        where = f"{self.list_path}:{self.linenos[index]}"
        if not self.skip_bad:
            raise UserError(f"{where}: {reason} (or skip such images with --skip-bad-images)")
        with self._bad_lock:
            self.bad.setdefault(index, f"{where}: {reason}")

    def set_epoch(self, epoch):
        """Use the augmentation stream of this epoch (call before creating the epoch's iterator)."""
        self.epoch = _check_seed(epoch)

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
        try:
            image = read_image(self.paths[i], self.max_pixels)
        except UserError as exc:
            self._bad_item(i, str(exc))
            return None
        if self.transform is not None:
            image = self.transform(image, self.sample_rng(i))
        return image, self.labels[i].copy(), np.int64(i)


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


# --------------------------------------------------------------------------- loader


class EpochBatchSampler(paddle.io.BatchSampler):
    """Batches of indices, shuffled reproducibly from (seed, epoch).

    ``set_epoch(e)`` selects the epoch's order (and calls ``dataset.set_epoch(e)`` when it has one).
    With num_replicas > 1 each rank gets an equal share: rank::num_replicas of the epoch's
    order, padded by wrapping around (so a few samples repeat) to make the shares the same size.
    """

    def __init__(self, dataset, batch_size, shuffle=False, drop_last=False, seed=0, num_replicas=1, rank=0):
        batch_size = _positive_int("batch size", batch_size)
        super().__init__(dataset=dataset, shuffle=False, batch_size=batch_size, drop_last=bool(drop_last))
        self.dataset = dataset
        self.shuffle = bool(shuffle)
        self.seed = _check_seed(seed)
        self.num_replicas = _positive_int("num_replicas", num_replicas)
        if not 0 <= int(rank) < self.num_replicas:
            raise UserError(f"rank must be in [0, {self.num_replicas}), got {rank}")
        self.rank = int(rank)
        self.epoch = 0

    def set_epoch(self, epoch):
        self.epoch = _check_seed(epoch)
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(self.epoch)

    def indices(self):
        """This rank's sample indices for the current epoch, in order."""
        n = len(self.dataset)
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch, _SHUFFLE_STREAM]).permutation(n)
        else:
            order = np.arange(n)
        if self.num_replicas > 1:
            total = math.ceil(n / self.num_replicas) * self.num_replicas
            if total > n:
                order = np.concatenate([order, np.resize(order, total - n)])
            order = order[self.rank::self.num_replicas]
        return order

    def __iter__(self):
        order = self.indices().tolist()
        bs = self.batch_size
        for start in range(0, len(order), bs):
            batch = order[start:start + bs]
            if len(batch) < bs and self.drop_last:
                return
            yield batch

    def _num_samples(self):
        n = len(self.dataset)
        return math.ceil(n / self.num_replicas) if self.num_replicas > 1 else n

    def __len__(self):
        m = self._num_samples()
        return m // self.batch_size if self.drop_last else math.ceil(m / self.batch_size)


def _to_tensors(batch):
    if isinstance(batch, np.ndarray):
        return paddle.to_tensor(batch, place=paddle.CPUPlace())
    if isinstance(batch, (list, tuple)):
        return [_to_tensors(b) for b in batch]
    if isinstance(batch, dict):
        return {k: _to_tensors(v) for k, v in batch.items()}
    return batch


class EpochDataLoader(paddle.io.DataLoader):
    """paddle.io.DataLoader whose workers are threads, in batch order, with bounded prefetch.

    Decoding (cv2) and the numpy transforms release the GIL, so threads keep the cores busy
    without paddle's worker processes, which in Paddle 3.3 hang when the dataset raises
    (num_workers=0) or when an epoch is left early (num_workers>0), and turn a worker's error
    into a generic SystemError. Here an error raised while loading (a UserError naming the
    file) reaches the caller as it is, and leaving an epoch early stops the pool.
    """

    def __iter__(self):
        collate = self.collate_fn or paddle.io.dataloader.collate.default_collate_fn

        def load(indices):
            items = [item for item in (self.dataset[i] for i in indices) if item is not None]  # None: skipped
            return collate(items) if items else None

        if self.num_workers == 0:
            for indices in self.batch_sampler:
                batch = load(indices)
                if batch is not None:
                    yield _to_tensors(batch)
            return
        pool = ThreadPoolExecutor(self.num_workers, thread_name_prefix="data")
        pending = collections.deque()
        try:
            batches = iter(self.batch_sampler)
            for indices in itertools.islice(batches, 2 * self.num_workers):
                pending.append(pool.submit(load, indices))
            while pending:
                batch = pending.popleft().result()
                for indices in itertools.islice(batches, 1):
                    pending.append(pool.submit(load, indices))
                if batch is not None:
                    yield _to_tensors(batch)
        finally:
            for future in pending:
                future.cancel()
            pool.shutdown(wait=True, cancel_futures=True)


def build_dataloader(dataset, batch_size, shuffle, drop_last, num_workers=0, seed=0, num_replicas=1, rank=0):
    """An EpochDataLoader (a paddle.io.DataLoader) over dataset, with an EpochBatchSampler.

    Batches are [images float32 [B,3,H,W], labels float32 [B,C], indices int64 [B]] (CPU tensors).
    Call ``loader.batch_sampler.set_epoch(epoch)`` before each epoch.
    """
    if isinstance(num_workers, bool) or not isinstance(num_workers, (int, np.integer)) or num_workers < 0:
        raise UserError(f"num_workers must be an integer >= 0, got {num_workers!r}")
    num_workers = int(num_workers)
    sampler = EpochBatchSampler(dataset, batch_size, shuffle=shuffle, drop_last=drop_last, seed=seed,
                                num_replicas=num_replicas, rank=rank)
    if len(sampler) == 0:
        where = getattr(dataset, "list_path", "the data set")
        raise UserError(
            f"{where}: {sampler._num_samples()} images per process are fewer than one batch of "
            f"{sampler.batch_size} (drop_last): lower the batch size"
        )
    return EpochDataLoader(
        dataset,
        batch_sampler=sampler,
        num_workers=num_workers,
        return_list=True,
    )


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
        raise UserError(f"dataset.val_fraction {fraction} holds out {count} of {num_items} training images; "
                        "need at least 1 and fewer than all")
    order = np.random.default_rng([seed, 7919]).permutation(num_items)
    return np.sort(order[count:]), np.sort(order[:count])
