"""Input files of the jobs: which files are photos or videos, walking a folder for them, their names as the
reports give them, and the one-line error a bad file gets (BadInput)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


# Formats phones and cameras write that OpenCV cannot decode: an error row naming the format, never passed over
# as "not an image" (a researcher's iPhone photos would drop out of the numbers unnoticed).
UNSUPPORTED_IMAGES = {".heic": "HEIC", ".heif": "HEIF", ".avif": "AVIF", ".gif": "GIF", ".jxl": "JPEG XL",
                      ".dng": "DNG raw", ".cr2": "Canon raw", ".cr3": "Canon raw", ".nef": "Nikon raw",
                      ".arw": "Sony raw", ".raf": "Fujifilm raw", ".orf": "Olympus raw", ".rw2": "Panasonic raw"}


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
