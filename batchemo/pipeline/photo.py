"""Decoding photos: as a viewer shows them (EXIF rotation), reduced where a large JPEG allows, refused with one
line where they cannot be read."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from .files import BadInput
from .jpeg import header_size, jpeg_complete, jpeg_progressive

def _first_bytes(data: bytes) -> str:
    head = data[:12]
    text = head.decode("ascii", "replace").strip()
    return repr(text) if text.isprintable() and text else head.hex()


_REDUCED = {2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}


def read_photo(path: Path, max_megapixels: float = 40.0, keep_side: int = 0) -> tuple[np.ndarray, tuple[int, int]]:
    """Like `read_image`, but a JPEG whose long side is over 2 x `keep_side` is decoded at 1/2, 1/4 or 1/8 scale
    (libjpeg's DCT scaling: 2-3x faster than a full decode and a quarter of the memory or less), keeping the
    long side >= `keep_side`; `max_megapixels` refuses what would be decoded that large. Returns (image, (width,
    height) of the full-size image as a viewer shows it)."""
    data = _read_bytes(path)
    size = header_size(data)
    factor = 1
    if size is not None and keep_side > 0 and data[:2] == b"\xff\xd8":
        while factor < 8 and max(size) / (2 * factor) >= keep_side:
            factor *= 2
    # The guard is about memory: a 50-megapixel phone JPEG decoded at 1/4 is 3 megapixels, and analysed. Not so
    # a progressive JPEG: libjpeg holds every DCT coefficient of the full image to decode one at any scale (16 bits
    # per sample, about what the full-size picture takes), so its full size is what the guard weighs.
    progressive = factor > 1 and jpeg_progressive(data)
    decoded = None if size is None else (size if progressive else (-(-size[0] // factor), -(-size[1] // factor)))
    why = " as a progressive JPEG, which needs its full size's memory to decode at any scale" if progressive else ""
    img = _decode(data, max_megapixels, decoded, _REDUCED.get(factor, cv2.IMREAD_COLOR), why)
    if factor == 1:
        return img, (img.shape[1], img.shape[0])
    w, h = size
    # EXIF rotation may have turned it: the order of the header's sides that fits the decoded image.
    as_is = abs(w / factor - img.shape[1]) + abs(h / factor - img.shape[0])
    turned = abs(h / factor - img.shape[1]) + abs(w / factor - img.shape[0])
    return img, ((w, h) if as_is <= turned else (h, w))


def read_image(path: Path, max_megapixels: float = 40.0) -> np.ndarray:
    """Decode an image file into a 3-channel 8-bit BGR array, as a viewer shows it (EXIF rotation applied).

    Grey, 16-bit, alpha and CMYK inputs all come out as 8-bit BGR. Raises BadInput with a one-line reason.
    """
    return read_photo(path, max_megapixels)[0]


def _read_bytes(path: Path) -> bytes:
    try:
        data = Path(path).read_bytes()
    except PermissionError:
        raise BadInput("permission denied") from None
    except IsADirectoryError:
        raise BadInput("is a directory") from None
    except OSError as e:
        raise BadInput(f"cannot read: {e.strerror or e}") from None
    if not data:
        raise BadInput("empty file (0 bytes)")
    return data


def _decode(data: bytes, max_megapixels: float, size: tuple[int, int] | None = None,
            flags: int = cv2.IMREAD_COLOR, why: str = "") -> np.ndarray:
    if data[:2] == b"\xff\xd8" and not jpeg_complete(data):
        # libjpeg decodes a truncated JPEG without complaint, filling the rest grey: refuse it instead.
        raise BadInput("truncated JPEG (the image data ends before its end-of-image marker)")
    if size is not None:  # refused before decoding where the header tells: the guard is about memory
        _check_megapixels(*size, max_megapixels, why)
    # IMREAD_COLOR applies EXIF orientation and turns grey, 16-bit, alpha and CMYK into 8-bit BGR.
    img = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    if img is None:
        raise BadInput(f"not a decodable image (file starts with {_first_bytes(data)})")
    _check_megapixels(img.shape[1], img.shape[0], max_megapixels)
    return img


def _check_megapixels(w: int, h: int, max_megapixels: float, why: str = "") -> None:
    if h * w / 1e6 >= max_megapixels:
        raise BadInput(f"image too large: {w}x{h} = {h * w / 1e6:.1f} megapixels{why} (limit --max-megapixels "
                       f"{max_megapixels:g})")


def to_grey(img: np.ndarray) -> np.ndarray:
    return img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
