"""The built-in "lite" data set: a small, generated, multi-label retrieval task.

Each image shows 1-3 coloured shapes of distinct classes on a muted, smoothly
graded background. 12 classes = 3 shapes x 4 colours ("red_circle", ...). Two
images are relevant to each other when they share a class, exactly as for COCO
or NUS-WIDE, so the whole pipeline (train, eval, export, infer, predict) runs on
it unchanged, on CPU, in minutes, and a small CNN learns it from scratch.

Layout under ``root`` (paths in the lists are relative to ``root``)::

    images/test/00000.jpg ...       queries
    images/database/00000.jpg ...   database (the training images are drawn from it)
    test.txt database.txt train.txt <path> <v1> ... <v12>   (0/1 multi-hot)
    classes.txt                     one class name a line, in label order
    README.txt                      what this is, seed, counts

Generation is deterministic (byte-identical JPEGs for the same seed, counts and
size: every image has its own numpy Generator seeded from (seed, split, index))
and atomic (built in ``<root>.tmp-<pid>``, then renamed into place).
"""
import glob
import os
import shutil
import time

import cv2
import numpy as np

from utils.errors import ConfigError, DataError, WriteError

LITE_SHAPES = ("circle", "square", "triangle")
LITE_COLOURS = ("red", "green", "blue", "yellow")
LITE_CLASSES = tuple(f"{colour}_{shape}" for shape in LITE_SHAPES for colour in LITE_COLOURS)

# RGB reference colours of the objects (jittered per object).
_COLOUR_RGB = {
    "red": (214, 38, 38),
    "green": (34, 168, 56),
    "blue": (38, 78, 216),
    "yellow": (236, 206, 34),
}
_README_MARK = "HashNet-Paddle lite data set"
_SPLIT_TEST, _SPLIT_DATABASE, _STREAM_TRAIN = 1, 2, 3  # rng stream tags
_NUM_OBJECTS_P = (0.4, 0.35, 0.25)  # P(1 object), P(2), P(3)
_SIZE_RANGE = (0.18, 0.40)  # object extent, as a fraction of the image side
_JPEG_QUALITY = 95


def _background(rng, xx, yy):
    """Smooth linear gradient between two muted (greyish) colours, float32 HxWx3."""
    colours = []
    for _ in range(2):
        grey = rng.uniform(70.0, 190.0)
        tint = rng.uniform(-22.0, 22.0, size=3)
        colours.append(grey + tint)
    c0, c1 = np.float32(colours[0]), np.float32(colours[1])
    angle = rng.uniform(0.0, 2.0 * np.pi)
    proj = xx * np.float32(np.cos(angle)) + yy * np.float32(np.sin(angle))
    t = (proj - proj.min()) / max(float(proj.max() - proj.min()), 1e-6)
    return c0 + t[..., None] * (c1 - c0)


def _polygon(shape, centre, extent, angle):
    """Vertices (float, Nx2) of a square/triangle with the given extent, rotated by angle."""
    if shape == "square":
        half = 0.4 * extent  # side 0.8 * extent: area close to the circle's
        pts = np.array([[-half, -half], [half, -half], [half, half], [-half, half]])
    else:  # equilateral triangle, circumradius 0.62 * extent
        r = 0.62 * extent
        a = np.deg2rad([-90.0, 30.0, 150.0])
        pts = np.stack([r * np.cos(a), r * np.sin(a)], axis=1)
    c, s = np.cos(angle), np.sin(angle)
    rot = np.array([[c, -s], [s, c]])
    return pts @ rot.T + np.asarray(centre)


def _fit_radius(shape, extent):
    """Radius of a circle around the centre that contains the whole shape."""
    return {"circle": 0.5, "square": 0.4 * np.sqrt(2.0), "triangle": 0.62}[shape] * extent


def _place_objects(rng, classes, size):
    """Centres and extents for the objects: fully inside the image, overlapping only a little."""
    placed = []  # (cx, cy, extent, fit radius)
    for cls in classes:
        shape = LITE_CLASSES[cls].split("_", 1)[1]
        extent = rng.uniform(*_SIZE_RANGE) * size
        while True:
            fit = _fit_radius(shape, extent)
            for _ in range(60):
                cx, cy = rng.uniform(fit, size - fit, size=2)
                # Centres at least 0.75 x (sum of enclosing radii) apart: a little overlap at most.
                if all(np.hypot(cx - px, cy - py) >= 0.75 * (fit + pf) for px, py, _, pf in placed):
                    break
            else:
                extent *= 0.9  # crowded: shrink and retry (always succeeds eventually)
                continue
            placed.append((cx, cy, extent, fit))
            break
    return placed


def _render_image(rng, size, xx, yy):
    """One image (uint8 HxWx3 RGB) and its class indices."""
    num_objects = int(rng.choice(len(_NUM_OBJECTS_P), p=_NUM_OBJECTS_P)) + 1
    classes = [int(c) for c in rng.choice(len(LITE_CLASSES), size=num_objects, replace=False)]
    canvas = np.clip(_background(rng, xx, yy), 0, 255).astype(np.uint8)
    shift = 4  # sub-pixel precision for cv2 drawing
    scale = 1 << shift
    for cls, (cx, cy, extent, _) in zip(classes, _place_objects(rng, classes, size)):
        colour_name, shape = LITE_CLASSES[cls].split("_", 1)
        colour = np.clip(np.array(_COLOUR_RGB[colour_name]) + rng.uniform(-18, 18, size=3), 0, 255)
        colour = tuple(int(round(v)) for v in colour)
        angle = rng.uniform(0.0, 2.0 * np.pi)
        if shape == "circle":
            centre = (int(round(cx * scale)), int(round(cy * scale)))
            cv2.circle(canvas, centre, int(round(0.5 * extent * scale)), colour, -1, cv2.LINE_AA, shift)
        else:
            pts = np.round(_polygon(shape, (cx, cy), extent, angle) * scale).astype(np.int32)
            cv2.fillPoly(canvas, [pts], colour, cv2.LINE_AA, shift)
    noise = rng.standard_normal(size=canvas.shape, dtype=np.float32)
    noise *= np.float32(4.0)
    noise += canvas
    image = np.clip(noise, 0, 255, out=noise).astype(np.uint8)
    return image, sorted(classes)


def _label_line(rel_path, classes):
    vec = ["0"] * len(LITE_CLASSES)
    for c in classes:
        vec[c] = "1"
    return rel_path + " " + " ".join(vec) + "\n"


def _write_split(tmp_root, split, tag, count, seed, size, xx, yy):
    folder = os.path.join(tmp_root, "images", split)
    os.makedirs(folder)
    lines, labels = [], np.zeros((count, len(LITE_CLASSES)), np.int64)
    params = [cv2.IMWRITE_JPEG_QUALITY, _JPEG_QUALITY]
    for i in range(count):
        rng = np.random.default_rng([seed, tag, i])
        image, classes = _render_image(rng, size, xx, yy)
        name = f"{i:05d}.jpg"
        ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(image[..., ::-1]), params)
        if not ok:
            raise RuntimeError(f"cv2 could not encode {split}/{name}")
        _write_bytes(os.path.join(folder, name), buf.tobytes())  # not tofile: its last block's error is lost
        lines.append(_label_line(f"images/{split}/{name}", classes))
        labels[i, classes] = 1
    return lines, labels


def _write_bytes(path, data):
    with open(path, "wb") as f:  # Python's writes raise on a full disk (numpy's tofile does not, at its close)
        f.write(data)


def _write_text(path, text):
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)


def _readme(seed, num_test, num_database, num_train, image_size, db_labels):
    freq = db_labels.mean(axis=0)
    per_class = "\n".join(f"  {name:16s} {f:.3f}" for name, f in zip(LITE_CLASSES, freq))
    return (
        f"{_README_MARK}\n"
        f"{'=' * len(_README_MARK)}\n\n"
        "Generated by utils/data/lite.py (do not edit; delete this folder to regenerate).\n"
        "Each image shows 1-3 objects of distinct classes; 12 classes = 3 shapes\n"
        "(circle, square, triangle) x 4 colours (red, green, blue, yellow), on a muted\n"
        "gradient background. Two images are relevant when they share a class.\n\n"
        f"seed: {seed}\n"
        f"image size: {image_size}x{image_size} (JPEG, quality {_JPEG_QUALITY})\n"
        f"queries (test.txt): {num_test}\n"
        f"database (database.txt): {num_database}\n"
        f"training (train.txt, drawn from the database): {num_train}\n"
        f"classes: {len(LITE_CLASSES)} (classes.txt, in label order)\n"
        f"mean labels per database image: {db_labels.sum(axis=1).mean():.3f}\n"
        f"class frequency in the database:\n{per_class}\n\n"
        "List format: <relative/path.jpg> <v1> ... <v12>, 0/1 multi-hot, paths relative\n"
        "to this folder.\n"
    )


def _is_lite_dataset(root):
    try:
        with open(os.path.join(root, "README.txt"), encoding="utf-8") as f:
            return f.readline().strip() == _README_MARK
    except OSError:
        return False


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale_tmp_dirs(root):
    """Remove <root>.tmp-<pid> folders left by killed generations (dead pid, > 60 s old)."""
    for path in glob.glob(glob.escape(root) + ".tmp-*") + glob.glob(glob.escape(root) + ".old-*"):
        suffix = path.rsplit("-", 1)[-1]
        if not suffix.isdigit() or int(suffix) == os.getpid():
            continue
        try:
            old = time.time() - os.path.getmtime(path) > 60
        except OSError:
            continue
        if old and not _pid_alive(int(suffix)):
            shutil.rmtree(path, ignore_errors=True)


def _check_count(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(f"lite data set: {name} must be an integer >= {minimum}, got {value!r}")


def _generate(root, seed, num_database, num_test, num_train, image_size, overwrite):
    _check_count("seed", seed, 0)
    _check_count("num_database", num_database, 1)
    _check_count("num_test", num_test, 1)
    _check_count("num_train", num_train, 1)
    _check_count("image_size", image_size, 32)
    if num_train > num_database:
        raise ConfigError(f"lite data set: num_train ({num_train}) exceeds num_database ({num_database})")
    root = os.path.abspath(os.fspath(root))
    if os.path.exists(root) and not os.path.isdir(root):
        raise DataError(f"{root}: exists and is not a folder; cannot generate the lite data set there")
    os.makedirs(os.path.dirname(root), exist_ok=True)
    _remove_stale_tmp_dirs(root)
    tmp = f"{root}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        os.makedirs(tmp)
        coords = np.arange(image_size, dtype=np.float32)
        xx, yy = np.meshgrid(coords, coords)
        test_lines, _ = _write_split(tmp, "test", _SPLIT_TEST, num_test, seed, image_size, xx, yy)
        db_lines, db_labels = _write_split(tmp, "database", _SPLIT_DATABASE, num_database, seed, image_size, xx, yy)
        train_rng = np.random.default_rng([seed, _STREAM_TRAIN])
        train_idx = np.sort(train_rng.choice(num_database, size=num_train, replace=False))
        _write_text(os.path.join(tmp, "test.txt"), "".join(test_lines))
        _write_text(os.path.join(tmp, "database.txt"), "".join(db_lines))
        _write_text(os.path.join(tmp, "train.txt"), "".join(db_lines[i] for i in train_idx))
        _write_text(os.path.join(tmp, "classes.txt"), "".join(c + "\n" for c in LITE_CLASSES))
        _write_text(
            os.path.join(tmp, "README.txt"),
            _readme(seed, num_test, num_database, num_train, image_size, db_labels),
        )
        _install(tmp, root, overwrite)
    except OSError as exc:  # a full disk or a read-only folder: one line, nothing installed
        raise WriteError(root, exc) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return root


def _install(tmp, root, overwrite):
    """Rename the finished tmp folder to root (atomic); handle an existing root."""
    try:
        os.replace(tmp, root)  # works when root is absent or an empty folder
        return
    except OSError:
        if not os.path.isdir(root):
            raise
    # root exists and is not empty.
    if os.path.isfile(os.path.join(root, "database.txt")) and not overwrite:
        return  # another process (e.g. another rank) finished first: keep its copy
    if not _is_lite_dataset(root):
        raise DataError(
            f"{root}: folder exists, is not empty and is not a lite data set, so the lite set is not generated "
            "there; for your own images give --dataset NAME (and --list-dir), or choose another --data-path"
        )
    old = f"{root}.old-{os.getpid()}"
    os.replace(root, old)
    try:
        os.replace(tmp, root)
    except BaseException:
        os.replace(old, root)
        raise
    shutil.rmtree(old, ignore_errors=True)


def generate_lite_dataset(root, seed=0, num_database=600, num_test=100, num_train=500, image_size=128):
    """Generate the lite data set into ``root`` (replacing an existing lite data set there).

    Deterministic for a given (seed, counts, image_size); atomic. Returns the absolute root.
    """
    return _generate(root, seed, num_database, num_test, num_train, image_size, overwrite=True)


def ensure_lite_dataset(root, seed=0, **kw):
    """Generate the lite data set under ``root`` unless ``root/database.txt`` exists. Returns root.

    Safe to call from several processes at once (e.g. every rank of a distributed run):
    each builds its own temporary copy and the first to finish wins.
    """
    root = os.fspath(root)
    if os.path.isfile(os.path.join(root, "database.txt")):
        return root
    start = time.perf_counter()
    _generate(root, seed, overwrite=False, **{**_DEFAULTS, **kw})
    counts = {**_DEFAULTS, **kw}
    print(
        f"lite data set: generated {counts['num_test']} queries, {counts['num_database']} database images "
        f"({counts['num_train']} for training), {len(LITE_CLASSES)} classes, seed {seed}, "
        f"in {time.perf_counter() - start:.1f}s -> {root}",
        flush=True,
    )
    return root


_DEFAULTS = {"num_database": 600, "num_test": 100, "num_train": 500, "image_size": 128}
