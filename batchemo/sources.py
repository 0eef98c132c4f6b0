"""Where pixels come from: walking a folder of images and decoding them, one clear error per bad file."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
VIDEO_EXTENSIONS = {".mp4", ".avi", ".mov", ".mkv", ".m4v", ".webm", ".mpg", ".mpeg", ".wmv", ".flv"}


class BadInput(Exception):
    """A file that cannot be analysed; the message is one line saying why."""


@dataclass(frozen=True)
class SourceFile:
    path: Path  # absolute or as given
    rel: str  # path relative to the walked root, with forward slashes: the `source` column
    size: int
    mtime_ns: int


def walk(root: Path, extensions: set[str], skip: Path | None = None) -> tuple[list[SourceFile], list[SourceFile]]:
    """(matching files, other files) under root, sorted by relative path.

    Symlinked folders are not followed (a link loop cannot trap the walk); `skip` (the report folder, when it
    lies inside root) is left out.
    """
    matched: list[SourceFile] = []
    others: list[SourceFile] = []
    skip_resolved = skip.resolve() if skip is not None else None
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(dirpath)
        if skip_resolved is not None:
            dirnames[:] = [d for d in dirnames if (here / d).resolve() != skip_resolved]
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            if name.startswith("."):
                continue
            p = here / name
            try:
                st = p.stat()
            except OSError:  # dangling link, vanished file: still listed so it is never silently dropped
                st = None
            rel = p.relative_to(root).as_posix()
            sf = SourceFile(p, rel, st.st_size if st else -1, st.st_mtime_ns if st else -1)
            (matched if p.suffix.lower() in extensions else others).append(sf)
    matched.sort(key=lambda s: s.rel)
    others.sort(key=lambda s: s.rel)
    return matched, others


def _first_bytes(data: bytes) -> str:
    head = data[:12]
    text = head.decode("ascii", "replace").strip()
    return repr(text) if text.isprintable() and text else head.hex()


def read_image(path: Path, max_megapixels: float = 40.0) -> np.ndarray:
    """Decode an image file into a 3-channel 8-bit BGR array, as a viewer shows it (EXIF rotation applied).

    Grey, 16-bit, alpha and CMYK inputs all come out as 8-bit BGR. Raises BadInput with a one-line reason.
    """
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
    buf = np.frombuffer(data, np.uint8)
    if data[:2] == b"\xff\xd8" and b"\xff\xd9" not in data[-4096:]:
        # libjpeg decodes a truncated JPEG without complaint, filling the rest grey: refuse it instead.
        raise BadInput("truncated JPEG (no end-of-image marker)")
    # IMREAD_COLOR applies EXIF orientation and turns grey, 16-bit, alpha and CMYK into 8-bit BGR.
    img = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    if img is None:
        raise BadInput(f"not a decodable image (file starts with {_first_bytes(data)})")
    h, w = img.shape[:2]
    if h * w / 1e6 >= max_megapixels:
        raise BadInput(f"image too large: {w}x{h} = {h * w / 1e6:.1f} megapixels (limit --max-megapixels "
                       f"{max_megapixels:g})")
    return img


def to_grey(img: np.ndarray) -> np.ndarray:
    return img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
