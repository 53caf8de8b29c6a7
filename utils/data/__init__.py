"""Data: list files (lists), images (images), preprocessing (transforms), the data sets a run reads
(dataset), batches (loader) and the built-in generated lite data set (lite).

The names below are the paddle-free ones (lists, images, transforms), importable without loading
paddle; the data sets and the loader are in utils.data.dataset and utils.data.loader.
"""
from utils.data.images import DEFAULT_MAX_PIXELS, image_size, read_image
from utils.data.lists import class_names, parse_list, read_list
from utils.data.transforms import IMAGENET_MEAN, IMAGENET_STD, ImageTransform, build_transform, preprocess_image

__all__ = ["DEFAULT_MAX_PIXELS", "IMAGENET_MEAN", "IMAGENET_STD", "ImageTransform", "build_transform", "class_names",
           "image_size", "parse_list", "preprocess_image", "read_image", "read_list"]
