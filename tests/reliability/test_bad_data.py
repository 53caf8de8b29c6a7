"""Bad list files and bad images: a one-line UserError naming <list>:<line> (or the image), or,
with skip_bad / --skip-bad-images, the image is skipped, counted and reported."""
import io
import os
import re
import struct
import time
import zlib

import cv2
import numpy as np
import pytest

from tests.reliability.common import assert_one_line_error, train
from utils.data.dataset import bad_image_summary, ImageListDataset
from utils.data.images import image_size, read_image
from utils.data.lists import parse_list
from utils.data.loader import build_dataloader
from utils.data.transforms import build_transform
from utils.errors import UserError


def write_bytes(path, data):
    path.write_bytes(data)
    return str(path)


def encoded(ext, array, params=()):
    ok, buf = cv2.imencode(ext, array, list(params))
    assert ok
    return buf.tobytes()


RGB = np.random.default_rng(0).integers(0, 256, (40, 56, 3), dtype=np.uint8)  # H=40, W=56


# --------------------------------------------------------------------------- list files


@pytest.mark.parametrize("text,where,what", [
    ("a.jpg 0 1 0\n\nb.jpg 0 1\n", 3, "expected 3 labels, got 2"),          # missing label column
    ("a.jpg 0 1\r\nb.jpg 0 1 1\r\n", 2, "expected 2 labels, got 3"),        # extra column, CRLF
    ("a.jpg 0 1\n\n\n b.jpg 0 2\n", 4, "label '2' is not 0 or 1"),
    ("a.jpg 0 1\nb.jpg -1 0\n", 2, "label '-1' is not 0 or 1"),
    ("a.jpg 0.5 1\n", 1, "label '0.5' is not 0 or 1"),
    ("a.jpg nan 1\n", 1, "label 'nan' is not 0 or 1"),
    ("a.jpg 1 0\nb.jpg\n", 2, "no labels"),
])
def test_malformed_list_lines_name_file_and_line(tmp_path, text, where, what):
    lst = tmp_path / "train.txt"
    lst.write_bytes(text.encode())
    with pytest.raises(UserError) as exc:
        parse_list(lst)
    assert str(exc.value) == f"{lst}:{where}: {what}"


def test_blank_lines_crlf_cr_and_bom_parse(tmp_path):
    lst = write_bytes(tmp_path / "l.txt", b"\xef\xbb\xbfa.jpg 0 1\r\n\r\n  \rb.jpg 1 1\rc.jpg 1 0")
    paths, labels = parse_list(lst)
    assert paths == ["a.jpg", "b.jpg", "c.jpg"]
    np.testing.assert_array_equal(labels, [[0, 1], [1, 1], [1, 0]])


def test_non_utf8_name_names_its_line(tmp_path):
    lst = write_bytes(tmp_path / "l.txt", b"a.jpg 0 1\n\nimg_\xe9t\xe9.jpg 1 0\n")  # Latin-1, not UTF-8
    with pytest.raises(UserError, match=r"l\.txt:3: not UTF-8"):
        parse_list(lst)


def test_utf8_names_are_fine(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    write_bytes(folder / "été 1.png".replace(" ", "_"), encoded(".png", RGB))
    lst = write_bytes(tmp_path / "l.txt", "images/été_1.png 1 0\n".encode())
    ds = ImageListDataset(lst, str(tmp_path), None)
    assert ds[0][0].shape == (40, 56, 3)


@pytest.fixture
def data_root(tmp_path):
    root = tmp_path / "root"
    (root / "img").mkdir(parents=True)
    write_bytes(root / "img" / "ok.png", encoded(".png", RGB))
    write_bytes(tmp_path / "outside.png", encoded(".png", RGB))
    return root


@pytest.mark.parametrize("entry", ["../outside.png", "img/../../outside.png", "ABS"])
def test_paths_outside_the_data_root_are_refused_unless_allowed(data_root, entry):
    entry = str(data_root.parent / "outside.png") if entry == "ABS" else entry
    lst = write_bytes(data_root / "l.txt", f"img/ok.png 1 0\n{entry} 0 1\n".encode())
    with pytest.raises(UserError) as exc:
        ImageListDataset(lst, str(data_root), None)
    assert str(exc.value).startswith(f"{lst}:2: {entry} is outside the data root") and \
        "--allow-outside-data-root" in str(exc.value)
    ds = ImageListDataset(lst, str(data_root), None, allow_outside_root=True)
    np.testing.assert_array_equal(ds[1][0], cv2.cvtColor(RGB, cv2.COLOR_BGR2RGB))


def test_dotdot_inside_the_root_is_fine(data_root):
    lst = write_bytes(data_root / "l.txt", b"img/../img/ok.png 1 0\n")
    assert ImageListDataset(lst, str(data_root), None)[0][0].shape == (40, 56, 3)


def test_missing_image_names_list_line(data_root):
    lst = write_bytes(data_root / "l.txt", b"img/ok.png 1 0\n\nimg/gone.png 0 1\n")
    with pytest.raises(UserError, match=r"l\.txt:3: image not found: .*gone\.png"):
        ImageListDataset(lst, str(data_root), None)
    ds = ImageListDataset(lst, str(data_root), None, skip_bad=True)
    assert ds[1] is None and list(ds.bad) == [1]


# --------------------------------------------------------------------------- images


def fake_png_header(width, height):
    """A PNG whose IHDR claims width x height; no pixel data follows."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + ihdr
            + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr)))


@pytest.mark.parametrize("name,data,why", [
    ("empty.jpg", b"", "image file is empty"),
    ("truncated.jpg", encoded(".jpg", RGB)[:300], "cannot decode image"),
    ("truncated.png", encoded(".png", RGB)[:200], "cannot decode image"),
    ("text.jpg", b"hello, I am not an image\n" * 20, "cannot decode image"),
    ("bomb.png", fake_png_header(60000, 60000), "image of 60000x60000 pixels exceeds the limit of 100000000"),
])
def test_bad_images_are_user_errors_naming_the_file(tmp_path, name, data, why):
    path = write_bytes(tmp_path / name, data)
    with pytest.raises(UserError) as exc:
        read_image(path)
    assert str(exc.value).startswith(f"{path}: {why}")


def test_bomb_guard_reads_the_header_only_and_is_configurable(tmp_path):
    path = write_bytes(tmp_path / "bomb.png", fake_png_header(60000, 60000) + b"\0" * 1000)
    start = time.perf_counter()
    with pytest.raises(UserError, match="decompression bomb"):
        read_image(path)
    assert time.perf_counter() - start < 0.05  # 3.6 gigapixels were never decoded
    small = write_bytes(tmp_path / "small.jpg", encoded(".jpg", RGB))
    with pytest.raises(UserError, match="56x40 pixels exceeds the limit of 2000"):
        read_image(small, max_pixels=2000)
    assert read_image(small, max_pixels=56 * 40).shape == (40, 56, 3)


def pil_bytes(image, fmt, **kw):
    buf = io.BytesIO()
    image.save(buf, fmt, **kw)
    return buf.getvalue()


def test_header_sizes_match_the_decoded_sizes():
    from PIL import Image

    pil = Image.fromarray(RGB)
    files = {ext: encoded(ext, RGB) for ext in (".jpg", ".png", ".bmp", ".webp")}
    files["progressive"] = pil_bytes(pil, "JPEG", progressive=True)
    files["exif"] = pil_bytes(pil, "JPEG", exif=b"Exif\x00\x00" + b"\x00" * 5000)
    files["gif"] = pil_bytes(pil, "GIF")
    files["webp lossless"] = pil_bytes(pil, "WEBP", lossless=True)
    for name, data in files.items():
        assert image_size(np.frombuffer(data, np.uint8).data) == (56, 40), name
    assert image_size(memoryview(b"II*\x00" + b"\0" * 50)) is None  # TIFF: left to OpenCV's own limit


def test_odd_but_valid_images_decode_to_8bit_rgb(tmp_path):
    from PIL import Image

    rgb = cv2.cvtColor(RGB, cv2.COLOR_BGR2RGB)  # RGB holds BGR for cv2.imencode
    gray = write_bytes(tmp_path / "gray.png", encoded(".png", RGB[:, :, 0]))
    np.testing.assert_array_equal(read_image(gray), np.repeat(RGB[:, :, :1], 3, axis=2))
    deep = (RGB.astype(np.uint16) << 8) | 0xAB
    np.testing.assert_array_equal(read_image(write_bytes(tmp_path / "16bit.png", encoded(".png", deep))), rgb)
    alpha = np.dstack([RGB, np.full(RGB.shape[:2], 7, np.uint8)])
    np.testing.assert_array_equal(read_image(write_bytes(tmp_path / "alpha.png", encoded(".png", alpha))), rgb)
    cmyk_bytes = pil_bytes(Image.fromarray(rgb).convert("CMYK"), "JPEG", quality=95)
    cmyk = read_image(write_bytes(tmp_path / "cmyk.jpg", cmyk_bytes))
    reference = np.asarray(Image.open(io.BytesIO(cmyk_bytes)).convert("RGB"))
    assert cmyk.shape == (40, 56, 3) and cmyk.dtype == np.uint8
    assert np.abs(cmyk.astype(int) - reference.astype(int)).mean() < 2.0


def test_loader_skips_counts_and_reports_bad_images(data_root):
    write_bytes(data_root / "img" / "empty.png", b"")
    write_bytes(data_root / "img" / "bomb.png", fake_png_header(20000, 20000))
    lines = ["img/ok.png 1 0", "img/empty.png 0 1", "img/ok.png 1 1", "img/bomb.png 1 0", "img/gone.png 0 1"]
    lst = write_bytes(data_root / "l.txt", ("\n".join(lines) + "\n").encode())
    ds = ImageListDataset(lst, str(data_root), build_transform(False, 16, 12), skip_bad=True, max_pixels=10 ** 6)
    seen = []
    for _ in range(2):  # a bad image is counted once however often it is met
        for images, labels, indices in build_dataloader(ds, 2, shuffle=False, drop_last=False, num_workers=2):
            seen += indices.numpy().tolist()
    assert seen == [0, 2, 0, 2]
    assert sorted(ds.bad) == [1, 3, 4]
    summary = bad_image_summary(ds)
    assert summary.startswith("skipped 3 bad image(s)") and f"{lst}:2: " in summary and f"{lst}:4: " in summary
    strict = ImageListDataset(write_bytes(data_root / "s.txt", ("\n".join(lines[:4]) + "\n").encode()),
                              str(data_root), build_transform(False, 16, 12))
    with pytest.raises(UserError, match=r"s\.txt:2: .*empty\.png: image file is empty"):
        list(build_dataloader(strict, 2, shuffle=False, drop_last=False))


# --------------------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def broken_lite(tiny_lite, tmp_path_factory):
    """tiny_lite with two training images broken (one empty, one truncated)."""
    root = tmp_path_factory.mktemp("broken")
    os.symlink(os.path.join(tiny_lite, "images"), root / "images")
    (root / "bad").mkdir()
    (root / "bad" / "empty.jpg").write_bytes(b"")
    test_images = os.path.join(tiny_lite, "images", "test")
    first = os.path.join(test_images, sorted(os.listdir(test_images))[0])
    (root / "bad" / "cut.jpg").write_bytes(open(first, "rb").read()[:400])
    for split in ("test", "database", "classes"):
        (root / f"{split}.txt").write_text(open(os.path.join(tiny_lite, f"{split}.txt")).read())
    lines = open(os.path.join(tiny_lite, "train.txt")).read().splitlines()
    labels = lines[0].split(" ", 1)[1]
    lines[4:6] = [f"bad/empty.jpg {labels}", f"bad/cut.jpg {labels}"]  # still 32 lines: every one is met
    (root / "train.txt").write_text("\n".join(lines) + "\n")
    return root


@pytest.mark.slow
def test_training_stops_at_the_first_bad_image_or_skips_and_reports(broken_lite, tmp_path):
    code, _, stderr = train(broken_lite, tmp_path / "strict", 1)
    line = assert_one_line_error(code, stderr, "--skip-bad-images")  # the first one met in the shuffled order:
    assert re.search(r"train\.txt:5: \S*empty\.jpg: image file is empty", line) or \
        re.search(r"train\.txt:6: \S*cut\.jpg: cannot decode image", line), line
    code, stdout, stderr = train(broken_lite, tmp_path / "skip", 1, "--skip-bad-images")
    assert code == 0, stderr[-2000:]
    assert stdout.strip().splitlines()[-1].startswith("mAP@all: ")
    report = [line for line in stdout.splitlines() if "skipped 2 bad image(s)" in line]
    assert report and "train.txt:5:" in report[0] and "train.txt:6:" in report[0], stdout[-2000:]
