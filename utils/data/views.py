"""Two augmented views of every training image, for the methods that learn by contrasting them (CIBHash).

The augmentations of SimCLR as CIBHash (Qiu et al., IJCAI 2021) uses them (its authors' data pipeline:
torchvision RandomResizedCrop(scale 0.5-1) -> RandomHorizontalFlip -> ColorJitter(0.4, 0.4, 0.4, 0.1)
with p 0.7 -> RandomGrayscale(p 0.2) -> GaussianBlur(3)), written here with cv2 + numpy like
utils/data/transforms.py. Every random draw comes from the numpy Generator the data set hands in
(seeded by (seed, epoch, item)), so the views are the same whatever the number of loader workers.
"""
import math

import cv2
import numpy as np

from utils.data.transforms import IMAGENET_MEAN, IMAGENET_STD, positive_int, shrink_large
from utils.errors import ConfigError

GRAY_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R 601, as torchvision's rgb_to_grayscale


def random_resized_crop(image, size, rng, scale=(0.5, 1.0), ratio=(3 / 4, 4 / 3)):
    """torchvision's RandomResizedCrop: a box of area scale x the image's and aspect ratio drawn
    log-uniformly (10 tries, else the largest centred box of a ratio in range), resized to size x size."""
    height, width = image.shape[:2]
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(*log_ratio))
        w = int(round(math.sqrt(target * aspect)))
        h = int(round(math.sqrt(target / aspect)))
        if 0 < w <= width and 0 < h <= height:
            top = int(rng.integers(0, height - h + 1))
            left = int(rng.integers(0, width - w + 1))
            break
    else:  # the fallback: centre crop at the nearest allowed ratio
        aspect = width / height
        if aspect < ratio[0]:
            w, h = width, int(round(width / ratio[0]))
        elif aspect > ratio[1]:
            w, h = int(round(height * ratio[1])), height
        else:
            w, h = width, height
        top, left = (height - h) // 2, (width - w) // 2
    return cv2.resize(image[top:top + h, left:left + w], (size, size), interpolation=cv2.INTER_LINEAR)


def grayscale(rgb):
    """float RGB [H, W, 3] -> its luma [H, W, 1]."""
    return (rgb @ GRAY_WEIGHTS)[..., None]


def color_jitter(rgb, rng, brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1):
    """torchvision's ColorJitter on float RGB in [0, 1]: the four changes in a random order, each factor
    drawn uniformly (brightness/contrast/saturation in [1 - x, 1 + x], hue shift in [-hue, hue] turns)."""
    for step in rng.permutation(4):
        if step == 0:
            rgb = rgb * rng.uniform(1 - brightness, 1 + brightness)
        elif step == 1:
            mean = float(grayscale(rgb).mean())
            rgb = (rgb - mean) * rng.uniform(1 - contrast, 1 + contrast) + mean
        elif step == 2:
            gray = grayscale(rgb)
            rgb = (rgb - gray) * rng.uniform(1 - saturation, 1 + saturation) + gray
        else:
            hsv = cv2.cvtColor(np.ascontiguousarray(rgb, dtype=np.float32), cv2.COLOR_RGB2HSV)  # H in [0, 360)
            hsv[..., 0] = (hsv[..., 0] + 360.0 * rng.uniform(-hue, hue)) % 360.0
            rgb = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
        rgb = np.clip(rgb, 0.0, 1.0).astype(np.float32)
    return rgb


class TwoViewTransform:
    """``(rgb uint8 HxWx3, rng) -> float32 [2, 3, crop, crop]``: two independent augmented views of the image
    resized to resize_size, normalised like the test transform (mean, std). Picklable (settings only)."""

    def __init__(self, resize_size=256, crop_size=224, mean=IMAGENET_MEAN, std=IMAGENET_STD, crop_scale=(0.5, 1.0),
                 jitter_p=0.7, gray_p=0.2, blur_p=0.5, blur_kernel=3):
        self.resize_size = positive_int("resize_size", resize_size)
        self.crop_size = positive_int("crop_size", crop_size)
        self.crop_scale = tuple(float(v) for v in crop_scale)
        if not 0 < self.crop_scale[0] <= self.crop_scale[1] <= 1:
            raise ConfigError(f"crop_scale must satisfy 0 < low <= high <= 1, got {crop_scale}")
        self.jitter_p, self.gray_p, self.blur_p = float(jitter_p), float(gray_p), float(blur_p)
        self.blur_kernel = positive_int("blur_kernel", blur_kernel) | 1  # an odd kernel
        self.mean = np.asarray(mean, dtype=np.float32).reshape(1, 1, 3)
        self.std = np.asarray(std, dtype=np.float32).reshape(1, 1, 3)

    def prepare(self, image):
        """The deterministic first step (transforms.shrink_large), as the test transform's."""
        return shrink_large(image, self.resize_size)

    def view(self, image, rng):
        """One augmented view, float32 CHW (of the image resized as the test transform does first, so that
        the crops of a small image are not a few pixels wide)."""
        image = cv2.resize(image, (self.resize_size, self.resize_size), interpolation=cv2.INTER_LINEAR)
        rgb = random_resized_crop(image, self.crop_size, rng, self.crop_scale).astype(np.float32) / 255.0
        if rng.random() < 0.5:
            rgb = rgb[:, ::-1]
        if rng.random() < self.jitter_p:
            rgb = color_jitter(rgb, rng)
        if rng.random() < self.gray_p:
            rgb = np.repeat(grayscale(rgb), 3, axis=2)
        if rng.random() < self.blur_p:  # SimCLR's blur: sigma uniform in [0.1, 2.0]
            sigma = float(rng.uniform(0.1, 2.0))
            rgb = cv2.GaussianBlur(np.ascontiguousarray(rgb), (self.blur_kernel, self.blur_kernel), sigma)
        out = (rgb - self.mean) / self.std
        return np.ascontiguousarray(out.transpose(2, 0, 1), dtype=np.float32)

    def __call__(self, image, rng=None):
        if not (isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3):
            raise ValueError(f"expected a uint8 HxWx3 image, got {getattr(image, 'dtype', type(image))} "
                             f"{getattr(image, 'shape', '')}")
        rng = np.random.default_rng() if rng is None else rng
        image = self.prepare(image)
        return np.stack([self.view(image, rng), self.view(image, rng)])

    def __repr__(self):
        return (f"TwoViewTransform(resize_size={self.resize_size}, crop_size={self.crop_size}, crop_scale={self.crop_scale}, jitter_p={self.jitter_p}, "
                f"gray_p={self.gray_p}, blur_p={self.blur_p}, blur_kernel={self.blur_kernel})")
