"""Uploaded images: size and pixel limits checked before decoding, one-line 4xx messages.

The pixel count is read from the file header (Pillow reads no pixel data on open) so a small
file that decodes to a huge image (a "decompression bomb") is refused before any memory is spent
on it; the images of one request together may not pass `max_request_pixels` either, and the app
lets `max_decodes` requests decode at once (app.py), so decoded images take at most about
3 x max_request_pixels x max_decodes bytes (240 MB with the defaults). Decoding itself is OpenCV with the flags of utils.data.read_image, so an uploaded file
and the same file on disk give the same pixels and therefore the same code.
"""
import dataclasses
import io
import warnings

import cv2
import numpy as np

from utils.data.images import IMREAD_FLAGS
from utils.errors import UserError

# Pillow format name -> the suffix an added image is stored under (and the formats accepted).
FORMATS = {"JPEG": ".jpg", "PNG": ".png", "BMP": ".bmp", "WEBP": ".webp", "TIFF": ".tif", "GIF": ".gif"}  # as predict.py


class UploadError(UserError):
    """A request the service refuses; `status` is the HTTP status sent back with the message."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


@dataclasses.dataclass(frozen=True)
class Limits:
    max_bytes: int = 10 << 20      # one uploaded image (the request body may add 64 KiB of form fields)
    max_pixels: int = 40_000_000   # width x height of one image
    max_k: int = 100               # matches one search may return
    max_request_pixels: int = 40_000_000  # the images of one request together
    max_decodes: int = 2           # requests decoding (and encoding) images at once
    decode_wait: float = 30.0      # seconds a request waits for a decode slot before a 503

    def as_dict(self):
        return dataclasses.asdict(self)


@dataclasses.dataclass
class DecodedImage:
    pixels: np.ndarray   # uint8 HxWx3 RGB
    data: bytes          # the file as uploaded
    suffix: str          # .jpg / .png / ... from the detected format


def decode_upload(data, name, limits):
    """Check and decode one uploaded file; UploadError (400/413/415) names the upload and the limit."""
    label = f"upload {name!r}" if name else "upload"
    if not data:
        raise UploadError(400, f"{label} is empty")
    if len(data) > limits.max_bytes:
        raise UploadError(413, f"{label} is {len(data)} bytes, the limit is {limits.max_bytes} (--max-upload-mb)")
    width, height, fmt = _header(data, label, limits)
    if width * height > limits.max_pixels:
        raise UploadError(413, f"{label} is {width}x{height} = {width * height} pixels, the limit is "
                               f"{limits.max_pixels} (--max-pixels)")
    pixels = cv2.imdecode(np.frombuffer(data, np.uint8), IMREAD_FLAGS)  # as utils.data.read_image (which reads paths, not bytes): EXIF orientation applied
    if pixels is None or pixels.size == 0:
        raise UploadError(415, f"{label}: cannot decode the {fmt} image (corrupt or truncated)")
    if pixels.shape[0] * pixels.shape[1] > limits.max_pixels:  # the header lied
        raise UploadError(413, f"{label} decodes to more than {limits.max_pixels} pixels (--max-pixels)")
    return DecodedImage(np.ascontiguousarray(pixels), data, FORMATS[fmt])


def request_pixels(datas, limits):
    """The pixels the images of one request will decode to, from their headers; UploadError 413
    when together they pass max_request_pixels (a file that is not an image counts 0 here:
    decode_upload refuses it)."""
    total = 0
    for data in datas:
        try:
            width, height, _ = _header(data, "upload", limits)
        except UploadError:
            continue
        total += width * height
    if total > limits.max_request_pixels:
        raise UploadError(413, f"the images of this request have {total} pixels together, the limit is "
                               f"{limits.max_request_pixels} (--max-request-pixels)")
    return total


def _header(data, label, limits):
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
                fmt = image.format
    except Image.DecompressionBombError:
        raise UploadError(413, f"{label} has more pixels than Pillow allows; the limit is {limits.max_pixels} "
                               f"(--max-pixels)") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise UploadError(415, f"{label} is not an image (accepted: {', '.join(FORMATS)})") from None
    if fmt not in FORMATS:
        raise UploadError(415, f"{label} is a {fmt} image; accepted: {', '.join(FORMATS)}")
    return width, height, fmt
