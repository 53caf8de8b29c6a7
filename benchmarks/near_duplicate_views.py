"""The near-duplicate benchmark's data: real photographs, each turned into edited copies ("views").

A view is the photograph after one of the edits people make before a copy ends up in a collection
again (KINDS, in this order: a crop, a mirror image, a small rotation, colour changes, a smaller
size, strong JPEG re-compression, a caption or logo drawn on it), half of the time followed by a
second random edit. View 0 of each photograph is the photograph itself. Everything is drawn from
one seed, so the same photographs give the same views on every machine (OpenCV's JPEG codec aside).
"""
import os

import cv2
import numpy as np

from utils.data.folders import is_image_name, scan_images
from utils.data.images import read_image
from utils.errors import DataError
from utils.storage.fileio import atomic_write_bytes

KINDS = ("crop", "flip", "rotate", "colour", "resize", "jpeg", "overlay")
SOURCE_SIDE = 384  # the photographs are first scaled to this longest side (the "originals")


def photo_files(places):
    """The image files of `places` (files or folders, in the order given, folders walked), deduplicated."""
    found = []
    for place in places:
        if os.path.isdir(place):
            found += [os.path.join(place, p) for p in scan_images(place).paths]
        elif os.path.isfile(place) and is_image_name(place):
            found.append(place)
        elif os.path.exists(place):
            raise DataError(f"--photos: {place} is not an image file or a folder")
    unique = list(dict.fromkeys(os.path.realpath(p) for p in found))
    return unique


def original(path):
    image = read_image(path)
    scale = SOURCE_SIDE / max(image.shape[:2])
    size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def _crop(image, rng):
    h, w = image.shape[:2]
    area = rng.uniform(0.45, 0.85)
    aspect = np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3)))
    ch = int(min(h, round(h * np.sqrt(area / aspect))))
    cw = int(min(w, round(w * np.sqrt(area * aspect))))
    y, x = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
    return image[y:y + ch, x:x + cw]


def _rotate(image, rng):
    h, w = image.shape[:2]
    angle = rng.uniform(4, 12) * rng.choice((-1, 1))
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    return cv2.warpAffine(image, matrix, (w, h), borderMode=cv2.BORDER_REFLECT)


def _colour(image, rng):
    hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV).astype(np.float32)
    hsv[..., 0] = (hsv[..., 0] + rng.uniform(-8, 8)) % 180
    hsv[..., 1] *= rng.uniform(0.6, 1.4)
    out = cv2.cvtColor(np.clip(hsv, 0, 255).astype(np.uint8), cv2.COLOR_HSV2RGB).astype(np.float32)
    out = (out - out.mean()) * rng.uniform(0.7, 1.3) + out.mean() * rng.uniform(0.7, 1.3)
    return np.clip(out, 0, 255).astype(np.uint8)


def _resize(image, rng):
    scale = rng.uniform(0.25, 0.6)
    h, w = image.shape[:2]
    return cv2.resize(image, (max(8, round(w * scale)), max(8, round(h * scale))), interpolation=cv2.INTER_AREA)


def _jpeg(image, rng):
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY,
                                                                            int(rng.integers(10, 30))])
    return cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def _overlay(image, rng):
    out = image.copy()
    h, w = out.shape[:2]
    text = str(rng.choice(["(c) 2026 holiday", "IMG_0412", "Sent with Mail", "photo by A. Nonymous", "#sunset"]))
    scale = w / 420
    org = (int(rng.uniform(0.02, 0.35) * w), int(rng.uniform(0.15, 0.95) * h))
    colour = tuple(int(c) for c in rng.integers(0, 256, 3))
    cv2.putText(out, text, org, cv2.FONT_HERSHEY_SIMPLEX, 1.1 * scale, colour, max(1, round(2.5 * scale)), cv2.LINE_AA)
    r = int(0.07 * min(h, w)) + 1  # a round "logo" in a corner
    cx, cy = (w - 2 * r, 2 * r) if rng.random() < 0.5 else (2 * r, h - 2 * r)
    cv2.circle(out, (cx, cy), r, tuple(int(c) for c in rng.integers(0, 256, 3)), -1, cv2.LINE_AA)
    return out


EDITS = {"crop": _crop, "flip": lambda image, rng: image[:, ::-1], "rotate": _rotate, "colour": _colour,
         "resize": _resize, "jpeg": _jpeg, "overlay": _overlay}


def make_view(image, kind, rng, second_edit=True):
    """`image` after the edit `kind` and, with probability 1/2 when second_edit, one more random edit."""
    out = EDITS[kind](image, rng)
    if second_edit and rng.random() < 0.5:
        out = EDITS[str(rng.choice(KINDS))](out, rng)
    return np.ascontiguousarray(out)


def write_views(photos, out_dir, views, seed, first_is_original=True, ids=None):
    """Write `views` views of every photograph under out_dir/<photo id>/<view>.jpg (JPEG quality 95;
    ids: one number a photo, default 0, 1, ...); return (relative paths, photo id per path, edit kind per path)."""
    rng = np.random.default_rng(seed)
    paths, sources, kinds = [], [], []
    for s, photo in zip(range(len(photos)) if ids is None else ids, photos):
        image = original(photo)
        folder = os.path.join(out_dir, f"{s:03d}")
        os.makedirs(folder, exist_ok=True)
        for v in range(views):
            if first_is_original and v == 0:
                kind, view = "original", image
            else:
                kind = KINDS[(v - first_is_original) % len(KINDS)] if first_is_original else str(rng.choice(KINDS))
                view = make_view(image, kind, rng)
            ok, data = cv2.imencode(".jpg", cv2.cvtColor(view, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
            if not ok:
                raise DataError(f"cannot encode a view of {photo}")
            rel = f"{s:03d}/{v:02d}.jpg"
            atomic_write_bytes(os.path.join(out_dir, rel), data.tobytes())
            paths.append(rel)
            sources.append(s)
            kinds.append(kind)
    return paths, np.asarray(sources), kinds
