"""Where pixels come from: walking folders, decoding photos, opening videos and reading their frames; one clear
error per bad file."""
from __future__ import annotations

import os
import struct
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import cv2
import numpy as np

from .ffmpeg import frame_times

# FFmpeg (inside OpenCV) prints its own lines for a bad video ("moov atom not found" for a truncated MP4) ahead
# of batchemo's one-line error naming the file and the reason: fatal messages only (AV_LOG_FATAL = 8). OpenCV
# reads this when it first opens a video, so setting it at import, before any capture, is in time; a value the
# user set (e.g. 32 to see FFmpeg's own diagnostics) is kept.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "8")

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
# Formats phones and cameras write that OpenCV cannot decode: an error row naming the format, never passed over
# as "not an image" (a researcher's iPhone photos would drop out of the numbers unnoticed).
UNSUPPORTED_IMAGES = {".heic": "HEIC", ".heif": "HEIF", ".avif": "AVIF", ".gif": "GIF", ".jxl": "JPEG XL",
                      ".dng": "DNG raw", ".cr2": "Canon raw", ".cr3": "Canon raw", ".nef": "Nikon raw",
                      ".arw": "Sony raw", ".raf": "Fujifilm raw", ".orf": "Olympus raw", ".rw2": "Panasonic raw"}
FALLBACK_FPS = 25.0  # for a video whose container gives no usable frame rate
VIDEO_EXTENSIONS = {".mp4", ".avi", ".mov", ".mkv", ".m4v", ".webm", ".mpg", ".mpeg", ".wmv", ".flv"}


class BadInput(Exception):
    """A file that cannot be analysed; the message is one line saying why."""


@dataclass(frozen=True)
class SourceFile:
    path: Path  # absolute or as given
    rel: str  # path relative to the walked root, with forward slashes: the `source` column
    size: int
    mtime_ns: int


def walk(root: Path, extensions: set[str], skip: Path | None = None,
         is_report: Callable[[Path], bool] = lambda folder: False) -> tuple[list[SourceFile], list[SourceFile]]:
    """(matching files, other files) under root, sorted by relative path.

    Symlinked folders are not followed (a link loop cannot trap the walk); `skip` (the report folder, when it
    lies inside root) and any other batchemo report below root (`is_report`, the jobs' `is_report_folder`: `cd
    photos && batchemo folder .` leaves photos/reports/photos/) are left out.
    """
    matched: list[SourceFile] = []
    others: list[SourceFile] = []
    skip_resolved = skip.resolve() if skip is not None else None
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(dirpath)
        if skip_resolved is not None:
            dirnames[:] = [d for d in dirnames if (here / d).resolve() != skip_resolved]
        dirnames[:] = [d for d in dirnames if not d.startswith(".") and not is_report(here / d)]
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


def printable(name: str) -> str:
    """A file name as one line of text: bytes that are not UTF-8 (a Latin-1 name from an old zip) as \\xNN,
    control characters (a newline) escaped."""
    name = name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in name)


def source_text(name: str) -> str:
    """A file name as the `source` column holds it: as it is (spaces, U+202F of a macOS screen recording, even a
    newline: CSV quotes it), except a name that is not UTF-8 text, which no CSV can hold: `printable`."""
    return printable(name) if name_problem(name) else name


def name_problem(path: str | Path) -> str:
    """'' for a path that is UTF-8 text; else why it cannot be read (OpenCV crashes on such a path, and its name
    could reach no CSV)."""
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        return "the file name is not valid UTF-8 text; rename it (e.g. `convmv -f latin1 -t utf8`)"
    return ""


def refusal(sf: SourceFile) -> str:
    """Why a file under the folder cannot be analysed before it is even read ('' when it can be tried)."""
    if name_problem(sf.path):  # reported, the others analysed
        return name_problem(sf.path)
    kind = UNSUPPORTED_IMAGES.get(Path(sf.rel).suffix.lower())
    return f"{kind} images are not supported; convert it to JPEG or PNG" if kind else ""


def is_photo(path: Path) -> bool:
    """Is `path` a still image file (by its extension, or by its first bytes where the extension tells
    neither)? FFmpeg opens a photo as a one-frame video, so the video job asks before opening anything, and the
    folder job takes a single photo as a folder of one."""
    path = Path(path)
    suffix = path.suffix.lower()
    if not path.is_file() or suffix in VIDEO_EXTENSIONS or suffix == ".gif":  # a GIF may well be animated
        return False
    if name_problem(path):  # OpenCV would crash on it; the job reports it
        return suffix in IMAGE_EXTENSIONS
    return suffix in IMAGE_EXTENSIONS or cv2.haveImageReader(str(path))


def _first_bytes(data: bytes) -> str:
    head = data[:12]
    text = head.decode("ascii", "replace").strip()
    return repr(text) if text.isprintable() and text else head.hex()


def jpeg_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a JPEG's frame header, before EXIF rotation, without decoding; None if not found."""
    frame = _jpeg_frame(data)
    return None if frame is None else frame[1:]


def _jpeg_frame(data: bytes) -> tuple[int, int, int] | None:
    """(start-of-frame marker, width, height) of a JPEG, None if not found."""
    i, n = 2, len(data)
    while i + 9 < n and data[i] == 0xFF:
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # start of frame
            h, w = int.from_bytes(data[i + 5:i + 7], "big"), int.from_bytes(data[i + 7:i + 9], "big")
            return (marker, w, h) if w and h else None
        i += 2 + int.from_bytes(data[i + 2:i + 4], "big")
    return None


def jpeg_progressive(data: bytes) -> bool:
    """Is the JPEG progressive (its start-of-frame marker SOF2, 6, 10 or 14)?"""
    frame = _jpeg_frame(data)
    return frame is not None and frame[0] in (0xC2, 0xC6, 0xCA, 0xCE)


def jpeg_complete(data: bytes) -> bool:
    """Does the JPEG's own structure reach its end-of-image marker? Read from the markers, not from the file's
    tail: phone photos carry data after the image (a "motion photo"'s whole MP4, camera trailers), which is
    no reason to refuse them, while a file cut inside its scan data must be refused."""
    i, n = 2, len(data)
    while i + 2 <= n:
        if data[i] != 0xFF:
            # Stray bytes before a marker: libjpeg skips them to the next 0xFF ("extraneous bytes before
            # marker") and decodes the whole image, so they are no reason to refuse it.
            i = data.find(b"\xff", i)
            if i < 0:
                return False
            continue
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker == 0xD9:
            return True
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # markers without a length
            i += 2
            continue
        if i + 4 > n:
            return False
        i += 2 + int.from_bytes(data[i + 2:i + 4], "big")
        if marker != 0xDA:
            continue
        # Entropy-coded data after a start of scan: it ends at the first 0xFF that is neither a stuffed
        # 0xFF00 nor a restart marker.
        while True:
            i = data.find(b"\xff", i)
            if i < 0 or i + 1 >= n:
                return False
            nxt = data[i + 1]
            if nxt == 0x00 or 0xD0 <= nxt <= 0xD7 or nxt == 0xFF:
                i += 1 if nxt == 0xFF else 2
                continue
            break
    return False


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


def header_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a JPEG's or PNG's header, None for other formats or an unreadable header: lets the
    megapixel guard refuse a huge scan before decoding it, which is what the guard is for (memory)."""
    if data[:2] == b"\xff\xd8":
        return jpeg_size(data)
    if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR" and len(data) >= 24:
        return struct.unpack(">II", data[16:24])
    return None


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


@dataclass(frozen=True)
class VideoInfo:
    """What a video's container says about it."""

    fps: float  # 0 when the container gives no usable rate
    frame_count: int  # -1 when unknown (may overstate the frames that decode)
    width: int
    height: int


def _capture(path: Path) -> cv2.VideoCapture:
    path = Path(path)
    if not path.exists():
        raise BadInput("no such file")
    if path.is_dir():
        raise BadInput("is a directory")
    if path.stat().st_size == 0:
        raise BadInput("empty file (0 bytes)")
    if name_problem(path):
        raise BadInput(name_problem(path))
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise BadInput("not a readable video (OpenCV/FFmpeg cannot open it)")
    return cap


def _info(cap: cv2.VideoCapture) -> VideoInfo:
    fps = cap.get(cv2.CAP_PROP_FPS)
    count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    return VideoInfo(fps if 0.1 < fps < 1000 else 0.0, count if count > 0 else -1,
                     int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))


@contextmanager
def open_video(path: Path) -> Iterator[tuple[cv2.VideoCapture, VideoInfo]]:
    """(capture, info) of a readable video, released on leaving; BadInput with the reason if it is not one."""
    cap = _capture(path)
    try:
        yield cap, _info(cap)
    finally:
        cap.release()


def probe(path: Path) -> VideoInfo:
    """A video's VideoInfo; BadInput if it is not a readable video."""
    with open_video(path) as (_, info):
        return info


@dataclass
class Frame:
    index: int
    time_s: float
    image: np.ndarray  # BGR uint8
    stream_s: float = 0.0  # the frame's own timestamp in the stream (tells a whole file from one cut short)


def first_uneven_frame(times: list[float], fps: float) -> int | None:
    """The first frame whose timestamp is not its index / `fps` after the first frame's (to the nearest frame);
    None where every frame is (a constant-rate video)."""
    return next((k for k, t in enumerate(times) if round((t - times[0]) * fps) != k), None)


def variable_rate_clock(path: Path, fps: float) -> list[float] | None:
    """Each frame's time after the first (s), by the timestamps in its packets, for a variable-rate video (a
    phone's, whose rate drops in low light); None for a constant-rate one, whose times are index / fps, or where
    the timestamps cannot be read. Read before the pass, so that the whole file's spacing is known at its
    first frame."""
    times = frame_times(Path(path)) if fps > 0 else None
    if not times or first_uneven_frame(times, fps) is None:
        return None
    return [t - times[0] for t in times]


def seek_to(cap: cv2.VideoCapture, frame: int) -> bool:
    """Seek the capture to `frame`; did it land there, by the position OpenCV's FFmpeg backend reports? (OpenCV
    seeks by time: on files whose timestamps mislead it, it lands elsewhere.)"""
    cap.set(cv2.CAP_PROP_POS_FRAMES, frame)
    return round(cap.get(cv2.CAP_PROP_POS_FRAMES)) == frame


def frame_time(i: int, fps: float, clock: list[float] | None = None) -> float:
    """Frame `i`'s time (s): by `clock` (`variable_rate_clock`) where given, else i / fps."""
    if clock:  # a frame past the packets counted (not seen): one frame interval after the last counted
        return clock[i] if i < len(clock) else clock[-1] + (i - len(clock) + 1) / (fps or FALLBACK_FPS)
    return i / (fps or FALLBACK_FPS)


def read_frames(cap: cv2.VideoCapture, fps: float, first: int = 0, last: int | None = None,
                clock: list[float] | None = None) -> Iterator[Frame]:
    """Frames `first` (the capture is already there) up to `last` (exclusive) or the end of the stream; `clock`:
    the frames' times (`variable_rate_clock`), else index / fps."""
    i = first
    while last is None or i < last:
        ok, image = cap.read()
        if not ok or image is None:
            return
        ms = cap.get(cv2.CAP_PROP_POS_MSEC)
        if clock or fps > 0:
            t = frame_time(i, fps, clock)
        else:  # no usable fps in the container: the frame's own timestamp
            t = ms / 1000 if ms > 0 or i == 0 else i / FALLBACK_FPS
        yield Frame(i, t, image, ms / 1000)
        i += 1
