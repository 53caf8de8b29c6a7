"""Images: decoding to 8-bit RGB with OpenCV, and the image size read from a file's header (the
decompression-bomb guard looks at it before anything is decoded). numpy and OpenCV only."""
import os
import struct

import cv2
import numpy as np

from utils.errors import DataError
from utils.storage.fileio import read_bytes

# Decompression-bomb guard (config dataset.max_image_pixels): 100 MP is ~300 MB as 8-bit RGB.
DEFAULT_MAX_PIXELS = 100_000_000

# EXIF orientation applied (a phone's portrait photo comes out upright, as PIL's ImageOps.exif_transpose)
IMREAD_FLAGS = cv2.IMREAD_COLOR_RGB

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
    16-bit is reduced to 8-bit, CMYK JPEGs are converted; EXIF orientation is applied (as
    PIL's ImageOps.exif_transpose). Missing, empty or undecodable files raise DataError naming the path, and
    so does an image whose header claims more than max_pixels pixels (a decompression bomb),
    before anything is decoded. Formats whose header is not parsed here (TIFF, ...) rely on
    OpenCV's own limit (2**30 pixels).
    """
    path = os.fspath(path)
    # bytes, then cv2.imdecode (not cv2.imread): non-ASCII file names work everywhere
    buf = np.frombuffer(read_bytes(path, "image", folder_hint=", expected an image"), dtype=np.uint8)
    if buf.size == 0:
        raise DataError(f"{path}: image file is empty")
    size = image_size(buf.data)
    if size is not None and size[0] * size[1] > max_pixels:
        raise DataError(f"{path}: image of {size[0]}x{size[1]} pixels exceeds the limit of {max_pixels} "
                        "(dataset.max_image_pixels; a decompression bomb?)")
    try:
        image = cv2.imdecode(buf, IMREAD_FLAGS)
    except cv2.error:
        image = None
    if image is None or image.size == 0:
        raise DataError(f"{path}: cannot decode image (truncated, corrupt or not an image)")
    # IMREAD_COLOR_RGB already gives uint8 HxWx3 (16-bit >> 8); these are only defensive.
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    elif image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_RGBA2RGB)
    return np.ascontiguousarray(image)
