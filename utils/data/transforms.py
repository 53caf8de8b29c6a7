"""Preprocessing with cv2 + numpy (no paddle.vision):

    train: resize to resize_size x resize_size (bilinear), random crop crop_size, random
           horizontal flip, /255, (x - mean) / std, HWC -> CHW float32
    test:  the same with a center crop and no flip

Before the resize, an image with both sides at least SHRINK_FACTOR x 2 x resize_size (a camera's photo
at the scratch recipes' 72 pixels) is first shrunk by area averaging to a shortest side of 2 x
resize_size (shrink_large): bilinear resizing straight from thousands of pixels to 72 samples a few
pixels and aliases, and the data sets keep the shrunk image in memory instead of decoding the photo
again every epoch (utils.data.dataset). Images below that size, every benchmark data set at its
config's size among them, are untouched.
"""
import cv2
import numpy as np

from utils.data.images import read_image
from utils.errors import ConfigError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


SHRINK_FACTOR = 2


def shrink_large(image, resize_size):
    """The image area-averaged to a shortest side of 2 x resize_size when both its sides are at least
    SHRINK_FACTOR times that, else the image itself (the same object)."""
    target = 2 * resize_size
    h, w = image.shape[:2]
    if min(h, w) < SHRINK_FACTOR * target:
        return image
    scale = target / min(h, w)
    size = (max(target, round(w * scale)), max(target, round(h * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


class ImageTransform:
    """``(rgb uint8 HxWx3, rng) -> float32 CHW``; picklable (DataLoader workers)."""

    def __init__(self, train, resize_size=256, crop_size=224, mean=IMAGENET_MEAN, std=IMAGENET_STD):
        self.train = bool(train)
        self.resize_size = positive_int("resize_size", resize_size)
        self.crop_size = positive_int("crop_size", crop_size)
        if self.crop_size > self.resize_size:
            raise ConfigError(f"crop_size ({crop_size}) must not exceed resize_size ({resize_size})")
        mean = np.asarray(mean, dtype=np.float64).reshape(-1)
        std = np.asarray(std, dtype=np.float64).reshape(-1)
        if mean.shape != (3,) or std.shape != (3,):
            raise ConfigError(f"mean and std need 3 values each, got {mean.tolist()} and {std.tolist()}")
        if not np.all(std > 0):
            raise ConfigError(f"std values must be > 0, got {std.tolist()}")
        self.mean = tuple(mean.tolist())
        self.std = tuple(std.tolist())

        # (x / 255 - mean) / std == x * scale + offset
        self._scale = (1.0 / (255.0 * std)).astype(np.float32)
        self._offset = (-mean / std).astype(np.float32)

    def prepare(self, image):
        """The deterministic first step (shrink_large): what a data set may keep in memory."""
        return shrink_large(image, self.resize_size)

    def __call__(self, image, rng=None):
        if not (isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3):
            raise ValueError(f"expected a uint8 HxWx3 image, got {getattr(image, 'dtype', type(image))} "
                             f"{getattr(image, 'shape', '')}")
        size, crop = self.resize_size, self.crop_size
        image = cv2.resize(self.prepare(image), (size, size), interpolation=cv2.INTER_LINEAR)
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
