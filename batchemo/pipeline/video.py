"""Opening videos and reading their frames, each frame timed by the video's own clock (a phone's variable rate
included) and seekable only where it lands on the frame asked for."""
from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from .ffmpeg import frame_times
from .files import BadInput, name_problem

# FFmpeg (inside OpenCV) prints its own lines for a bad video ("moov atom not found" for a truncated MP4) ahead
# of batchemo's one-line error naming the file and the reason: fatal messages only (AV_LOG_FATAL = 8). OpenCV
# reads this when it first opens a video, so setting it at import, before any capture, is in time; a value the
# user set (e.g. 32 to see FFmpeg's own diagnostics) is kept.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "8")


FALLBACK_FPS = 25.0  # for a video whose container gives no usable frame rate


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
